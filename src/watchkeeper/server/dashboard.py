"""The web dashboard served by ``watchkeeper serve``: server-rendered pages whose charts are
drawn by a small script of watchkeeper's own (served from the installed package under
/assets, never a CDN), so it works offline.

Pages: the overview (every model's health, performance and business lanes, and the open
alerts), a model's metric series, drift, segments and fairness, the alerts (with
acknowledgement, verdicts and the review), and an alert's page with its triage. Everything
taken from data is escaped; chart data travels as JSON inside a script element that the
browser does not execute.
"""

from __future__ import annotations

import json
import statistics
from datetime import datetime
from importlib import resources
from typing import Any

import ibis
from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from watchkeeper.config import ModelConfig
from watchkeeper.errors import UnknownAlertError
from watchkeeper.profiles.types import ColumnProfile
from watchkeeper.report import display_bins, esc, fmt, line_chart
from watchkeeper.store.tables import METRICS, WINDOW_PROFILES
from watchkeeper.triage import default_metric
from watchkeeper.workspace import Workspace

LANES = {
    "health": ("data", "infrastructure"),
    "performance": ("model",),
    "business": ("business",),
}


def _asset(name: str) -> bytes:
    return resources.files("watchkeeper.server").joinpath("static", name).read_bytes()


def _json_script(name: str, data: Any) -> str:
    text = json.dumps(data, default=str).replace("</", "<\\/")
    return f'<script type="application/json" id="{esc(name)}">{text}</script>'


def _chart(name: str, kind: str, data: Any) -> str:
    return f'<div class="chart-host" data-chart="{kind}" data-source="{esc(name)}"></div>' + (
        _json_script(name, data)
    )


def _page(title: str, body: str, models: list[str]) -> str:
    nav = "".join(f'<a href="/models/{esc(m)}">{esc(m)}</a>' for m in models)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)} · watchkeeper</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/assets/dashboard.css"><link rel="icon" href="data:,"></head>
