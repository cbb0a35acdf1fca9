"""The stored metrics a triage reads: a model's rows over a span, by series and by version."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from watchkeeper.catalogue import additive
from watchkeeper.config import ModelConfig
from watchkeeper.rows import MetricRow
from watchkeeper.stats import baseline
from watchkeeper.store import Store
from watchkeeper.store.metrics import MetricsTable

BASELINE_WINDOWS = 7  # usual level: the median of the windows before the drop
CORRELATION_WINDOWS = 14  # how far back a feature's drift is compared with the metric

Key = tuple[str, str, str, str]  # metric, column, segment_column, segment_value


class Metrics:
    """A model's metric rows over a span, by series (the versions of a window merged by
    sample size, as the alerts do) and by version."""

    def __init__(self, rows: list[MetricRow]) -> None:
        self.by_key: dict[Key, dict[datetime, MetricRow]] = defaultdict(dict)
        self.by_version: dict[tuple[str, str], dict[datetime, dict[str, MetricRow]]] = defaultdict(
            lambda: defaultdict(dict)
        )
        parts: dict[Key, dict[datetime, list[MetricRow]]] = defaultdict(lambda: defaultdict(list))
        for r in rows:
            key = (r.metric, r.column, r.segment_column, r.segment_value)
            parts[key][r.window_start].append(r)
            if r.segment_column == "*":
                self.by_version[(r.metric, r.column)][r.window_start][r.model_version] = r
        # Where versions share a window (a rollout), the whole traffic is their mix: counts
        # add up, rates are averaged by their events.
        for key, by_start in parts.items():
            for start, found in by_start.items():
                self.by_key[key][start] = found[0] if len(found) == 1 else _mix(key[0], found)

    def row(
        self, metric: str, at: datetime, column: str = "", seg: tuple[str, str] = ("*", "*")
    ) -> MetricRow | None:
        return self.by_key.get((metric, column, *seg), {}).get(at)

    def value(
        self, metric: str, at: datetime, column: str = "", seg: tuple[str, str] = ("*", "*")
    ) -> float | None:
        r = self.row(metric, at, column, seg)
        return _num(r.value) if r else None

    def history(
        self,
        metric: str,
        before: datetime,
        column: str = "",
        seg: tuple[str, str] = ("*", "*"),
        n: int = BASELINE_WINDOWS,
    ) -> list[float]:
        found = self.by_key.get((metric, column, *seg), {})
        starts = sorted(s for s in found if s < before)[-n:]
        return [v for s in starts if (v := _num(found[s].value)) is not None]

    def usual(
        self, metric: str, before: datetime, column: str = "", seg: tuple[str, str] = ("*", "*")
    ) -> float | None:
        return baseline.usual(self.history(metric, before, column, seg))

    def columns(self, metric: str, seg: tuple[str, str] = ("*", "*")) -> list[str]:
        return sorted({k[1] for k in self.by_key if k[0] == metric and (k[2], k[3]) == seg})

    def segments(self, metric: str, column: str = "") -> list[tuple[str, str]]:
        return sorted(
            {(k[2], k[3]) for k in self.by_key if k[0] == metric and k[1] == column and k[2] != "*"}
        )

    def series(
        self, metric: str, column: str = "", seg: tuple[str, str] = ("*", "*")
    ) -> dict[datetime, float]:
        found = self.by_key.get((metric, column, *seg), {})
        return {s: v for s, r in found.items() if (v := _num(r.value)) is not None}


def _mix(metric: str, rows: list[MetricRow]) -> MetricRow:
    """Versions sharing a window: amounts that add up are summed, the rest averaged by events."""
    n = sum(int(r.sample_size or 0) for r in rows)
    known = [(v, int(r.sample_size or 0)) for r in rows if (v := _num(r.value)) is not None]
    value: float | None
    if not known:
        value = None
    elif additive(metric):
        value = sum(v for v, _ in known)
    else:
        weight = sum(k for _, k in known)
        value = sum(v * k for v, k in known) / weight if weight else known[0][0]
    first = max(rows, key=lambda r: int(r.sample_size or 0))
    return first.with_(
        value=value,
        lower=None,
        upper=None,
        sample_size=n,
        model_version="*",
        provisional=any(r.provisional for r in rows),
    )


def moment(value: Any) -> datetime | None:
    """A timestamp from an engine's scalar: None for nothing (pandas says NaT)."""
    if value is None or value != value:  # NaT is not equal to itself
        return None
    if hasattr(value, "to_pydatetime"):
        found: datetime = value.to_pydatetime()
        return found
    return value if isinstance(value, datetime) else None


def _num(value: Any) -> float | None:
    if value is None:
        return None
    v = float(value)
    return None if math.isnan(v) else v


def load(
    store: Store, model: ModelConfig, since: datetime, until: datetime, size: timedelta
) -> Metrics:
    return Metrics(MetricsTable(store).select(model.name, since=since, through=until, size=size))


__all__ = ["BASELINE_WINDOWS", "CORRELATION_WINDOWS", "Metrics", "load", "moment"]
