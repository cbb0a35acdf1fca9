"""A run: profile the due and dirty windows of a model, compute statistics, write metrics.

Dirty windows are those whose events, labels or outcomes arrived (the ``touched`` table)
after the window's metrics were last computed; due windows are closed ones. Each computed
window is recomputed whole from its events, so a re-run equals a full recomputation, and
its metric rows replace the earlier ones.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy import special

from watchkeeper.config import DriftConfig, ModelConfig
from watchkeeper.errors import WatchkeeperError
from watchkeeper.ingest.pipeline import new_batch_id
from watchkeeper.monitor.backtest import Backtest
from watchkeeper.monitor.backtest import load as load_backtest
from watchkeeper.monitor.loss_estimation import loss_model, loss_sums
from watchkeeper.monitor.slices import MAX_CANDIDATES as MAX_SLICE_COLUMNS
from watchkeeper.monitor.slices import discover
from watchkeeper.profiles import ALL, Binning, Key, Profile, Source, Windowing, compute_profiles
from watchkeeper.profiles.compute import (
    OTHER_SEGMENT,
    Segment,
    compute_binary_counts,
    compute_multiclass_counts,
    compute_ranking_sums,
    compute_regression_sums,
    compute_score_histogram,
)
from watchkeeper.profiles.types import ColumnProfile
from watchkeeper.reference import ReferenceProfile, latency_binning, top_values
from watchkeeper.schema import BATCH, INGESTED_AT, KEY, MODEL_VERSION, spec_for
from watchkeeper.stats import drift as drift_methods
from watchkeeper.stats import quality
from watchkeeper.stats.drift import Comparison
from watchkeeper.stats.estimation import (
    ESTIMATES,
    CalibrationMap,
    ExpectedConfusion,
    estimated_multiclass,
    expected_confusion,
    one_vs_rest,
)
from watchkeeper.stats.loss import LOSS_ESTIMATES
from watchkeeper.stats.multiclass import METRICS as MULTICLASS
from watchkeeper.stats.multiclass import MulticlassCounts, class_recall
from watchkeeper.stats.multiple import benjamini_hochberg, homogeneity
from watchkeeper.stats.performance import METRICS as PERFORMANCE
from watchkeeper.stats.performance import BinaryCounts, Estimate, reliability, wilson
from watchkeeper.stats.ranking import METRICS as RANKING
from watchkeeper.stats.ranking import RankingSums
from watchkeeper.stats.regression import METRICS as REGRESSION
from watchkeeper.stats.regression import RegressionSums
from watchkeeper.store import Store
from watchkeeper.store.engine import arrow_schema
from watchkeeper.store.tables import (
    INGESTIONS,
    METRICS,
    QUARANTINE,
    RUNS,
    SHARED,
    TOUCHED,
    WINDOW_PROFILES,
)
from watchkeeper.windows import EPOCH, format_duration, window_start

ANY_VERSION = "*"
SLICE_SAMPLE = 300_000  # labelled events a run's weak-slice search looks at, at most
OK, DRIFTED, INSUFFICIENT = "ok", "drifted", "insufficient_data"
LATENCY_QUANTILES = (("latency_p50", 0.5), ("latency_p90", 0.9), ("latency_p99", 0.99))

_METRICS_SCHEMA = arrow_schema(SHARED[METRICS])
_PROFILES_SCHEMA = arrow_schema(SHARED[WINDOW_PROFILES])
_RUNS_SCHEMA = arrow_schema(SHARED[RUNS])

ReferenceLoader = Callable[[str], ReferenceProfile | None]


class NoReferenceError(WatchkeeperError):
    def __init__(self, model: str) -> None:
        super().__init__(
            f"model {model!r} has no reference to compare with; store one with "
            f"`watchkeeper reference set --model {model} FILE`"
        )


@dataclass
class RunResult:
    run_id: str
    model: str
    window: timedelta
    windows: list[datetime]
    metrics: pa.Table
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_pandas(self) -> Any:
        return self.metrics.to_pandas()

    def drifted(self) -> list[dict[str, Any]]:
        rows = self.metrics.filter(
            pc.and_(
                pc.equal(self.metrics["metric"], "drift"),
                pc.equal(self.metrics["status"], DRIFTED),
            )
        )
        columns = ["window_start", "model_version", "segment_column", "segment_value", "column"]
        found: list[dict[str, Any]] = rows.select([*columns, "detail"]).to_pylist()
        return found

    def summary(self) -> str:
        if not self.windows:
            return f"{self.model}: nothing to compute (no new or late data in closed windows)"
        first, last = min(self.windows), max(self.windows)
        span = (
            f"{first:%Y-%m-%d %H:%M}"
            if first == last
            else f"{first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M}"
        )
        drifted = self.drifted()
        by_column: dict[str, int] = defaultdict(int)
        for row in drifted:
            if row["segment_column"] == ALL:
                by_column[row["column"]] += 1
        size = format_duration(self.window)
        head = (
            f"{self.model}: {len(self.windows)} window(s) of {size} ({span}) in "
            f"{self.seconds:.1f}s: {self.metrics.num_rows:,} metrics"
        )
        if by_column:
            listed = ", ".join(
                f"{c} ({n} window{'s' if n > 1 else ''})" for c, n in sorted(by_column.items())
            )
            head += f"; drift in {listed}"
        else:
            head += "; no drift over the whole traffic"
        segs = len(
            {
                (r["segment_column"], r["segment_value"])
                for r in drifted
                if r["segment_column"] != ALL
            }
        )
        if segs:
            head += f"; drift in {segs} segment(s)"
        return "\n".join([head, *self.notes])


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
) -> RunResult:
    """Compute and store the metrics of the due and dirty windows (or of a time range).

    Events and labels are read from ``events_store`` when given (a Spark or lakehouse
    engine where the team's logs already are); everything else is in ``store``.
    """
    source_store = events_store or store
    started = time.perf_counter()
    size = window or model.monitoring.window
    run_id = new_batch_id(now)
    last_closed = window_start(now, size)  # windows starting before this are closed
    if since is not None or until is not None or full:
        end = min(until, last_closed) if until is not None else last_closed
        windowing = Windowing(size, since, end, None)
    else:
        starts = dirty_windows(store, model, size, now)
        if not starts:
            result = RunResult(run_id, model.name, size, [], _METRICS_SCHEMA.empty_table())
            _log_run(store, result, now, "ok")
            return result
        windowing = Windowing(size, None, None, tuple(starts))

    events = source_store.table(spec_for("events", model).table)
    scoped = _scope(source_store, events, model.columns.timestamp, windowing)
    versions = sorted(
        v
        for v in source_store.execute(scoped.select(MODEL_VERSION).distinct())[
            MODEL_VERSION
        ].to_pylist()
    )
    if not versions:
        result = RunResult(run_id, model.name, size, [], _METRICS_SCHEMA.empty_table())
        _log_run(store, result, now, "ok")
        return result
    notes: list[str] = []
    refs: dict[str, ReferenceProfile] = {}
    for v in versions:
        ref = references(v)
        if ref is None:
            ref = references(model.version)
            if ref is None:
                raise NoReferenceError(model.name)
            notes.append(f"version {v} has no reference; compared with version {ref.version}'s")
        refs[v] = ref

    segments = top_values(
        scoped,
        slice_columns(model),
        source_store.execute,
        model.monitoring.max_segment_values,
    )
    label_name = model.labels.column
    steps = sum(len(refs[v].binnings) + 3 for v in versions)
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(n, steps)

    profiles: dict[Key, Profile] = {}
    performance: dict[Key, BinaryCounts | MulticlassCounts | RegressionSums | RankingSums] = {}
    estimated: dict[Key, dict[str, Estimate]] = {}
    calibrated: dict[str, str] = {}  # per version: how the estimate was made
    estimate_notes: dict[Key, str] = {}  # per window and segment: caveats of the estimate
    histograms: dict[Key, np.ndarray[Any, Any]] = {}
    labelled_rows: dict[Key, int] = {}
    extra_rows: list[_Row] = []
    for v in versions:
        ref = refs[v]
        mine = events.filter(events[MODEL_VERSION] == v)
        binnings = [b for b in ref.binnings if b.role != "label"]
        if model.columns.latency:
            binnings.append(latency_binning(model.columns.latency))
        source = Source(
            mine, model.columns.timestamp, ibis.literal(v), model.columns.status, segments
        )
        profiles.update(compute_profiles(source, binnings, windowing, source_store, tick))
        if model.task == "binary_classification" and model.columns.score:
            calibration = _calibration(store, model, ref)
            found_hists = compute_score_histogram(
                source, model.columns.score, windowing, source_store
            )
            histograms.update(found_hists)
            if calibration is not None:
                calibrated[v] = _calibration_note(calibration)
                for key, hist in found_hists.items():
                    expected = expected_confusion(hist, calibration, model.decision_threshold)
                    estimated[key] = {name: f(expected) for name, f in ESTIMATES.items()}
        if model.task == "regression" and model.columns.prediction:
            loss = loss_model(store, model, ref, now)
            if loss is not None:
                calibrated[v] = f"errors predicted by a model of the reference's {loss.rows:,} rows"
                scoped_mine = _scope(source_store, mine, model.columns.timestamp, windowing)
                found_loss = loss_sums(
                    source_store, scoped_mine, model.columns.timestamp, v, size, segments, loss
                )
                for key, sums in found_loss.items():
                    estimated[key] = {name: f(sums) for name, f in LOSS_ESTIMATES.items()}
                    if sums.n and sums.outside / sums.n >= 0.05:
                        estimate_notes[key] = (
                            f"{sums.outside / sums.n:.0%} of events outside the reference's "
                            "range, where the loss model cannot extrapolate"
                        )
        if model.task == "multiclass_classification" and model.columns.scores:
            found_multi = _multiclass_estimates(store, source_store, model, ref, source, windowing)
            if found_multi:
                calibrated[v], per_key = found_multi
                estimated.update(per_key)
        label_binning = ref.binning(label_name)
        labels_table = spec_for("labels", model).table
        if labels_table not in source_store.tables():
            tick(1)
            continue
        joined = _with_labels(source_store, model, mine, label_name)
        scoped_labels = _scope(source_store, joined, model.columns.timestamp, windowing)
        # The join of events and labels is computed once and read by every query below.
        with source_store.cached(scoped_labels) as labelled:
            extra_rows += _label_lag_rows(source_store, model, labelled, windowing, v)
            extra_rows += _weak_slice_rows(source_store, model, labelled, ref, windowing, v)
            source = Source(labelled, model.columns.timestamp, ibis.literal(v), None, segments)
            if label_binning is not None:
                found = compute_profiles(source, [label_binning], windowing, source_store, tick)
                for key, p in found.items():
                    labelled_rows[key] = p.columns[label_name].present
                    if key in profiles:
                        cols = {**profiles[key].columns, label_name: p.columns[label_name]}
                        profiles[key] = Profile(profiles[key].rows, profiles[key].errors, cols)
            if model.task == "multiclass_classification" and model.columns.prediction:
                performance.update(
                    compute_multiclass_counts(
                        source,
                        model.columns.prediction,
                        label_name,
                        model.classes or (),
                        model.columns.scores,
                        windowing,
                        source_store,
                    )
                )
            if model.task == "ranking" and model.columns.query_id:
                performance.update(
                    compute_ranking_sums(
                        source,
                        model.columns.query_id,
                        label_name,
                        model.columns.position,
                        model.columns.score,
                        model.monitoring.ranking_k,
                        windowing,
                        source_store,
                    )
                )
            if model.task == "regression" and model.columns.prediction:
                extra_rows += _residual_rows(source_store, model, labelled, windowing, v)
                performance.update(
                    compute_regression_sums(
                        source, model.columns.prediction, label_name, windowing, source_store
                    )
                )
            if model.task == "binary_classification" and model.columns.score:
                performance.update(
                    compute_binary_counts(
                        source,
                        model.columns.score,
                        label_name,
                        model.columns.prediction,
                        model.decision_threshold,
                        windowing,
                        source_store,
                    )
                )

    rows = metric_rows(model, profiles, refs, size)
    rows += performance_rows(model, profiles, labelled_rows, performance, size, now)
    binary = {k: c for k, c in performance.items() if isinstance(c, BinaryCounts)}
    rows += fairness_rows(model, profiles, binary, refs, size, now)
    rows += segment_gap_rows(model, performance, size)
    trust = load_backtest(store, model.name, size) if estimated else {}
    rows += estimation_rows(estimated, performance, calibrated, size, estimate_notes, trust)
    rows += proxy_rows(histograms, model.decision_threshold, size)
    if model.task == "ranking" and model.columns.item_id:
        rows += _coverage_rows(store, source_store, model, events, refs, windowing)
    rows += extra_rows
    starts_done = sorted({k[0] for k in profiles})
    rows += _volume_rows(store, model, profiles, size, starts_done)
    if source_store is store:
        rows += _outcome_rows(store, model, events, profiles, windowing, now)
    rows += _quarantine_rows(store, model, size, starts_done)
    rows += _schema_rows(store, model, size, starts_done)
    table = _metrics_table(rows, model.name, run_id, now)
    profile_table = _profiles_table(profiles, model.name, size, run_id)
    with store.transaction():
        if starts_done:
            for name in (METRICS, WINDOW_PROFILES):
                store.delete(
                    name,
                    lambda t: (
                        (t.model == model.name)
                        & t.window_start.isin(starts_done)
                        & (
                            t.window_end
                            == t.window_start + ibis.interval(seconds=int(size.total_seconds()))
                        )
                    ),
                )
        store.insert(METRICS, table)
        store.insert(WINDOW_PROFILES, profile_table)
    if estimated:
        # The estimates' record, this run's backtests included: the caveat to read them by.
        for b in load_backtest(store, model.name, size).values():
            if b.trust in ("rough", "failing") and ":" not in b.metric:
                notes.append(b.caveat)
    result = RunResult(
        run_id, model.name, size, starts_done, table, time.perf_counter() - started, notes
    )
    _log_run(store, result, now, "ok")
    return result


def _scope(store: Store, events: ir.Table, ts: str, w: Windowing) -> ir.Table:
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
        t = t.filter((store.epoch_micros(t[ts]) // size).isin(wanted))
    return t


def _coverage_rows(
    store: Store,
    source_store: Store,
    model: ModelConfig,
    events: ir.Table,
    refs: dict[str, ReferenceProfile],
    w: Windowing,
) -> list[_Row]:
    """Catalogue coverage per window: distinct items shown over those in the reference."""
    item = model.columns.item_id
    assert item is not None
    ref_table = store.table(spec_for("reference", model).table)
    out = []
    size_us = int(w.size.total_seconds()) * 1_000_000
    for version, ref in refs.items():
        if item not in ref_table.columns:
            continue
        mine = ref_table.filter(ref_table[BATCH] == ref.reference_id)
        catalogue = int(store.scalar(mine[item].nunique()))
        scoped = _scope(
            source_store,
            events.filter(events[MODEL_VERSION] == version),
            model.columns.timestamp,
            w,
        )
        found = source_store.execute(
            scoped.mutate(
                wk_w=source_store.epoch_micros(scoped[model.columns.timestamp]) // size_us
            )
            .group_by("wk_w")
            .aggregate(items=ibis._[item].nunique())
        )
        for r in found.to_pylist():
            start = EPOCH + timedelta(microseconds=r["wk_w"] * size_us)
            where = _Where(start, start + w.size, version, ALL, ALL)
            value = r["items"] / catalogue if catalogue else None
            out.append(
                _Row(
                    where,
                    "catalogue_coverage",
                    item,
                    value,
                    int(r["items"]),
                    detail=f"{r['items']:,} of the reference's {catalogue:,} items shown",
                )
            )
    return out


def _residual_rows(
    store: Store, model: ModelConfig, labelled: ir.Table, w: Windowing, version: str
) -> list[_Row]:
    """Residual (prediction - label) quantiles per window, whole traffic: p10, p50, p90."""
    assert model.columns.prediction is not None
    scoped = _scope(store, labelled, model.columns.timestamp, w)
    size = int(w.size.total_seconds()) * 1_000_000
    residual = scoped[model.columns.prediction].cast("float64") - scoped.wk_label.cast("float64")
    found = store.execute(
        scoped.mutate(w=store.epoch_micros(scoped[model.columns.timestamp]) // size, e=residual)
        .filter(ibis._.e.notnull())
        .group_by("w")
        .aggregate(n=ibis._.count(), q=ibis._.e.quantile([0.1, 0.5, 0.9]))
    )
    out = []
    for r in found.to_pylist():
        start = EPOCH + timedelta(microseconds=r["w"] * size)
        where = _Where(start, start + w.size, version, ALL, ALL)
        for name, value in zip(
            ("residual_p10", "residual_p50", "residual_p90"), r["q"] or (), strict=False
        ):
            out.append(_Row(where, name, "", value, int(r["n"])))
    return out


CALIBRATION_FOLDS = 5


def _calibration(
    store: Store,
    model: ModelConfig,
    ref: ReferenceProfile,
    score: str | None = None,
    positive: str | None = None,
) -> CalibrationMap | None:
    """The calibration map of a reference's ``score`` (the model's score column unless
    given) for the label (or for the label being ``positive``, one class against the rest):
    isotonic over its score bins' positive rates where that improves calibration under
    5-fold cross-validation, else the scores as they are."""
    table = store.table(spec_for("reference", model).table)
    score = score or model.columns.score
    label = model.labels.column
    if score is None or score not in table.columns or label not in table.columns:
        return None
    mine = table.filter(table[BATCH] == ref.reference_id)
    if positive is not None:
        mine = mine.mutate(wk_y=(mine[label].cast("string") == positive).cast("int64"))
        label = "wk_y"
    # Rows with the same score and label are interchangeable here, so ordering by them
    # makes the folds' counts (and the choice) the same from run to run.
    order = ibis.row_number().over(order_by=[mine[score], mine[label]])
    mine = mine.mutate(wk_fold=(order % CALIBRATION_FOLDS).cast("string"))
    folds = Segment(tuple(str(i) for i in range(CALIBRATION_FOLDS)), complete=True)
    source = Source(mine, None, ibis.literal(ref.version), segments={"wk_fold": folds})
    found = compute_binary_counts(source, score, label, None, model.decision_threshold, None, store)
    per_fold = [c for k, c in sorted(found.items()) if k[2] == "wk_fold" and c.n > 0]
    if not per_fold:
        return None
    return CalibrationMap.choose(per_fold)


def proxy_rows(
    histograms: dict[Key, np.ndarray[Any, Any]], threshold: float, size: timedelta
) -> list[_Row]:
    """Signals of performance that need no labels, from the score histogram: the mean
    confidence (max of p and 1 - p, at bin centres: within half a bin), the share of
    low-confidence predictions (scores in [0.4, 0.6)), and the predicted positive rate."""
    rows: list[_Row] = []
    for key, hist in sorted(histograms.items()):
        n = int(hist.sum())
        if n == 0:
            continue
        start, version, seg_col, seg_val = key
        where = _Where(start, start + size, version, seg_col, seg_val)
        bins = len(hist)
        centres = (np.arange(bins) + 0.5) / bins
        lows = np.arange(bins) / bins
        confidence = float((hist * np.maximum(centres, 1 - centres)).sum() / n)
        uncertain = (lows >= 0.4 - 1e-12) & (lows < 0.6 - 1e-12)
        positive = lows >= threshold - 1e-12
        rows += [
            _Row(where, "mean_confidence", "", confidence, n),
            _Row(where, "low_confidence_share", "", float(hist[uncertain].sum() / n), n),
            _Row(where, "predicted_positive_rate", "", float(hist[positive].sum() / n), n),
        ]
    return rows


def _calibration_note(calibration: CalibrationMap) -> str:
    if calibration.method == "isotonic":
        return "scores calibrated by isotonic regression on the reference"
    return "scores read as probabilities (isotonic calibration did not improve them)"


def _multiclass_estimates(
    store: Store,
    source_store: Store,
    model: ModelConfig,
    ref: ReferenceProfile,
    source: Source,
    windowing: Windowing,
) -> tuple[str, dict[Key, dict[str, Estimate]]] | None:
    """One class against the rest: each class's calibration map on the reference, and
    each window's histogram of the class's score split by whether it was predicted."""
    scores = model.columns.scores or {}
    classes = model.classes or ()
    if not classes or any(c not in scores for c in classes):
        return None
    table = source.table
    prediction = model.columns.prediction
    if prediction is None:  # the class with the highest score
        prediction = "wk_predicted"
        top = ibis.greatest(*(table[scores[c]] for c in classes))
        table = table.mutate(
            wk_predicted=ibis.cases(*((table[scores[c]] == top, c) for c in classes))
        )
        source = Source(table, source.timestamp, source.version, source.status, source.segments)
    per_class: dict[Key, dict[str, ExpectedConfusion]] = {}
    methods = set()
    for cls in classes:
        calibration = _calibration(store, model, ref, scores[cls], cls)
        if calibration is None:
            return None
        methods.add(calibration.method)
        found = compute_score_histogram(
            source, scores[cls], windowing, source_store, predicted=(prediction, cls)
        )
        for key, hist in found.items():
            per_class.setdefault(key, {})[cls] = one_vs_rest(hist, calibration)
    note = "one class against the rest; " + (
        "scores calibrated by isotonic regression on the reference"
        if "isotonic" in methods
        else "scores read as probabilities"
    )
    return note, {
        key: estimated_multiclass(found)
        for key, found in per_class.items()
        if len(found) == len(classes)
    }


def _realized(counts: Any, name: str) -> float | None:
    """The realized value of an estimated metric, from a window's labelled counts."""
    if isinstance(counts, BinaryCounts) and name in PERFORMANCE:
        return PERFORMANCE[name](counts).value
    if isinstance(counts, MulticlassCounts):
        if name.startswith("recall:"):
            found = class_recall(counts).get(name.split(":", 1)[1])
            return None if found is None else found.value
        if name in MULTICLASS:
            return MULTICLASS[name](counts).value
    if isinstance(counts, RegressionSums) and name in REGRESSION:
        return REGRESSION[name](counts).value
    return None


