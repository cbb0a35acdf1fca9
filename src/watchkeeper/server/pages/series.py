"""A model's metric series: the realized and estimated values with their intervals, the
usual level a baseline rule compares with, the reference value and the thresholds of the
rules on the series, those rules' alerts and new versions; with pickers for the metric,
its column, the segment, the version and the time range. The alert page draws the same
chart around its alert."""

from __future__ import annotations

import fnmatch
import json
from datetime import datetime, timedelta
from typing import Any

from watchkeeper.alerts.conditions import SeriesKey, matches
from watchkeeper.catalogue import CATALOGUE
from watchkeeper.config import ConditionConfig, ModelConfig, RuleConfig
from watchkeeper.report.specs import Level, Line, Mark, Point, SeriesChart, series_spec
from watchkeeper.rows import ALL, MetricRow
from watchkeeper.server.pages.base import PageBase
from watchkeeper.server.pages.html import MAX_POINTS, render, thin
from watchkeeper.stats import baseline
from watchkeeper.triage import default_metric

RANGES = ((0, "all"), (7, "7 days"), (30, "30 days"), (90, "90 days"))
WAY = {"higher_is_better": "higher is better", "lower_is_better": "lower is better"}


class View:
    """The series a chart draws: a metric of a column, over one segment (the whole traffic
    by default) and one version (every version by default), on windows of one size, from
    ``since`` through ``until``."""

    def __init__(
        self,
        model: ModelConfig,
        metric: str,
        column: str,
        size: timedelta,
        segment: tuple[str, str] = (ALL, ALL),
        version: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> None:
        self.model, self.metric, self.column, self.size = model, metric, column, size
        self.segment, self.version, self.since, self.until = segment, version, since, until

    def on(self, c: ConditionConfig, metric: str) -> bool:
        """Whether the condition judges this series."""
        key = SeriesKey("", metric, self.column, *self.segment, self.version or ALL)
        return matches(c, key)

    @property
    def where(self) -> dict[str, Any]:
        seg = ALL if self.segment[0] == ALL else f"{self.segment[0]}={self.segment[1]}"
        return {"size": self.size, "segment": seg, "version": self.version}


class SeriesPage(PageBase):
    def model_page(
        self,
        name: str,
        metric: str | None,
        column: str,
        days: int = 0,
        segment: str = "",
        version: str = "",
    ) -> str:
        model = self.ws.config.model(name)
        metric = metric or default_metric(model)
        base = metric.removeprefix("estimated_")
        names = self.ws.metrics_table.names(name, whole=True)
        columns = self.ws.metrics_table.columns(name, base) or self.ws.metrics_table.columns(
            name, f"estimated_{base}"
        )
        if column not in columns and columns:
            column = "" if "" in columns else columns[0]  # latency_ms, psi of a feature
        segments = self.ws.metrics_table.segments(name, base, column) or [(ALL, ALL)]
        seg_keys = [ALL if c == ALL else f"{c}={v}" for c, v in segments]
        if segment not in seg_keys:
            segment = ALL
        versions = self.ws.metrics_table.versions(name, base, column)
        if version not in versions:
            version = ""
        newest = self.newest(model)
        since = newest - timedelta(days=days) if days and newest is not None else None
        seg_col, _, seg_val = segment.partition("=")
        view = View(
            model,
            base,
            column,
            model.monitoring.window,
            (seg_col, seg_val) if seg_val else (ALL, ALL),
            version or None,
            since,
        )
        rules = self.watching(view, metric)
        chart = self.chart(view, rules)
        provisional = sum(p.provisional for line in chart.lines for p in line.points)
        pickers = [
            ("metric", [(n, n) for n in names], metric),
            *(
                [("column", [(c, c or "(model)") for c in columns], column)]
                if columns != [""]
                else []
            ),
            *(
                [("segment", [(k, "all traffic" if k == ALL else k) for k in seg_keys], segment)]
                if len(seg_keys) > 1
                else []
            ),
            *(
                [("version", [("", "all"), *[(v, v) for v in versions]], version)]
                if len(versions) > 1
                else []
            ),
            ("days", [(str(d), label) for d, label in RANGES], str(days)),
        ]
        entry = CATALOGUE.get(base)
        title = (
            f"{name}: {base.replace('_', ' ')}"
            + (f" of {column}" if column else "")
            + (f" for {segment}" if segment != ALL else "")
            + (f", version {version}" if version else "")
        )
        return render(
            "series.html",
            title=title,
            models=self.models,
            name=name,
            pickers=pickers,
            spec=series_spec(chart),
            about=(
                None
                if entry is None
                else {
                    "description": entry.description,
                    "facts": ", ".join(
                        f
                        for f in (f"unit: {entry.unit.replace('_', ' ')}", WAY.get(entry.direction))
                        if f
                    ),
                }
            ),
            provisional=provisional,
            viewed=", ".join(r.name for r in rules) or "no rule watches this series",
        )

    def watching(self, view: View, metric: str) -> list[RuleConfig]:
        """The rules of this model with a condition on the series (realized or estimated)."""
        return [
            r
            for r in self.ws.config.alerting.rules
            if fnmatch.fnmatchcase(view.model.name, r.models)
            and any(view.on(c, m) for c in r.conditions for m in (view.metric, metric))
        ]

    def series_spec(
        self,
        model: ModelConfig,
        metric: str,
        column: str,
        *,
        size: timedelta,
        segment: tuple[str, str],
        since: datetime,
        until: datetime,
        only_alert: str,
    ) -> dict[str, Any] | None:
        """The chart of one series over a span, with only one alert marked (the alert
        page's), or None when nothing was measured there."""
        view = View(
            model, metric.removeprefix("estimated_"), column, size, segment, None, since, until
        )
        chart = self.chart(view, self.watching(view, metric), only_alert)
        return series_spec(chart) if chart.lines else None

    def chart(self, view: View, rules: list[RuleConfig], only_alert: str = "") -> SeriesChart:
        lines = self._lines(view)
        usual = self._usual(view, rules) if lines else None
        if usual is not None:
            lines.append(usual)
        entry = CATALOGUE.get(view.metric)
        return SeriesChart(
            view.metric,
            entry.unit if entry else "value",
            lines,
            self._levels(view, rules),
            self._marks(view, rules, only_alert),
            currency=view.model.costs.currency if view.model.costs is not None else "",
        )

    def _lines(self, view: View) -> list[Line]:
        """Realized and estimated, each with the interval of the window's row (where
        versions share a window, the value drawn mixes them and has no single interval)."""
        out = []
        base = view.metric
        for label, key in (("from labels", base), ("estimated before labels", f"estimated_{base}")):
            found = self.ws.metrics_table.series(
                view.model.name,
                key,
                view.column,
                size=view.size,
                segment=view.segment,
                since=view.since,
                through=view.until,
                version=view.version,
            )
            if not found:
                continue
            by_window: dict[datetime, list[MetricRow]] = {}
            thinned_away = len(found) > MAX_POINTS  # averaged points have no interval
            rows = [] if thinned_away else self._rows(view, key)
            for r in rows:
                by_window.setdefault(r.window_start, []).append(r)
            single = {t: f[0] for t, f in by_window.items() if len(f) == 1}
            thinned = thin([[s.isoformat(), v, p] for s, v, p in found])
            points = []
            for t, v, p in thinned:
                start = datetime.fromisoformat(t)
                row = single.get(start)
                points.append(
                    Point(start, v, bool(p), row.lower if row else None, row.upper if row else None)
                )
            out.append(Line(f"{base.replace('_', ' ')} {label}", points))
        return out

    def _rows(self, view: View, metric: str) -> list[MetricRow]:
        return self.ws.metrics_table.select(
            view.model.name,
            metrics=[metric],
            column=view.column,
            since=view.since,
            through=view.until,
            **view.where,
        )

    def _levels(self, view: View, rules: list[RuleConfig]) -> list[Level]:
        """The reference value (of the whole traffic), and each rule's threshold on the
        value (a rule against the reference has its threshold where the change from the
        reference crosses it)."""
        model, base, column = view.model, view.metric, view.column
        ref = self.ws.reference_values(model.name).get((model.name, base, column))
        if view.segment[0] != ALL:
            ref = None  # the reference value is the whole traffic's, not a segment's
        out = [] if ref is None else [Level(ref, f"reference {ref:.3g}", "reference")]
        for rule in rules:
            for c in rule.conditions:
                if not view.on(c, base) or c.against == "baseline":
                    continue
                for v in (c.above, c.below):
                    if v is None:
                        continue
                    if c.against == "value":
                        at = v
                    elif ref is None:
                        continue
                    else:
                        # As the rule judges a relative change: (value - ref) / (|ref| or 1).
                        at = ref + v * (abs(ref) or 1.0) if c.change == "relative" else ref + v
                    out.append(Level(at, f"{rule.name} ({rule.severity})"))
        return out

    def _usual(self, view: View, rules: list[RuleConfig]) -> Line | None:
        """The usual level a baseline rule on the series compares with, by its own baseline,
        from the whole series (not the range shown, nor its thinned points)."""
        for rule in rules:
            found = next(
                (
                    c.baseline
                    for c in rule.conditions
                    if c.against == "baseline" and view.on(c, view.metric)
                ),
                None,
            )
            if found is None:
                continue
            drawn = [
                (t, v)
                for t, v, _ in self.ws.metrics_table.series(
                    view.model.name,
                    view.metric,
                    view.column,
                    size=view.size,
                    segment=view.segment,
                    through=view.until,
                    version=view.version,
                )
            ]
            points = []
            for start, _ in drawn:
                if view.since is not None and start < view.since:
                    continue
                past = baseline.past(drawn, start, found.windows, found.seasonal)
                level = baseline.level(past, found.method)
                if level is not None and level.n >= found.min_history:
                    points.append(Point(start, level.centre))
            thinned = thin([[p.t.isoformat(), p.value] for p in points])
            return Line(
                f"usual level ({rule.name})",
                [Point(datetime.fromisoformat(t), v) for t, v in thinned],
            )
        return None

    def _marks(self, view: View, rules: list[RuleConfig], only_alert: str = "") -> list[Mark]:
        """The alerts of the rules on this series (on its column and segment, where they
        name them; only ``only_alert`` when given), and each new model version."""
        mine = {r.name for r in rules}
        name, column = view.model.name, view.column
        segment = ALL if view.segment[0] == ALL else f"{view.segment[0]}={view.segment[1]}"
        out = []
        for a in self.ws.alerts(name):
            if only_alert and a["alert_id"] != only_alert:
                continue
            labels = json.loads(a["labels"])
            if a["rule"] not in mine and not only_alert:
                continue
            if (labels.get("column") or column) != column:
                continue
            if (labels.get("segment") or segment) != segment and not only_alert:
                continue
            start = a["window_start"]
            if (view.since is None or start >= view.since) and (
                view.until is None or start <= view.until
            ):
                out.append(Mark(start, f"{a['rule']} ({a['severity']}, {a['state']})"))
        first_seen = self.ws.metrics_table.first_seen(name)
        for i, (version, start) in enumerate(sorted(first_seen.items(), key=lambda kv: kv[1])):
            if (
                i > 0
                and (view.since is None or start >= view.since)
                and (view.until is None or start <= view.until)
            ):
                out.append(Mark(start, f"version {version}", "version"))
        return out


__all__ = ["SeriesPage", "View"]
