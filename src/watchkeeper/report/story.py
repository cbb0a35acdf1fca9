"""The stakeholder report: one self-contained HTML file for people who are not engineers.

A plain-language summary comes first (is the model healthy, what changed, what it means in
business terms, what the team will do), then three charts (training against live data for
the feature that moved most; performance over time; the drop in business terms, what the
mistakes cost in the configured currency or the business KPI, each with the change
marked), then the detail engineers want. Charts are inline SVG: the file needs no network,
no script, and stays small. Every string that came from data is escaped.
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from watchkeeper.catalogue import CATALOGUE, lower_is_better
from watchkeeper.config import Config, ModelConfig
from watchkeeper.errors import TriageError
from watchkeeper.profiles.types import ColumnProfile
from watchkeeper.reference.profile import ReferenceProfile
from watchkeeper.report.charts import display_bins
from watchkeeper.report.html import PAGE, esc, fmt, table, tr
from watchkeeper.report.specs import (
    Level,
    Line,
    Mark,
    Point,
    SeriesChart,
    bars_spec,
    series_spec,
    svg,
)
from watchkeeper.rows import MetricRow
from watchkeeper.stats import baseline
from watchkeeper.stats.baseline import change_start
from watchkeeper.store.metrics import MetricsTable
from watchkeeper.triage.model import Triage, default_metric

MAX_WINDOWS = 90  # windows shown when no period is given


class Library(Protocol):
    """What the report asks of the library (the workspace is one)."""

    config: Config
    metrics_table: MetricsTable
    clock: Callable[[], datetime]

    def alerts(
        self, model: str | None = None, *, state: str | None = None, since: Any = None
    ) -> list[dict[str, Any]]: ...

    def triage(self, model: str, *, at: Any = None, alert: str | None = None) -> Triage: ...

    def series(
        self,
        model: str,
        metric: str,
        column: str = "",
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[tuple[datetime, float, bool]]: ...

    def reference_profile(
        self, model: str, version: str | None = None
    ) -> ReferenceProfile | None: ...


@dataclass
class Period:
    since: datetime
    until: datetime
    size: timedelta


def build(
    ws: Library,
    model_name: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> str:
    """The report's HTML."""
    model: ModelConfig = ws.config.model(model_name)
    size = model.monitoring.window
    reader = ws.metrics_table
    newest = reader.newest(model.name, size=size)
    if newest is None and (computed := reader.newest_size(model.name)) is not None:
        size = computed  # runs were of another window (`run --window 1d`): report on those
        newest = reader.newest(model.name, size=size)
    if newest is None:
        raise TriageError(f"{model.name} has no metrics yet: run it before reporting")
    end = min(until, newest) if until else newest
    start = since or end - size * (MAX_WINDOWS - 1)
    oldest = reader.oldest(model.name, size, start)
    period = Period(max(start, oldest) if oldest is not None else start, end, size)
    rows = reader.select(model.name, size=size, since=start, through=end)
    return Report(ws, model, period, rows).render()