<body><header><a class="brand" href="/">watchkeeper</a><nav>{nav}
<a href="/alerts">alerts</a></nav></header><main><h1>{esc(title)}</h1>{body}</main>
<script src="/assets/charts.js"></script></body></html>"""


def _table(headers: list[str], rows: list[list[str]], cls: str = "") -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    if not rows:
        body = f'<tr><td colspan="{len(headers)}">none</td></tr>'
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


MAX_POINTS = 1_000  # a chart shows at most this many points: longer series are averaged


def _thin(points: list[Any]) -> list[Any]:
    """At most MAX_POINTS points: consecutive windows averaged (a bucket is provisional when
    any of its windows is), so a year of hourly windows draws as fast as a month."""
    if len(points) <= MAX_POINTS:
        return points
    size = -(-len(points) // MAX_POINTS)
    out = []
    for i in range(0, len(points), size):
        bucket = points[i : i + size]
        mean = sum(float(p[1]) for p in bucket) / len(bucket)
        if len(bucket[0]) > 2:
            out.append([bucket[0][0], mean, any(p[2] for p in bucket)])
        else:
            out.append([bucket[0][0], mean])
    return out


def _seg(row: dict[str, Any]) -> str:
    if row["segment_column"] == "*":
        return "all traffic"
    return f"{row['segment_column']}={row['segment_value']}"


class Pages:
    """Builds each page from a workspace (the service's reader)."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.models = [m.name for m in ws.config.models]

    def rows(
        self,
        model: ModelConfig,
        metrics: list[str],
        since: datetime | None = None,
        whole: bool = True,
    ) -> list[dict[str, Any]]:
        t = self.ws.store.table(METRICS)
        seconds = int(model.monitoring.window.total_seconds())
        expr = t.filter(
            (t.model == model.name)
            & t.metric.isin(metrics)
            & (t.window_end == t.window_start + ibis.interval(seconds=seconds))
        )
        if whole:
            expr = expr.filter(expr.segment_column == "*")
        if since is not None:
            expr = expr.filter(expr.window_start >= since)
        columns = [
            "model_version",
            "window_start",
            "segment_column",
            "segment_value",
            "metric",
            "column",
            "value",
            "lower",
            "upper",
            "sample_size",
            "status",
            "provisional",
            "detail",
            "p_value",
            "threshold",
        ]
        return list(
            self.ws.store.execute(expr.select(*columns).order_by("window_start")).to_pylist()
        )

    def newest(self, model: ModelConfig) -> datetime | None:
        t = self.ws.store.table(METRICS)
        found = self.ws.store.execute(
            t.filter(t.model == model.name)
            .select("window_start")
            .order_by(ibis.desc("window_start"))
            .limit(1)
        )
        return found["window_start"][0].as_py() if found.num_rows else None

    @staticmethod
    def latest(rows: list[dict[str, Any]], metric: str, column: str = "") -> dict[str, Any] | None:
        found = [r for r in rows if r["metric"] == metric and r["column"] == column]
        if not found:
            return None
        newest = max(r["window_start"] for r in found)
        at = [r for r in found if r["window_start"] == newest]
        return max(at, key=lambda r: r["sample_size"] or 0)

    # -- overview ------------------------------------------------------------------------------

    def overview(self) -> str:
        open_alerts = self.ws.alerts(state="firing")
        cards = []
        for model in self.ws.config.models:
            newest = self.newest(model)
            since = newest - model.monitoring.window * 2 if newest else None
            headline = default_metric(model)
            wanted = [
                "row_count",
                "error_rate",
                "latency_p99",
                "missing_rate",
                headline,
                f"estimated_{headline}",
                "label_coverage",
                "outcome_rate",
                "net_value",
            ]
            rows = self.rows(model, wanted, since)
            mine = [a for a in open_alerts if a["model"] == model.name]
            lanes = []
            for lane, owners in LANES.items():
                lane_alerts = [a for a in mine if a["owner"] in owners]
                if lane == "performance":
                    lane_alerts += [a for a in mine if a["owner"] not in sum(LANES.values(), ())]
                colour = (
                    "red"
                    if any(a["severity"] == "page" for a in lane_alerts)
                    else "amber"
                    if lane_alerts
                    else "green"
                )
                facts = self.lane_facts(model, lane, rows)
                by_rule: dict[str, list[dict[str, Any]]] = {}
                for a in lane_alerts:
                    by_rule.setdefault(a["rule"], []).append(a)
                listed = "".join(
                    f'<li data-open="{len(found)}"><a href="/models/{esc(model.name)}/alerts/'
                    f'{esc(found[-1]["alert_id"])}">{esc(found[-1]["severity"])}: '
                    f"{esc(rule)}</a> ({len(found)} open) "
                    f"<small>{esc(found[-1]['summary'])}</small></li>"
                    for rule, found in sorted(
                        by_rule.items(), key=lambda kv: (kv[1][-1]["severity"] != "page", kv[0])
                    )
                )
                lanes.append(
                    f'<div class="lane {colour}" data-lane="{lane}"><h3>{lane}</h3>'
                    f"<p>{facts}</p><ul>{listed}</ul></div>"
                )
            cards.append(
                f'<section class="model-card" data-model="{esc(model.name)}"><h2>'
                f'<a href="/models/{esc(model.name)}">{esc(model.name)}</a> '
                f"<small>{esc(model.task.replace('_', ' '))}, owner {esc(model.owner)}</small></h2>"
                f'<div class="lanes">{"".join(lanes)}</div></section>'
            )
        return _page("Models", "".join(cards) or "<p>No models configured.</p>", self.models)

    def lane_facts(self, model: ModelConfig, lane: str, rows: list[dict[str, Any]]) -> str:
        def value(metric: str, column: str = "") -> float | None:
            r = self.latest(rows, metric, column)
            return None if r is None else r["value"]

        if lane == "health":
            rows_now = value("row_count")
            parts = [f"{int(rows_now):,} events" if rows_now is not None else "no events"]
            if (e := value("error_rate")) is not None:
                parts.append(f"{e:.1%} errors")
            if model.columns.latency and (lat := value("latency_p99", model.columns.latency)):
                parts.append(f"p99 {lat:,.0f} ms")
            missing = [r["value"] or 0 for r in rows if r["metric"] == "missing_rate"]
            if missing:
                parts.append(f"worst missing rate {max(missing):.1%}")
            return esc(", ".join(parts))
        if lane == "performance":
            headline = default_metric(model)
            realized = value(headline)
            if realized is not None:
                return esc(f"{headline.replace('_', ' ')} {fmt(realized)} (from labels)")
            estimate = value(f"estimated_{headline}")
            coverage = value("label_coverage")
            cov = f", labels for {coverage:.0%} of events" if coverage is not None else ""
            return esc(f"{headline.replace('_', ' ')} {fmt(estimate)} (estimated{cov})")
        parts = []
        for r in rows:
            if r["metric"] == "outcome_rate" and r is self.latest(
                rows, "outcome_rate", r["column"]
            ):
                parts.append(f"{r['column']} {(r['value'] or 0):.2%}")
        if (net := value("net_value")) is not None:
            parts.append(f"net value {net:,.0f}")
        return esc(", ".join(parts) or "no business outcomes configured")

    # -- a model's series ------------------------------------------------------------------------

    def model_page(self, name: str, metric: str | None, column: str) -> str:
        model = self.ws.config.model(name)
        metric = metric or default_metric(model)
        t = self.ws.store.table(METRICS)
        names = sorted(
            self.ws.store.execute(
                t.filter((t.model == name) & (t.segment_column == "*")).select("metric").distinct()
            )["metric"].to_pylist()
        )
        base = metric.removeprefix("estimated_")
        series = []
        for label, key in (("from labels", base), ("estimated before labels", f"estimated_{base}")):
            found = self.ws.series(model.name, key, column)
            points = _thin([[s.isoformat(), v, p] for s, v, p in found])
            if points:
                series.append({"name": f"{base.replace('_', ' ')} {label}", "points": points})
        # The usual level a baseline rule compares with: the median of the previous windows.
        for rule in self.ws.config.alerting.rules:
            baseline = next(
                (
                    c.baseline
                    for c in rule.conditions
                    if c.metric in (metric, base) and c.against == "baseline"
                ),
                None,
            )
            if baseline is None or not series:
                continue
            values = [p[1] for p in series[0]["points"]]
            points = [
                [p[0], float(statistics.median(values[max(0, i - baseline.windows) : i])), False]
                for i, p in enumerate(series[0]["points"])
                if i >= baseline.min_history
            ]
            series.append({"name": f"usual level ({rule.name})", "points": points})
            break
        thresholds = []
        for rule in self.ws.config.alerting.rules:
            for c in rule.conditions:
                if c.metric in (metric, base) and c.against == "value":
                    for v in (c.above, c.below):
                        if v is not None:
                            thresholds.append(
                                {"value": v, "label": f"{rule.name} ({rule.severity})"}
                            )
        markers = []
        for a in self.ws.alerts(name):
            labels = json.loads(a["labels"])
            if labels.get("metric") in (None, metric, base):
                markers.append(
                    {
                        "t": a["window_start"].isoformat(),
                        "label": f"{a['severity']}",
                        "cls": "alert",
                    }
                )
        counts = t.filter((t.model == name) & (t.metric == "row_count") & (t.model_version != "*"))
        first_seen: dict[str, datetime] = {
            r["model_version"]: r["first"]
            for r in self.ws.store.execute(
                counts.group_by("model_version").aggregate(first=counts.window_start.min())
            ).to_pylist()
        }
        for i, (version, start) in enumerate(sorted(first_seen.items(), key=lambda kv: kv[1])):
            if i > 0:
                markers.append(
                    {
                        "t": start.isoformat(),
                        "label": f"version {version}",
                        "cls": "version",
                        "row": 1,
                    }
                )
        options = "".join(
            f'<option value="{esc(n)}"{" selected" if n == metric else ""}>{esc(n)}</option>'
            for n in names
        )
        provisional = sum(p[2] for s in series for p in s["points"])
        body = (
            f'<form class="pick" method="get"><label>metric <select name="metric" '
            f'onchange="this.form.submit()">{options}</select></label></form>'
            + self.model_tabs(name)
            + _chart(
                "series", "line", {"series": series, "thresholds": thresholds, "markers": markers}
            )
            + f'<p class="note">{provisional} provisional window(s) (labels still arriving) are '
            "drawn hollow; dashed red lines mark alerts, grey ones new model versions.</p>"
        )
        headline = default_metric(model)
        report_series = [
            (label, _thin([(s, v) for s, v, _ in self.ws.series(model.name, key)]))
            for label, key in (
                ("measured from labels", headline),
                ("estimated before labels", f"estimated_{headline}"),
            )
        ]
        body += (
            f"<h2>The stakeholder report's chart</h2>{line_chart(report_series, headline, None)}"
        )
        return _page(f"{name}: {metric.replace('_', ' ')}", body, self.models)

    def model_tabs(self, name: str) -> str:
        n = esc(name)
        return (
            f'<p class="tabs"><a href="/models/{n}">series</a> <a href="/models/{n}/drift">drift'
            f'</a> <a href="/models/{n}/segments">segments and fairness</a> '
            f'<a href="/alerts?model={n}">alerts</a></p>'
        )

    # -- drift -------------------------------------------------------------------------------------

    def drift_page(self, name: str, window: str | None, feature: str | None) -> str:
        model = self.ws.config.model(name)
        rows = self.rows(model, ["drift"])
        starts = sorted({r["window_start"] for r in rows}, reverse=True)
        if not starts:
            return _page(
                f"{name}: drift",
                self.model_tabs(name) + "<p>No drift measured yet.</p>",
                self.models,
            )
        chosen = next((s for s in starts if s.isoformat() == window), starts[0])
        at = sorted(
            (r for r in rows if r["window_start"] == chosen),
            key=lambda r: (r["status"] != "drifted", -(r["value"] or 0)),
        )
        feature = feature or (at[0]["column"] if at else None)
        table = _table(
            ["column", "distance", "p-value", "threshold", "status"],
            [
                [
                    f'<a href="?window={esc(chosen.isoformat())}&amp;feature='
                    f'{esc(r["column"])}">{esc(r["column"])}</a>',
                    fmt(r["value"]),
                    fmt(r["p_value"], 2),
                    fmt(r["threshold"]),
                    f'<span class="{esc(r["status"])}">{esc(r["status"])}</span>',
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
            f'onchange="this.form.submit()">{options}</select></label></form>' + table
        )
        if feature:
            body += self.distribution(model, chosen, feature, at)
        return _page(f"{name}: drift", body, self.models)

    def distribution(
        self, model: ModelConfig, at: datetime, feature: str, rows: list[dict[str, Any]]
    ) -> str:
        version = next((r["model_version"] for r in rows if r["column"] == feature), model.version)
        # A version without its own reference is compared with the configured version's.
        ref = self.ws.reference_profile(
            model.name, version if version != "*" else None
        ) or self.ws.reference_profile(model.name)
        binning = ref.binning(feature) if ref is not None else None
        t = self.ws.store.table(WINDOW_PROFILES)
        found = self.ws.store.execute(
            t.filter(
                (t.model == model.name)
                & (t.window_start == at)
                & (t.column == feature)
                & (t.segment_column == "*")
            ).select("profile")
        ).to_pylist()
        if ref is None or binning is None or not found or feature not in ref.overall.columns:
            return f"<p>No distribution stored for {esc(feature)}.</p>"
        live = None
        for r in found:
            p = ColumnProfile.from_json(json.loads(r["profile"]))
            live = p if live is None else live.merge(p)
        assert live is not None
        labels, reference, latest = display_bins(
            binning, ref.overall.columns[feature].bins, live.bins
        )
        data = {
            "labels": labels,
            "series": [
                {"name": "reference", "values": reference},
                {"name": f"{at:%Y-%m-%d %H:%M}", "values": latest},
            ],
        }
        return f"<h2>{esc(feature)}: reference and live</h2>" + _chart("distribution", "bars", data)

    # -- segments and fairness ---------------------------------------------------------------

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
        at = [r for r in rows if r["window_start"] == newest]
        metric = headline if any(r["metric"] == headline for r in at) else f"estimated_{headline}"
        segs = [
            [
                esc(_seg(r)),
                fmt(r["value"]),
                f"{fmt(r['lower'])} – {fmt(r['upper'])}",
                f"{int(r['sample_size'] or 0):,}",
            ]
            for r in sorted(
                at,
                key=lambda r: (r["segment_column"] != "*", r["segment_column"], r["segment_value"]),
            )
            if r["metric"] == metric
        ]
        fair = [
            [
                esc(r["segment_column"]),
                esc(r["metric"].replace("_", " ")),
                fmt(r["value"]),
                fmt(r["p_value"], 2),
                f"{int(r['sample_size'] or 0):,}",
            ]
            for r in at
            if r["metric"] in ("demographic_parity_difference", "equalized_odds_difference")
        ]
        gaps = [
            [esc(_seg(r)), esc(r["column"]), fmt(r["value"]), esc(r["status"])]
            for r in at
            if r["metric"] == "segment_gap"
        ]
        slices = [
            [esc(r["column"]), fmt(r["value"]), esc(r["detail"])]
            for r in at
            if r["metric"] == "weak_slice"
        ]
        when = f"{newest:%Y-%m-%d %H:%M}" if newest else "no window yet"
        body = (
            self.model_tabs(name)
            + f"<p>The newest window: {esc(when)}.</p>"
            + f"<h2>{esc(metric.replace('_', ' '))} by segment (95% intervals)</h2>"
            + _table(["segment", "value", "interval", "events"], segs, "segments")
            + "<h2>Gaps to the rest</h2>"
            + _table(["segment", "metric", "gap", "status"], gaps)
            + "<h2>Fairness between protected groups</h2>"
            + _table(["attribute", "disparity", "value", "p-value", "events"], fair)
            + "<h2>Weak slices found</h2>"
            + _table(["slice", "gap", "detail"], slices)
        )
        return _page(f"{name}: segments and fairness", body, self.models)

    # -- alerts ------------------------------------------------------------------------------

    def alerts_page(self, model: str | None) -> str:
        rows = self.ws.alerts(model)
        open_rows = [a for a in rows if a["state"] == "firing"]
        past = [a for a in rows if a["state"] != "firing"][-200:]

        def row(a: dict[str, Any]) -> list[str]:
            evidence = "; ".join(e["text"] for e in json.loads(a["evidence"] or "[]")[:3])
            link = f"/models/{esc(a['model'])}/alerts/{esc(a['alert_id'])}"
            return [
                f'<a href="{link}">{a["started_at"]:%Y-%m-%d %H:%M}</a>',
                esc(a["model"]),
                f'<span class="sev {esc(a["severity"])}">{esc(a["severity"])}</span>',
                esc(a["owner"]),
                esc(a["summary"]) + (f"<br><small>{esc(evidence)}</small>" if evidence else ""),
                esc(
                    a["state"]
                    + (" (muted)" if a["muted"] else "")
                    + (", acknowledged" if a["acknowledged_at"] else "")
                ),
                esc(a["verdict"] or "") + self.feedback(a),
            ]

        review = self.ws.review_alerts()
        review_rows = [
            [
                esc(r.rule),
                str(r.fired),
                str(r.pages),
                "" if r.actionable_share is None else f"{r.actionable_share:.0%}",
                str(r.verdicts.get("noise", 0)),
                str(r.flapping),
                esc(r.advice),
            ]
            for r in review
        ]
        headers = ["fired", "model", "severity", "owner", "summary", "state", "verdict"]
        body = (
            "<h2>Open</h2>"
            + _table(headers, [row(a) for a in open_rows], "alerts open")
            + "<h2>Past</h2>"
            + _table(headers, [row(a) for a in reversed(past)], "alerts past")
            + "<h2>Review: the rules to tune first</h2>"
            + _table(
                ["rule", "fired", "pages", "actionable", "noise", "flaps", "advice"], review_rows
            )
        )
        return _page("Alerts" + (f": {model}" if model else ""), body, self.models)

    @staticmethod
    def feedback(a: dict[str, Any]) -> str:
        base = f"/api/v1/alerts/{esc(a['alert_id'])}"
        ack = (
            ""
            if a["acknowledged_at"]
            else f'<form data-api="{base}/ack" class="inline"><input type="hidden" name="by" '
            'value="dashboard"><button type="submit" class="ack">acknowledge</button>'
            '<span class="result"></span></form>'
        )
        close = (
            ""
            if a["verdict"]
            else f'<form data-api="{base}/close" class="inline"><select name="verdict">'
            '<option value="actionable">actionable</option><option value="noise">noise</option>'
            '<option value="expected_change">expected change</option></select>'
            '<button type="submit" class="close">close</button><span class="result"></span></form>'
        )
        return ack + close

    def alert_page(self, model: str, alert_id: str) -> str:
        try:
            a = self.ws.alert(alert_id)
        except UnknownAlertError:
            a = None
        if a is None or a["model"] != model:
            return _page("Alert not found", f"<p>No alert {esc(alert_id)}.</p>", self.models)
        evidence = _table(
            ["metric", "column", "segment", "value", "compared with", "events", "in words"],
            [
                [
                    esc(e["metric"]),
                    esc(e["column"]),
                    esc(e["segment"]),
                    fmt(e["value"]),
                    fmt(e["compared_with"]),
                    f"{int(e['sample_size'] or 0):,}",
                    esc(e["text"]),
                ]
                for e in json.loads(a["evidence"] or "[]")
            ],
        )
        try:
            triage = self.ws.triage(model, alert=alert_id)
            steps = "".join(
                f"<li><strong>{esc(s.title)}</strong>: {esc(s.question)}<ul>"
                + "".join(f"<li>{esc(f)}</li>" for f in s.findings or ["nothing unusual"])
                + "</ul></li>"
                for s in triage.steps
            )
            ranked = "".join(
                f"<li>{esc(h.title)}: {esc(h.level)} ({h.confidence:.0%}); {esc(h.action)}</li>"
                for h in triage.hypotheses
            )
            triage_html = (
                f'<h2>Triage</h2><p class="headline">{esc(triage.headline)}</p>'
                f'<ol class="steps">{steps}</ol><h3>Hypotheses</h3>'
                f'<ol class="hypotheses">{ranked}</ol>'
            )
        except Exception as exc:  # triage needs metrics the alert's rule may not have
            triage_html = f"<h2>Triage</h2><p>Not available: {esc(exc)}</p>"
        body = (
            f'<p class="summary">{esc(a["summary"])}</p>'
            f"<p>{esc(a['severity'])} for {esc(a['owner'])}, {esc(a['state'])}; fired "
            f"{a['started_at']:%Y-%m-%d %H:%M}"
            + (f", resolved {a['resolved_at']:%Y-%m-%d %H:%M}" if a["resolved_at"] else "")
            + (f"; verdict: {esc(a['verdict'])}" if a["verdict"] else "")
            + f"</p>{self.feedback(a)}<h2>Evidence</h2>{evidence}{triage_html}"
        )
        return _page(f"Alert {alert_id}", body, self.models)


def login_page() -> str:
    return """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>watchkeeper</title>
<link rel="stylesheet" href="/assets/dashboard.css"><link rel="icon" href="data:,">
</head><body><main><h1>Sign in</h1>
<form id="login"><label>API key with the read scope <input type="password" name="key"></label>
<button type="submit">open the dashboard</button></form>
<script src="/assets/login.js"></script></main></body></html>"""


def mount(app: FastAPI, service: Any) -> None:
    """Add the dashboard's routes and assets to the app."""

    def page(request: Request, build: Any) -> Response:
        from watchkeeper.server.app import ApiError

        try:
            service.authorize(request, "read")
        except ApiError:
            return RedirectResponse("/login", status_code=303)
        html = service.read(lambda ws: build(Pages(ws)))
        return HTMLResponse(html)

    @app.get("/", include_in_schema=False)
    def overview(request: Request) -> Response:
        return page(request, lambda p: p.overview())

    @app.get("/models/{model}", include_in_schema=False)
    def model_page(
        request: Request,
        model: str,
        metric: str | None = Query(default=None, max_length=200),
        column: str = Query(default="", max_length=500),
    ) -> Response:
        return page(request, lambda p: p.model_page(model, metric, column))

    @app.get("/models/{model}/drift", include_in_schema=False)
    def drift(
        request: Request,
        model: str,
        window: str | None = Query(default=None, max_length=64),
        feature: str | None = Query(default=None, max_length=500),
    ) -> Response:
        return page(request, lambda p: p.drift_page(model, window, feature))

    @app.get("/models/{model}/segments", include_in_schema=False)
    def segments(request: Request, model: str) -> Response:
        return page(request, lambda p: p.segments_page(model))

    @app.get("/alerts", include_in_schema=False)
    def alerts(
        request: Request, model: str | None = Query(default=None, max_length=200)
    ) -> Response:
        return page(request, lambda p: p.alerts_page(model))

    @app.get("/models/{model}/alerts/{alert_id}", include_in_schema=False)
    def alert(request: Request, model: str, alert_id: str) -> Response:
        return page(request, lambda p: p.alert_page(model, alert_id))

    @app.get("/login", include_in_schema=False)
    def login() -> Response:
        return HTMLResponse(login_page())

    types = {"js": "text/javascript", "css": "text/css"}

    @app.get("/assets/{name}", include_in_schema=False)
    def asset(name: str) -> Response:
        if name not in ("charts.js", "dashboard.css", "login.js"):
            return Response(status_code=404)
        return Response(
            _asset(name),
            media_type=types[name.rsplit(".", 1)[1]],
            headers={"Cache-Control": "max-age=3600"},
        )
