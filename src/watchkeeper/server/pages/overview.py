"""The overview: what is firing first, then every model's health, performance and business
lanes with its open alerts, what is measured and what is estimated, and a sparkline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from watchkeeper.catalogue import CATALOGUE
from watchkeeper.config import ModelConfig
from watchkeeper.report.specs import Line, Point, SeriesChart, series_spec
from watchkeeper.rows import MetricRow
from watchkeeper.server.pages.base import PageBase
from watchkeeper.server.pages.html import number, render
from watchkeeper.triage import default_metric

SPARK_WINDOWS = 30

LANES = {
    "health": ("data", "infrastructure"),
    "performance": ("model",),
    "business": ("business",),
}


class OverviewPage(PageBase):
    def overview(self) -> str:
        open_alerts = self.ws.alerts(state="firing")
        cards: list[dict[str, Any]] = []
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
            # The headline's series, read once: the lanes state it, the sparkline draws it.
            headline_series = {
                key: self.ws.series(model.name, key) for key in (headline, f"estimated_{headline}")
            }
            mine = [a for a in open_alerts if a["model"] == model.name]
            lanes: list[dict[str, Any]] = []
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
                by_rule: dict[str, list[dict[str, Any]]] = {}
                for a in lane_alerts:
                    by_rule.setdefault(a["rule"], []).append(a)
                lanes.append(
                    {
                        "name": lane,
                        "colour": colour,
                        "facts": self.lane_facts(model, lane, rows, headline_series),
                        "by_rule": sorted(
                            by_rule.items(),
                            key=lambda kv: (kv[1][-1]["severity"] != "page", kv[0]),
                        ),
                    }
                )
            cards.append(
                {
                    "name": model.name,
                    "task": model.task.replace("_", " "),
                    "owner": model.owner,
                    "as_of": (
                        f"as of {newest + model.monitoring.window:%Y-%m-%d %H:%M} UTC"
                        if newest is not None
                        else "no window yet"
                    ),
                    "lanes": lanes,
                    "spark": self.sparkline(model, headline_series),
                }
            )
        return render(
            "overview.html",
            title="Models",
            models=self.models,
            firing=open_alerts,
            pages=[a for a in open_alerts if a["severity"] == "page"],
            tickets=sum(a["severity"] == "ticket" for a in open_alerts),
            cards=cards,
        )

    def sparkline(
        self, model: ModelConfig, series: dict[str, list[tuple[datetime, float, bool]]]
    ) -> dict[str, Any] | None:
        """The headline metric's last 30 windows, measured and estimated, drawn small."""
        headline = default_metric(model)
        lines = []
        for label, key in (("from labels", headline), ("estimated", f"estimated_{headline}")):
            found = series[key][-SPARK_WINDOWS:]
            if found:
                points = [Point(t, v, p) for t, v, p in found]
                lines.append(Line(f"{headline.replace('_', ' ')} {label}", points))
        if not lines:
            return None
        entry = CATALOGUE.get(headline)
        spec = series_spec(SeriesChart(headline, entry.unit if entry else "score", lines))
        spec["height"] = 70
        return spec

    def lane_facts(
        self,
        model: ModelConfig,
        lane: str,
        rows: list[MetricRow],
        series: dict[str, list[tuple[datetime, float, bool]]],
    ) -> str:
        def value(metric: str, column: str = "") -> float | None:
            r = self.latest(rows, metric, column)
            return None if r is None else r.value

        if lane == "health":
            rows_now = value("row_count")
            parts = [f"{int(rows_now):,} events" if rows_now is not None else "no events"]
            if (e := value("error_rate")) is not None:
                parts.append(f"{e:.1%} errors")
            if model.columns.latency and (lat := value("latency_p99", model.columns.latency)):
                parts.append(f"p99 {lat:,.0f} ms")
            missing = [r.value or 0 for r in rows if r.metric == "missing_rate"]
            if missing:
                parts.append(f"worst missing rate {max(missing):.1%}")
            return ", ".join(parts)
        if lane == "performance":
            # What is measured and what is estimated, each dated: the newest windows have
            # no labels yet, and their estimate must not stand for the measured value.
            headline = default_metric(model)
            name = headline.replace("_", " ")
            parts = []
            measured = series[headline]
            if measured:
                at, v, provisional = measured[-1]
                parts.append(
                    f"{name} {number(v)} measured from labels for {at:%Y-%m-%d %H:%M}"
                    + (" (labels still arriving)" if provisional else "")
                )
            estimate = value(f"estimated_{headline}")
            if estimate is not None:
                coverage = value("label_coverage")
                cov = f", labels for {coverage:.0%} of its events" if coverage is not None else ""
                parts.append(f"estimated {number(estimate)} for the newest window{cov}")
            return "; ".join(parts) or f"no {name} yet"
        parts = []
        for r in rows:
            if r.metric == "outcome_rate" and r is self.latest(rows, "outcome_rate", r.column):
                parts.append(f"{r.column} {(r.value or 0):.2%}")
        if (net := value("net_value")) is not None:
            currency = model.costs.currency if model.costs else ""
            parts.append(f"net value {currency} {net:,.0f}".replace("  ", " "))
        return ", ".join(parts) or "no business outcomes configured"

    # -- a model's series ------------------------------------------------------------------------


__all__ = ["LANES", "OverviewPage"]
