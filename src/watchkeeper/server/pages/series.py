"""A model's metric series: the realized and estimated values with their intervals, the
usual level a baseline rule compares with, the reference value and the thresholds of the
rules on the metric, that rule's alerts and new versions; with pickers for the metric, its
column and the time range."""

from __future__ import annotations

import fnmatch
import json
from datetime import datetime, timedelta

from watchkeeper.alerts.conditions import SeriesKey, matches
from watchkeeper.catalogue import CATALOGUE
from watchkeeper.config import ConditionConfig, ModelConfig, RuleConfig
from watchkeeper.report.html import esc
from watchkeeper.report.specs import Level, Line, Mark, Point, SeriesChart, series_spec
from watchkeeper.rows import ALL, MetricRow
from watchkeeper.server.pages.base import PageBase
from watchkeeper.server.pages.html import MAX_POINTS, chart, page, thin
from watchkeeper.stats import baseline
from watchkeeper.triage import default_metric

RANGES = ((0, "all"), (7, "7 days"), (30, "30 days"), (90, "90 days"))


def _on(c: ConditionConfig, metric: str, column: str) -> bool:
    """Whether the condition judges this series of the whole traffic (the page's)."""
    return matches(c, SeriesKey("", metric, column, ALL, ALL))


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

    def model_page(self, name: str, metric: str | None, column: str, days: int = 0) -> str:
        model = self.ws.config.model(name)
        metric = metric or default_metric(model)
        base = metric.removeprefix("estimated_")
        names = self.ws.metrics_table.names(name, whole=True)
        columns = self.ws.metrics_table.columns(name, base) or self.ws.metrics_table.columns(
            name, f"estimated_{base}"
        )
        if column not in columns and columns:
            column = "" if "" in columns else columns[0]  # latency_ms, psi of a feature
        newest = self.newest(model)
        since = newest - timedelta(days=days) if days and newest is not None else None
        rules = [
            r for r in self.ws.config.alerting.rules
            if fnmatch.fnmatchcase(name, r.models)
            and any(_on(c, m, column) for c in r.conditions for m in (base, metric))
        ]  # fmt: skip
        lines = self._lines(model, base, column, since)
        levels = self._levels(model, base, column, rules)
        usual = self._usual(model, base, column, rules, since) if lines else None
        if usual is not None:
            lines.append(usual)
        marks = self._marks(name, base, column, rules, since)
        entry = CATALOGUE.get(base)
        spec = series_spec(
            SeriesChart(
                base,
                entry.unit if entry else "value",
                lines,
                levels,
                marks,
                currency=model.costs.currency if model.costs is not None else "",
            )
        )
        provisional = sum(p.provisional for line in lines for p in line.points)
        pickers = (
            '<form class="pick" method="get">'
            + self._select("metric", names, metric)
            + (self._select("column", columns, column) if columns != [""] else "")
            + self._select(
                "days",
                [str(d) for d, _ in RANGES],
                str(days),
                {str(d): label for d, label in RANGES},
            )
            + "</form>"
        )
        viewed = ", ".join(r.name for r in rules) or "no rule watches this series"
        body = (
            pickers
            + self.model_tabs(name)
            + chart("series", spec)
            + self.about(base)
            + f'<p class="note">Shaded: each window\'s 95% interval. {provisional} provisional '
            "window(s) (labels still arriving) are drawn hollow. Red dashed lines: the rules' "
            f"thresholds and the alerts of the rules on this series ({esc(viewed)}); grey: the "
            "reference value and new model versions.</p>"
        )
        title = f"{name}: {base.replace('_', ' ')}" + (f" of {column}" if column else "")
        return page(title, body, self.models)

    @staticmethod
    def _select(
        name: str, values: list[str], chosen: str, labels: dict[str, str] | None = None
    ) -> str:
        options = "".join(
            f'<option value="{esc(v)}"{" selected" if v == chosen else ""}>'
            f"{esc((labels or {}).get(v, v) or '(model)')}</option>"
            for v in values
        )
        return (
            f'<label>{esc(name)} <select name="{esc(name)}" onchange="this.form.submit()">'
            f"{options}</select></label> "
        )

    def _lines(
        self, model: ModelConfig, base: str, column: str, since: datetime | None
    ) -> list[Line]:
        """Realized and estimated, each with the interval of the window's row (the row of
        the whole traffic with the most events, where versions share a window)."""
        out = []
        for label, key in (("from labels", base), ("estimated before labels", f"estimated_{base}")):
            found = self.ws.series(model.name, key, column, since=since)
            if not found:
                continue
            # The interval of a window one version served (where versions share one, the
            # value drawn mixes them and no single row's interval is its own).
            by_window: dict[datetime, list[MetricRow]] = {}
            thinned_away = len(found) > MAX_POINTS  # averaged points have no interval
            for r in [] if thinned_away else self.rows(model, [key], since=since):
                if r.column == column:
                    by_window.setdefault(r.window_start, []).append(r)
            rows = {t: found[0] for t, found in by_window.items() if len(found) == 1}
            thinned = thin([[s.isoformat(), v, p] for s, v, p in found])
            points = []
            for t, v, p in thinned:
                start = datetime.fromisoformat(t)
                found_row = rows.get(start)
                exact = found_row is not None and len(thinned) == len(found)  # thinned: no interval
                lower = found_row.lower if exact and found_row else None
                upper = found_row.upper if exact and found_row else None
                points.append(Point(start, v, bool(p), lower, upper))
            out.append(Line(f"{base.replace('_', ' ')} {label}", points))
        return out

    def _levels(
        self, model: ModelConfig, base: str, column: str, rules: list[RuleConfig]
    ) -> list[Level]:
        """The reference value, and each rule's threshold on the value (a rule against the
        reference has its threshold where the change from the reference crosses it)."""
        ref = self.ws.reference_values(model.name).get((model.name, base, column))
        out = [] if ref is None else [Level(ref, f"reference {ref:.3g}", "reference")]
        for rule in rules:
            for c in rule.conditions:
                if not _on(c, base, column) or c.against == "baseline":
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

    def _usual(
        self,
        model: ModelConfig,
        base: str,
        column: str,
        rules: list[RuleConfig],
        since: datetime | None,
    ) -> Line | None:
        """The usual level a baseline rule on the series compares with, by its own baseline,
        from the whole series (not the range shown, nor its thinned points)."""
        for rule in rules:
            found = next(
                (
                    c.baseline
                    for c in rule.conditions
                    if c.against == "baseline" and _on(c, base, column)
                ),
                None,
            )
            if found is None:
                continue
            drawn = [(t, v) for t, v, _ in self.ws.series(model.name, base, column)]
            points = []
            for start, _ in drawn:
                if since is not None and start < since:
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

    def _marks(
        self,
        name: str,
        base: str,
        column: str,
        rules: list[RuleConfig],
        since: datetime | None,
    ) -> list[Mark]:
        """The alerts of the rules on this series (on its column, where they name one), and
        each new model version."""
        mine = {r.name for r in rules}
        out = []
        for a in self.ws.alerts(name):
            labels = json.loads(a["labels"])
            if a["rule"] not in mine or (labels.get("column") or column) != column:
                continue
            if since is None or a["window_start"] >= since:
                out.append(Mark(a["window_start"], f"{a['rule']} ({a['severity']}, {a['state']})"))
        first_seen = self.ws.metrics_table.first_seen(name)
        for i, (version, start) in enumerate(sorted(first_seen.items(), key=lambda kv: kv[1])):
            if i > 0 and (since is None or start >= since):
                out.append(Mark(start, f"version {version}", "version"))
        return out


__all__ = ["SeriesPage"]