class Report:
    def __init__(self, ws: Library, model: ModelConfig, period: Period, rows: list[MetricRow]):
        self.ws = ws
        self.model = model
        self.period = period
        self.rows = rows
        self.latest = period.until
        self.alerts = [
            a
            for a in ws.alerts(model.name)
            if a["started_at"] is not None
            and period.since <= a["window_start"] <= period.until + period.size
        ]
        self.metric = default_metric(model)
        self._lower_is_better = lower_is_better(self.metric)
        self.triage: Triage | None = None
        # The story is the most urgent open alert's, when there is one (so the cause it
        # gives is the one the alerts are about); else the headline metric's newest window.
        urgent = sorted(
            (a for a in self.alerts if a["state"] == "firing"),
            key=lambda a: (a["severity"] != "page", -a["window_start"].timestamp()),
        )
        for alert in urgent[:3]:
            try:
                self.triage = ws.triage(model.name, alert=alert["alert_id"])
                break
            except TriageError:
                continue
        if self.triage is None:
            try:
                self.triage = ws.triage(model.name, at=self.latest)
            except TriageError:  # no performance yet: the report goes on without it
                self.triage = None

    # -- data --------------------------------------------------------------------------------

    def series(self, metric: str, column: str = "") -> list[tuple[datetime, float]]:
        """A whole-traffic series over the report's period (versions mixed by the engine)."""
        found = self.ws.series(
            self.model.name, metric, column, since=self.period.since, until=self.period.until
        )
        return [(s, v) for s, v, _ in found]

    def at(self, metric: str, when: datetime, seg: tuple[str, str] = ("*", "*")) -> list[MetricRow]:
        return [
            r
            for r in self.rows
            if r.metric == metric
            and r.window_start == when
            and (r.segment_column, r.segment_value) == seg
        ]

    def headline_series(
        self,
    ) -> tuple[str, list[tuple[datetime, float]], list[tuple[datetime, float]]]:
        realized = self.series(self.metric)
        estimated = self.series(f"estimated_{self.metric}")
        if realized or estimated:
            return self.metric, realized, estimated
        for outcome in self.model.outcomes:
            found = self.series("outcome_rate", outcome.name)
            if found:
                return f"outcome rate: {outcome.name}", found, []
        return "events", self.series("row_count"), []

    def drifted(self) -> list[MetricRow]:
        features = {f.name for f in self.model.columns.features}
        found = [r for r in self.at("drift", self.latest) if r.column in features]
        return sorted(found, key=lambda r: (r.status != "drifted", -(r.value or 0)))

    def business(self) -> dict[str, Any]:
        """Counts of decisions in the newest window and usually (from the cost rows)."""
        out: dict[str, Any] = {}
        costs = self.series("cost")
        if not costs:
            return out
        # The decisions of every version serving a window add up.
        by_window: dict[datetime, dict[str, int]] = {}
        for r in self.rows:
            found = _counts(r.detail) if r.metric == "cost" else None
            if found is not None and r.segment_column == "*":
                total = by_window.setdefault(r.window_start, {"tp": 0, "fp": 0, "fn": 0})
                for k, v in found.items():
                    total[k] += v
        counts = by_window.get(costs[-1][0])
        known = [c for s, c in by_window.items() if s < costs[-1][0]]
        if counts:
            out["now"] = counts
            out["cost_now"] = costs[-1][1]
        if known:
            out["usual"] = {k: statistics.median(p[k] for p in known) for k in ("tp", "fp", "fn")}
            out["cost_usual"] = (
                baseline.usual([v for _, v in costs[:-1]]) if len(costs) > 1 else None
            )
        return out

    # -- the page ----------------------------------------------------------------------------------

    def render(self) -> str:
        parts = [
            self.summary(),
            self.charts(),
            "<h2>For engineers</h2>",
            self.drift_table(),
            self.quality_table(),
            self.segments_table(),
            self.fairness_table(),
            self.alerts_table(),
            self.triage_steps(),
        ]
        title = f"{self.model.name}: model health report"
        span = (
            f"{self.period.since:%Y-%m-%d} to {self.period.until + self.period.size:%Y-%m-%d %H:%M}"
        )
        return PAGE.format(
            title=esc(title),
            span=esc(span),
            generated=esc(f"{self.ws.clock():%Y-%m-%d %H:%M} UTC"),
            body="\n".join(parts),
        )

    def status(self) -> tuple[str, str]:
        firing = [a for a in self.alerts if a["state"] == "firing"]
        if any(a["severity"] == "page" for a in firing):
            return "bad", "Needs action now"
        top = self.triage.top if self.triage else None
        if firing or (top is not None and top.cause != "not_real" and top.confidence >= 0.5):
            return "warn", "Needs attention"
        return "good", "Healthy"

    def summary(self) -> str:
        kind, verdict = self.status()
        name, realized, estimated = self.headline_series()
        lines = []
        main = realized or estimated
        if main:
            now = main[-1][1]
            usual = baseline.usual([v for _, v in main[:-1]]) if len(main) > 1 else now
            what = name.replace("_", " ")
            if not realized:
                what = f"estimated {what} (labels have not arrived yet)"
            better = "lower" if self._lower_is_better else "higher"
            lines.append(
                f"The model's {esc(what)} is {fmt(now)} in the latest period, against a usual "
                f"{fmt(usual)} ({better} is better)."
            )
        drifted = [r for r in self.drifted() if r.status == "drifted"]
        if drifted:
            columns = list(dict.fromkeys(r.column for r in drifted))  # once, whatever versions
            names = ", ".join(esc(c) for c in columns[:3])
            lines.append(
                f"The data the model sees has changed since it was trained: {names} "
                f"{'differs' if len(columns) == 1 else 'differ'} from the training data."
            )
        else:
            lines.append("The data the model sees looks like the data it was trained on.")
        money = self.business_text()
        if money:
            lines.append(money)
        pages = [a for a in self.alerts if a["severity"] == "page"]
        tickets = [a for a in self.alerts if a["severity"] == "ticket"]
        if self.alerts:
            lines.append(
                f"In this period {len(pages)} urgent alert(s) and {len(tickets)} ticket(s) "
                "were raised; "
                f"{sum(a['state'] == 'firing' for a in self.alerts)} still open."
            )
        next_step = "Keep watching; nothing needs doing."
        if self.triage is not None and (kind != "good" or self.triage.top.cause != "not_real"):
            next_step = self.next_step(kind)
        items = "".join(f"<li>{line}</li>" for line in lines)
        return (
            f'<section class="summary {kind}"><h2>{esc(verdict)}</h2><ul>{items}</ul>'
            f'<p class="next"><strong>What the team will do:</strong> {next_step}</p></section>'
        )

    def next_step(self, kind: str) -> str:
        """The triage's answer, in words that agree with the alerts beside it: with urgent
        alerts open, "not a real drop" is said as what it is (the drop is not confirmed yet,
        and why), with the next best explanation the evidence gives."""
        assert self.triage is not None
        top = self.triage.top
        if top.cause != "not_real" or kind != "bad":
            return (
                f"Most likely cause: {esc(top.title)} ({esc(top.level)} confidence). "
                f"Next step: {esc(top.action)}."
            )
        why = f" ({esc(top.evidence[0])})" if top.evidence else ""
        text = f"The urgent alerts are open, but the drop is not confirmed yet{why}."
        runner = next((h for h in self.triage.hypotheses[1:] if h.score > 0), None)
        if runner is not None:
            text += (
                f" If it is real, the most likely cause is {esc(runner.title)}"
                + (f" ({esc(runner.evidence[0])})" if runner.evidence else "")
                + "."
            )
        return text + f" Next step: {esc(top.action)}."

    def business_text(self) -> str:
        b = self.business()
        costs = self.model.costs
        if not b.get("now") or costs is None:
            return ""
        now, usual = b["now"], b.get("usual")
        parts = [
            f"{now['fp']:,} legitimate cases sent to review",
            f"{now['fn']:,} cases missed",
        ]
        text = "In business terms, the latest period had " + " and ".join(parts)
        if usual:
            text += f" (usually {usual['fp']:,.0f} and {usual['fn']:,.0f})"
        cost_now, cost_usual = b.get("cost_now"), b.get("cost_usual")
        if cost_now is not None:
            money = costs.currency
            text += f", costing {money} {cost_now:,.0f}"
            if cost_usual:
                text += f" against a usual {money} {cost_usual:,.0f}"
        return esc(text) + "."

    # -- charts ----------------------------------------------------------------------------

    def charts(self) -> str:
        return (
            '<section class="charts">'
            + self.distribution_chart()
            + self.trend_chart()
            + self.business_chart()
            + "</section>"
        )

    def distribution_chart(self) -> str:
        drifted = self.drifted()
        if not drifted:
            return "<figure><figcaption>No feature drift measured yet.</figcaption></figure>"
        row = drifted[0]
        column, version = row.column, row.model_version
        ref = self.ws.reference_profile(
            self.model.name, version if version != "*" else None
        ) or self.ws.reference_profile(self.model.name)
        found = self.ws.metrics_table.profiles(self.model.name, self.latest, column)
        binning = ref.binning(column) if ref is not None else None
        if ref is None or binning is None or not found or column not in ref.overall.columns:
            return ""
        live = None
        for _, profile in found:
            p = ColumnProfile.from_json(json.loads(profile))
            live = p if live is None else live.merge(p)
        assert live is not None
        reference = ref.overall.columns[column]
        labels, ref_counts, live_counts = display_bins(binning, reference.bins, live.bins)
        title = f"{column}: training data against the latest period"
        spec = bars_spec(labels, ref_counts, live_counts, live_name="the latest period")
        return (
            "<figure>"
            + svg(spec, title)
            + (
                f"<figcaption>{esc(title)} (share of events per range). It moved more than any "
                f"other input (distance {fmt(row.value)}).</figcaption></figure>"
            )
        )

    def trend_chart(self) -> str:
        name, realized, estimated = self.headline_series()
        if not realized and not estimated:
            return ""
        # Dated where the series changed (its trailing run of worse values), not where the
        # first alert of the period happened to be.
        points = realized or estimated
        found = change_start([v for _, v in points], self._lower_is_better)
        marker = points[found][0] if found is not None else None
        title = f"{name.replace('_', ' ')} over time"
        entry = CATALOGUE.get(self.metric if name == self.metric else "")
        lines = [
            Line(label, [Point(t, v) for t, v in points])
            for label, points in (
                ("measured from labels", realized),
                ("estimated before labels", estimated),
            )
            if points
        ]
        marks = [Mark(marker, "change began", "change")] if marker is not None else []
        unit = entry.unit if entry is not None else ("ratio" if "rate" in name else "count")
        drawn = svg(series_spec(SeriesChart(name, unit, lines, marks=marks)), title)
        note = (
            f" The dashed line marks where the change began ({marker:%Y-%m-%d})." if marker else ""
        )
        return f"<figure>{drawn}<figcaption>{esc(title)}.{esc(note)}</figcaption></figure>"

    def business_chart(self) -> str:
        """The drop in business terms: what the model's mistakes cost per window in the
        configured currency (or, without costs, the first business outcome's rate), its
        usual level as a line and the change dated where the series changed."""
        costs = self.series("cost") if self.model.costs is not None else []
        if costs:
            metric, unit, label, points = "cost", "currency", "cost of mistakes", costs
            worse_when_lower = False
        else:
            found = next(
                (
                    (o.name, pts)
                    for o in self.model.outcomes
                    if (pts := self.series("outcome_rate", o.name))
                ),
                None,
            )
            if found is None:
                return ""
            metric, unit, label, points = f"{found[0]} per event", "value", found[0], found[1]
            worse_when_lower = True
        if len(points) < 2:
            return ""
        values = [v for _, v in points]
        at = change_start(values, lower_is_better=not worse_when_lower)
        before = values[max(0, at - 7) : at] if at is not None else values[:-1]
        usual = baseline.usual(before) if before else None
        currency = self.model.costs.currency if self.model.costs is not None else ""
        levels = [Level(usual, f"usual {label}", "reference")] if usual is not None else []
        marks = [Mark(points[at][0], "change began", "change")] if at is not None else []
        chart = SeriesChart(
            metric,
            unit,
            [Line(label, [Point(t, v) for t, v in points])],
            levels=levels,
            marks=marks,
            currency=currency,
        )
        title = f"{label} per {_span(self.period.size)}"
        money = f"{currency} " if unit == "currency" else ""
        caption = f"{title}: {money}{_amount(values[-1])} in the latest period"
        if usual is not None:
            caption += f" against a usual {money}{_amount(usual)}"
        if at is not None:
            caption += f"; the change began {points[at][0]:%Y-%m-%d %H:%M}"
        drawn = svg(series_spec(chart), title)
        return f"<figure>{drawn}<figcaption>{esc(caption)}.</figcaption></figure>"

    # -- tables ----------------------------------------------------------------------------

    def drift_table(self) -> str:
        rows = self.drifted()
        body = "".join(
            tr(
                esc(r.column),
                fmt(r.value),
                fmt(r.p_value, 2),
                fmt(r.threshold),
                f"<span class='{esc(r.status)}'>{esc(r.status)}</span>",
            )
            for r in rows
        )
        return table(
            "Drift in the latest period",
            ["feature", "distance", "p-value", "threshold", "status"],
            body,
        )

    def quality_table(self) -> str:
        body = ""
        for check in ("missing_rate", "out_of_range_rate", "unseen_rate"):
            for r in self.at(check, self.latest):
                if (r.value or 0) > 0:
                    what = check.removesuffix("_rate").replace("_", " ")
                    share = f"{fmt((r.value or 0) * 100, 3)}%"
                    body += tr(esc(r.column), esc(what), share, f"{int(r.sample_size or 0):,}")
        return table(
            "Data quality in the latest period",
            ["column", "check", "share", "events"],
            body or "<tr><td colspan=4>no problems found</td></tr>",
        )

    def segments_table(self) -> str:
        """The headline metric per segment and version in the newest window that has it: the
        newest windows have no labels yet, and an empty table would say there are no segments."""
        body = ""
        metric = self.metric if self.series(self.metric) else f"estimated_{self.metric}"
        segmented = [
            r
            for r in self.rows
            if r.metric == metric and r.segment_column != "*" and r.value is not None
        ]
        newest: dict[tuple[str, str, str], MetricRow] = {}
        for r in segmented:  # each segment's newest window with a value
            key = (r.segment_column, r.segment_value, r.model_version)
            if key not in newest or r.window_start > newest[key].window_start:
                newest[key] = r
        for _, r in sorted(newest.items()):
            body += (
                f"<tr><td>{esc(r.segment_column)}={esc(r.segment_value)}</td>"
                f"<td>{esc(r.model_version if r.model_version != '*' else 'all')}</td>"
                f"<td>{fmt(r.value)}</td><td>{r.window_start:%Y-%m-%d %H:%M}</td>"
                f"<td>{fmt(r.lower)} – {fmt(r.upper)}</td>"
                f"<td>{int(r.sample_size or 0):,}</td></tr>"
            )
        return table(
            f"{metric.replace('_', ' ')} by segment, each in its newest window with a value "
            "(with 95% intervals)",
            ["segment", "version", "value", "window", "interval", "events"],
            body or "<tr><td colspan=6>no segment has this metric yet</td></tr>",
        )

    def fairness_table(self) -> str:
        body = ""
        for r in self.rows:
            if r.window_start == self.latest and r.metric in (
                "demographic_parity_difference",
                "equalized_odds_difference",
            ):
                body += tr(
                    esc(r.segment_column),
                    esc(r.metric.replace("_", " ")),
                    fmt(r.value),
                    fmt(r.p_value, 2),
                    f"{int(r.sample_size or 0):,}",
                )
        if not body:
            return ""
        return table(
            "Fairness between protected groups",
            ["attribute", "disparity", "value", "p-value", "events"],
            body,
        )

    def alerts_table(self) -> str:
        body = "".join(
            tr(
                f"{a['started_at']:%Y-%m-%d %H:%M}",
                esc(a["severity"]),
                esc(a["owner"]),
                esc(a["state"]),
                esc(a["verdict"] or ""),
                esc(a["summary"]),
            )
            for a in self.alerts
        )
        return table(
            "Alerts in this period",
            ["fired", "severity", "owner", "state", "verdict", "summary"],
            body or "<tr><td colspan=6>none</td></tr>",
        )

    def triage_steps(self) -> str:
        if self.triage is None:
            return ""
        steps = "".join(
            f"<li><strong>{esc(s.title)}</strong>: {esc(s.question)}<ul>"
            + "".join(f"<li>{esc(f)}</li>" for f in s.findings or ["nothing unusual"])
            + "</ul></li>"
            for s in self.triage.steps
        )
        hypotheses = "".join(
            f"<li>{esc(h.title)}: {esc(h.level)} ({h.confidence:.0%}); {esc(h.action)}</li>"
            for h in self.triage.hypotheses
        )
        return (
            f"<section><h3>Triage of {esc(self.triage.metric.replace('_', ' '))}</h3>"
            f"<ol>{steps}</ol><h4>Hypotheses</h4><ol>{hypotheses}</ol></section>"
        )


# -- helpers ---------------------------------------------------------------------------------


def _amount(v: float) -> str:
    """An amount as people write it: 23,630 or 0.0123, never 2.363e+04."""
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def _span(size: timedelta) -> str:
    """A window's length in words: "hour", "day", "6 hours"."""
    hours = size.total_seconds() / 3600
    if hours == 24:
        return "day"
    if hours == 1:
        return "hour"
    return f"{hours:g} hours" if hours < 24 else f"{hours / 24:g} days"


def _counts(detail: str | None) -> dict[str, int] | None:
    found = re.match(r"(\d+) TP, (\d+) FP, (\d+) FN", detail or "")
    if not found:
        return None
    tp, fp, fn = (int(x) for x in found.groups())
    return {"tp": tp, "fp": fp, "fn": fn}


__all__ = ["Library", "Period", "Report", "build"]
