"""The other aggregates of a run, pushed down to the engine: the events of the windows to
compute, their join with the label in force, label delays and residual quantiles per
window, distinct items shown, business outcomes, and what arrived (quarantined rows and
schema changes) per window of arrival time. Each returns a small typed result."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir

from watchkeeper.profiles.base import Engine, Windowing
from watchkeeper.windows import EPOCH

# (window start, model version)
WindowKey = tuple[datetime, str]


@dataclass(frozen=True)
class Quantiles:
    """Quantiles of a per-event quantity over a window's events."""

    n: int
    values: tuple[float | None, ...]


@dataclass(frozen=True)
class OutcomeSum:
    kind: str  # "event" (tied to an event, by its time) or "series" (by its own time)
    window_start: datetime
    outcome: str
    total: float
    n: int
    delay: float | None = None  # per-event outcomes: 99th percentile of seconds after the event


@dataclass(frozen=True)
class Arrivals:
    """What arrived per window of arrival time (whole traffic, every version)."""

    quarantined: dict[tuple[datetime, str], int]  # (window start, reason) → rows
    missing: dict[datetime, set[str]]  # optional columns absent from the inputs
    unexpected: dict[datetime, set[str]]  # input columns the schema does not declare
    windows: tuple[datetime, ...]  # the windows that had an ingestion of events


