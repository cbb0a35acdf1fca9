"""The stakeholder report: one self-contained HTML file for people who are not engineers.

A plain-language summary comes first (is the model healthy, what changed, what it means in
business terms, what the team will do), then two charts (training against live data for the
feature that moved most; performance or the business KPI over time, with the change
marked), then the detail engineers want. Charts are inline SVG: the file needs no network,
no script, and stays small. Every string that came from data is escaped.
"""

from __future__ import annotations

import html
import json
import re
import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import ibis

from watchkeeper.config import ModelConfig
from watchkeeper.errors import TriageError
from watchkeeper.profiles.binning import Binning
from watchkeeper.profiles.types import ColumnProfile
from watchkeeper.store.tables import METRICS, WINDOW_PROFILES
from watchkeeper.triage import LOWER_IS_BETTER, Triage, default_metric, moment

MAX_WINDOWS = 90  # windows shown when no period is given


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return esc(value)


@dataclass
class Period:
    since: datetime
    until: datetime
    size: timedelta


def build(
    ws: Any,
    model_name: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> str:
    """The report's HTML."""
    model: ModelConfig = ws.config.model(model_name)
    size = model.monitoring.window
    t = ws.store.table(METRICS)
    seconds = int(size.total_seconds())
    mine = t.filter(
        (t.model == model.name) & (t.window_end == t.window_start + ibis.interval(seconds=seconds))
    )
    newest = moment(ws.store.scalar(mine.window_start.max()))
    if newest is None:
        raise TriageError(f"{model.name} has no metrics yet: run it before reporting")
    end = min(until, newest) if until else newest
    start = since or end - size * (MAX_WINDOWS - 1)
    oldest = moment(ws.store.scalar(mine.filter(mine.window_start >= start).window_start.min()))
    period = Period(max(start, oldest) if oldest is not None else start, end, size)
    rows = ws.store.execute(
        mine.filter((mine.window_start >= start) & (mine.window_start <= end)).drop("run_id")
    ).to_pylist()
    return Report(ws, model, period, rows).render()


class Report:
    def __init__(self, ws: Any, model: ModelConfig, period: Period, rows: list[dict[str, Any]]):
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
        try:
            self.triage: Triage | None = ws.triage(model.name, at=self.latest)
        except Exception:  # no performance yet: the report goes on without it
            self.triage = None

    # -- data --------------------------------------------------------------------------------

    def series(self, metric: str, column: str = "") -> list[tuple[datetime, float]]:
        """A whole-traffic series over the report's period (versions mixed by the engine)."""
        found = self.ws.series(
            self.model.name, metric, column, since=self.period.since, until=self.period.until
        )
        return [(s, v) for s, v, _ in found]

    def at(
        self, metric: str, when: datetime, seg: tuple[str, str] = ("*", "*")
    ) -> list[dict[str, Any]]:
        return [
            r
            for r in self.rows
            if r["metric"] == metric
            and r["window_start"] == when
            and (r["segment_column"], r["segment_value"]) == seg
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

    def drifted(self) -> list[dict[str, Any]]:
        features = {f.name for f in self.model.columns.features}
        found = [r for r in self.at("drift", self.latest) if r["column"] in features]
        return sorted(found, key=lambda r: (r["status"] != "drifted", -(r["value"] or 0)))

    def business(self) -> dict[str, Any]:
        """Counts of decisions in the newest window and usually (from the cost rows)."""
        out: dict[str, Any] = {}
        costs = self.series("cost")
        if not costs:
            return out
        # The decisions of every version serving a window add up.
        by_window: dict[datetime, dict[str, int]] = {}
        for r in self.rows:
            found = _counts(r["detail"]) if r["metric"] == "cost" else None
            if found is not None and r["segment_column"] == "*":
                total = by_window.setdefault(r["window_start"], {"tp": 0, "fp": 0, "fn": 0})
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
                statistics.median(v for _, v in costs[:-1]) if len(costs) > 1 else None
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
            usual = statistics.median(v for _, v in main[:-1]) if len(main) > 1 else now
            what = name.replace("_", " ")
            if not realized:
                what = f"estimated {what} (labels have not arrived yet)"
            better = "lower" if self.metric in LOWER_IS_BETTER else "higher"
            lines.append(
                f"The model's {esc(what)} is {fmt(now)} in the latest period, against a usual "
                f"{fmt(usual)} ({better} is better)."
            )
        drifted = [r for r in self.drifted() if r["status"] == "drifted"]
        if drifted:
            names = ", ".join(esc(r["column"]) for r in drifted[:3])
            lines.append(
                f"The data the model sees has changed since it was trained: {names} "
                f"{'differs' if len(drifted) == 1 else 'differ'} from the training data."
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
            top = self.triage.top
            next_step = (
                f"Most likely cause: {esc(top.title)} ({esc(top.level)} confidence). "
                f"Next step: {esc(top.action)}."
            )
        items = "".join(f"<li>{line}</li>" for line in lines)
        return (
            f'<section class="summary {kind}"><h2>{esc(verdict)}</h2><ul>{items}</ul>'
            f'<p class="next"><strong>What the team will do:</strong> {next_step}</p></section>'
        )

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
            text += f", costing {cost_now:,.0f}"
            if cost_usual:
                text += f" against a usual {cost_usual:,.0f}"
        return esc(text) + "."

    # -- charts ----------------------------------------------------------------------------

    def charts(self) -> str:
        return (
            '<section class="charts">'
            + self.distribution_chart()
            + self.trend_chart()
            + "</section>"
        )

    def distribution_chart(self) -> str:
        drifted = self.drifted()
        if not drifted:
            return "<figure><figcaption>No feature drift measured yet.</figcaption></figure>"
        row = drifted[0]
        column, version = row["column"], row["model_version"]
        ref = self.ws.reference_profile(
            self.model.name, version if version != "*" else None
        ) or self.ws.reference_profile(self.model.name)
        t = self.ws.store.table(WINDOW_PROFILES)
        found = self.ws.store.execute(
            t.filter(
                (t.model == self.model.name)
                & (t.window_start == self.latest)
                & (t.column == column)
                & (t.segment_column == "*")
            ).select("model_version", "profile")
        ).to_pylist()
        binning = ref.binning(column) if ref is not None else None
        if ref is None or binning is None or not found or column not in ref.overall.columns:
            return ""
        live = None
        for r in found:
            p = ColumnProfile.from_json(json.loads(r["profile"]))
            live = p if live is None else live.merge(p)
        assert live is not None
        reference = ref.overall.columns[column]
        labels, ref_counts, live_counts = display_bins(binning, reference.bins, live.bins)
        title = f"{column}: training data against the latest period"
        return (
            "<figure>"
            + bar_chart(labels, ref_counts, live_counts, title)
            + (
                f"<figcaption>{esc(title)} (share of events per range). It moved more than any "
                f"other input (distance {fmt(row['value'])}).</figcaption></figure>"
            )
        )

    def trend_chart(self) -> str:
        name, realized, estimated = self.headline_series()
        if not realized and not estimated:
            return ""
        marker = None
        if self.triage is not None and self.triage.top.cause != "not_real":
            marker = _change_start(realized or estimated, self.metric in LOWER_IS_BETTER)
        firing = sorted(a["window_start"] for a in self.alerts)
        if firing:
            marker = firing[0] if marker is None else min(marker, firing[0])
        title = f"{name.replace('_', ' ')} over time"
        svg = line_chart(
            [("measured from labels", realized), ("estimated before labels", estimated)],
            title,
            marker,
        )
        note = (
            f" The dashed line marks where the change began ({marker:%Y-%m-%d})." if marker else ""
        )
        return f"<figure>{svg}<figcaption>{esc(title)}.{esc(note)}</figcaption></figure>"

    # -- tables ----------------------------------------------------------------------------

    def drift_table(self) -> str:
        rows = self.drifted()
        body = "".join(
            tr(
                esc(r["column"]),
                fmt(r["value"]),
                fmt(r["p_value"], 2),
                fmt(r["threshold"]),
                f"<span class='{esc(r['status'])}'>{esc(r['status'])}</span>",
            )
            for r in rows
        )
        return _table(
            "Drift in the latest period",
            ["feature", "distance", "p-value", "threshold", "status"],
            body,
        )

    def quality_table(self) -> str:
        body = ""
        for check in ("missing_rate", "out_of_range_rate", "unseen_rate"):
            for r in self.at(check, self.latest):
                if (r["value"] or 0) > 0:
                    what = check.removesuffix("_rate").replace("_", " ")
                    share = f"{fmt((r['value'] or 0) * 100, 3)}%"
                    body += tr(
                        esc(r["column"]), esc(what), share, f"{int(r['sample_size'] or 0):,}"
                    )
        return _table(
            "Data quality in the latest period",
            ["column", "check", "share", "events"],
            body or "<tr><td colspan=4>no problems found</td></tr>",
        )

    def segments_table(self) -> str:
        body = ""
        metric = self.metric if self.series(self.metric) else f"estimated_{self.metric}"
        for r in sorted(
            (
                r
                for r in self.rows
                if r["metric"] == metric
                and r["window_start"] == self.latest
                and r["segment_column"] != "*"
            ),
            key=lambda r: (r["segment_column"], r["segment_value"]),
        ):
            body += (
                f"<tr><td>{esc(r['segment_column'])}={esc(r['segment_value'])}</td><td>{fmt(r['value'])}</td>"
                f"<td>{fmt(r['lower'])} – {fmt(r['upper'])}</td>"
                f"<td>{int(r['sample_size'] or 0):,}</td></tr>"
            )
        return _table(
            f"{metric.replace('_', ' ')} by segment (with 95% intervals)",
            ["segment", "value", "interval", "events"],
            body or "<tr><td colspan=4>no segments</td></tr>",
        )

    def fairness_table(self) -> str:
        body = ""
        for r in self.rows:
            if r["window_start"] == self.latest and r["metric"] in (
                "demographic_parity_difference",
                "equalized_odds_difference",
            ):
                body += tr(
                    esc(r["segment_column"]),
                    esc(r["metric"].replace("_", " ")),
                    fmt(r["value"]),
                    fmt(r["p_value"], 2),
                    f"{int(r['sample_size'] or 0):,}",
                )
        if not body:
            return ""
        return _table(
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
        return _table(
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


def _counts(detail: str | None) -> dict[str, int] | None:
    found = re.match(r"(\d+) TP, (\d+) FP, (\d+) FN", detail or "")
    if not found:
        return None
    tp, fp, fn = (int(x) for x in found.groups())
    return {"tp": tp, "fp": fp, "fn": fn}


def _change_start(points: list[tuple[datetime, float]], bad_up: bool) -> datetime | None:
    """The first of the trailing windows that are worse than the median of those before."""
    if len(points) < 4:
        return None
    values = [v for _, v in points]
    start = None
    for i in range(len(points) - 1, 1, -1):
        usual = statistics.median(values[: max(i - 1, 1)])
        spread = statistics.pstdev(values[:i]) or 1e-9
        worse = (values[i] - usual) if bad_up else (usual - values[i])
        if worse > 2 * spread:
            start = points[i][0]
        else:
            break
    return start


def display_bins(
    binning: Binning, ref: Any, live: Any
) -> tuple[list[str], list[float], list[float]]:
    import numpy as np

    if binning.kind == "numeric":
        r, lv = binning.coarse_counts(ref), binning.coarse_counts(live)
        edges = binning.coarse_edges()
        labels = [
            "below",
            *[f"{edges[i]:.2g} to {edges[i + 1]:.2g}" for i in range(len(edges) - 1)],
            "above",
        ]
    else:
        r, lv = np.asarray(ref), np.asarray(live)
        labels = list(binning.labels())
    r = np.asarray(r, dtype=float)
    lv = np.asarray(lv, dtype=float)
    keep = (r + lv) > 0
    r_share = r / max(r.sum(), 1)
    l_share = lv / max(lv.sum(), 1)
    out = [(lab, a, b) for lab, a, b, k in zip(labels, r_share, l_share, keep, strict=False) if k]
    out = out[:20]
    return [o[0] for o in out], [float(o[1]) for o in out], [float(o[2]) for o in out]


def _table(title: str, headers: list[str], body: str) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f"<section><h3>{esc(title)}</h3>{table}</section>"


def tr(*cells: str) -> str:
    """A table row of cells already escaped or formatted."""
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


W, H, PAD = 640, 260, 40


def bar_chart(labels: list[str], ref: list[float], live: list[float], title: str) -> str:
    n = max(len(labels), 1)
    top = max([*ref, *live, 1e-9])
    band = (W - 2 * PAD) / n
    bars = []
    for i, (a, b) in enumerate(zip(ref, live, strict=True)):
        x = PAD + i * band
        for j, (v, cls) in enumerate(((a, "ref"), (b, "live"))):
            h = (H - 2 * PAD) * v / top
            bars.append(
                f'<rect class="{cls}" x="{x + j * band / 2 + 1:.1f}" y="{H - PAD - h:.1f}" '
                f'width="{max(band / 2 - 2, 1):.1f}" height="{h:.1f}"><title>{esc(labels[i])}: '
                f"{'training' if cls == 'ref' else 'live'} {v:.1%}</title></rect>"
            )
    every = max(-(-n // 6), 1)  # at most about six labels, so they never overlap
    ticks = "".join(
        f'<text x="{PAD + (i + 0.5) * band:.1f}" y="{H - PAD + 14}" class="tick" '
        f'text-anchor="middle">{esc(lab[:14])}</text>'
        for i, lab in enumerate(labels)
        if i % every == 0
    )
    legend = (
        f'<rect class="ref" x="{W - 190}" y="8" width="12" height="12"/>'
        f'<text x="{W - 174}" y="18" class="tick">training data</text>'
        f'<rect class="live" x="{W - 90}" y="8" width="12" height="12"/>'
        f'<text x="{W - 74}" y="18" class="tick">latest</text>'
    )
    axis = f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - PAD}" y2="{H - PAD}" class="axis"/>'
    return (
        f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{esc(title)}">'
        f"{axis}{''.join(bars)}{ticks}{legend}</svg>"
    )


def line_chart(
    series: list[tuple[str, list[tuple[datetime, float]]]], title: str, marker: datetime | None
) -> str:
    points = [p for _, s in series for p in s]
    if not points:
        return ""
    t0 = min(t for t, _ in points)
    t1 = max(t for t, _ in points)
    lo = min(v for _, v in points)
    hi = max(v for _, v in points)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    span = (t1 - t0).total_seconds() or 1.0

    def x(t: datetime) -> float:
        return PAD + (W - 2 * PAD) * (t - t0).total_seconds() / span

    def y(v: float) -> float:
        return H - PAD - (H - 2 * PAD) * (v - lo) / (hi - lo)

    lines = []
    legend = []
    for i, (name, s) in enumerate(series):
        if not s:
            continue
        coords = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in s)
        lines.append(
            f'<polyline class="line s{i}" points="{coords}"><title>{esc(name)}</title></polyline>'
        )
        legend.append(
            f'<line x1="{PAD + 150 * i}" y1="14" x2="{PAD + 150 * i + 18}" y2="14" '
            f'class="line s{i}"/>'
            f'<text x="{PAD + 150 * i + 22}" y="18" class="tick">{esc(name)}</text>'
        )
    mark = ""
    if marker is not None and t0 <= marker <= t1:
        mark = (
            f'<line x1="{x(marker):.1f}" y1="{PAD - 10}" x2="{x(marker):.1f}" y2="{H - PAD}" '
            'class="marker"/>'
            f'<text x="{x(marker) + 4:.1f}" y="{PAD - 2}" class="tick">change</text>'
        )
    axes = (
        f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - PAD}" y2="{H - PAD}" class="axis"/>'
        f'<text x="{PAD}" y="{H - PAD + 16}" class="tick">{t0:%Y-%m-%d}</text>'
        f'<text x="{W - PAD}" y="{H - PAD + 16}" class="tick" '
        f'text-anchor="end">{t1:%Y-%m-%d}</text>'
        f'<text x="4" y="{y(hi) + 4:.1f}" class="tick">{hi:.3g}</text>'
        f'<text x="4" y="{y(lo) + 4:.1f}" class="tick">{lo:.3g}</text>'
    )
    return (
        f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{esc(title)}">'
        f"{axes}{''.join(lines)}{mark}{''.join(legend)}</svg>"
    )


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2733;
  max-width: 980px; margin: 2em auto; padding: 0 1em; }}
h1 {{ font-size: 1.6em; margin-bottom: 0; }} .meta {{ color: #5b6776; margin-top: .2em; }}
.summary {{ border-left: 6px solid #999; padding: .6em 1.2em; margin: 1.2em 0;
  background: #f7f8fa; }}
.summary.good {{ border-color: #2e8540; }} .summary.warn {{ border-color: #d9822b; }}
.summary.bad {{ border-color: #c23030; }} .summary h2 {{ margin: .2em 0; }}
.next {{ font-size: 1.05em; }}
.charts {{ display: grid; grid-template-columns: 1fr; gap: 1em; }}
figure {{ margin: 0; }} figcaption {{ color: #5b6776; font-size: .9em; }}
svg.chart {{ width: 100%; height: auto; background: #fff; border: 1px solid #e3e6ea; }}
rect.ref {{ fill: #9aa8b8; }} rect.live {{ fill: #2b6cb0; }}
.line {{ fill: none; stroke-width: 2; }} .s0 {{ stroke: #2b6cb0; }}
.s1 {{ stroke: #d9822b; stroke-dasharray: 5 3; }}
.marker {{ stroke: #c23030; stroke-dasharray: 6 4; stroke-width: 1.5; }}
.axis {{ stroke: #8893a0; }} .tick {{ font-size: 11px; fill: #5b6776; }}
table {{ border-collapse: collapse; width: 100%; font-size: .9em; }}
th, td {{ text-align: left; padding: .25em .6em; border-bottom: 1px solid #e3e6ea; }}
span.drifted {{ color: #c23030; font-weight: 600; }}
</style></head>
<body>
<h1>{title}</h1>
<p class="meta">Period: {span}. Written {generated} by watchkeeper.</p>
{body}
</body></html>
"""
