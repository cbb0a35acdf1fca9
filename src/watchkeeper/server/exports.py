"""Exports for teams that live in Grafana and Prometheus: a dashboard over the series of
``/metrics``, and the alert rules translated to Prometheus alerting rules.
"""

from __future__ import annotations

import math
from typing import Any

import yaml

from watchkeeper.config import ConditionConfig, Config, RuleConfig
from watchkeeper.server.exporter import FAIRNESS, PERFORMANCE_KEYS, QUALITY
from watchkeeper.windows import format_duration

# The queries of the dashboard: (panel title, unit, PromQL with $model).
PANELS: list[tuple[str, str, str]] = [
    (
        "Performance (realized and estimated)",
        "percentunit",
        'watchkeeper_model_performance{model="$model", segment="*"}',
    ),
    ("Drift by feature", "none", 'watchkeeper_drift_score{model="$model", segment="*"}'),
    (
        "Missing values",
        "percentunit",
        'watchkeeper_data_quality_ratio{model="$model", segment="*", check="missing"}',
    ),
    ("Label coverage", "percentunit", 'watchkeeper_label_coverage_ratio{model="$model"}'),
    (
        "Latency p99 (served model)",
        "s",
        "histogram_quantile(0.99, sum by (le) "
        '(watchkeeper_served_latency_seconds_bucket{model="$model"}))',
    ),
    ("Error rate (served model)", "percentunit", 'watchkeeper_served_error_ratio{model="$model"}'),
    ("Events per window", "none", 'watchkeeper_served_events{model="$model"}'),
    (
        "Alerts firing",
        "none",
        'sum by (alertname, severity) (watchkeeper_alerts{model="$model", alertstate="firing"})',
    ),
    (
        "Rows quarantined (rate)",
        "none",
        'sum by (reason) (rate(watchkeeper_quarantined_rows_total{model="$model"}[5m]))',
    ),
    ("watchkeeper up", "none", "watchkeeper_up"),
]


def grafana_dashboard(config: Config, datasource: str = "Prometheus") -> dict[str, Any]:
    """A Grafana dashboard (JSON model) with one panel per query of ``PANELS`` and a
    ``model`` variable."""
    panels = []
    for i, (title, unit, expr) in enumerate(PANELS):
        panels.append(
            {
                "id": i + 1,
                "type": "timeseries",
                "title": title,
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)},
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "targets": [{"refId": "A", "expr": expr, "legendFormat": "__auto"}],
            }
        )
    models = [m.name for m in config.models]
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
            ]
        },
        "panels": panels,
    }


def dashboard_queries(model: str) -> list[str]:
    """The dashboard's queries for one model, as Prometheus would run them."""
    return [expr.replace("$model", model) for _, _, expr in PANELS]


def _selector(metric: str, column: str | tuple[str, ...], segment: str) -> str | None:
    """The Prometheus series of a watchkeeper metric (None where it is not exported)."""
    labels = ['model=~"{models}"']
    if segment == "*":
        labels.append('segment="*"')
    elif segment != "any":
        labels.append(f'segment=~"{segment.replace("*", ".*")}"')
    columns = (column,) if isinstance(column, str) else column
    column_re = "|".join(c.replace("*", ".*").replace("?", ".") for c in columns)
    if metric == "drift":
        name = "watchkeeper_drift_score"
        labels.append(f'column=~"{column_re}"')
    elif metric in QUALITY:
        name = "watchkeeper_data_quality_ratio"
        labels += [f'column=~"{column_re}"', f'check="{QUALITY[metric]}"']
    elif metric in PERFORMANCE_KEYS:
        name = "watchkeeper_model_performance"
        labels += [f'metric="{metric}"', 'kind="realized"']
    elif metric.startswith("estimated_") and metric.removeprefix("estimated_") in PERFORMANCE_KEYS:
        name = "watchkeeper_model_performance"
        labels += [f'metric="{metric.removeprefix("estimated_")}"', 'kind="estimated"']
    elif metric in FAIRNESS:
        name = "watchkeeper_fairness_disparity"
        labels.append(f'metric="{metric}"')
    elif metric == "segment_gap":
        name = "watchkeeper_segment_gap"
    elif metric == "error_rate":
        name, labels = "watchkeeper_served_error_ratio", labels[:1]
    elif metric == "label_coverage":
        name, labels = "watchkeeper_label_coverage_ratio", labels[:1]
    elif metric == "row_count":
        name, labels = "watchkeeper_served_events", labels[:1]
    elif metric == "volume_ratio":
        name, labels = "watchkeeper_served_volume_ratio", labels[:1]
    elif metric == "outcome_rate":
        name, labels = "watchkeeper_outcome_rate", [labels[0], f'outcome=~"{column_re}"']
    elif metric in ("latency_p50", "latency_p90", "latency_p99"):
        # From the served-latency histogram, in milliseconds as watchkeeper states them.
        q = int(metric.removeprefix("latency_p")) / 100
        bucket = 'watchkeeper_served_latency_seconds_bucket{model=~"{models}"}'
        return f"(1000 * histogram_quantile({q:g}, sum by (le, model) ({bucket})))"
    else:
        return None
    return f"{name}{{{', '.join(x for x in labels if x)}}}"


def _condition(c: ConditionConfig, models: str, window_seconds: float) -> str | None:
    if c.against == "reference" or any(ch in c.metric for ch in "*?"):
        return None
    if c.status:
        if c.metric == "drift" and c.status == ("drifted",):
            base = _selector("drift", c.column, c.segment)
            assert base is not None
            return (
                base.replace("watchkeeper_drift_score", "watchkeeper_drift_detected").replace(
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
        # rolling one here (PromQL has no same-hour-of-earlier-days window).
        centre = f"avg_over_time(({series})[{span}:])"
        spread = f"stddev_over_time(({series})[{span}:])"
        k = c.baseline.k
        parts = []
        if c.direction in ("above", "both"):
            parts.append(f"{series} > {centre} + {k:g} * {spread}")
        if c.direction in ("below", "both"):
            parts.append(f"{series} < {centre} - {k:g} * {spread}")
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