def scope(engine: Engine, events: ir.Table, ts: str, w: Windowing) -> ir.Table:
    """The events of the windows to compute: a time range the engine can prune by first."""
    t = events
    since, until = w.since, w.until
    if w.starts:
        first, last = min(w.starts), max(w.starts) + w.size
        since = first if since is None else max(since, first)
        until = last if until is None else min(until, last)
    if since is not None:
        t = t.filter(t[ts] >= since)
    if until is not None:
        t = t.filter(t[ts] < until)
    if w.starts is not None:
        size = int(w.size.total_seconds()) * 1_000_000
        wanted = [int((s - EPOCH).total_seconds() * 1_000_000) // size for s in w.starts]
        t = t.filter((engine.epoch_micros(t[ts]) // size).isin(wanted))
    return t


def with_labels(
    engine: Engine,
    events: ir.Table,
    labels: ir.Table,
    event_id: str,
    label_name: str,
    wanted: Sequence[str],
    ingested_at: str,
) -> ir.Table:
    """Events joined with the label in force for each (``wk_label``, ``wk_label_time``, and
    the label under its own name), with only the ``wanted`` columns, so a cached join
    stays narrow."""
    # The newest label per event: an arg-max by the time it was received, a hash aggregate
    # rather than a sort of every label. (Two labels for one event received in the same
    # microsecond have no order; ingestion never stores two in one call.)
    order = engine.epoch_micros(labels[ingested_at])
    latest = labels.group_by(wk_event=labels.event_id).aggregate(
        wk_label=labels.label.argmax(order), wk_label_time=labels.label_timestamp.argmax(order)
    )
    narrow = events.select(*dict.fromkeys(c for c in wanted if c in events.columns))
    joined = narrow.inner_join(latest, narrow[event_id] == latest.wk_event)
    return joined.mutate(**{label_name: joined.wk_label})


def window_quantiles(
    engine: Engine,
    table: ir.Table,
    ts: str,
    value: ir.Value,
    size: timedelta,
    quantiles: Sequence[float],
    version: str,
    skip_nulls: bool = True,
) -> dict[WindowKey, Quantiles]:
    """Quantiles of ``value`` over each window's rows (whole traffic); ``n`` counts the
    rows with a value (or every row, without ``skip_nulls``)."""
    size_us = int(size.total_seconds()) * 1_000_000
    keyed = table.mutate(wk_w=engine.epoch_micros(table[ts]) // size_us, wk_e=value)
    if skip_nulls:
        keyed = keyed.filter(keyed.wk_e.notnull())
    found = engine.execute(
        keyed.group_by("wk_w").aggregate(n=ibis._.count(), q=ibis._.wk_e.quantile(list(quantiles)))
    )
    return {
        (EPOCH + timedelta(microseconds=r["wk_w"] * size_us), version): Quantiles(
            int(r["n"]), tuple(r["q"] or ())
        )
        for r in found.to_pylist()
    }


def label_lags(
    engine: Engine, labelled: ir.Table, ts: str, size: timedelta, version: str
) -> dict[WindowKey, Quantiles]:
    """The median and 90th percentile of label time minus event time (seconds), per window."""
    lag = (engine.epoch_micros(labelled.wk_label_time) - engine.epoch_micros(labelled[ts])) / 1e6
    return window_quantiles(engine, labelled, ts, lag, size, (0.5, 0.9), version, False)


def distinct_items(
    engine: Engine, events: ir.Table, ts: str, item: str, size: timedelta, version: str
) -> dict[WindowKey, int]:
    """Distinct items shown per window."""
    size_us = int(size.total_seconds()) * 1_000_000
    found = engine.execute(
        events.mutate(wk_w=engine.epoch_micros(events[ts]) // size_us)
        .group_by("wk_w")
        .aggregate(items=ibis._[item].nunique())
    )
    return {
        (EPOCH + timedelta(microseconds=r["wk_w"] * size_us), version): int(r["items"])
        for r in found.to_pylist()
    }


def outcome_sums(
    engine: Engine,
    outcomes: ir.Table,
    events: ir.Table,
    event_id: str,
    ts: str,
    w: Windowing,
    ingested_at: str,
    batch: str,
    key: str,
) -> list[OutcomeSum]:
    """Per window and outcome, the total and count of the outcomes in force: per-event
    outcomes by their event's time (with how long after the event they were stored: their
    arrival, not the time they say they happened, which a daily batch can long precede),
    outcomes logged as a time series by their own time."""
    t = outcomes
    order = [ibis.desc(t[ingested_at]), ibis.desc(t[batch])]
    ranked = t.mutate(wk_rank=ibis.row_number().over(group_by=t[key], order_by=order))
    latest = ranked.filter(ranked.wk_rank == 0)
    size_us = int(w.size.total_seconds()) * 1_000_000
    scoped = scope(engine, events, ts, w)
    known = latest.filter(latest.event_id.notnull())
    joined = scoped.inner_join(
        known.select("event_id", "outcome", "value", wk_known=known[ingested_at]),
        scoped[event_id] == known.event_id,
    )
    per_event = joined.mutate(
        wk_at_us=engine.epoch_micros(joined[ts]), wk_known_us=engine.epoch_micros(joined.wk_known)
    )
    series = scope(engine, latest.filter(latest.event_id.isnull()), "timestamp", w)
    series = series.mutate(wk_at_us=engine.epoch_micros(series.timestamp))
    out = []
    for kind, table in (("event", per_event), ("series", series)):
        metrics: dict[str, Any] = {"total": ibis._.value.sum(), "n": ibis._.count()}
        if kind == "event":
            after = (table.wk_known_us - table.wk_at_us).cast("float64") / 1e6
            metrics["delay"] = after.quantile(0.99)
        found = engine.execute(
            table.mutate(wk_w=table.wk_at_us // size_us)
            .group_by(["wk_w", "outcome"])
            .aggregate(**metrics)
        )
        for r in found.to_pylist():
            start = EPOCH + timedelta(microseconds=r["wk_w"] * size_us)
            delay = r.get("delay")
            out.append(
                OutcomeSum(
                    kind, start, r["outcome"], float(r["total"] or 0.0), int(r["n"]),
                    None if delay is None else max(0.0, float(delay)),
                )
            )  # fmt: skip
    return out


def _arrived(
    table: ir.Table, at: str, size: timedelta, starts: Sequence[datetime]
) -> tuple[ir.Table, int]:
    """Rows that arrived (by ``at``) in the given windows, with their window index ``w``."""
    secs = int(size.total_seconds())
    wanted = [int((s - EPOCH).total_seconds()) // secs for s in starts]
    keyed = table.mutate(w=(table[at].epoch_seconds() // secs).cast("int64"))
    return keyed.filter(keyed.w.isin(wanted)), secs


def arrivals(
    engine: Engine,
    quarantine: ir.Table,
    ingestions: ir.Table,
    size: timedelta,
    starts: Sequence[datetime],
) -> Arrivals:
    """Quarantined rows by reason, and the events' schema changes, per window of the time
    they arrived (``quarantine`` and ``ingestions`` already limited to one model)."""
    if not starts:
        return Arrivals({}, {}, {}, ())
    mine, secs = _arrived(quarantine, "wk_ingested_at", size, starts)
    counted = engine.execute(mine.group_by(["w", "reason"]).aggregate(n=ibis._.count()))
    quarantined = {
        (EPOCH + timedelta(seconds=r["w"] * secs), r["reason"]): int(r["n"])
        for r in counted.to_pylist()
    }
    events = ingestions.filter(ingestions.kind == "events")
    found, secs = _arrived(events, "started_at", size, starts)
    rows = engine.execute(found.select("w", "missing_columns", "unexpected_columns"))
    missing: dict[datetime, set[str]] = defaultdict(set)
    unexpected: dict[datetime, set[str]] = defaultdict(set)
    windows = set()
    for r in rows.to_pylist():
        start = EPOCH + timedelta(seconds=r["w"] * secs)
        windows.add(start)
        missing[start].update(json.loads(r["missing_columns"] or "[]"))
        unexpected[start].update(json.loads(r["unexpected_columns"] or "[]"))
    return Arrivals(quarantined, dict(missing), dict(unexpected), tuple(sorted(windows)))


def latest_per_key(table: ir.Table, key: str) -> ir.Table:
    """The newest row per key (by ingestion time, then batch): the label or outcome in
    force."""
    order = [ibis.desc(table["wk_ingested_at"]), ibis.desc(table["wk_batch"])]
    ranked = table.mutate(_rank=ibis.row_number().over(group_by=table[key], order_by=order))
    return ranked.filter(ranked._rank == 0).drop("_rank")


def confidently_wrong(
    engine: Engine,
    labelled: ir.Table,
    event_id: str,
    ts: str,
    output: str,
    since: datetime,
    until: datetime,
    segment: tuple[str, str] | None,
    n: int = 5,
) -> list[dict[str, object]]:
    """The labelled events of a window (and segment) whose output was furthest from their
    label: a score of 0.97 on a negative, a prediction 40 minutes off."""
    t = labelled.filter((labelled[ts] >= since) & (labelled[ts] < until))
    if segment is not None:
        t = t.filter(t[segment[0]].cast("string") == segment[1])
    gap = (t[output].cast("float64") - t.wk_label.cast("float64")).abs()
    found = engine.execute(
        t.mutate(wk_gap=gap)
        .filter(ibis._.wk_gap.notnull())
        .order_by([ibis.desc("wk_gap"), event_id])
        .limit(n)
        .select(event_id, ts, output, label=ibis._.wk_label)
    )
    return [
        {
            "event_id": r[event_id],
            "why": "the most confidently wrong",
            output: r[output],
            "label": r["label"],
            "time": r[ts].isoformat() if r[ts] else None,
        }
        for r in found.to_pylist()
    ]


def most_changed(
    engine: Engine,
    events: ir.Table,
    event_id: str,
    ts: str,
    column: str,
    centre: float,
    spread: float,
    since: datetime,
    until: datetime,
    segment: tuple[str, str] | None,
    n: int = 5,
) -> list[dict[str, object]]:
    """The events of a window (and segment) whose value of a numeric input is furthest from
    the reference (in reference standard deviations)."""
    t = events.filter((events[ts] >= since) & (events[ts] < until))
    if segment is not None:
        t = t.filter(t[segment[0]].cast("string") == segment[1])
    z = ((t[column].cast("float64") - centre) / (spread or 1.0)).abs()
    found = engine.execute(
        t.mutate(wk_z=z)
        .filter(ibis._.wk_z.notnull())
        .order_by([ibis.desc("wk_z"), event_id])
        .limit(n)
        .select(event_id, ts, column, wk_z=ibis._.wk_z)
    )
    return [
        {
            "event_id": r[event_id],
            "why": f"{column} furthest from the reference",
            column: r[column],
            "reference_mean": round(centre, 6),
            "standard_deviations": round(float(r["wk_z"]), 2),
        }
        for r in found.to_pylist()
    ]


__all__ = [
    "Arrivals",
    "OutcomeSum",
    "Quantiles",
    "WindowKey",
    "arrivals",
    "confidently_wrong",
    "distinct_items",
    "label_lags",
    "latest_per_key",
    "most_changed",
    "outcome_sums",
    "scope",
    "window_quantiles",
    "with_labels",
]
