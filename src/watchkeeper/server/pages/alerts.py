"""The alerts (open and past, with acknowledgement, verdicts and the review of the rules)
and one alert's page with the series around it, its evidence and triage."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from watchkeeper.errors import TriageError, UnknownAlertError
from watchkeeper.server.pages.html import render
from watchkeeper.server.pages.series import SeriesPage

# What the alerts list can be narrowed by (besides the model), each a column of the alerts.
FILTERS = ("rule", "severity", "owner", "state")


class AlertsPage(SeriesPage):
    def alerts_page(self, model: str | None, chosen: Mapping[str, str | None] | None = None) -> str:
        everything = self.ws.alerts(model)
        wanted = {k: v for k, v in (chosen or {}).items() if k in FILTERS and v}
        rows = [dict(a, said=_said(a)) for a in everything]
        rows = [a for a in rows if all(a[k] == v for k, v in wanted.items())]
        review = [
            [
                r.rule,
                r.fired,
                r.pages,
                "" if r.actionable_share is None else f"{r.actionable_share:.0%}",
                r.verdicts.get("noise", 0),
                r.flapping,
                r.advice,
            ]
            for r in self.ws.review_alerts()
        ]
        # Each filter offers the values the alerts have (and the one chosen, if none has it).
        filters = [
            (
                name,
                sorted(
                    {str(a[name]) for a in everything if a[name]}
                    | ({wanted[name]} if name in wanted else set())
                ),
            )
            for name in FILTERS
        ]
        return render(
            "alerts.html",
            title="Alerts" + (f": {model}" if model else ""),
            models=self.models,
            model=model,
            filters=filters,
            wanted=wanted,
            open_rows=[a for a in rows if a["state"] == "firing"],
            past=list(reversed([a for a in rows if a["state"] != "firing"][-200:])),
            review=review,
        )

    def alert_page(self, model: str, alert_id: str) -> str:
        try:
            a = self.ws.alert(alert_id)
        except UnknownAlertError:
            a = None
        if a is None or a["model"] != model:
            return render(
                "message.html",
                title="Alert not found",
                models=self.models,
                message=f"No alert {alert_id}.",
            )
        try:
            triage, triage_error = self.ws.triage(model, alert=alert_id), ""
        except TriageError as exc:  # triage needs metrics the alert's rule may not have
            triage, triage_error = None, str(exc)
        return render(
            "alert.html",
            title=f"Alert {alert_id}",
            models=self.models,
            a=a,
            around=self.around(a),
            evidence=json.loads(a["evidence"] or "[]"),
            triage=triage,
            triage_error=triage_error,
        )

    def around(self, a: dict[str, Any]) -> dict[str, Any] | None:
        """The series the alert judged (its labels' metric, column and segment; a combined
        rule's first evidence), on its own window size, the windows before and after the
        one it fired on."""
        labels = json.loads(a["labels"] or "{}")
        evidence = json.loads(a["evidence"] or "[]")
        if not labels.get("metric") and evidence:
            labels = {k: evidence[0].get(k) for k in ("metric", "column", "segment")}
        metric = labels.get("metric")
        if not metric or a["window_start"] is None:
            return None
        model = self.ws.config.model(a["model"])
        size = timedelta(seconds=a["window_size_s"] or model.monitoring.window.total_seconds())
        column_, _, value = (labels.get("segment") or "*").partition("=")
        segment = (column_, value) if value else ("*", "*")
        column = labels.get("column") or ""
        spec = self.series_spec(
            model,
            metric,
            column,
            size=size,
            segment=segment,
            since=a["window_start"] - 24 * size,
            until=a["window_start"] + 12 * size,
            only_alert=a["alert_id"],
        )
        if spec is None:
            return None
        where = "" if segment[0] == "*" else f" for {segment[0]}={segment[1]}"
        title = metric.replace("_", " ") + (f" of {column}" if column else "") + where
        return {"title": title, "spec": spec}


def _said(a: Mapping[str, Any]) -> str:
    """The evidence beside the summary, without the line the summary already says."""
    said = a["summary"] or ""
    texts = [e["text"] for e in json.loads(a["evidence"] or "[]")]
    return "; ".join(t for t in texts if t and t not in said)[:600]


__all__ = ["AlertsPage"]
