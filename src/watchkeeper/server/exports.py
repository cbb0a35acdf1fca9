"""Exports for teams that live in Grafana and Prometheus: a dashboard over the series of
``/metrics``, and the alert rules translated to Prometheus alerting rules.
"""

from __future__ import annotations

import math
from typing import Any

import yaml

from watchkeeper.catalogue import CATALOGUE, PROMETHEUS
from watchkeeper.config import ConditionConfig, Config, RuleConfig
from watchkeeper.windows import format_duration

# Grafana's unit for each of ours.
GRAFANA_UNITS: dict[str, str] = {
    "ratio": "percentunit",
    "score": "none",
    "count": "short",
    "ms": "ms",
    "seconds": "s",
    "currency": "currencyUSD",
    "value": "none",
    "difference": "none",
    "times_usual": "none",
}

# The queries of the dashboard: (panel title, the metric whose unit the panel has, PromQL with
# $model). Units come from the catalogue.
PANELS: list[tuple[str, str, str]] = [
    (
        "Performance (realized and estimated)",
        "roc_auc",
        'watchkeeper_model_performance{model="$model", segment="$segment", version=~"$version"}',
    ),
    (
        "Drift by feature (effect size)",
        "drift",
        'watchkeeper_drift_score{model="$model", segment="$segment", version=~"$version"}',
    ),
    (
        "Missing values",
        "missing_rate",
        'watchkeeper_data_quality_ratio{model="$model", segment="$segment", check="missing"}',
    ),
    ("Label coverage", "label_coverage", 'watchkeeper_label_coverage_ratio{model="$model"}'),
    (
        "Latency p99 (served model)",
        "seconds",
        "histogram_quantile(0.99, sum by (le) "
        '(watchkeeper_served_latency_seconds_bucket{model="$model"}))',
    ),
    ("Error rate (served model)", "error_rate", 'watchkeeper_served_error_ratio{model="$model"}'),
    ("Events per window", "row_count", 'watchkeeper_served_events{model="$model"}'),
    (
        "Alerts firing",
        "count",
        'sum by (alertname, severity) (watchkeeper_alerts{model="$model", alertstate="firing"})',
    ),
    (
        "Rows quarantined (rate)",
        "count",
        'sum by (reason) (rate(watchkeeper_quarantined_rows_total{model="$model"}[5m]))',
    ),
    ("watchkeeper up", "count", "watchkeeper_up"),
]


def _unit(metric_or_unit: str) -> str:
    """Grafana's unit for a panel: a catalogued metric's unit, or one of ours by name."""
    entry = CATALOGUE.get(metric_or_unit)
    unit = entry.unit if entry is not None else metric_or_unit
    return GRAFANA_UNITS.get(unit, "none")


# Annotations: the alerts firing, as Grafana draws them over every panel.
ANNOTATION = 'watchkeeper_alerts{model="$model", alertstate="firing"} > 0'


def _legend(expr: str) -> str:
    """A series' name in a panel: the labels of its family after ``model`` (metric, kind,
    version, segment, ...), from the catalogue; Grafana's own for an aggregation."""
    family = PROMETHEUS.get(expr.split("{", 1)[0])
    if family is None or len(family.labels) < 2:
        return "__auto"
    return " ".join(f"{name}={{{{{name}}}}}" for name in family.labels[1:])


def _thresholds(config: Config, metric: str) -> list[dict[str, Any]]:
    """A panel's threshold steps from the rules on its metric that compare the value itself
    (``against: value``): red above the lowest ``above``, red below the highest ``below``.
    A rule on the reference or a rolling baseline has no fixed line."""
    conditions = [
        c
        for rule in config.alerting.rules
        for c in rule.conditions
        if c.against == "value" and _match(c.metric, metric)
    ]
    above = min((c.above for c in conditions if c.above is not None), default=None)
    below = max((c.below for c in conditions if c.below is not None), default=None)
    base = "red" if below is not None else "green"
    steps: list[dict[str, Any]] = [{"color": base, "value": None}]
    if below is not None:
        steps.append({"color": "green", "value": below})
    if above is not None:
        steps.append({"color": "red", "value": above})
    return steps