ASSUMPTION = "assuming no concept shift"


def estimation_rows(
    estimated: dict[Key, dict[str, Estimate]],
    realized: Mapping[Key, Any],
    notes: Mapping[str, str],
    size: timedelta,
    key_notes: Mapping[Key, str] | None = None,
    trust: Mapping[str, Backtest] | None = None,
) -> list[_Row]:
    """Performance estimated without labels, with its band, for every window and segment;
    where labels exist, the realized value beside it and whether the band covered it (the
    backtest). An estimate named ``metric:column`` is stored as that metric of that column
    (a class's recall). The estimate assumes the relation of inputs to label has not
    changed: concept shift makes it wrong, and the backtest is what shows it."""
    rows: list[_Row] = []
    trust = trust or {}
    for key, found in sorted(estimated.items()):
        start, version, seg_col, seg_val = key
        where = _Where(start, start + size, version, seg_col, seg_val)
        how = "; ".join(n for n in (notes.get(version), (key_notes or {}).get(key)) if n)
        for full_name, e in found.items():
            name, _, column = full_name.partition(":")
            rows.append(
                _Row(
                    where,
                    f"estimated_{name}",
                    column,
                    e.value,
                    e.sample_size,
                    lower=e.lower,
                    upper=e.upper,
                    detail=f"without labels, {ASSUMPTION}"
                    + (f"; {how}" if how else "")
                    + (f"; backtest: {trust[full_name].caveat}" if full_name in trust else ""),
                )
            )
            truth = realized.get(key)
            if truth is None or e.value is None or e.lower is None or e.upper is None:
                continue
            actual = _realized(truth, full_name)
            if actual is None:
                continue
            covered = e.lower <= actual <= e.upper
            rows.append(
                _Row(
                    where,
                    "estimation_error",
                    full_name,
                    e.value - actual,
                    _labelled(truth),
                    status="ok" if covered else "missed",
                    detail=f"estimated {e.value:.3g} [{e.lower:.3g}, {e.upper:.3g}], "
                    f"realized {actual:.3g}",
                )
            )
    return rows


