"""Multiclass classification: a confusion matrix per window, the metrics over it, and
performance estimated one class against the rest (each class's score through its own
calibration map, split by whether the event was predicted as the class)."""

from __future__ import annotations

import json
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np

from watchkeeper.config import ModelConfig
from watchkeeper.profiles.base import Engine, Key, Source, Windowing
from watchkeeper.profiles.counts import MulticlassCounts
from watchkeeper.profiles.labelled import compute_multiclass_counts, compute_score_histogram
from watchkeeper.stats.comparisons import two_proportions
from watchkeeper.stats.estimation import CalibrationMap, estimated_multiclass, one_vs_rest
from watchkeeper.stats.multiclass import METRICS, class_recall
from watchkeeper.tasks.base import Estimated, EstimationInputs, Extra, Gap, Task
from watchkeeper.tasks.binary import fit_calibration

PREDICTED = "wk_predicted"  # the argmax class, when no prediction column is logged


def counts(
    model: ModelConfig, source: Source, windowing: Windowing | None, engine: Engine
) -> dict[Key, MulticlassCounts] | None:
    if model.columns.prediction is None:
        return None
    return compute_multiclass_counts(
        source,
        model.columns.prediction,
        model.labels.column,
        model.classes or (),
        model.columns.scores,
        windowing,
        engine,
    )


def extras(model: ModelConfig, c: MulticlassCounts) -> list[Extra]:
    return [Extra("recall", cls, e) for cls, e in class_recall(c).items()]


def gaps(c: MulticlassCounts, whole: MulticlassCounts) -> list[Gap]:
    k1, k_all = int(np.trace(c.confusion)), int(np.trace(whole.confusion))
    diff, p = two_proportions(k1, c.n, k_all - k1, whole.n - c.n)
    return [Gap("accuracy", diff, p, True)]


def loss(model: ModelConfig, labelled: ir.Table) -> tuple[ir.Value, bool] | None:
    prediction = model.columns.prediction
    if prediction is None:
        return None
    wrong = labelled[prediction].cast("string") != labelled.wk_label.cast("string")
    return wrong.cast("float64"), True


def realized(c: MulticlassCounts, name: str) -> float | None:
    if name.startswith("recall:"):
        found = class_recall(c).get(name.split(":", 1)[1])
        return None if found is None else found.value
    return METRICS[name](c).value if name in METRICS else None


def _scored(model: ModelConfig) -> dict[str, str] | None:
    """Each class's score column, when every class has one."""
    scores = model.columns.scores or {}
    classes = model.classes or ()
    if not classes or any(c not in scores for c in classes):
        return None
    return {c: scores[c] for c in classes}


class OneVsRest:
    kind = "calibration"

    def fit(
        self, model: ModelConfig, reference: ir.Table, version: str, engine: Engine
    ) -> dict[str, CalibrationMap] | None:
        scores = _scored(model)
        if scores is None:
            return None
        out = {}
        for cls, column in scores.items():
            found = fit_calibration(
                engine, reference, column, model.labels.column, 0.5, version, positive=cls
            )
            if found is None:
                return None
            out[cls] = found
        return out

    def dumps(self, fitted: dict[str, CalibrationMap]) -> str:
        return json.dumps({cls: m.to_json() for cls, m in fitted.items()})

    def loads(self, text: str) -> dict[str, CalibrationMap]:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not stored calibration maps")
        return {str(cls): CalibrationMap.from_json(m) for cls, m in data.items()}

    def note(self, fitted: dict[str, CalibrationMap]) -> str:
        isotonic = any(m.method == "isotonic" for m in fitted.values())
        return "one class against the rest; " + (
            "scores calibrated by isotonic regression on the reference"
            if isotonic
            else "scores read as probabilities"
        )

    def aggregate(
        self, fitted: dict[str, CalibrationMap], inputs: EstimationInputs
    ) -> dict[Key, dict[str, Any]]:
        """Per window × segment and class, the class's score histogram over the events
        predicted as another class, then over those predicted as it."""
        model, source = inputs.model, inputs.source
        scores = _scored(model) or {}
        prediction = model.columns.prediction
        if prediction is None:
            table = source.table
            top = ibis.greatest(*(table[scores[c]] for c in scores))
            table = table.mutate(
                **{PREDICTED: ibis.cases(*((table[scores[c]] == top, c) for c in scores))}
            )
            source = Source(table, source.timestamp, source.version, source.status, source.segments)
            prediction = PREDICTED
        out: dict[Key, dict[str, Any]] = {}
        for cls, column in scores.items():
            found = compute_score_histogram(
                source, column, inputs.windowing, inputs.engine, predicted=(prediction, cls)
            )
            for key, hist in found.items():
                out.setdefault(key, {})[cls] = hist
        return out

    scales = True

    def scaled(self, aggregate: dict[str, Any], events: float) -> dict[str, Any]:
        """Each class's histogram counts every event once (split by the prediction)."""
        out = {}
        for cls, hist in aggregate.items():
            total = float(hist.sum())
            out[cls] = hist * (events / total) if total else hist
        return out

    def estimate(
        self, model: ModelConfig, fitted: dict[str, CalibrationMap], aggregate: Any
    ) -> Estimated:
        if len(aggregate) != len(fitted):
            return Estimated({})
        per_class = {cls: one_vs_rest(hist, fitted[cls]) for cls, hist in aggregate.items()}
        return Estimated(estimated_multiclass(per_class))


TASK = Task(
    key="multiclass_classification",
    headline="macro_f1",
    metrics=METRICS,
    counts=counts,
    extras=extras,
    gaps=gaps,
    loss=loss,
    estimator=OneVsRest(),
    realized=realized,
)

__all__ = ["TASK", "OneVsRest"]