def grafana_dashboard(config: Config, datasource: str = "Prometheus") -> dict[str, Any]:
    """A Grafana dashboard (JSON model): one panel per query of ``PANELS``, each with its
    catalogue unit, a legend naming its series and the thresholds of the rules on the value
    drawn as lines; the firing alerts as annotations; ``model``, ``segment`` and ``version``
    variables."""
    panels = []
    for i, (title, metric, expr) in enumerate(PANELS):
        defaults: dict[str, Any] = {
            "unit": _unit(metric),
            "thresholds": {"mode": "absolute", "steps": _thresholds(config, metric)},
            "custom": {"thresholdsStyle": {"mode": "dashed"}},
        }
        panels.append(
            {
                "id": i + 1,
                "type": "timeseries",
                "title": title,
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)},
                "fieldConfig": {"defaults": defaults, "overrides": []},
                "targets": [{"refId": "A", "expr": expr, "legendFormat": _legend(expr)}],
            }
        )
    models = [m.name for m in config.models]
    source = {"type": "prometheus", "uid": "${datasource}"}

    def variable(name: str, query: str, everything: str) -> dict[str, Any]:
        return {
            "name": name,
            "type": "query",
            "datasource": source,
            "query": query,
            "refresh": 2,
            "includeAll": True,
            "allValue": everything,
            "current": {"text": "All", "value": "$__all"},
        }

    return {
        "title": "watchkeeper: model health",
        "uid": "watchkeeper-models",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-7d", "to": "now"},
        "refresh": "1m",
        "tags": ["watchkeeper", "ml-monitoring"],
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {"text": datasource, "value": datasource},
                },
                {
                    "name": "model",
                    "type": "query",
                    "datasource": {"type": "prometheus", "uid": "${datasource}"},
                    "query": "label_values(watchkeeper_served_events, model)",
                    "current": {"text": models[0], "value": models[0]} if models else {},
                    "refresh": 2,
                },
                # One segment at a time (every segment at once would stack their series):
                # the whole traffic, "*", unless one is picked.
                {
                    **variable(
                        "segment",
                        'label_values(watchkeeper_model_performance{model="$model"}, segment)',
                        "*",
                    ),
                    "includeAll": False,
                    "current": {"text": "*", "value": "*"},
                },
                variable(
                    "version",
                    'label_values(watchkeeper_model_performance{model="$model"}, version)',
                    ".*",
                ),
            ]
        },
        "annotations": {
            "list": [
                {
                    "name": "alerts firing",
                    "datasource": source,
                    "enable": True,
                    "expr": ANNOTATION,
                    "iconColor": "red",
                    "step": "60s",
                    "titleFormat": "{{alertname}} ({{severity}})",
                    "textFormat": "{{metric}} {{column}} {{segment}} v{{version}}",
                    "tagKeys": "severity,owner",
                    "useValueForTime": False,
                }
            ]
        },
        "panels": panels,
    }


def dashboard_queries(model: str, segment: str = "*", version: str = ".*") -> list[str]:
    """The dashboard's queries for one model (its panels' and its annotation's), as
    Prometheus runs them with the variables' values."""
    exprs = [expr for _, _, expr in PANELS]
    return [
        e.replace("$model", model).replace("$segment", segment).replace("$version", version)
        for e in exprs
    ]


def annotation_query(model: str) -> str:
    return ANNOTATION.replace("$model", model)


def _selector(metric: str, column: str | tuple[str, ...], segment: str) -> str | None:
    """The Prometheus series of a watchkeeper metric (None where it is not exported), by
    the catalogue's export of it."""
    if metric in ("latency_p50", "latency_p90", "latency_p99"):
        # From the served-latency histogram, in milliseconds as watchkeeper states them.
        q = int(metric.removeprefix("latency_p")) / 100
        bucket = 'watchkeeper_served_latency_seconds_bucket{model=~"{models}"}'
        return f"(1000 * histogram_quantile({q:g}, sum by (le, model) ({bucket})))"
    entry = CATALOGUE.get(metric)
    if entry is None or not entry.exports:
        return None
    export = entry.exports[0]
    columns = (column,) if isinstance(column, str) else column
    column_re = "|".join(c.replace("*", ".*").replace("?", ".") for c in columns)
    labels = ['model=~"{models}"']
    for name in PROMETHEUS[export.family].labels[1:]:
        source = export.labels[name]
        if source == "{version}":
            continue  # every version: a rule's alert is per version where it is one
        if source == "{segment}":
            if segment == "*":
                labels.append(f'{name}="*"')
            elif segment != "any":
                labels.append(f'{name}=~"{segment.replace("*", ".*")}"')
        elif source == "{column}":
            if column_re != ".*":
                labels.append(f'{name}=~"{column_re}"')
        elif source == "{metric}":
            labels.append(f'{name}="{metric}"')
        elif source == "{base}":
            labels.append(f'{name}="{entry.estimates or metric}"')
        else:
            labels.append(f'{name}="{source}"')
    return f"{export.family}{{{', '.join(labels)}}}"


