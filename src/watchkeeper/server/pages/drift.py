"""Drift: the columns of a window ranked by drift (each with the rule that decides it: its
effect size and threshold, its test's adjusted p-value), drift over time as a heat map of
features × windows, and a column's distribution in the reference and in the window."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from watchkeeper.config import ModelConfig
from watchkeeper.metrics.drift import drift_rule
from watchkeeper.profiles.types import ColumnProfile
from watchkeeper.reference.profile import ReferenceProfile
from watchkeeper.report.charts import display_bins
from watchkeeper.report.specs import bars_spec, heatmap_spec
from watchkeeper.rows import MetricRow
from watchkeeper.server.pages.base import PageBase
from watchkeeper.server.pages.html import render

HEAT_WINDOWS = 60  # the heat map shows the newest windows, at most this many


class DriftPage(PageBase):
    def drift_page(self, name: str, window: str | None, feature: str | None) -> str:
        model = self.ws.config.model(name)
        size = model.monitoring.window
        starts = self.ws.metrics_table.starts(model.name, metrics=["drift"], size=size, segment="*")
        page: dict[str, Any] = {"title": f"{name}: drift", "models": self.models, "name": name}
        if not starts:
            return render("drift.html", windows=[], **page)
        chosen = next((s for s in starts if s.isoformat() == window), starts[0])
        # Only the windows drawn are read: the heat map's newest ones and the chosen one.
        recent = starts[:HEAT_WINDOWS]
        rows = self.rows(model, ["drift"], since=recent[-1])
        if chosen < recent[-1]:
            rows = (
                self.ws.metrics_table.select(
                    model.name,
                    metrics=["drift"],
                    size=size,
                    segment="*",
                    since=chosen,
                    through=chosen,
                )
                + rows
            )
        at = sorted(
            (r for r in rows if r.window_start == chosen),
            key=lambda r: (r.status != "drifted", -(r.value or 0)),
        )
        feature = feature or (at[0].column if at else None)
        ref = self.ws.reference_profile(model.name)  # read once: each row names its method
        return render(
            "drift.html",
            windows=starts[:500],
            chosen=chosen,
            ranked=at,
            methods={r.column: self.method(model, ref, r.column) for r in at},
            heat=self.heat_map(rows, recent),
            feature=feature,
            distribution=self.distribution(model, chosen, feature, at) if feature else None,
            **page,
        )

    def distribution(
        self, model: ModelConfig, at: datetime, feature: str, rows: list[MetricRow]
    ) -> dict[str, Any] | None:
        """The bars of a column's bins in the reference and in the window (None when
        either is not stored)."""
        version = next((r.model_version for r in rows if r.column == feature), model.version)
        # A version without its own reference is compared with the configured version's.
        ref = self.ws.reference_profile(
            model.name, version if version != "*" else None
        ) or self.ws.reference_profile(model.name)
        binning = ref.binning(feature) if ref is not None else None
        found = self.ws.metrics_table.profiles(model.name, at, feature)
        if ref is None or binning is None or not found or feature not in ref.overall.columns:
            return None
        live = None
        for _, profile in found:
            p = ColumnProfile.from_json(json.loads(profile))
            live = p if live is None else live.merge(p)
        assert live is not None
        labels, reference, latest = display_bins(
            binning, ref.overall.columns[feature].bins, live.bins
        )
        return bars_spec(
            labels, reference, latest, reference_name="reference", live_name=f"{at:%Y-%m-%d %H:%M}"
        )

    @staticmethod
    def method(model: ModelConfig, ref: ReferenceProfile | None, column: str) -> str:
        """The rule deciding a column's drift, in words: its effect size against its
        threshold, and its test's adjusted p-value against alpha."""
        binning = ref.binning(column) if ref is not None else None
        if binning is None:
            return ""
        rule = drift_rule(model, binning)
        parts = [f"{rule.effect} (distance)"] if rule.effect else []
        if rule.test:
            parts.append(f"{rule.test} test, q < {rule.alpha:g}")
        return " and ".join(parts)

    @staticmethod
    def heat_map(rows: list[MetricRow], starts: list[datetime]) -> dict[str, Any] | None:
        """Features × the newest windows, coloured by the effect size, drifted outlined
        (where versions share a window, the row with the most events)."""
        keep = set(starts)
        cells: dict[tuple[str, datetime], MetricRow] = {}
        for r in rows:
            if r.window_start not in keep or r.value is None:
                continue
            key = (r.column, r.window_start)
            if key not in cells or (r.sample_size or 0) > (cells[key].sample_size or 0):
                cells[key] = r
        if not cells:
            return None
        return heatmap_spec(
            [
                {"feature": c, "t": t, "value": r.value, "status": r.status}
                for (c, t), r in sorted(cells.items())
            ],
        )

    # -- segments and fairness ---------------------------------------------------------------


__all__ = ["DriftPage"]
