"""Segments and fairness: the headline metric by segment, gaps to the rest, disparities
between protected groups, and the weak slices found."""

from __future__ import annotations

from watchkeeper.report.html import esc, fmt
from watchkeeper.server.pages.base import PageBase
from watchkeeper.server.pages.html import page, seg, table
from watchkeeper.triage import default_metric


class SegmentsPage(PageBase):
    def segments_page(self, name: str) -> str:
        model = self.ws.config.model(name)
        headline = default_metric(model)
        newest = self.newest(model)
        rows = self.rows(
            model,
            [
                headline,
                f"estimated_{headline}",
                "row_count",
                "demographic_parity_difference",
                "equalized_odds_difference",
                "weak_slice",
                "segment_gap",
            ],
            newest,
            whole=False,
        )
        at = [r for r in rows if r.window_start == newest]
        metric = headline if any(r.metric == headline for r in at) else f"estimated_{headline}"
        segs = [
            [
                esc(seg(r)),
                fmt(r.value),
                f"{fmt(r.lower)} – {fmt(r.upper)}",
                f"{int(r.sample_size or 0):,}",
            ]
            for r in sorted(
                at,
                key=lambda r: (r.segment_column != "*", r.segment_column, r.segment_value),
            )
            if r.metric == metric
        ]
        fair = [
            [
                esc(r.segment_column),
                esc(r.metric.replace("_", " ")),
                fmt(r.value),
                fmt(r.p_value, 2),
                f"{int(r.sample_size or 0):,}",
            ]
            for r in at
            if r.metric in ("demographic_parity_difference", "equalized_odds_difference")
        ]
        gaps = [
            [esc(seg(r)), esc(r.column), fmt(r.value), esc(r.status)]
            for r in at
            if r.metric == "segment_gap"
        ]
        slices = [
            [esc(r.column), fmt(r.value), esc(r.detail)]
            for r in at
            if r.metric == "weak_slice" and r.column  # '' is the search's summary row
        ]
        when = f"{newest:%Y-%m-%d %H:%M}" if newest else "no window yet"
        body = (
            self.model_tabs(name)
            + f"<p>The newest window: {esc(when)}.</p>"
            + f"<h2>{esc(metric.replace('_', ' '))} by segment (95% intervals)</h2>"
            + table(["segment", "value", "interval", "events"], segs, "segments")
            + "<h2>Gaps to the rest</h2>"
            + table(["segment", "metric", "gap", "status"], gaps)
            + "<h2>Fairness between protected groups</h2>"
            + table(["attribute", "disparity", "value", "p-value", "events"], fair)
            + "<h2>Weak slices found</h2>"
            + table(["slice", "gap", "detail"], slices)
        )
        return page(f"{name}: segments and fairness", body, self.models)

    # -- alerts ------------------------------------------------------------------------------


__all__ = ["SegmentsPage"]