def _condition(c: ConditionConfig, models: str, window_seconds: float) -> str | None:
    if c.against == "reference" or any(ch in c.metric for ch in "*?"):
        return None
    if c.status:
        if c.metric == "drift" and c.status == ("drifted",):
            base = _selector("drift", c.column, c.segment)
            assert base is not None
            detected = CATALOGUE["drift"].exports[1].family
            return (
                base.replace(CATALOGUE["drift"].exports[0].family, detected).replace(
                    "{models}", models
                )
                + " == 1"
            )
        return None
    series = _selector(c.metric, c.column, c.segment)
    if series is None:
        return None
    series = series.replace("{models}", models)
    if c.against == "baseline":
        span = f"{int(c.baseline.windows * window_seconds)}s"
        # A subquery, so it works over expressions too; a seasonal baseline becomes a plain
        # rolling one here (PromQL has no same-hour-of-earlier-days window). The centre is
        # the rule's (the median for median_mad, as watchkeeper's usual level is); the
        # spread is the standard deviation (PromQL has no median absolute deviation).
        centre = (
            f"quantile_over_time(0.5, ({series})[{span}:])"
            if c.baseline.method == "median_mad"
            else f"avg_over_time(({series})[{span}:])"
        )
        spread = f"stddev_over_time(({series})[{span}:])"
        k = c.baseline.k
        change = c.baseline.min_change
        parts = []
        if c.direction in ("above", "both"):
            part = f"{series} > {centre} + {k:g} * {spread}"
            if change is not None:  # and at least this relative change
                part = f"({part}) and {series} >= {1 + change:g} * {centre}"
            parts.append(part)
        if c.direction in ("below", "both"):
            part = f"{series} < {centre} - {k:g} * {spread}"
            if change is not None:
                part = f"({part}) and {series} <= {max(1 - change, 0):g} * {centre}"
            parts.append(part)
        return " or ".join(f"({p})" for p in parts)
    parts = []
    if c.above is not None:
        parts.append(f"{series} > {c.above:g}")
    if c.below is not None:
        parts.append(f"{series} < {c.below:g}")
    return " or ".join(f"({p})" for p in parts) if parts else None


def prometheus_rules(config: Config) -> tuple[dict[str, Any], list[str]]:
    """Prometheus alerting rules equivalent to the config's rules where PromQL can say the
    same, and the names of the rules it cannot (changes from the reference, statuses other
    than drift, combined rules needing k of n)."""
    rules = []
    skipped = []
    for rule in config.alerting.rules:
        translated = _rule(rule, config)
        if translated is None:
            skipped.append(rule.name)
        else:
            rules.append(translated)
    return {"groups": [{"name": "watchkeeper", "rules": rules}]}, skipped


def _rule(rule: RuleConfig, config: Config) -> dict[str, Any] | None:
    models = [m for m in config.models if _match(rule.models, m.name)]
    if not models:
        return None
    window = (rule.window or models[0].monitoring.window).total_seconds()
    pattern = "|".join(m.name for m in models)
    exprs = [_condition(c, pattern, window) for c in rule.conditions]
    if any(e is None for e in exprs):
        return None
    if rule.required == len(exprs):
        expr = " and ".join(f"({e})" for e in exprs) if len(exprs) > 1 else str(exprs[0])
    elif rule.required == 1:
        expr = " or ".join(f"({e})" for e in exprs)
    else:
        return None
    hold = rule.for_
    seconds = hold.total_seconds() if not isinstance(hold, int) else max(hold - 1, 0) * window
    out: dict[str, Any] = {
        "alert": rule.name,
        "expr": expr,
        "labels": {"severity": rule.severity, "owner": rule.owner},
        "annotations": {
            "summary": rule.description or rule.name.replace("_", " "),
            "description": f"watchkeeper rule {rule.name}; value {{{{ $value }}}}",
        },
    }
    if seconds:
        out["for"] = format_duration_seconds(seconds)
    keep = rule.keep_firing_for
    keep_seconds = keep.total_seconds() if not isinstance(keep, int) else keep * window
    if keep_seconds:
        out["keep_firing_for"] = format_duration_seconds(keep_seconds)
    return out


def format_duration_seconds(seconds: float) -> str:
    from datetime import timedelta

    return format_duration(timedelta(seconds=math.ceil(seconds)))


def _match(pattern: str, name: str) -> bool:
    import fnmatch

    return fnmatch.fnmatchcase(name, pattern)


def rules_yaml(config: Config) -> str:
    found, skipped = prometheus_rules(config)
    head = "# Prometheus alerting rules written by `watchkeeper export prometheus-rules`.\n"
    if skipped:
        head += (
            "# Not expressible in PromQL over watchkeeper's series (kept in watchkeeper): "
            + ", ".join(skipped)
            + "\n"
        )
    return head + yaml.safe_dump(found, sort_keys=False, width=1000)
