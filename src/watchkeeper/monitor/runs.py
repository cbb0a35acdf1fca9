"""A run: the due and dirty windows of a model → their aggregates → every metric family →
one write of the metrics table.

Dirty windows are those whose events, labels or outcomes arrived (the ``touched`` table)
after the window's metrics were last computed; due windows are closed ones. Each computed
window is recomputed whole from its events, so a re-run equals a full recomputation, and
its metric rows replace the earlier ones. A family that fails costs only its own rows (a
``family_error`` row per window says which and why); a run that fails is recorded as failed.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import ibis.expr.types as ir
import pyarrow as pa

from watchkeeper.config import Config, ModelConfig, RuleConfig
from watchkeeper.errors import NoReferenceError
from watchkeeper.ingest.result import new_batch_id
from watchkeeper.metrics.family import Aggregates, Context, Family, declared
from watchkeeper.metrics.registry import FAMILIES
from watchkeeper.monitor.aggregates import Plan, gather, slice_columns
from watchkeeper.monitor.backtest import load as load_backtest
from watchkeeper.monitor.result import RunResult
from watchkeeper.monitor.windows import dirty_windows
from watchkeeper.profiles.base import Key, Windowing
from watchkeeper.profiles.queries import scope
from watchkeeper.profiles.types import Profile
from watchkeeper.reference.estimators import estimator
from watchkeeper.reference.profile import ReferenceProfile, top_values
from watchkeeper.rows import ALL, ERROR, MetricRow, Where, to_arrow
from watchkeeper.schema import MODEL_VERSION, spec_for
from watchkeeper.store import Store
from watchkeeper.store.engine import arrow_schema, shared_rows
from watchkeeper.store.metrics import MetricsTable
from watchkeeper.store.tables import METRICS, RUNS, SHARED, WINDOW_PROFILES
from watchkeeper.tasks.registry import task_of
from watchkeeper.windows import window_start

log = logging.getLogger("watchkeeper.monitor")

_METRICS_SCHEMA = arrow_schema(SHARED[METRICS])
_PROFILES_SCHEMA = arrow_schema(SHARED[WINDOW_PROFILES])
# Windows computed and written together: a backfill over thousands of windows holds one
# batch at a time (a week of hourly windows), not every window's aggregates and rows.
BATCH_WINDOWS = 168

ReferenceLoader = Callable[[str], ReferenceProfile | None]


def run(
    store: Store,
    model: ModelConfig,
    references: ReferenceLoader,
    *,
    now: datetime,
    window: timedelta | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    full: bool = False,
    progress: Callable[[int, int | None], None] | None = None,
    events_store: Store | None = None,
    families: Sequence[str] | None = None,
    segments: bool = True,
) -> RunResult:
    """Compute and store the metrics of the due and dirty windows (or of a time range).

    Events and labels are read from ``events_store`` when given (a Spark or lakehouse
    engine where the team's logs already are); everything else is in ``store``. With
    ``families`` only those are computed (and only their metrics replaced): a short window's
    service metrics cost a few queries. A run that raises is recorded as failed in the runs
    table, then the error goes on up.
    """
    started = time.perf_counter()
    size = window or model.monitoring.window
    run_id = new_batch_id(now)
    chosen = FAMILIES if families is None else tuple(f for f in FAMILIES if f.key in families)
    try:
        result = _run(
            store,
            model,
            references,
            now,
            run_id,
            size,
            since,
            until,
            full,
            progress,
            events_store,
            chosen,
            segments,
        )
    except BaseException as exc:
        failed = RunResult(run_id, model.name, size, [], _METRICS_SCHEMA.empty_table())
        failed.seconds = time.perf_counter() - started
        failed.notes.append(f"failed: {exc}")
        _log_run(store, failed, now, "failed")
        raise
    result.seconds = time.perf_counter() - started
    _log_run(store, result, now, "partial" if result.errors else "ok")
    return result


def _run(
    store: Store,
    model: ModelConfig,
    references: ReferenceLoader,
    now: datetime,
    run_id: str,
    size: timedelta,
    since: datetime | None,
    until: datetime | None,
    full: bool,
    progress: Callable[[int, int | None], None] | None,
    events_store: Store | None,
    chosen: tuple[Family, ...],
    segments: bool,
) -> RunResult:
    source_store = events_store or store
    empty = RunResult(run_id, model.name, size, [], _METRICS_SCHEMA.empty_table())
    last_closed = window_start(now, size)  # windows starting before this are closed
    if since is not None or until is not None or full:
        end = min(until, last_closed) if until is not None else last_closed
        windowing = Windowing(size, since, end, None)
    else:
        needs = {n for f in chosen for n in f.needs}
        kinds = ("events", "labels", "outcomes") if {"labels", "outcomes"} & needs else ("events",)
        dirty = dirty_windows(store, model, size, now, kinds)
        if not dirty:
            return empty
        windowing = Windowing(size, None, None, tuple(dirty))
    events = source_store.table(spec_for("events", model).table)
    scoped = scope(source_store, events, model.columns.timestamp, windowing)
    ts = scoped[model.columns.timestamp]
    found = source_store.execute(  # one scan: the versions, and the span to batch
        scoped.group_by(MODEL_VERSION).aggregate(lo=ts.min(), hi=ts.max())
    ).to_pylist()
    versions = sorted(r[MODEL_VERSION] for r in found)
    if not versions:
        return empty
    lo, hi = (_aware(min(r[k] for r in found)) for k in ("lo", "hi"))
    notes: list[str] = []
    refs = _references(model, versions, references, notes)
    wanted_segments = slice_columns(model) if segments else []
    plan = Plan(
        model,
        task_of(model),
        windowing,
        top_values(
            scoped, wanted_segments, source_store.execute, model.monitoring.max_segment_values
        ),
        refs,
        {v: estimator(store, model, ref, now) for v, ref in refs.items()}
        if any("estimates" in f.needs for f in chosen)
        else {},
        chosen,
    )
    batches = list(_batches(windowing, lo, hi))
    steps = sum(len(refs[v].binnings) + 3 for v in versions) * len(batches)
    done = 0

    def tick(n: int) -> None:
        if progress is not None:
            progress(done + n, steps)

    starts: list[datetime] = []
    rows: pa.Table | None = None  # the rows, when the run is one batch
    count = 0
    errors: dict[str, str] = {}
    estimated = False
    for part in batches:
        batch, made_estimates = _batch(
            store, source_store, events, replace(plan, windowing=part), now, run_id, tick
        )
        done += steps // len(batches)
        starts += batch.windows
        count += batch.rows.num_rows
        rows = batch.rows if len(batches) == 1 else None
        errors.update(batch.errors)
        estimated = estimated or made_estimates
        if len(batches) > 1:  # the next batch is computed without this one's rows or blocks
            del batch
            for s in {id(store): store, id(source_store): source_store}.values():
                s.shed_cache()
    notes += [f"the {family} metrics failed: {error}" for family, error in errors.items()]
    if estimated:
        # The estimates' record, this run's backtests included: the caveat to read them by.
        for b in load_backtest(store, model.name, size).values():
            if b.trust in ("rough", "failing") and ":" not in b.metric:
                notes.append(b.caveat)
    if rows is not None:
        return RunResult(run_id, model.name, size, starts, rows, notes=notes, errors=errors)
    # Rows of many batches are not held: they are read back from the store when asked for.
    reader = MetricsTable(store)
    return RunResult(
        run_id,
        model.name,
        size,
        starts,
        _METRICS_SCHEMA.empty_table(),
        notes=notes,
        errors=errors,
        stored=lambda metrics: reader.of_run(model.name, run_id, metrics),
        count=count,
    )


def _batches(windowing: Windowing, lo: datetime, hi: datetime) -> Iterator[Windowing]:
    """The run's windows in batches of at most ``BATCH_WINDOWS`` (its events span ``lo`` to
    ``hi``), so that a backfill over thousands of windows holds one batch's aggregates and
    rows at a time, not all of them."""
    size = windowing.size
    if windowing.starts is not None:
        starts = sorted(windowing.starts)
        for i in range(0, len(starts), BATCH_WINDOWS):
            yield replace(windowing, starts=tuple(starts[i : i + BATCH_WINDOWS]))
        return
    first, span = window_start(lo, size), size * BATCH_WINDOWS
    if first + span > hi:
        yield windowing
        return
    while first <= hi:
        since = first if windowing.since is None else max(windowing.since, first)
        until = first + span if windowing.until is None else min(windowing.until, first + span)
        yield Windowing(size, since, until, None)
        first += span


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)  # Spark's timestamps come back naive


def _batch(
    store: Store,
    source_store: Store,
    events: ir.Table,
    plan: Plan,
    now: datetime,
    run_id: str,
    tick: Callable[[int], None],
) -> tuple[RunResult, bool]:
    """One batch of windows: aggregates → every family → its rows written; the batch's
    result, and whether it made estimates."""
    model, size, chosen = plan.model, plan.windowing.size, plan.families
    lean = chosen != FAMILIES
    aggregates = gather(plan, store, source_store, events, tick)
    if aggregates.estimated:
        aggregates.trust = load_backtest(store, model.name, size)
    ctx = Context(model, plan.task, size, now, plan.references)
    rows, errors = families(ctx, aggregates, chosen)
    starts = aggregates.starts
    table = _metrics_table(rows, model.name, run_id, now)
    del rows
    profiles = _profiles_table(aggregates.profiles, model.name, size, run_id)
    written = sorted({k for f in chosen for k in declared(f)} | {"family_error"}) if lean else None
    columns = sorted({c for p in aggregates.profiles.values() for c in p.columns}) if lean else None
    MetricsTable(store).replace_windows(
        model.name, size, starts, table, profiles, metric_keys=written, columns=columns
    )
    result = RunResult(run_id, model.name, size, starts, table, errors=errors)
    return result, bool(aggregates.estimated)


@dataclass(frozen=True)
class Planned:
    """One run a cycle makes for a model: a window size, the families to compute (None:
    all), and whether segments are profiled."""

    window: timedelta
    families: tuple[str, ...] | None = None
    segments: bool = True


def planned_runs(config: Config, model: ModelConfig) -> list[Planned]:
    """The runs a cycle makes: the model's window with every family, and each other window
    a rule names with only the families whose metrics those rules read (a service rule on
    hourly windows costs a few queries an hour, not a full run)."""
    out = [Planned(model.monitoring.window)]
    by_size: dict[timedelta, list[RuleConfig]] = {}
    for rule in config.alerting.rules:
        size = rule.window or model.monitoring.window
        if size != model.monitoring.window and fnmatch.fnmatchcase(model.name, rule.models):
            by_size.setdefault(size, []).append(rule)
    for size, rules in sorted(by_size.items()):
        patterns = [c.metric for r in rules for c in r.conditions]
        chosen = {
            f.key
            for f in FAMILIES
            if any(fnmatch.fnmatch(k, p) for k in declared(f) for p in patterns)
        }
        # A family comparing with its own history needs the family that writes that history.
        for f in FAMILIES:
            if f.key in chosen:
                chosen |= {g.key for g in FAMILIES for m in f.history if m in declared(g)}
        segments = any(c.segment != "*" for r in rules for c in r.conditions)
        out.append(Planned(size, tuple(sorted(chosen)), segments))
    return out


def _references(
    model: ModelConfig, versions: Sequence[str], load: ReferenceLoader, notes: list[str]
) -> dict[str, ReferenceProfile]:
    """Each version's reference, else the configured version's (with a note)."""
    refs: dict[str, ReferenceProfile] = {}
    for v in versions:
        ref = load(v)
        if ref is None:
            ref = load(model.version)
            if ref is None:
                raise NoReferenceError(model.name)
            notes.append(f"version {v} has no reference; compared with version {ref.version}'s")
        refs[v] = ref
    return refs


def families(
    ctx: Context, aggregates: Aggregates, chosen: Sequence[Family] = FAMILIES
) -> tuple[list[MetricRow], dict[str, str]]:
    """Every (chosen) family's rows. One that raises is logged and leaves a ``family_error``
    row in each window instead of its metrics; the others go on."""
    rows: list[MetricRow] = []
    errors: dict[str, str] = {}
    for family in chosen:
        try:
            found = family.compute(ctx, aggregates)
        except Exception as exc:  # recorded in the metrics and the run, never dropped
            log.exception("the %s metrics of %s failed", family.key, ctx.model.name)
            errors[family.key] = f"{type(exc).__name__}: {exc}"
            for start in aggregates.starts:
                where = Where(start, start + ctx.size, ALL)
                rows.append(
                    where.row(
                        "family_error", family.key, 1.0, 0, status=ERROR, detail=errors[family.key]
                    )
                )
            continue
        family.check(found)
        rows += found
    return rows, errors


def _metrics_table(rows: list[MetricRow], model: str, run_id: str, now: datetime) -> pa.Table:
    return to_arrow(rows, _METRICS_SCHEMA, model=model, run_id=run_id, computed_at=now)


def _profiles_table(
    profiles: dict[Key, Profile], model: str, size: timedelta, run_id: str
) -> pa.Table:
    rows = [
        (key, name, col) for key, p in sorted(profiles.items()) for name, col in p.columns.items()
    ]
    return pa.table(
        {
            "model": [model] * len(rows),
            "model_version": [k[1] for k, _, _ in rows],
            "window_start": [k[0] for k, _, _ in rows],
            "window_end": [k[0] + size for k, _, _ in rows],
            "segment_column": [k[2] for k, _, _ in rows],
            "segment_value": [k[3] for k, _, _ in rows],
            "column": [name for _, name, _ in rows],
            "profile": [json.dumps(col.to_json()) for _, _, col in rows],
            "run_id": [run_id] * len(rows),
        },
        schema=_PROFILES_SCHEMA,
    )


def _log_run(store: Store, result: RunResult, now: datetime, status: str) -> None:
    detail = {
        "window": int(result.window.total_seconds()),
        "windows": len(result.windows),
        "metrics": result.metric_count,
        "seconds": round(result.seconds, 3),
        "notes": result.notes,
    }
    if result.errors:
        detail["errors"] = result.errors
    row = {
        "run_id": result.run_id,
        "model": result.model,
        "started_at": now,
        "finished_at": now,
        "status": status,
        "windows": len(result.windows),
        "detail": json.dumps(detail),
    }
    store.insert(RUNS, shared_rows(RUNS, [row]))


__all__ = ["Planned", "dirty_windows", "families", "planned_runs", "run"]
