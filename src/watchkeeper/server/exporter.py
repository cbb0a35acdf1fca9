"""/metrics: a Prometheus collector over the library, read fresh at every scrape.

The gauge families of the monitored metrics, and which metric goes to which family with
which labels, are the metric catalogue's (``watchkeeper.catalogue.PROMETHEUS`` and each
entry's ``exports``): drift scores and decisions, data-quality ratios, performance
realized and estimated, segment gaps, fairness disparities, label coverage and delay,
the served model's errors, events and volume, outcome rates. Besides them:

- ``watchkeeper_served_latency_seconds`` (gauge histogram of the newest window);
- ``watchkeeper_alerts`` {alertname, model, severity, owner, alertstate, metric, column,
  segment, version}: like Prometheus' own ``ALERTS``, 1 per pending or firing alert (the
  last four empty where the rule does not split by them);
- counters ``watchkeeper_ingested_rows_total`` {model, kind, outcome} (accepted,
  duplicate), ``watchkeeper_quarantined_rows_total`` {model, kind, reason};
- health: ``watchkeeper_up``, ``watchkeeper_last_run_timestamp_seconds`` {model},
  ``watchkeeper_window_end_timestamp_seconds`` {model}, ``watchkeeper_outbox_pending``,
  ``watchkeeper_ingest_groups_total``, ``watchkeeper_scheduler_errors_total``.

Values are each series' newest window of the model's window size. Label cardinality is
bounded: per model, the ``max_segments`` segment values with the most events per segment
column, and ``max_columns`` columns per metric.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from watchkeeper.catalogue import CATALOGUE, PROMETHEUS
from watchkeeper.config import Config, ModelConfig
from watchkeeper.profiles.binning import LATENCY_EDGES
from watchkeeper.rows import MetricRow
from watchkeeper.store import Store
from watchkeeper.store.tables import ALERT_STATES, ALERTS, INGESTIONS, OUTBOX, QUARANTINE, RUNS
from watchkeeper.workspace import Workspace

Reader = Callable[[Callable[[Workspace], Any]], Any]  # runs a function with the library, serialized


class StoreCollector(Collector):
    """Each scrape reads the newest window of every exported metric through the library;
    which metric goes to which family, with which labels, is the catalogue's."""

    def __init__(
        self, config: Config, read: Reader, health: Callable[[], dict[str, float]]
    ) -> None:
        self.config = config
        self.read = read
        self.health = health

    def collect(self) -> Iterator[Metric]:
        found: list[Metric] = self.read(self._collect)
        yield from found

    def _collect(self, ws: Workspace) -> list[Metric]:
        cfg = self.config.server.prometheus
        families = {
            name: GaugeMetricFamily(name, f.help, labels=list(f.labels))
            for name, f in PROMETHEUS.items()
        }
        window_end = GaugeMetricFamily(
            "watchkeeper_window_end_timestamp_seconds",
            "End of the newest computed window",
            labels=["model"],
        )
        for model in self.config.models:
            rows = _latest(ws, model, cfg.max_segments, cfg.max_columns)
            newest = max((r.window_end for r in rows), default=None)
            if newest is not None:
                window_end.add_metric([model.name], newest.timestamp())
            for labels, family, value in _samples(model.name, rows):
                families[family].add_metric(labels, value)
        store = ws.store
        out: list[Metric] = [*families.values(), window_end, _latency(ws, self.config)]
        out += _alerts(store)
        out += _ingestion(store)
        out += _health(store, self.health())
        return out


def _samples(model: str, rows: list[MetricRow]) -> list[tuple[list[str], str, float]]:
    """The samples of each row, one per label set (where versions share a window, the one
    with the most events)."""
    chosen: dict[tuple[str, tuple[str, ...]], tuple[int, float]] = {}
    for r in rows:
        entry = CATALOGUE.get(r.metric)
        if entry is None or r.known is None:
            continue
        for export in entry.exports:
            if (export.whole_traffic and not r.whole_traffic) or (export.no_column and r.column):
                continue
            family = PROMETHEUS[export.family]
            labels = (model, *(_label(export.labels[name], r) for name in family.labels[1:]))
            value = float(r.status == "drifted") if export.value == "drifted" else r.known
            key = (export.family, labels)
            if key not in chosen or r.sample_size > chosen[key][0]:
                chosen[key] = (r.sample_size, value)
    return [(list(labels), family, value) for (family, labels), (_, value) in chosen.items()]


