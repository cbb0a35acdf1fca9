"""What every dashboard page reads: the library (a workspace, the service's reader)."""

from __future__ import annotations

from datetime import datetime

from watchkeeper.config import ModelConfig
from watchkeeper.rows import MetricRow
from watchkeeper.workspace import Workspace


class PageBase:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.models = [m.name for m in ws.config.models]

    def rows(
        self,
        model: ModelConfig,
        metrics: list[str],
        since: datetime | None = None,
        whole: bool = True,
    ) -> list[MetricRow]:
        """A model's rows of its own window size, oldest first (the whole traffic's only,
        unless ``whole`` is false)."""
        return self.ws.metrics_table.select(
            model.name,
            metrics=metrics,
            size=model.monitoring.window,
            since=since,
            segment="*" if whole else None,
        )

    def newest(self, model: ModelConfig) -> datetime | None:
        """The newest window of the model's own size (rules' shorter windows are newer)."""
        return self.ws.metrics_table.newest(model.name, size=model.monitoring.window)

    @staticmethod
    def latest(rows: list[MetricRow], metric: str, column: str = "") -> MetricRow | None:
        found = [r for r in rows if r.metric == metric and r.column == column]
        if not found:
            return None
        newest = max(r.window_start for r in found)
        at = [r for r in found if r.window_start == newest]
        return max(at, key=lambda r: r.sample_size or 0)


__all__ = ["PageBase"]
