"""A model's metric series: the realized and estimated values, the usual level a baseline
rule compares with, the thresholds of rules on the value, alerts and new versions."""

from __future__ import annotations

import json
from datetime import datetime

from watchkeeper.catalogue import CATALOGUE
from watchkeeper.report.charts import line_chart
from watchkeeper.report.html import esc
from watchkeeper.server.pages.base import PageBase
from watchkeeper.server.pages.html import chart, page, thin
from watchkeeper.stats import baseline
from watchkeeper.triage import default_metric


class SeriesPage(PageBase):
    @staticmethod
    def about(metric: str) -> str:
        """The metric's catalogue entry in a line: what it is, its unit, which way is good."""
        entry = CATALOGUE.get(metric)
        if entry is None:
            return ""
        way = {"higher_is_better": "higher is better", "lower_is_better": "lower is better"}
        facts = [f"unit: {entry.unit.replace('_', ' ')}", way.get(entry.direction, "")]
        return (
            f'<p class="about">{esc(entry.description)} '
            f"<small>({esc(', '.join(f for f in facts if f))})</small></p>"
        )

    def model_page(self, name: str, metric: str | None, column: str) -> str:
        model = self.ws.config.model(name)
        metric = metric or default_metric(model)
        names = self.ws.metrics_table.names(name, whole=True)
        base = metric.removeprefix("estimated_")
        series = []
        for label, key in (("from labels", base), ("estimated before labels", f"estimated_{base}")):
            found = self.ws.series(model.name, key, column)
            points = thin([[s.isoformat(), v, p] for s, v, p in found])
            if points:
                series.append({"name": f"{base.replace('_', ' ')} {label}", "points": points})
        # The usual level a baseline rule compares with, by the rule's own baseline.
        for rule in self.ws.config.alerting.rules:
            rule_baseline = next(
                (
                    c.baseline
                    for c in rule.conditions
                    if c.metric in (metric, base) and c.against == "baseline"
                ),
                None,
            )
            if rule_baseline is None or not series:
                continue
            drawn = [(datetime.fromisoformat(p[0]), p[1]) for p in series[0]["points"]]
            points = []
            for start, _ in drawn:
                past = baseline.past(drawn, start, rule_baseline.windows, rule_baseline.seasonal)
                level = baseline.level(past, rule_baseline.method)
                if level is not None and level.n >= rule_baseline.min_history:
                    points.append([start.isoformat(), level.centre, False])
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
        first_seen = self.ws.metrics_table.first_seen(name)
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
            + chart(
                "series", "line", {"series": series, "thresholds": thresholds, "markers": markers}
            )
            + self.about(metric)
            + f'<p class="note">{provisional} provisional window(s) (labels still arriving) are '
            "drawn hollow; dashed red lines mark alerts, grey ones new model versions.</p>"
        )
        headline = default_metric(model)
        report_series = [
            (label, thin([(s, v) for s, v, _ in self.ws.series(model.name, key)]))
            for label, key in (
                ("measured from labels", headline),
                ("estimated before labels", f"estimated_{headline}"),
            )
        ]
        body += (
            f"<h2>The stakeholder report's chart</h2>{line_chart(report_series, headline, None)}"
        )
        return page(f"{name}: {metric.replace('_', ' ')}", body, self.models)


__all__ = ["SeriesPage"]