def _labelled(counts: Any) -> int:
    if isinstance(counts, MulticlassCounts):
        return int(counts.confusion.sum())
    return int(getattr(counts, "n", 0))


def _loss(model: ModelConfig, labelled: ir.Table) -> tuple[ir.Value, bool] | None:
    """Each labelled event's loss, and whether it is a 0/1 rate."""
    cols = model.columns
    label = labelled.wk_label
    if model.task == "regression" and cols.prediction:
        return (labelled[cols.prediction].cast("float64") - label.cast("float64")).abs(), False
    if model.task == "binary_classification":
        if cols.prediction:
            predicted = labelled[cols.prediction].cast("int64")
        elif cols.score:
            threshold = model.decision_threshold
            predicted = (labelled[cols.score] >= threshold).cast("int64")
        else:
            return None
        return (predicted != label.cast("int64")).cast("float64"), True
    if model.task == "multiclass_classification" and cols.prediction:
        wrong = labelled[cols.prediction].cast("string") != label.cast("string")
        return wrong.cast("float64"), True
    return None


def _weak_slice_rows(
    store: Store,
    model: ModelConfig,
    labelled: ir.Table,
    ref: ReferenceProfile,
    w: Windowing,
    version: str,
) -> list[_Row]:
    """The top weak slices of each window (see ``monitor.slices``)."""
    loss = _loss(model, labelled)
    if loss is None or not model.monitoring.weak_slices:
        return []
    expr, is_rate = loss
    scoped = _scope(store, labelled, model.columns.timestamp, w).mutate(wk_loss=expr)
    # The search runs a query per column and pair: on a large run, a random sample of the
    # labelled events (the same for every query) answers it as well, at a fraction of the cost.
    n = int(store.scalar(scoped.count()))
    if n > SLICE_SAMPLE:
        scoped = scoped.sample(SLICE_SAMPLE / n, method="row", seed=11)
    with store.cached(scoped) as sample:
        found = discover(
            store,
            model,
            sample,
            ref.binnings,
            w.size,
            is_rate,
            model.monitoring.min_labels,
            model.monitoring.numeric_drift.alpha,
        )
    what = "error rate" if is_rate else "mean absolute error"
    out = []
    for s in found:
        where = _Where(s.window_start, s.window_start + w.size, version, ALL, ALL)
        out.append(
            _Row(
                where,
                "weak_slice",
                s.description,
                s.loss - s.rest_loss,
                s.events,
                status="worse",
                p_value=s.q_value,
                detail=f"{what} {s.loss:.3g} against {s.rest_loss:.3g} elsewhere; "
                f"{s.share:.1%} of labelled events; impact {s.impact:.3g}",
            )
        )
    return out