def _label(source: str, r: MetricRow) -> str:
    if source == "{column}":
        return r.column
    if source == "{segment}":
        return r.segment
    if source == "{metric}":
        return r.metric
    if source == "{version}":
        return r.model_version
    if source == "{base}":
        entry = CATALOGUE.get(r.metric)
        return entry.estimates if entry is not None and entry.estimates else r.metric
    return source


def _latest(
    ws: Workspace, model: ModelConfig, max_segments: int, max_columns: int
) -> list[MetricRow]:
    """Each exported series' newest window, for the model's window size, with the segment
    values and columns capped."""
    exported = [m.key for m in CATALOGUE.values() if m.exports]
    rows = ws.metrics_table.latest(model.name, exported, model.monitoring.window)
    # The segment values with the most events, per segment column.
    sizes: dict[str, dict[str, int]] = defaultdict(dict)
    for r in rows:
        if not r.whole_traffic and r.metric == "row_count":
            sizes[r.segment_column][r.segment_value] = sizes[r.segment_column].get(
                r.segment_value, 0
            ) + int(r.value or 0)
    kept: dict[str, set[str]] = {}
    for column in {r.segment_column for r in rows if not r.whole_traffic}:
        by_size = sizes.get(column) or {
            r.segment_value: int(r.sample_size or 0) for r in rows if r.segment_column == column
        }
        kept[column] = set(sorted(by_size, key=lambda v: (-by_size[v], v))[:max_segments])
    columns: dict[str, list[str]] = defaultdict(list)
    out = []
    for r in rows:
        if not r.whole_traffic and r.segment_value not in kept.get(r.segment_column, set()):
            continue
        seen = columns[r.metric]
        if r.column not in seen:
            if len(seen) >= max_columns:
                continue
            seen.append(r.column)
        out.append(r)
    return out


def _latency(ws: Workspace, config: Config) -> Metric:
    family = GaugeHistogramMetricFamily(
        "watchkeeper_served_latency_seconds",
        "Latency of the served model's predictions in the newest window, from its logged events",
        labels=["model"],
    )
    for model in config.models:
        column = model.columns.latency
        if column is None:
            continue
        profiles = ws.metrics_table.newest_profiles(model.name, column, model.monitoring.window)
        bins: list[int] | None = None
        total = 0.0
        for text in profiles:
            profile = json.loads(text)
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


# An alert's own labels beside its rule and model: without them, the alerts of one rule on
# several segments, columns or versions would be one series written many times.
ALERT_LABELS = ("metric", "column", "segment", "version")


def _alerts(store: Store) -> list[Metric]:
    family = GaugeMetricFamily(
        "watchkeeper_alerts",
        "Alerts pending or firing (like Prometheus' ALERTS)",
        labels=["alertname", "model", "severity", "owner", "alertstate", *ALERT_LABELS],
    )
    found: set[tuple[str, ...]] = set()

    def add(r: dict[str, Any], severity: str, owner: str | None, state: str) -> None:
        own = json.loads(r["labels"] or "null") or {}
        who = own.get("owner", "") if owner is None else owner
        split = (str(own.get(k, "")) for k in ALERT_LABELS)
        found.add((r["rule"], r["model"], severity, who, state, *split))

    t = store.table(ALERTS)
    for r in store.execute(t.filter(t.state == "firing")).to_pylist():
        add(r, r["severity"], r["owner"], "firing")
    s = store.table(ALERT_STATES)
    for r in store.execute(s).to_pylist():
        state = json.loads(r["state"])
        if state["state"] == "pending":
            add(r, state["severity"], None, "pending")  # its owner is in its labels
    for key in sorted(found):
        family.add_metric(list(key), 1.0)
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
