"""Segments and fairness: the headline metric by segment over time and in each segment's
newest window, gaps to the rest, disparities between protected groups over time, the weak
slices found, and the alerts open on any of them (so the page agrees with the alerts)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from watchkeeper.catalogue import CATALOGUE
from watchkeeper.report.specs import Line, Point, SeriesChart, series_spec
from watchkeeper.rows import ALL, MetricRow
from watchkeeper.server.pages.html import render, seg
from watchkeeper.server.pages.series import SeriesPage, View
from watchkeeper.triage import default_metric

SEGMENT_WINDOWS = 90  # the charts show the newest windows, at most this many
FAIRNESS = ("demographic_parity_difference", "equalized_odds_difference")
# The metrics of segments and groups: an alert on one is an alert this page shows.
ON_SEGMENTS = ("segment_gap", "weak_slice", *FAIRNESS, "demographic_parity_ratio",
               "equalized_odds_ratio", "difference_to_overall", "ratio_to_overall")  # fmt: skip


def _newest(rows: list[MetricRow]) -> list[MetricRow]:
    """Each series' newest row (per metric, column, segment; the version with the most
    events where versions share that window)."""
    found: dict[tuple[str, str, str, str], MetricRow] = {}
    for r in rows:
        key = (r.metric, r.column, r.segment_column, r.segment_value)
        old = found.get(key)
        if (
            old is None
            or r.window_start > old.window_start
            or (
                r.window_start == old.window_start and (r.sample_size or 0) > (old.sample_size or 0)
            )
        ):
            found[key] = r
    return list(found.values())


class SegmentsPage(SeriesPage):
    def segments_page(self, name: str) -> str:
        model = self.ws.config.model(name)
        size = model.monitoring.window
        headline = default_metric(model)
        wanted = [headline, f"estimated_{headline}", "row_count", *FAIRNESS, "weak_slice",
                  "segment_gap"]  # fmt: skip
        newest = self.newest(model)
        # Each table row is its series' newest window (a segment's labels may lag the
        # whole traffic's); the charts draw the newest windows.
        latest = [
            r
            for r in self.ws.metrics_table.latest(name, wanted, size, with_value=True)
            if r.segment_column != ALL or r.metric in FAIRNESS
        ]
        since = newest - size * (SEGMENT_WINDOWS - 1) if newest is not None else None
        recent = self.rows(
            model, [headline, f"estimated_{headline}", *FAIRNESS], since, whole=False
        )
        metric = headline if any(r.metric == headline for r in latest) else f"estimated_{headline}"
        # A rule is on segments when one of its conditions is: its alerts may carry only
        # the labels it groups by (segment_gap's: the segment alone).
        on_metric = {
            rule.name: {c.metric for c in rule.conditions} for rule in self.ws.config.alerting.rules
        }
        on_segments = []
        for a in self.ws.alerts(name, state="firing"):
            labels = json.loads(a["labels"] or "{}")
            metrics = {labels["metric"]} if "metric" in labels else on_metric.get(a["rule"], set())
            if (labels.get("segment") or ALL) != ALL or metrics & set(ON_SEGMENTS):
                on_segments.append(dict(a, labels_=labels, metrics_=metrics))
        gaps = sorted(
            (r for r in _newest(latest) if r.metric == "segment_gap"),
            key=lambda r: (r.status == "ok", seg(r), r.column),
        )

        def alerted(r: MetricRow) -> bool:
            return any(
                "segment_gap" in a["metrics_"]
                and a["labels_"].get("segment") == seg(r)
                and a["labels_"].get("column", r.column) == r.column
                for a in on_segments
            )

        return render(
            "segments.html",
            title=f"{name}: segments and fairness",
            models=self.models,
            name=name,
            newest=newest,
            metric=metric,
            by_segment=sorted(
                (r for r in _newest(latest) if r.metric == metric),
                key=lambda r: (r.segment_column, r.segment_value),
            ),
            gaps=[(r, alerted(r)) for r in gaps],
            fair=[r for r in _newest(latest) if r.metric in FAIRNESS],
            slices=[
                r for r in _newest(latest) if r.metric == "weak_slice" and r.column
            ],  # '' is the search's summary row
            alerts=on_segments,
            over_time=self.by_segment_chart(model, metric, recent),
            fairness=self.fairness_chart(model, recent),
        )

    @staticmethod
    def _points(rows: list[MetricRow]) -> list[Point]:
        """One point per window (the row with the most events where versions share one),
        with its interval and its events."""
        by_window: dict[datetime, MetricRow] = {}
        for r in rows:
            if r.value is None:
                continue
            old = by_window.get(r.window_start)
            if old is None or (r.sample_size or 0) > (old.sample_size or 0):
                by_window[r.window_start] = r
        return [
            Point(t, float(r.value or 0), r.provisional, r.lower, r.upper, int(r.sample_size or 0))
            for t, r in sorted(by_window.items())
        ]

    def by_segment_chart(
        self, model: Any, metric: str, rows: list[MetricRow]
    ) -> list[tuple[str, dict[str, Any]]]:
        """Per segment column, the metric of each of its values over time."""
        out = []
        columns = sorted(
            {r.segment_column for r in rows if r.segment_column != ALL and r.metric == metric}
        )
        entry = CATALOGUE.get(metric.removeprefix("estimated_"))
        for column in columns:
            lines = []
            for value in sorted({r.segment_value for r in rows if r.segment_column == column}):
                mine = [r for r in rows if r.metric == metric and r.segment_column == column
                        and r.segment_value == value]  # fmt: skip
                if mine:
                    lines.append(Line(f"{column}={value}", self._points(mine)))
            if lines:
                chart = SeriesChart(metric, entry.unit if entry else "value", lines)
                out.append((column, series_spec(chart)))
        return out

    def fairness_chart(self, model: Any, rows: list[MetricRow]) -> dict[str, Any] | None:
        """Each protected attribute's disparities over time, with the thresholds of the
        rules on them."""
        lines, levels = [], []
        for column in sorted({r.segment_column for r in rows if r.metric in FAIRNESS}):
            for metric in FAIRNESS:
                mine = [r for r in rows if r.metric == metric and r.segment_column == column]
                if mine:
                    lines.append(
                        Line(f"{metric.replace('_', ' ')} of {column}", self._points(mine))
                    )
                    view = View(model, metric, "", model.monitoring.window, (column, ALL))
                    levels += [
                        lv
                        for lv in self._levels(view, self.watching(view, metric))
                        if lv not in levels
                    ]
        if not lines:
            return None
        return series_spec(SeriesChart("demographic_parity_difference", "ratio", lines, levels))


__all__ = ["SegmentsPage"]
