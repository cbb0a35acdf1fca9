"""The alerts (open and past, with acknowledgement, verdicts and the review of the rules)
and one alert's page with its evidence and triage."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from watchkeeper.errors import TriageError, UnknownAlertError
from watchkeeper.report.html import esc, fmt
from watchkeeper.server.pages.base import PageBase
from watchkeeper.server.pages.html import page, table

# What the alerts list can be narrowed by (besides the model), each a column of the alerts.
FILTERS = ("rule", "severity", "owner", "state")


class AlertsPage(PageBase):
    def alerts_page(self, model: str | None, chosen: Mapping[str, str | None] | None = None) -> str:
        everything = self.ws.alerts(model)
        wanted = {k: v for k, v in (chosen or {}).items() if k in FILTERS and v}
        rows = [a for a in everything if all(a[k] == v for k, v in wanted.items())]
        open_rows = [a for a in rows if a["state"] == "firing"]
        past = [a for a in rows if a["state"] != "firing"][-200:]

        def row(a: dict[str, Any]) -> list[str]:
            # The evidence beside the summary, without the line the summary already says.
            said = a["summary"] or ""
            texts = [e["text"] for e in json.loads(a["evidence"] or "[]")]
            evidence = "; ".join(t for t in texts if t and t not in said)[:600]
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
            _filters(everything, model, wanted)
            + "<h2>Open</h2>"
            + table(headers, [row(a) for a in open_rows], "alerts open")
            + "<h2>Past</h2>"
            + table(headers, [row(a) for a in reversed(past)], "alerts past")
            + "<h2>Review: the rules to tune first</h2>"
            + table(
                ["rule", "fired", "pages", "actionable", "noise", "flaps", "advice"], review_rows
            )
        )
        return page("Alerts" + (f": {model}" if model else ""), body, self.models)

    @staticmethod
    def feedback(a: dict[str, Any]) -> str:
        """The actions that apply: acknowledge a firing alert not yet acknowledged; give a
        verdict (close) to one that has none."""
        base = f"/api/v1/alerts/{esc(a['alert_id'])}"
        ack = (
            ""
            if a["acknowledged_at"] or a["state"] != "firing"
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
            return page("Alert not found", f"<p>No alert {esc(alert_id)}.</p>", self.models)
        evidence = table(
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
        except TriageError as exc:  # triage needs metrics the alert's rule may not have
            triage_html = f"<h2>Triage</h2><p>Not available: {esc(exc)}</p>"
        body = (
            f'<p class="summary">{esc(a["summary"])}</p>'
            f"<p>{esc(a['severity'])} for {esc(a['owner'])}, {esc(a['state'])}; fired "
            f"{a['started_at']:%Y-%m-%d %H:%M}"
            + (f", resolved {a['resolved_at']:%Y-%m-%d %H:%M}" if a["resolved_at"] else "")
            + (f"; verdict: {esc(a['verdict'])}" if a["verdict"] else "")
            + f"</p>{self.feedback(a)}<h2>Evidence</h2>{evidence}{triage_html}"
        )
        return page(f"Alert {alert_id}", body, self.models)


def _filters(alerts: list[dict[str, Any]], model: str | None, wanted: Mapping[str, str]) -> str:
    """A form of pickers, one per filter, offering the values the model's alerts have."""
    fields = [f'<input type="hidden" name="model" value="{esc(model)}">'] if model else []
    for name in FILTERS:
        values = sorted(
            {str(a[name]) for a in alerts if a[name]}
            | ({wanted[name]} if name in wanted else set())
        )
        options = "".join(
            f'<option value="{esc(v)}"{" selected" if wanted.get(name) == v else ""}>'
            f"{esc(v)}</option>"
            for v in values
        )
        fields.append(
            f'<label>{name} <select name="{name}"><option value="">any</option>{options}'
            "</select></label>"
        )
    shown = ", ".join(f"{k} {v}" for k, v in wanted.items())
    return (
        f'<form method="get" action="/alerts" class="filters">{" ".join(fields)} '
        '<button type="submit">filter</button></form>'
        + (f'<p class="filtered">showing {esc(shown)} only</p>' if shown else "")
    )


__all__ = ["AlertsPage"]
