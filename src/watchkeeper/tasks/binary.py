"""Binary classification: counts per score bin × label × prediction, the metrics over them,
and performance estimated from the score histogram through a calibration map fitted on the
reference (confidence-based estimation)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np

from watchkeeper.config import ModelConfig
from watchkeeper.profiles.base import Engine, Key, Segment, Source, Windowing
from watchkeeper.profiles.counts import BinaryCounts
from watchkeeper.profiles.labelled import compute_binary_counts, compute_score_histogram
from watchkeeper.stats.comparisons import two_proportions
from watchkeeper.stats.estimation import (
    ESTIMATES,
    CalibrationMap,
    expected_confusion,
    one_vs_rest,
)
from watchkeeper.stats.performance import METRICS, reliability, wilson
from watchkeeper.tasks.base import Confusion, Estimated, EstimationInputs, Extra, Gap, Task

CALIBRATION_FOLDS = 5


def counts(
    model: ModelConfig, source: Source, windowing: Windowing | None, engine: Engine
) -> dict[Key, BinaryCounts] | None:
    score = model.columns.score
    if score is None:
        return None
    return compute_binary_counts(
        source,
        score,
        model.labels.column,
        model.columns.prediction,
        model.decision_threshold,
        windowing,
        engine,
    )


def extras(model: ModelConfig, c: BinaryCounts) -> list[Extra]:
    """The reliability table: the positive rate per score bin (mean score in the detail)."""
    out = []
    for row in reliability(c):
        label = f"[{row.low:.1f}, {row.high:.1f})"
        e = wilson(round((row.positive_rate or 0.0) * row.count), row.count)
        detail = "" if row.mean_score is None else f"mean score {row.mean_score:.3f}"
        out.append(Extra("reliability", label, e, detail, judged=False))
    return out


# The metrics a segment is compared with the rest on: (successes, trials) of a proportion.
GAP_PROPORTIONS: dict[str, Callable[[BinaryCounts], tuple[int, int]]] = {
    "accuracy": lambda c: (c.tp + c.tn, c.n),
    "recall": lambda c: (c.tp, c.tp + c.fn),
    "precision": lambda c: (c.tp, c.tp + c.fp),
    "false_positive_rate": lambda c: (c.fp, c.fp + c.tn),
}


def gaps(c: BinaryCounts, whole: BinaryCounts) -> list[Gap]:
    out = []
    for name, parts in GAP_PROPORTIONS.items():
        k1, n1 = parts(c)
        k_all, n_all = parts(whole)
        diff, p = two_proportions(k1, n1, k_all - k1, n_all - n1)
        out.append(Gap(name, diff, p, name != "false_positive_rate"))
    return out


def confusion(c: BinaryCounts) -> Confusion:
    return Confusion(c.tp, c.fp, c.tn, c.fn)


def loss(model: ModelConfig, labelled: ir.Table) -> tuple[ir.Value, bool] | None:
    """Misclassification: the declared prediction, else the score at the threshold."""
    cols = model.columns
    if cols.prediction:
        predicted = labelled[cols.prediction].cast("int64")
    elif cols.score:
        predicted = (labelled[cols.score] >= model.decision_threshold).cast("int64")
    else:
        return None
    return (predicted != labelled.wk_label.cast("int64")).cast("float64"), True


def realized(c: BinaryCounts, name: str) -> float | None:
    return METRICS[name](c).value if name in METRICS else None


def fit_calibration(
    engine: Engine,
    reference: ir.Table,
    score: str,
    label: str,
    threshold: float,
    version: str,
    positive: str | None = None,
) -> CalibrationMap | None:
    """The calibration map of the reference's ``score`` for its label (or for the label
    being ``positive``, one class against the rest): isotonic over its score bins' positive
    rates where that improves calibration under 5-fold cross-validation, else the scores as
    they are. The map depends on the score bins' labels only, not on any prediction
    (``threshold`` only fills the counts' confusion cells, which it does not read)."""
    if score not in reference.columns or label not in reference.columns:
        return None
    mine = reference
    if positive is not None:
        mine = mine.mutate(wk_y=(mine[label].cast("string") == positive).cast("int64"))
        label = "wk_y"
    # Rows with the same score and label are interchangeable here, so ordering by them
    # makes the folds' counts (and the choice) the same from run to run.
    order = ibis.row_number().over(order_by=[mine[score], mine[label]])
    mine = mine.mutate(wk_fold=(order % CALIBRATION_FOLDS).cast("string"))
    folds = Segment(tuple(str(i) for i in range(CALIBRATION_FOLDS)), complete=True)
    source = Source(mine, None, ibis.literal(version), segments={"wk_fold": folds})
    found = compute_binary_counts(source, score, label, None, threshold, None, engine, ranks=False)
    per_fold = [c for k, c in sorted(found.items()) if k[2] == "wk_fold" and c.n > 0]
    if not per_fold:
        return None
    return CalibrationMap.choose(per_fold)


class Calibrated:
    """Estimated performance: the window's score histogram read through the reference's
    calibration map gives the expected confusion matrix. Which events are predicted
    positive is what the model declares: with a prediction column, the histogram is split
    by it (the events predicted 0, then those predicted 1), as the realized counts are;
    without one, the score bins at or above the decision threshold. The map is P(label | score
    bin), fitted without the prediction (``fit_calibration``): both halves of a split
    histogram are read through it, assuming the prediction says nothing of the label the
    score does not (as when it cuts the score anywhere)."""

    kind = "calibration"

    def fit(
        self, model: ModelConfig, reference: ir.Table, version: str, engine: Engine
    ) -> CalibrationMap | None:
        score = model.columns.score
        if score is None:
            return None
        return fit_calibration(
            engine, reference, score, model.labels.column, model.decision_threshold, version
        )

    def dumps(self, fitted: CalibrationMap) -> str:
        return json.dumps(fitted.to_json())

    def loads(self, text: str) -> CalibrationMap:
        return CalibrationMap.from_json(json.loads(text))

    def note(self, fitted: CalibrationMap) -> str:
        return fitted.note

    def aggregate(
        self, fitted: CalibrationMap, inputs: EstimationInputs
    ) -> dict[Key, np.ndarray[Any, Any]]:
        if inputs.histograms is not None:
            return dict(inputs.histograms)
        return histograms(inputs)

    scales = True

    def scaled(self, aggregate: np.ndarray[Any, Any], events: float) -> np.ndarray[Any, Any]:
        total = float(aggregate.sum())
        return aggregate * (events / total) if total else aggregate

    def estimate(
        self, model: ModelConfig, fitted: CalibrationMap, aggregate: np.ndarray[Any, Any]
    ) -> Estimated:
        if model.columns.prediction is not None:
            expected = one_vs_rest(aggregate, fitted)  # the positive class against the rest
        else:
            expected = expected_confusion(aggregate, fitted, model.decision_threshold)
        return Estimated({name: f(expected) for name, f in ESTIMATES.items()})


def histograms(inputs: EstimationInputs) -> dict[Key, np.ndarray[Any, Any]]:
    """Events per score bin, labelled or not (what estimation and the proxies read); with a
    declared prediction column, split by it: the bins of the events predicted 0, then
    those of the events predicted 1."""
    score, prediction = inputs.model.columns.score, inputs.model.columns.prediction
    if score is None:
        return {}
    return compute_score_histogram(
        inputs.source, score, inputs.windowing, inputs.engine, predicted_positive=prediction
    )


TASK = Task(
    key="binary_classification",
    headline="roc_auc",
    metrics=METRICS,
    counts=counts,
    extras=extras,
    gaps=gaps,
    confusion=confusion,
    loss=loss,
    estimator=Calibrated(),
    histograms=histograms,
    realized=realized,
)

__all__ = ["CALIBRATION_FOLDS", "TASK", "Calibrated", "fit_calibration", "histograms"]
