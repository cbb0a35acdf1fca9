"""Drift: the columns of a window ranked by drift (each with the rule that decides it: its
effect size and threshold, its test's adjusted p-value), drift over time as a heat map of
features × windows, and a column's distribution in the reference and in the window."""

from __future__ import annotations

import json
from datetime import datetime

from watchkeeper.config import ModelConfig
from watchkeeper.metrics.drift import drift_rule
from watchkeeper.profiles.types import ColumnProfile
from watchkeeper.reference.profile import ReferenceProfile
from watchkeeper.report.charts import display_bins
from watchkeeper.report.html import esc, fmt
from watchkeeper.report.specs import bars_spec, heatmap_spec
from watchkeeper.rows import MetricRow
from watchkeeper.server.pages.base import PageBase
from watchkeeper.server.pages.html import chart, page, table

HEAT_WINDOWS = 60  # the heat map shows the newest windows, at most this many


class DriftPage(PageBase):
    def drift_page(self, name: str, window: str | None, feature: str | None) -> str:
        model = self.ws.config.model(name)
        size = model.monitoring.window
        starts = self.ws.metrics_table.starts(model.name, metrics=["drift"], size=size, segment="*")
        if not starts:
            return page(
                f"{name}: drift",
                self.model_tabs(name) + "<p>No drift measured yet.</p>",
                self.models,
            )
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
        methods = {r.column: self.method(model, ref, r.column) for r in at}
        ranked = table(
            ["column", "version", "method", "effect size", "threshold", "adjusted p", "status"],
            [
                [
                    f'<a href="?window={esc(chosen.isoformat())}&amp;feature='
                    f'{esc(r.column)}">{esc(r.column)}</a>',
                    esc(r.model_version if r.model_version != "*" else "all"),
                    esc(methods[r.column]),
                    fmt(r.value),
                    fmt(r.threshold),
                    fmt(r.p_value, 2),
                    f'<span class="{esc(r.status)}">{esc(r.status)}</span>',
                ]
                for r in at
            ],
            "drift",
        )
        options = "".join(
            f'<option value="{esc(s.isoformat())}"{" selected" if s == chosen else ""}>'
            f"{s:%Y-%m-%d %H:%M}</option>"
            for s in starts[:500]
        )
        body = (
            self.model_tabs(name)
            + f'<form class="pick" method="get"><label>window <select name="window" '
            f'onchange="this.form.submit()">{options}</select></label></form>'
            + ranked
            + self.heat_map(rows, recent)
        )
        if feature:
            body += self.distribution(model, chosen, feature, at)
        return page(f"{name}: drift", body, self.models)

    def distribution(
        self, model: ModelConfig, at: datetime, feature: str, rows: list[MetricRow]
    ) -> str:
        version = next((r.model_version for r in rows if r.column == feature), model.version)
        # A version without its own reference is compared with the configured version's.
        ref = self.ws.reference_profile(
            model.name, version if version != "*" else None
        ) or self.ws.reference_profile(model.name)
        binning = ref.binning(feature) if ref is not None else None
        found = self.ws.metrics_table.profiles(model.name, at, feature)
        if ref is None or binning is None or not found or feature not in ref.overall.columns:
            return f"<p>No distribution stored for {esc(feature)}.</p>"
        live = None
        for _, profile in found:
            p = ColumnProfile.from_json(json.loads(profile))
            live = p if live is None else live.merge(p)
        assert live is not None
        labels, reference, latest = display_bins(
            binning, ref.overall.columns[feature].bins, live.bins
        )
        spec = bars_spec(
            labels, reference, latest, reference_name="reference", live_name=f"{at:%Y-%m-%d %H:%M}"
        )
        return f"<h2>{esc(feature)}: reference and live</h2>" + chart("distribution", spec)

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
    def heat_map(rows: list[MetricRow], starts: list[datetime]) -> str:
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
            return ""
        spec = heatmap_spec(
            [
                {"feature": c, "t": t, "value": r.value, "status": r.status}
                for (c, t), r in sorted(cells.items())
            ],
        )
        return "<h2>Drift over time</h2>" + chart("heat", spec)

    # -- segments and fairness ---------------------------------------------------------------


__all__ = ["DriftPage"]
