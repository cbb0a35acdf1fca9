"""/metrics: a Prometheus collector over the store, read fresh at every scrape.

Families (all gauges unless said):

- ``watchkeeper_drift_score`` and ``watchkeeper_drift_detected`` {model, column, segment}
- ``watchkeeper_data_quality_ratio`` {model, column, segment, check}: missing, out of range,
  unseen categories
- ``watchkeeper_model_performance`` {model, metric, segment, kind}: realized or estimated
- ``watchkeeper_segment_gap`` {model, metric, segment}, ``watchkeeper_fairness_disparity``
  {model, metric, segment}
- ``watchkeeper_label_coverage_ratio`` {model}, ``watchkeeper_label_lag_seconds``
  {model, quantile}
- ``watchkeeper_served_latency_seconds`` (gauge histogram of the latest window),
  ``watchkeeper_served_error_ratio``, ``watchkeeper_served_events`` {model}: the served
  model's own latency, errors and traffic, from its logged events
- ``watchkeeper_alerts`` {alertname, model, severity, owner, alertstate}: like Prometheus'
  own ``ALERTS``, 1 per pending or firing alert
- counters ``watchkeeper_ingested_rows_total`` {model, kind, outcome} (accepted,
  duplicate), ``watchkeeper_quarantined_rows_total`` {model, kind, reason}
- health: ``watchkeeper_up``, ``watchkeeper_last_run_timestamp_seconds`` {model},
  ``watchkeeper_window_end_timestamp_seconds`` {model}, ``watchkeeper_outbox_pending``,
  ``watchkeeper_ingest_groups_total``, ``watchkeeper_scheduler_errors_total``

Values are each series' newest window of the model's window size. Label cardinality is
bounded: per model, the ``max_segments`` segment values with the most events per segment
column, and ``max_columns`` columns per metric.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import ibis
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from watchkeeper.config import Config, ModelConfig
from watchkeeper.profiles.binning import LATENCY_EDGES
from watchkeeper.stats.multiclass import METRICS as MULTICLASS
from watchkeeper.stats.performance import METRICS as PERFORMANCE
from watchkeeper.stats.ranking import METRICS as RANKING
from watchkeeper.stats.regression import METRICS as REGRESSION
from watchkeeper.store import Store
from watchkeeper.store.tables import (
    ALERT_STATES,
    ALERTS,
    INGESTIONS,
    METRICS,
    OUTBOX,
    QUARANTINE,
    RUNS,
    WINDOW_PROFILES,
)

PERFORMANCE_KEYS = set(PERFORMANCE) | set(MULTICLASS) | set(REGRESSION) | set(RANKING)
QUALITY = {"missing_rate": "missing", "out_of_range_rate": "out_of_range", "unseen_rate": "unseen"}
FAIRNESS = {
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
}
EXPORTED = {
    "drift",
    *QUALITY,
    *PERFORMANCE_KEYS,
    *(f"estimated_{k}" for k in PERFORMANCE_KEYS),
    "segment_gap",
    *FAIRNESS,
    "label_coverage",
    "label_lag_p50",
    "label_lag_p90",
    "error_rate",
    "row_count",
    "volume_ratio",
    "outcome_rate",
}

Reader = Callable[[Callable[[Store], Any]], Any]  # runs a function with the store, serialized


class StoreCollector(Collector):
    def __init__(
        self, config: Config, read: Reader, health: Callable[[], dict[str, float]]
    ) -> None:
        self.config = config
        self.read = read
        self.health = health

    def collect(self) -> Iterator[Metric]:
        found: list[Metric] = self.read(self._collect)
        yield from found

    def _collect(self, store: Store) -> list[Metric]:
        out: list[Metric] = []
        cfg = self.config.server.prometheus
        drift = GaugeMetricFamily(
            "watchkeeper_drift_score",
            "Drift of a column from the reference (the deciding effect size), newest window",
            labels=["model", "column", "segment"],
        )
        drifted = GaugeMetricFamily(
            "watchkeeper_drift_detected",
            "1 when the column has drifted (effect and test agree), newest window",
            labels=["model", "column", "segment"],
        )
        quality = GaugeMetricFamily(
            "watchkeeper_data_quality_ratio",
            "Share of values failing a data-quality check, newest window",
            labels=["model", "column", "segment", "check"],
        )
        performance = GaugeMetricFamily(
            "watchkeeper_model_performance",
            "Model performance, realized from labels or estimated without them, newest window",
            labels=["model", "metric", "segment", "kind"],
        )
        gap = GaugeMetricFamily(
            "watchkeeper_segment_gap",
            "A segment's performance minus the rest's, newest window",
            labels=["model", "metric", "segment"],
        )
        fairness = GaugeMetricFamily(
            "watchkeeper_fairness_disparity",
            "Disparity between protected groups, newest window",
            labels=["model", "metric", "segment"],
        )
        coverage = GaugeMetricFamily(
            "watchkeeper_label_coverage_ratio",
            "Share of the newest window's events with a label",
            labels=["model"],
        )
        lag = GaugeMetricFamily(
            "watchkeeper_label_lag_seconds",
            "Delay from an event to its label, newest window with labels",
            labels=["model", "quantile"],
        )
        errors = GaugeMetricFamily(
            "watchkeeper_served_error_ratio",
            "Share of the served model's requests that failed (status not ok), newest window",
            labels=["model"],
        )
        events = GaugeMetricFamily(
            "watchkeeper_served_events",
            "Events logged by the served model in the newest window",
            labels=["model"],
        )
        volume = GaugeMetricFamily(
            "watchkeeper_served_volume_ratio",
            "Events in the newest window over the median of the recent windows",
            labels=["model"],
        )
        outcomes = GaugeMetricFamily(
            "watchkeeper_outcome_rate",
            "Share of the newest window's events with a business outcome",
            labels=["model", "outcome"],
        )
        window_end = GaugeMetricFamily(
            "watchkeeper_window_end_timestamp_seconds",
            "End of the newest computed window",
            labels=["model"],
        )
        for model in self.config.models:
            rows = _latest(store, model, cfg.max_segments, cfg.max_columns)
            newest = max((r["window_end"] for r in rows), default=None)
            if newest is not None:
                window_end.add_metric([model.name], newest.timestamp())
            for r in rows:
                seg = (
                    "*"
                    if r["segment_column"] == "*"
                    else f"{r['segment_column']}={r['segment_value']}"
                )
                metric, column, value = r["metric"], r["column"], r["value"]
                if value is None:
                    continue
                if metric == "drift":
                    drift.add_metric([model.name, column, seg], value)
                    drifted.add_metric([model.name, column, seg], float(r["status"] == "drifted"))
                elif metric in QUALITY:
                    quality.add_metric([model.name, column, seg, QUALITY[metric]], value)
                elif metric in PERFORMANCE_KEYS and not column:
                    performance.add_metric([model.name, metric, seg, "realized"], value)
                elif metric.startswith("estimated_") and not column:
                    name = metric.removeprefix("estimated_")
                    performance.add_metric([model.name, name, seg, "estimated"], value)
                elif metric == "segment_gap":
                    gap.add_metric([model.name, column, seg], value)
                elif metric in FAIRNESS:
                    fairness.add_metric([model.name, metric, seg], value)
                elif seg != "*":
                    continue
                elif metric == "label_coverage":
                    coverage.add_metric([model.name], value)
                elif metric in ("label_lag_p50", "label_lag_p90"):
                    lag.add_metric([model.name, "0.5" if metric.endswith("50") else "0.9"], value)
                elif metric == "error_rate":
                    errors.add_metric([model.name], value)
                elif metric == "row_count":
                    events.add_metric([model.name], value)
                elif metric == "volume_ratio":
                    volume.add_metric([model.name], value)
                elif metric == "outcome_rate":
                    outcomes.add_metric([model.name, column], value)
        out += [drift, drifted, quality, performance, gap, fairness, coverage, lag, errors, events]
        out += [volume, outcomes]
        out.append(window_end)
        out.append(_latency(store, self.config))
        out += _alerts(store)
        out += _ingestion(store)
        out += _health(store, self.health())
        return out


def _latest(
    store: Store, model: ModelConfig, max_segments: int, max_columns: int
) -> list[dict[str, Any]]:
    """Each exported series' newest window, for the model's window size, with the segment
    values and columns capped."""
    t = store.table(METRICS)
    seconds = int(model.monitoring.window.total_seconds())
    mine = t.filter(
        (t.model == model.name)
        & t.metric.isin(sorted(EXPORTED))
        & (t.window_end == t.window_start + ibis.interval(seconds=seconds))
    )
    keys = ["metric", "column", "segment_column", "segment_value"]
    newest = mine.mutate(
        wk_rank=ibis.row_number().over(group_by=keys, order_by=ibis.desc("window_start"))
    )
    rows: list[dict[str, Any]] = store.execute(
        newest.filter(newest.wk_rank == 0).select(
            *keys, "value", "status", "sample_size", "window_end"
        )
    ).to_pylist()
    # The segment values with the most events, per segment column.
    sizes: dict[str, dict[str, int]] = defaultdict(dict)
    for r in rows:
        if r["segment_column"] != "*" and r["metric"] == "row_count":
            sizes[r["segment_column"]][r["segment_value"]] = int(r["value"] or 0)
    kept: dict[str, set[str]] = {}
    for column in {r["segment_column"] for r in rows if r["segment_column"] != "*"}:
        by_size = sizes.get(column) or {
            r["segment_value"]: int(r["sample_size"] or 0)
            for r in rows
            if r["segment_column"] == column
        }
        kept[column] = set(sorted(by_size, key=lambda v: (-by_size[v], v))[:max_segments])
    columns: dict[str, list[str]] = defaultdict(list)
    out = []
    for r in rows:
        if r["segment_column"] != "*" and r["segment_value"] not in kept.get(
            r["segment_column"], set()
        ):
            continue
        seen = columns[r["metric"]]
        if r["column"] not in seen:
            if len(seen) >= max_columns:
                continue
            seen.append(r["column"])
        out.append(r)
    return out


def _latency(store: Store, config: Config) -> Metric:
    family = GaugeHistogramMetricFamily(
        "watchkeeper_served_latency_seconds",
        "Latency of the served model's predictions in the newest window, from its logged events",
        labels=["model"],
    )
    t = store.table(WINDOW_PROFILES)
    for model in config.models:
        column = model.columns.latency
        if column is None:
            continue
        seconds = int(model.monitoring.window.total_seconds())
        mine = t.filter(
            (t.model == model.name)
            & (t.column == column)
            & (t.segment_column == "*")
            & (t.window_end == t.window_start + ibis.interval(seconds=seconds))
        )
        newest = store.execute(mine.order_by(ibis.desc("window_start")).limit(20)).to_pylist()
        if not newest:
            continue
        start = newest[0]["window_start"]
        bins: list[int] | None = None
        total = 0.0
        for r in newest:
            if r["window_start"] != start:
                break
            profile = json.loads(r["profile"])
            counts = profile["bins"]
            bins = counts if bins is None else [a + b for a, b in zip(bins, counts, strict=False)]
            total += float(profile.get("total") or 0.0)
        if bins is None:
            continue
        edges = (0.0, *LATENCY_EDGES)
        buckets = []
        running = bins[0] if bins else 0
        for i, edge in enumerate(edges[1:], start=1):
            running += bins[i] if i < len(bins) else 0
            buckets.append((_float_text(edge / 1000), running))
        buckets.append(("+Inf", sum(bins)))
        family.add_metric([model.name], buckets, gsum_value=total / 1000)
    return family


def _float_text(value: float) -> str:
    return repr(float(value))


def _alerts(store: Store) -> list[Metric]:
    family = GaugeMetricFamily(
        "watchkeeper_alerts",
        "Alerts pending or firing (like Prometheus' ALERTS)",
        labels=["alertname", "model", "severity", "owner", "alertstate"],
    )
    t = store.table(ALERTS)
    for r in store.execute(t.filter(t.state == "firing")).to_pylist():
        family.add_metric([r["rule"], r["model"], r["severity"], r["owner"], "firing"], 1.0)
    s = store.table(ALERT_STATES)
    for r in store.execute(s).to_pylist():
        state = json.loads(r["state"])
        if state["state"] == "pending":
            labels = json.loads(r["labels"])
            family.add_metric(
                [r["rule"], r["model"], state["severity"], labels.get("owner", ""), "pending"], 1.0
            )
    return [family]


def _ingestion(store: Store) -> list[Metric]:
    ingested = CounterMetricFamily(
        "watchkeeper_ingested_rows",
        "Rows received, by what became of them",
        labels=["model", "kind", "outcome"],
    )
    t = store.table(INGESTIONS)
    sums = store.execute(
        t.group_by(["model", "kind"]).aggregate(
            accepted=t.accepted.sum(), duplicates=t.duplicates.sum()
        )
    ).to_pylist()
    for r in sums:
        ingested.add_metric([r["model"], r["kind"], "accepted"], float(r["accepted"] or 0))
        ingested.add_metric([r["model"], r["kind"], "duplicate"], float(r["duplicates"] or 0))
    quarantined = CounterMetricFamily(
        "watchkeeper_quarantined_rows",
        "Rows refused at ingestion and kept in quarantine, by reason",
        labels=["model", "kind", "reason"],
    )
    q = store.table(QUARANTINE)
    for r in store.execute(
        q.group_by(["model", "kind", "reason"]).aggregate(n=q.count())
    ).to_pylist():
        quarantined.add_metric([r["model"], r["kind"], r["reason"]], float(r["n"]))
    return [ingested, quarantined]


def _health(store: Store, health: dict[str, float]) -> list[Metric]:
    up = GaugeMetricFamily("watchkeeper_up", "1 while watchkeeper answers", value=1.0)
    last_run = GaugeMetricFamily(
        "watchkeeper_last_run_timestamp_seconds",
        "When the last run of a model finished",
        labels=["model"],
    )
    runs = store.table(RUNS)
    for r in store.execute(runs.group_by("model").aggregate(at=runs.finished_at.max())).to_pylist():
        if r["at"] is not None:
            last_run.add_metric([r["model"]], r["at"].timestamp())
    o = store.table(OUTBOX)
    pending = store.scalar(o.filter(o.delivered_at.isnull() & ~o.gave_up).count())
    outbox = GaugeMetricFamily(
        "watchkeeper_outbox_pending", "Notifications waiting to be delivered", value=float(pending)
    )
    out: list[Metric] = [up, last_run, outbox]
    for name, value in sorted(health.items()):
        out.append(CounterMetricFamily(f"watchkeeper_{name}", name.replace("_", " "), value=value))
    return out