def _label_lag_rows(
    store: Store, model: ModelConfig, labelled: ir.Table, w: Windowing, version: str
) -> list[_Row]:
    """Label delay per window (whole traffic): p50 and p90 of label time minus event time."""
    scoped = _scope(store, labelled, model.columns.timestamp, w)
    size = int(w.size.total_seconds()) * 1_000_000
    ts = store.epoch_micros(scoped[model.columns.timestamp])
    lag = (store.epoch_micros(scoped.wk_label_time) - ts) / 1e6
    found = store.execute(
        scoped.mutate(w=ts // size, lag=lag)
        .group_by("w")
        .aggregate(n=ibis._.count(), q=ibis._.lag.quantile([0.5, 0.9]))
    )
    out = []
    for r in found.to_pylist():
        start = EPOCH + timedelta(microseconds=r["w"] * size)
        where = _Where(start, start + w.size, version, ALL, ALL)
        for name, value in zip(("label_lag_p50", "label_lag_p90"), r["q"] or (), strict=False):
            detail = "" if value is None else f"{value / 3600:.1f} hours"
            out.append(_Row(where, name, "", value, int(r["n"]), detail=detail))
    return out


def _with_labels(store: Store, model: ModelConfig, events: ir.Table, label_name: str) -> ir.Table:
    """Events joined with the label in force for each, with only the columns that the
    label-based metrics read (so the cached join stays narrow)."""
    labels = store.table(spec_for("labels", model).table)
    # The newest label per event: an arg-max by the time it was received, a hash aggregate
    # rather than a sort of every label. (Two labels for one event received in the same
    # microsecond have no order; ingestion never stores two in one call.)
    order = store.epoch_micros(labels[INGESTED_AT])
    latest = labels.group_by(wk_event=labels.event_id).aggregate(
        wk_label=labels.label.argmax(order), wk_label_time=labels.label_timestamp.argmax(order)
    )
    cols = model.columns
    wanted = [
        cols.event_id,
        cols.timestamp,
        MODEL_VERSION,
        *slice_columns(model),
        *(model.monitoring.slice_columns or [f.name for f in cols.features][:MAX_SLICE_COLUMNS]),
        *(
            c
            for c in (cols.score, cols.prediction, cols.query_id, cols.item_id, cols.position)
            if c
        ),
        *(cols.scores or {}).values(),
    ]
    narrow = events.select(*dict.fromkeys(c for c in wanted if c in events.columns))
    joined = narrow.inner_join(latest, narrow[cols.event_id] == latest.wk_event)
    return joined.mutate(**{label_name: joined.wk_label})


# ---------------------------------------------------------------------------------------
# which windows


def dirty_windows(
    store: Store, model: ModelConfig, size: timedelta, now: datetime
) -> list[datetime]:
    """Closed windows with data that arrived after their metrics were last computed."""
    touched = store.table(TOUCHED)
    mine = touched.filter(touched.model == model.name)
    hours = store.execute(mine.group_by("hour").aggregate(last=mine.wk_ingested_at.max()))
    last_touch: dict[datetime, datetime] = {}
    hour = timedelta(hours=1)
    for row in hours.to_pylist():
        for start in _windows_of_hour(row["hour"], size, hour):
            last_touch[start] = max(last_touch.get(start, row["last"]), row["last"])
    if not last_touch:
        return []
    metrics = store.table(METRICS)
    computed_rows = store.execute(
        metrics.filter(metrics.model == model.name)
        .group_by(["window_start", "window_end"])
        .aggregate(at=metrics.computed_at.max())
    )
    computed = {
        r["window_start"]: r["at"]
        for r in computed_rows.to_pylist()
        if r["window_end"] - r["window_start"] == size
    }
    return sorted(
        start
        for start, touch in last_touch.items()
        if start + size <= now and (start not in computed or touch > computed[start])
    )


def _windows_of_hour(hour: datetime, size: timedelta, one_hour: timedelta) -> Iterable[datetime]:
    start = window_start(hour, size)
    while start < hour + one_hour:
        yield start
        start += size


# ---------------------------------------------------------------------------------------
# statistics


@dataclass(frozen=True)
class _Where:
    window_start: datetime
    window_end: datetime
    version: str
    segment_column: str
    segment_value: str


@dataclass
class _Row:
    where: _Where
    metric: str
    column: str
    value: float | None
    sample_size: int
    status: str = OK
    p_value: float | None = None
    threshold: float | None = None
    detail: str = ""
    lower: float | None = None
    upper: float | None = None
    provisional: bool = False


def slice_columns(model: ModelConfig) -> list[str]:
    """The columns whose values are monitored separately: segments, then sensitive attributes."""
    return list(dict.fromkeys([*model.columns.segments, *model.columns.sensitive]))


def _homogeneity_p(table: np.ndarray[Any, Any]) -> float | None:
    """The p-value that the rows (groups) share one proportion."""
    found = homogeneity(table)
    return None if found is None else found[1]


def fairness_rows(
    model: ModelConfig,
    profiles: dict[Key, Profile],
    counts: dict[Key, BinaryCounts],
    refs: dict[str, ReferenceProfile],
    size: timedelta,
    now: datetime,
) -> list[_Row]:
    """Per sensitive attribute: each group's share of traffic against the reference, and the
    disparities between groups (as fairlearn defines them), with a test of homogeneity so a
    gap measured on a few people reads as uncertain. Groups with fewer than
    ``monitoring.min_labels`` labelled events are left out of the disparities, and named."""
    rows: list[_Row] = []
    minimum = model.monitoring.min_labels
    windows = sorted({(k[0], k[1]) for k in profiles})
    for start, version in windows:
        total = profiles.get((start, version, ALL, ALL))
        for column in model.columns.sensitive:
            groups = sorted(
                k for k in profiles if k[:3] == (start, version, column) and k[3] != OTHER_SEGMENT
            )
            ref = refs[version]
            for key in groups:
                share = profiles[key].rows / total.rows if total and total.rows else None
                ref_profile = ref.segments.get((column, key[3]))
                ref_share = (
                    ref_profile.rows / ref.overall.rows
                    if ref_profile and ref.overall.rows
                    else None
                )
                rows.append(
                    _Row(
                        _Where(start, start + size, version, column, key[3]),
                        "traffic_share",
                        "",
                        share,
                        profiles[key].rows,
                        detail="" if ref_share is None else f"{ref_share:.1%} of the reference",
                    )
                )
            enough = [k for k in groups if k in counts and counts[k].n >= minimum]
            everyone = counts.get((start, version, ALL, ALL))
            if everyone is not None:
                rows += _to_overall(enough, counts, everyone, start, size, version, column)
            if len(enough) < 2:
                continue
            small = [k[3] for k in groups if k not in enough]
            c = [counts[k] for k in enough]
            selection = np.array([[x.tp + x.fp, x.tn + x.fn] for x in c], dtype=float)
            tpr = np.array([[x.tp, x.fn] for x in c], dtype=float)
            fpr = np.array([[x.fp, x.tn] for x in c], dtype=float)
            rates = {
                "selection": selection[:, 0] / selection.sum(axis=1),
                "tpr": _safe_rate(tpr),
                "fpr": _safe_rate(fpr),
            }
            p_sel = _homogeneity_p(selection)
            p_eo = [p for p in (_homogeneity_p(tpr), _homogeneity_p(fpr)) if p is not None]
            eo_p = min(1.0, 2 * min(p_eo)) if p_eo else None
            sel = rates["selection"]
            tp_diff = float(np.nanmax(rates["tpr"]) - np.nanmin(rates["tpr"]))
            fp_diff = float(np.nanmax(rates["fpr"]) - np.nanmin(rates["fpr"]))
            values = {
                "demographic_parity_difference": (float(sel.max() - sel.min()), p_sel),
                "demographic_parity_ratio": (_ratio(sel), p_sel),
                "equalized_odds_difference": (max(tp_diff, fp_diff), eo_p),
                "equalized_odds_ratio": (
                    min(_ratio(rates["tpr"]), _ratio(rates["fpr"])),
                    eo_p,
                ),
            }
            n = sum(x.n for x in c)
            everyone = counts.get((start, version, ALL, ALL))
            coverage = everyone.n / total.rows if everyone and total and total.rows else 0.0
            final = (
                coverage >= model.labels.expected_coverage
                or now - (start + size) >= model.labels.max_delay
            )
            note = f"groups with too few labels left out: {', '.join(small)}" if small else ""
            for name, (value, p) in values.items():
                rows.append(
                    _Row(
                        _Where(start, start + size, version, column, ALL),
                        name,
                        "",
                        value,
                        n,
                        p_value=p,
                        detail=note,
                        provisional=not final,
                    )
                )
    return rows


# The metrics a segment is compared on with the rest of the traffic: (successes, trials)
# of a proportion from the counts, by model kind.
_GAP_PROPORTIONS: dict[str, Callable[[BinaryCounts], tuple[int, int]]] = {
    "accuracy": lambda c: (c.tp + c.tn, c.n),
    "recall": lambda c: (c.tp, c.tp + c.fn),
    "precision": lambda c: (c.tp, c.tp + c.fp),
    "false_positive_rate": lambda c: (c.fp, c.fp + c.tn),
}


def segment_gap_rows(
    model: ModelConfig,
    counts: dict[Key, BinaryCounts | MulticlassCounts | RegressionSums | RankingSums],
    size: timedelta,
) -> list[_Row]:
    """Each segment against the rest of the traffic (whole minus segment, since a segment
    column's values partition the traffic): the difference and a two-sided test, with
    Benjamini-Hochberg across the window's segments and metrics. Status ``worse`` when the
    segment is significantly worse; the value is segment minus rest."""
    pending: dict[datetime, list[tuple[_Row, float | None]]] = defaultdict(list)
    minimum = model.monitoring.min_labels
    for key, c in counts.items():
        start, version, seg_col, seg_val = key
        whole = counts.get((start, version, ALL, ALL))
        if seg_col == ALL or whole is None or c.n < minimum or whole.n - c.n < minimum:
            continue
        where = _Where(start, start + size, version, seg_col, seg_val)
        tests: list[tuple[str, float | None, float | None, bool]] = []
        if isinstance(c, BinaryCounts) and isinstance(whole, BinaryCounts):
            for name, parts in _GAP_PROPORTIONS.items():
                k1, n1 = parts(c)
                k_all, n_all = parts(whole)
                diff, p = _two_proportions(k1, n1, k_all - k1, n_all - n1)
                tests.append((name, diff, p, name != "false_positive_rate"))
        elif isinstance(c, MulticlassCounts) and isinstance(whole, MulticlassCounts):
            k1, k_all = int(np.trace(c.confusion)), int(np.trace(whole.confusion))
            diff, p = _two_proportions(k1, c.n, k_all - k1, whole.n - c.n)
            tests.append(("accuracy", diff, p, True))
        elif isinstance(c, RegressionSums) and isinstance(whole, RegressionSums):
            rest = RegressionSums(
                **{f: getattr(whole, f) - getattr(c, f) for f in c.__dataclass_fields__}
            )
            diff, p = _welch(c.abs_error, c.error_sq, c.n, rest.abs_error, rest.error_sq, rest.n)
            tests.append(("mae", diff, p, False))
        for name, diff, p, higher_is_better in tests:
            row = _Row(where, "segment_gap", name, diff, c.n)
            worse = diff is not None and (diff < 0 if higher_is_better else diff > 0)
            row.detail = "worse than the rest" if worse else "not worse than the rest"
            pending[start].append((row, p if worse else None))
            row.p_value = p
    out: list[_Row] = []
    for items in pending.values():
        tested = [(i, p) for i, (_, p) in enumerate(items) if p is not None]
        q_values = dict(
            zip([i for i, _ in tested], benjamini_hochberg([p for _, p in tested]), strict=True)
        )
        for i, (row, _) in enumerate(items):
            q = q_values.get(i)
            if q is not None:
                row.p_value = q
                if q < model.monitoring.numeric_drift.alpha:
                    row.status = "worse"
            out.append(row)
    return out


def _two_proportions(k1: int, n1: int, k2: int, n2: int) -> tuple[float | None, float | None]:
    """Difference p1 - p2 and the two-sided p-value of the pooled two-proportion z-test."""
    if n1 <= 0 or n2 <= 0:
        return None, None
    p1, p2 = k1 / n1, k2 / n2
    pooled = (k1 + k2) / (n1 + n2)
    se = (pooled * (1 - pooled) * (1 / n1 + 1 / n2)) ** 0.5
    if se == 0:
        return p1 - p2, 1.0
    return p1 - p2, float(special.erfc(abs(p1 - p2) / se / 2**0.5))


def _welch(
    s1: float, q1: float, n1: int, s2: float, q2: float, n2: int
) -> tuple[float | None, float | None]:
    """Difference of means and the two-sided p-value of Welch's test (normal approximation)."""
    if n1 < 2 or n2 < 2:
        return None, None
    m1, m2 = s1 / n1, s2 / n2
    v1 = max(q1 / n1 - m1 * m1, 0.0) * n1 / (n1 - 1)
    v2 = max(q2 / n2 - m2 * m2, 0.0) * n2 / (n2 - 1)
    se = (v1 / n1 + v2 / n2) ** 0.5
    if se == 0:
        return m1 - m2, 1.0
    return m1 - m2, float(special.erfc(abs(m1 - m2) / se / 2**0.5))


_FAIRNESS_RATES: dict[str, Callable[[BinaryCounts], tuple[int, int]]] = {
    "positive_rate": lambda c: (c.tp + c.fp, c.n),  # selection rate
    "recall": lambda c: (c.tp, c.tp + c.fn),  # true positive rate
    "false_positive_rate": lambda c: (c.fp, c.fp + c.tn),
    "precision": lambda c: (c.tp, c.tp + c.fp),
}


def _to_overall(
    groups: list[Key],
    counts: dict[Key, BinaryCounts],
    everyone: BinaryCounts,
    start: datetime,
    size: timedelta,
    version: str,
    column: str,
) -> list[_Row]:
    """Each group's rates against the whole traffic's: ``difference_to_overall`` (with the
    p-value of the group against the rest) and ``ratio_to_overall``, column: the rate."""
    out = []
    for key in groups:
        c = counts[key]
        where = _Where(start, start + size, version, column, key[3])
        for name, parts in _FAIRNESS_RATES.items():
            k, n = parts(c)
            k_all, n_all = parts(everyone)
            if n == 0 or n_all == 0:
                continue
            rate, overall = k / n, k_all / n_all
            _, p = _two_proportions(k, n, k_all - k, n_all - n)
            detail = f"{rate:.3g} against {overall:.3g} overall"
            out.append(
                _Row(
                    where,
                    "difference_to_overall",
                    name,
                    rate - overall,
                    n,
                    p_value=p,
                    detail=detail,
                )
            )
            ratio = rate / overall if overall else None
            out.append(_Row(where, "ratio_to_overall", name, ratio, n, detail=detail))
    return out


def _safe_rate(table: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    totals = table.sum(axis=1)
    return np.where(totals > 0, table[:, 0] / np.maximum(totals, 1), np.nan)


def _ratio(values: np.ndarray[Any, Any]) -> float:
    values = values[np.isfinite(values)]
    if len(values) == 0 or values.max() == 0:
        return 1.0
    return float(values.min() / values.max())


def performance_rows(
    model: ModelConfig,
    profiles: dict[Key, Profile],
    labelled: dict[Key, int],
    counts: dict[Key, BinaryCounts | MulticlassCounts | RegressionSums | RankingSums],
    size: timedelta,
    now: datetime,
) -> list[_Row]:
    """Label coverage for every window, and performance where labels are: provisional
    until the window's labels are as complete as they will be."""
    rows: list[_Row] = []
    expected = model.labels.expected_coverage
    max_delay = model.labels.max_delay
    minimum = model.monitoring.min_labels
    for key in sorted(profiles):
        start, version, seg_col, seg_val = key
        where = _Where(start, start + size, version, seg_col, seg_val)
        total = profiles[key].rows
        n = labelled.get(key, counts[key].n if key in counts else 0)
        coverage = n / total if total else 0.0
        final = coverage >= expected or now - (start + size) >= max_delay
        maturity = (
            f"labels for {coverage:.0%} of events ({expected:.0%} expected); "
            f"final by {start + size + max_delay:%Y-%m-%d %H:%M}"
        )
        rows.append(
            _Row(
                where,
                "label_coverage",
                "",
                coverage,
                total,
                provisional=not final,
                detail="" if final else maturity,
            )
        )
        if key not in counts:
            continue
        c = counts[key]
        if isinstance(c, BinaryCounts) and model.costs is not None:
            # Business impact of the decisions, from the confusion counts and the cost matrix.
            cost = c.fp * model.costs.false_positive + c.fn * model.costs.false_negative
            value = c.tp * model.costs.true_positive_value
            for name, amount in (("cost", cost), ("value", value), ("net_value", value - cost)):
                rows.append(
                    _Row(
                        where,
                        name,
                        "",
                        float(amount),
                        c.n,
                        provisional=not final,
                        detail=f"{c.tp} TP, {c.fp} FP, {c.fn} FN"
                        + ("" if final else f"; {maturity}"),
                    )
                )
        metrics: dict[str, Callable[[Any], Estimate]] = (
            dict(PERFORMANCE)
            if isinstance(c, BinaryCounts)
            else dict(MULTICLASS)
            if isinstance(c, MulticlassCounts)
            else dict(RANKING)
            if isinstance(c, RankingSums)
            else dict(REGRESSION)
        )
        estimates = [(name, "", metric(c)) for name, metric in metrics.items()]
        if isinstance(c, MulticlassCounts):
            estimates += [("recall", cls, e) for cls, e in class_recall(c).items()]
        if isinstance(c, BinaryCounts):
            # The reliability table: positive rate per score bin (mean score in the detail).
            for bin_row in reliability(c):
                label = f"[{bin_row.low:.1f}, {bin_row.high:.1f})"
                e = wilson(round((bin_row.positive_rate or 0.0) * bin_row.count), bin_row.count)
                rows.append(
                    _Row(
                        where,
                        "reliability",
                        label,
                        e.value,
                        bin_row.count,
                        lower=e.lower,
                        upper=e.upper,
                        provisional=not final,
                        detail=""
                        if bin_row.mean_score is None
                        else f"mean score {bin_row.mean_score:.3f}",
                    )
                )
        for name, column, estimate in estimates:
            row = _Row(
                where,
                name,
                column,
                estimate.value,
                estimate.sample_size,
                provisional=not final,
                lower=estimate.lower,
                upper=estimate.upper,
            )
            notes = [] if final else [maturity]
            if estimate.bound:
                notes.append(f"within {estimate.bound:.2g} of the unbinned value")
            if c.n < minimum or estimate.value is None:
                row.status, row.value, row.lower, row.upper = INSUFFICIENT, None, None, None
                notes.insert(0, f"{c.n} labelled events; needs {minimum}")
            row.detail = "; ".join(notes)
            rows.append(row)
    return rows


def drift_rule(model: ModelConfig, b: Binning) -> DriftConfig:
    feature = model.feature(b.name)
    if feature is not None and feature.drift is not None:
        return feature.drift
    mon = model.monitoring
    return mon.numeric_drift if b.kind == "numeric" else mon.categorical_drift


def _methods(model: ModelConfig, b: Binning, rule: DriftConfig) -> list[drift_methods.Method]:
    """The drift methods stored for a column: those that decide, and the configured extras."""
    wanted = model.monitoring.drift_methods
    keys = {rule.effect, rule.test}
    return [
        m
        for m in drift_methods.methods_for(b.kind)
        if m.key in keys or wanted == "all" or m.key in wanted
    ]


def metric_rows(
    model: ModelConfig,
    profiles: dict[Key, Profile],
    refs: dict[str, ReferenceProfile],
    size: timedelta,
) -> list[_Row]:
    rows: list[_Row] = []
    decisions: dict[datetime, list[tuple[_Row, float, float, float | None, DriftConfig]]] = (
        defaultdict(list)
    )
    min_rows = model.monitoring.min_rows
    for key in sorted(profiles):
        start, version, seg_col, seg_val = key
        profile = profiles[key]
        ref = refs[version]
        ref_profile, own = ref.for_segment(seg_col, seg_val)
        base = _Where(start, start + size, version, seg_col, seg_val)
        rows.append(
            _Row(base, metric="row_count", column="", value=profile.rows, sample_size=profile.rows)
        )
        if model.columns.status:
            value = profile.errors / profile.rows if profile.rows else None
            rows.append(
                _Row(base, metric="error_rate", column="", value=value, sample_size=profile.rows)
            )
        for name, cur in profile.columns.items():
            b = ref.binning(name) or latency_binning(name)
            for metric in quality.REGISTRY.values():
                if b.kind in metric.kinds:
                    value, n = metric.compute(cur, b)
                    rows.append(
                        _Row(base, metric=metric.key, column=name, value=_num(value), sample_size=n)
                    )
            if b.role == "latency":
                for key_q, q in LATENCY_QUANTILES:
                    value = quality.histogram_quantile(cur, b.edges, q)
                    rows.append(
                        _Row(
                            base,
                            metric=key_q,
                            column=name,
                            value=_num(value),
                            sample_size=cur.present,
                        )
                    )
                continue
            reference = ref_profile.columns.get(name)
            if reference is None:
                continue
            comparison = Comparison(b, reference, cur)
            enough = cur.present >= min_rows and reference.present >= min_rows
            note = (
                ""
                if own
                else "compared with the whole reference (no reference rows for this segment)"
            )
            rule = drift_rule(model, b)
            results: dict[str, drift_methods.Result | None] = {}
            for method in _methods(model, b, rule):
                result = drift_methods.compare(method.key, comparison) if enough else None
                results[method.key] = result
                if result is None:
                    rows.append(
                        _Row(
                            base,
                            metric=f"drift_{method.key}",
                            column=name,
                            value=None,
                            sample_size=cur.present,
                            status=INSUFFICIENT,
                            threshold=method.threshold,
                            detail=f"needs {min_rows} values on each side",
                        )
                    )
                    continue
                flagged = (
                    (result.p_value is not None and result.p_value < method.threshold)
                    if method.is_test
                    else result.statistic >= method.threshold
                )
                rows.append(
                    _Row(
                        base,
                        metric=f"drift_{method.key}",
                        column=name,
                        value=result.statistic,
                        sample_size=cur.present,
                        status=DRIFTED if flagged else OK,
                        p_value=result.p_value,
                        threshold=method.threshold,
                        detail=note,
                    )
                )
            decision = _Row(base, metric="drift", column=name, value=None, sample_size=cur.present)
            effect = results.get(rule.effect) if rule.effect else None
            test = results.get(rule.test) if rule.test else None
            if (rule.effect and effect is None) or (rule.test and test is None):
                decision.status = INSUFFICIENT
                decision.detail = f"needs {min_rows} values on each side"
                rows.append(decision)
                continue
            threshold = (
                rule.threshold
                if rule.threshold is not None
                else (drift_methods.get(rule.effect).threshold if rule.effect else 0.0)
            )
            decision.threshold = threshold
            decision.detail = note
            decisions[start].append(
                (
                    decision,
                    effect.statistic if effect else math.inf,
                    threshold,
                    test.p_value if test else None,
                    rule,
                )
            )
            rows.append(decision)
    # Benjamini-Hochberg across the features, outputs and segments of each window.
    for items in decisions.values():
        tested = [(i, p) for i, (_, _, _, p, _) in enumerate(items) if p is not None]
        q_values = benjamini_hochberg([p for _, p in tested])
        adjusted = {i: q for (i, _), q in zip(tested, q_values, strict=True)}
        for i, (row, effect_value, threshold, _, rule) in enumerate(items):
            q_value = adjusted.get(i)
            big = effect_value >= threshold
            significant = q_value is None or q_value < rule.alpha
            drifted = big and significant
            row.value = 1.0 if drifted else 0.0
            row.p_value = q_value
            row.status = DRIFTED if drifted else OK
            parts = []
            if rule.effect:
                parts.append(
                    f"{rule.effect} {effect_value:.3g} {'>=' if big else '<'} {threshold:g}"
                )
            if q_value is not None:
                parts.append(
                    f"{rule.test} q {q_value:.2g} {'<' if significant else '>='} {rule.alpha:g}"
                )
            row.detail = "; ".join([*parts, row.detail] if row.detail else parts)
    return rows


def _num(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _volume_rows(
    store: Store,
    model: ModelConfig,
    profiles: dict[Key, Profile],
    size: timedelta,
    starts: Sequence[datetime],
) -> list[_Row]:
    """Rows against what the recent windows lead one to expect (their median)."""
    current: dict[tuple[str, str, str], dict[datetime, float]] = defaultdict(
        lambda: defaultdict(float)
    )
    for (start, _, col, val), p in profiles.items():
        current[(col, val, "")][start] += p.rows
    return _against_recent(store, model, "row_count", "volume_ratio", "rows", current, size)


def _against_recent(
    store: Store,
    model: ModelConfig,
    metric: str,
    ratio_metric: str,
    unit: str,
    current: dict[tuple[str, str, str], dict[datetime, float]],
    size: timedelta,
) -> list[_Row]:
    """``ratio_metric``: this window's ``metric`` over the median of the recent windows'
    (the run's own and the stored ones), per segment and column; version ``*``."""
    starts = sorted({s for by_start in current.values() for s in by_start})
    if not starts:
        return []
    n = model.monitoring.baseline_windows
    metrics = store.table(METRICS)
    hist = store.execute(
        metrics.filter(
            (metrics.model == model.name)
            & (metrics.metric == metric)
            & (metrics.window_start >= min(starts) - n * size)
            & (metrics.window_start < max(starts))
        )
        .group_by(["window_start", "window_end", "segment_column", "segment_value", "column"])
        .aggregate(total=metrics.value.sum())
    )
    history: dict[tuple[str, str, str], dict[datetime, float]] = defaultdict(dict)
    for r in hist.to_pylist():
        if r["window_end"] - r["window_start"] == size and r["total"] is not None:
            key = (r["segment_column"], r["segment_value"], r["column"])
            history[key][r["window_start"]] = r["total"]
    out = []
    for key, values in current.items():
        known = {**history.get(key, {}), **values}
        for start in sorted(values):
            previous = [x for i in range(1, n + 1) if (x := known.get(start - i * size, 0.0))]
            if len(previous) < max(3, n // 4):
                continue
            expected = statistics.median(previous)
            out.append(
                _Row(
                    _Where(start, start + size, ANY_VERSION, key[0], key[1]),
                    ratio_metric,
                    key[2],
                    values[start] / expected if expected else None,
                    len(previous),
                    detail=f"expected {expected:,.4g} {unit} "
                    f"(median of the last {len(previous)} windows)",
                )
            )
    return out


def _outcome_rows(
    store: Store,
    model: ModelConfig,
    events: ir.Table,
    profiles: dict[Key, Profile],
    w: Windowing,
    now: datetime,
) -> list[_Row]:
    """Business outcomes per window (whole traffic): per-event outcomes by their event's
    time, with their rate per event; outcomes logged as a time series by their own time.
    Per-event outcomes arrive like labels do, so a window's are provisional until the
    labels' maximum delay has passed."""
    table = spec_for("outcomes", model).table
    if table not in store.tables() or not w.size:
        return []
    t = store.table(table)
    order = [ibis.desc(t[INGESTED_AT]), ibis.desc(t[BATCH])]
    ranked = t.mutate(wk_rank=ibis.row_number().over(group_by=t[KEY], order_by=order))
    latest = ranked.filter(ranked.wk_rank == 0)
    size_us = int(w.size.total_seconds()) * 1_000_000
    ts = model.columns.timestamp
    scoped = _scope(store, events, ts, w)
    per_event = scoped.inner_join(
        latest.filter(latest.event_id.notnull()), scoped[model.columns.event_id] == latest.event_id
    )
    found = store.execute(
        per_event.mutate(wk_w=store.epoch_micros(per_event[ts]) // size_us)
        .group_by(["wk_w", "outcome"])
        .aggregate(total=ibis._.value.sum(), n=ibis._.count())
    ).to_pylist()
    series = latest.filter(latest.event_id.isnull())
    series = _scope(store, series, "timestamp", w)
    found_series = store.execute(
        series.mutate(wk_w=store.epoch_micros(series.timestamp) // size_us)
        .group_by(["wk_w", "outcome"])
        .aggregate(total=ibis._.value.sum(), n=ibis._.count())
    ).to_pylist()
    rows_by_start: dict[datetime, int] = defaultdict(int)
    for (start, _, col, _val), p in profiles.items():
        if col == ALL:
            rows_by_start[start] += p.rows
    out: list[_Row] = []
    rates: dict[tuple[str, str, str], dict[datetime, float]] = defaultdict(dict)
    for kind, found_rows in (("event", found), ("series", found_series)):
        for r in found_rows:
            start = EPOCH + timedelta(microseconds=r["wk_w"] * size_us)
            where = _Where(start, start + w.size, ANY_VERSION, ALL, ALL)
            total = float(r["total"] or 0.0)
            early = kind == "event" and now < start + w.size + model.labels.max_delay
            out.append(
                _Row(where, "outcome_total", r["outcome"], total, int(r["n"]), provisional=early)
            )
            events_n = rows_by_start.get(start, 0)
            if kind == "event" and events_n:
                rate = total / events_n
                out.append(
                    _Row(
                        where,
                        "outcome_rate",
                        r["outcome"],
                        rate,
                        events_n,
                        provisional=early,
                        detail=f"{total:g} over {events_n:,} events"
                        + ("; outcomes still arriving" if early else ""),
                    )
                )
                rates[(ALL, ALL, r["outcome"])][start] = rate
    out += _against_recent(
        store, model, "outcome_rate", "outcome_change", "per event", rates, w.size
    )
    return out


def _arrived(
    table: ir.Table, at: str, size: timedelta, starts: Sequence[datetime]
) -> tuple[ir.Table, int]:
    """Rows that arrived (by ``at``) in the given windows, with their window index ``w``."""
    secs = int(size.total_seconds())
    wanted = [int((s - EPOCH).total_seconds()) // secs for s in starts]
    keyed = table.mutate(w=(table[at].epoch_seconds() // secs).cast("int64"))
    return keyed.filter(keyed.w.isin(wanted)), secs


def _quarantine_rows(
    store: Store, model: ModelConfig, size: timedelta, starts: Sequence[datetime]
) -> list[_Row]:
    """Quarantined rows by reason, per window of the time they arrived."""
    if not starts:
        return []
    q = store.table(QUARANTINE)
    mine, secs = _arrived(q.filter(q.model == model.name), "wk_ingested_at", size, starts)
    found = store.execute(mine.group_by(["w", "reason"]).aggregate(n=ibis._.count()))
    out = []
    for r in found.to_pylist():
        start = EPOCH + timedelta(seconds=r["w"] * secs)
        out.append(
            _Row(
                _Where(start, start + size, ANY_VERSION, ALL, ALL),
                "quarantined_rows",
                r["reason"],
                float(r["n"]),
                int(r["n"]),
            )
        )
    return out


def _schema_rows(
    store: Store, model: ModelConfig, size: timedelta, starts: Sequence[datetime]
) -> list[_Row]:
    """Columns missing from or unexpected in the inputs that arrived in each window."""
    if not starts:
        return []
    t = store.table(INGESTIONS)
    mine, secs = _arrived(
        t.filter((t.model == model.name) & (t.kind == "events")), "started_at", size, starts
    )
    found = store.execute(mine.select("w", "missing_columns", "unexpected_columns"))
    changes: dict[int, tuple[set[str], set[str]]] = defaultdict(lambda: (set(), set()))
    for r in found.to_pylist():
        missing, unexpected = changes[r["w"]]
        missing.update(json.loads(r["missing_columns"] or "[]"))
        unexpected.update(json.loads(r["unexpected_columns"] or "[]"))
    out = []
    for w in sorted(changes):
        missing, unexpected = changes[w]
        start = EPOCH + timedelta(seconds=w * secs)
        detail = "; ".join(
            part
            for part in (
                f"missing: {', '.join(sorted(missing))}" if missing else "",
                f"unexpected: {', '.join(sorted(unexpected))}" if unexpected else "",
            )
            if part
        )
        out.append(
            _Row(
                _Where(start, start + size, ANY_VERSION, ALL, ALL),
                "schema_changes",
                "",
                float(len(missing) + len(unexpected)),
                0,
                status=OK if not detail else "changed",
                detail=detail,
            )
        )
    return out


# ---------------------------------------------------------------------------------------
# writing


def _metrics_table(rows: list[_Row], model: str, run_id: str, now: datetime) -> pa.Table:
    n = len(rows)
    return pa.table(
        {
            "model": [model] * n,
            "model_version": [r.where.version for r in rows],
            "window_start": [r.where.window_start for r in rows],
            "window_end": [r.where.window_end for r in rows],
            "segment_column": [r.where.segment_column for r in rows],
            "segment_value": [r.where.segment_value for r in rows],
            "metric": [r.metric for r in rows],
            "column": [r.column for r in rows],
            "value": [None if r.value is None else float(r.value) for r in rows],
            "lower": [r.lower for r in rows],
            "upper": [r.upper for r in rows],
            "p_value": [r.p_value for r in rows],
            "threshold": [r.threshold for r in rows],
            "sample_size": [r.sample_size for r in rows],
            "status": [r.status for r in rows],
            "provisional": [r.provisional for r in rows],
            "detail": [r.detail for r in rows],
            "run_id": [run_id] * n,
            "computed_at": [now] * n,
        },
        schema=_METRICS_SCHEMA,
    )


def _profiles_table(
    profiles: dict[Key, Profile], model: str, size: timedelta, run_id: str
) -> pa.Table:
    rows: list[tuple[Key, str, ColumnProfile]] = [
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
        "metrics": result.metrics.num_rows,
        "seconds": round(result.seconds, 3),
        "notes": result.notes,
    }
    store.insert(
        RUNS,
        pa.table(
            {
                "run_id": [result.run_id],
                "model": [result.model],
                "started_at": [now],
                "finished_at": [now],
                "status": [status],
                "windows": [len(result.windows)],
                "detail": [json.dumps(detail)],
            },
            schema=_RUNS_SCHEMA,
        ),
    )
