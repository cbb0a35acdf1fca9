"""Gathering a run's aggregates: every engine query of a run, version by version.

For each model version serving the windows: the window profiles of its columns, the task's
score histograms and estimates, then (where labels are) one cached join of the events with
the label in force, read by the label profile, the task's labelled counts, the label delays,
the residuals and the weak-slice sums. Then what is shared by the versions: outcomes,
arrivals, and the stored history the ratios compare with. Only small aggregates come back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import ibis
import ibis.expr.types as ir

from watchkeeper.config import ModelConfig
from watchkeeper.metrics.family import Aggregates, Family
from watchkeeper.metrics.registry import FAMILIES
from watchkeeper.profiles.base import Key, Segment, Source, Windowing
from watchkeeper.profiles.binning import Binning
from watchkeeper.profiles.columns import compute_profiles
from watchkeeper.profiles.multivariate import reconstruction_sums
from watchkeeper.profiles.queries import (
    arrivals,
    distinct_items,
    label_lags,
    outcome_sums,
    scope,
    window_quantiles,
    with_labels,
)
from watchkeeper.profiles.slices import Candidate, slice_sums
from watchkeeper.profiles.types import Profile
from watchkeeper.reference.profile import ReferenceProfile, latency_binning
from watchkeeper.reference.values import reference_values, segment_counts
from watchkeeper.rows import ALL
from watchkeeper.schema import BATCH, INGESTED_AT, KEY, MODEL_VERSION, spec_for
from watchkeeper.store import Store
from watchkeeper.store.metrics import MetricsTable
from watchkeeper.store.tables import INGESTIONS, QUARANTINE
from watchkeeper.tasks.base import EstimationInputs, Task

SLICE_SAMPLE = 300_000  # labelled events a run's weak-slice search looks at, at most
MAX_SLICE_COLUMNS = 6  # candidate columns of the weak-slice search (pairs grow as the square)
RESIDUAL_QUANTILES = (0.1, 0.5, 0.9)
# Rows of a typical window the reconstruction error is computed on, at most: the mean error
# of 5,000 rows is within about 0.6% of the window's (a change counts from 3%), and its
# arithmetic (tens of projections a row) costs more than the rest of the run's per row.
RECONSTRUCTION_ROWS = 5_000
HASH_BUCKETS = 1_000_003

Tick = Callable[[int], None]


@dataclass(frozen=True)
class Plan:
    """What a run gathers: the model, its windows, and what each version is judged by."""

    model: ModelConfig
    task: Task
    windowing: Windowing
    segments: Mapping[str, Segment]
    references: Mapping[str, ReferenceProfile]  # per version
    estimators: Mapping[str, Any]  # per version: the fitted estimator, where there is one
    families: tuple[Family, ...] = FAMILIES  # what the run computes

    @property
    def size(self) -> timedelta:
        return self.windowing.size

    @property
    def needs(self) -> frozenset[str]:
        return frozenset(n for f in self.families for n in f.needs)


def slice_columns(model: ModelConfig) -> list[str]:
    """The columns whose values are monitored separately: segments, then sensitive attributes."""
    return list(dict.fromkeys([*model.columns.segments, *model.columns.sensitive]))


def slice_candidates(model: ModelConfig, binnings: tuple[Binning, ...]) -> list[Candidate]:
    """The weak-slice search's columns: the configured ones, else segments, sensitive
    attributes and features, the first six."""
    by_name = {b.name: b for b in binnings}
    chosen = model.monitoring.slice_columns
    if chosen is not None:
        names = list(chosen)
    else:
        names = [*slice_columns(model), *(f.name for f in model.columns.features)]
        names = list(dict.fromkeys(names))[:MAX_SLICE_COLUMNS]
    out = []
    for name in names:
        b = by_name.get(name)
        out.append(Candidate(name, b if b is not None and b.kind == "numeric" else None))
    return out


def gather(
    plan: Plan,
    store: Store,
    source_store: Store,
    events: ir.Table,
    tick: Tick,
) -> Aggregates:
    """Every aggregate of the plan's windows. ``source_store`` holds events and labels
    (the store itself, or the engine where the team's logs already are)."""
    agg = Aggregates()
    for version, ref in plan.references.items():
        _version(plan, agg, store, source_store, events, version, ref, tick)
    if source_store is store and "outcomes" in plan.needs:
        _outcomes(plan, agg, store, events)
    starts = agg.starts
    name = plan.model.name
    if "arrivals" in plan.needs:
        q, ing = store.table(QUARANTINE), store.table(INGESTIONS)
        agg.arrivals = arrivals(
            store, q.filter(q.model == name), ing.filter(ing.model == name), plan.size, starts
        )
    if starts:
        reader = MetricsTable(store)
        n = plan.model.monitoring.baseline_windows
        since, until = min(starts) - n * plan.size, max(starts)
        wanted = {m for f in plan.families for m in f.history}
        if not agg.outcomes:  # nothing to compare outcome rates of: skip their history
            wanted.discard("outcome_rate")
        # An outcome's delay is stored for complete windows only (older than the labels'
        # maximum delay): its history reaches back past them.
        longest = plan.model.labels.max_delay
        agg.history = {
            m: reader.totals(
                name, m, plan.size, since - longest if m == "outcome_delay" else since, until
            )
            for m in wanted
        }
    return agg


def _version(
    plan: Plan,
    agg: Aggregates,
    store: Store,
    source_store: Store,
    events: ir.Table,
    version: str,
    ref: ReferenceProfile,
    tick: Tick,
) -> None:
    model, task, windowing, needs = plan.model, plan.task, plan.windowing, plan.needs
    ts = model.columns.timestamp
    mine = events.filter(events[MODEL_VERSION] == version)
    binnings = [b for b in ref.binnings if b.role != "label"] if "columns" in needs else []
    if "outputs" in needs and "columns" not in needs:
        binnings = [b for b in ref.binnings if b.role in ("score", "prediction")]
    if model.columns.latency and ({"columns", "latency"} & needs):
        binnings.append(latency_binning(model.columns.latency))
    source = Source(mine, ts, ibis.literal(version), model.columns.status, plan.segments)
    agg.profiles.update(compute_profiles(source, binnings, windowing, source_store, tick))
    if "multivariate" in needs:
        _multivariate(plan, agg, source_store, source, version, ref)
    inputs = EstimationInputs(
        model,
        version,
        source,
        scope(source_store, mine, ts, windowing),
        windowing,
        plan.size,
        plan.segments,
        source_store,
    )
    scored = {"scores", "estimates"} & needs
    histograms = task.histograms(inputs) if task.histograms and scored else None
    if histograms:
        agg.histograms.update(histograms)
    fitted = plan.estimators.get(version)
    if task.estimator is not None and fitted is not None and "estimates" in needs:
        agg.estimate_notes[version] = task.estimator.note(fitted)
        agg.reference_values[version] = {
            metric: value
            for (_, metric, column), value in reference_values(store, model, ref).items()
            if not column
        }
        found = task.estimator.aggregate(fitted, replace(inputs, histograms=histograms))
        for key, aggregate in found.items():
            agg.estimated[key] = task.estimator.estimate(model, fitted, aggregate)
        _at_reference(plan, agg, store, inputs, version, ref, fitted, found)
    if task.items is not None and "columns" in needs and (item := task.items(model)):
        _items(plan, agg, store, inputs, item, version, ref)
    if "labels" not in needs or spec_for("labels", model).table not in source_store.tables():
        tick(1)
        return
    labels = source_store.table(spec_for("labels", model).table)
    cols = model.columns
    wanted = [
        cols.event_id,
        ts,
        MODEL_VERSION,
        *slice_columns(model),
        *(c.name for c in slice_candidates(model, ref.binnings)),
        *(
            c
            for c in (cols.score, cols.prediction, cols.query_id, cols.item_id, cols.position)
            if c
        ),
        *(cols.scores or {}).values(),
    ]
    label_name = model.labels.column
    joined = with_labels(source_store, mine, labels, cols.event_id, label_name, wanted, INGESTED_AT)
    # The join of events and labels is computed once and read by every query below.
    with source_store.cached(scope(source_store, joined, ts, windowing)) as labelled:
        agg.label_lags.update(label_lags(source_store, labelled, ts, plan.size, version))
        if "slices" in needs:
            _slices(plan, agg, store, source_store, labelled, ref, version)
        lsource = Source(labelled, ts, ibis.literal(version), None, plan.segments)
        label_binning = ref.binning(label_name)
        if label_binning is not None:
            found_labels = compute_profiles(lsource, [label_binning], windowing, source_store, tick)
            for key, p in found_labels.items():
                agg.labelled[key] = p.columns[label_name].present
                if key in agg.profiles:
                    before = agg.profiles[key]
                    columns = {**before.columns, label_name: p.columns[label_name]}
                    agg.profiles[key] = Profile(before.rows, before.errors, columns)
        if task.residual is not None and (value := task.residual(model, labelled)) is not None:
            agg.residuals.update(
                window_quantiles(
                    source_store, labelled, ts, value, plan.size, RESIDUAL_QUANTILES, version
                )
            )
        counts = task.counts(model, lsource, windowing, source_store)
        if counts:
            agg.counts.update(counts)
            if "segments" in needs and plan.segments:
                agg.reference_counts[version] = segment_counts(store, model, ref, plan.segments)


def _multivariate(
    plan: Plan, agg: Aggregates, engine: Store, source: Source, version: str, ref: ReferenceProfile
) -> None:
    """The reconstruction errors of the version's whole-traffic windows (one query), on a
    fixed sample of their rows when the windows are large."""
    fitted = ref.reconstruction
    if (
        fitted is None
        or not plan.model.monitoring.multivariate.reconstruction
        or not all(f in source.table.columns for f in fitted.features)
    ):
        return
    sizes = sorted(
        p.rows for (_, v, column, _), p in agg.profiles.items() if v == version and column == ALL
    )
    table = source.table
    typical = sizes[len(sizes) // 2] if sizes else 0
    event_id = plan.model.columns.event_id
    if typical > RECONSTRUCTION_ROWS and event_id in table.columns:
        # The same rows every run (a hash of the event id, not a random draw), so that an
        # incremental run equals a full one.
        kept = round(HASH_BUCKETS * RECONSTRUCTION_ROWS / typical)
        bucket = (
            (table[event_id].cast("string").hash() % HASH_BUCKETS) + HASH_BUCKETS
        ) % HASH_BUCKETS
        table = table.filter(bucket < kept)
    whole = replace(source, table=table, segments={})
    agg.reconstruction.update(reconstruction_sums(whole, fitted, plan.windowing, engine))


def _at_reference(
    plan: Plan,
    agg: Aggregates,
    store: Store,
    inputs: EstimationInputs,
    version: str,
    ref: ReferenceProfile,
    fitted: Any,
    windows: dict[Key, Any],
) -> None:
    """Each whole-traffic window's estimates as a window of its size drawn like the
    reference would show them: the spread an estimate is judged by is the reference's at
    that size (as NannyML's reference chunks give it), not the window's own, which widens
    exactly where the inputs drift."""
    estimator = plan.task.estimator
    if estimator is None or not estimator.scales:
        return
    table = store.table(spec_for("reference", plan.model).table)
    mine = table.filter(table[BATCH] == ref.reference_id)
    source = Source(mine, None, ibis.literal(version))
    whole = estimator.aggregate(
        fitted,
        replace(
            inputs,
            source=source,
            scoped=mine,
            windowing=None,
            segments={},
            histograms=None,
            engine=store,  # the reference lives in the store, the events maybe elsewhere
        ),
    )
    if len(whole) != 1:
        return
    (reference,) = whole.values()
    for key in windows:
        if key[2] != ALL or (found := agg.estimated.get(key)) is None:
            continue
        events = max((e.sample_size for e in found.estimates.values()), default=0)
        if events:
            scaled = estimator.scaled(reference, events)
            agg.at_reference[key] = estimator.estimate(plan.model, fitted, scaled)


def _slices(
    plan: Plan,
    agg: Aggregates,
    store: Store,
    engine: Store,
    labelled: ir.Table,
    ref: ReferenceProfile,
    version: str,
) -> None:
    model = plan.model
    loss = plan.task.loss(model, labelled)
    if loss is None or not model.monitoring.weak_slices:
        return
    expr, agg.slices_are_rates = loss
    with_loss = labelled.mutate(wk_loss=expr)
    # The search runs a query per column and pair: on a large run, a random sample of the
    # labelled events (the same for every query) answers it as well, at a fraction of the cost.
    n = int(engine.scalar(with_loss.count()))
    if n > SLICE_SAMPLE:
        with_loss = with_loss.sample(SLICE_SAMPLE / n, method="row", seed=11)
    candidates = slice_candidates(model, ref.binnings)
    with engine.cached(with_loss) as sample:
        agg.slices[version] = slice_sums(
            engine, sample, model.columns.timestamp, candidates, plan.size
        )
    # The same slices on the reference: a slice is weak when it got worse, not when it is
    # naturally harder than the rest.
    table = store.table(spec_for("reference", model).table)
    label = model.labels.column
    present = [c for c in candidates if c.name in table.columns]
    if label in table.columns and present:
        mine = table.filter((table[BATCH] == ref.reference_id) & table[label].notnull())
        mine = mine.mutate(wk_label=mine[label])
        found = plan.task.loss(model, mine)
        if found is not None:
            scored = mine.mutate(wk_loss=found[0])
            on_reference = slice_sums(store, scored, None, present, plan.size)
            if on_reference:
                agg.reference_slices[version] = on_reference[0]


def _items(
    plan: Plan,
    agg: Aggregates,
    store: Store,
    inputs: EstimationInputs,
    item: str,
    version: str,
    ref: ReferenceProfile,
) -> None:
    """Distinct items shown per window, and the reference's."""
    ref_table = store.table(spec_for("reference", plan.model).table)
    if item not in ref_table.columns:
        return
    mine = ref_table.filter(ref_table[BATCH] == ref.reference_id)
    agg.catalogue_sizes[version] = int(store.scalar(mine[item].nunique()))
    agg.items.update(
        distinct_items(
            inputs.engine, inputs.scoped, plan.model.columns.timestamp, item, plan.size, version
        )
    )


def _outcomes(plan: Plan, agg: Aggregates, store: Store, events: ir.Table) -> None:
    table = spec_for("outcomes", plan.model).table
    if table not in store.tables() or not plan.size:
        return
    cols = plan.model.columns
    agg.outcomes = outcome_sums(
        store,
        store.table(table),
        events,
        cols.event_id,
        cols.timestamp,
        plan.windowing,
        INGESTED_AT,
        BATCH,
        KEY,
    )


__all__ = [
    "MAX_SLICE_COLUMNS",
    "SLICE_SAMPLE",
    "Plan",
    "gather",
    "slice_candidates",
    "slice_columns",
]
