"""Multiclass performance from a pushed-down confusion matrix, never from rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from watchkeeper.profiles.counts import MulticlassCounts
from watchkeeper.stats.performance import Estimate, mean_estimate, wilson


def _per_class(c: MulticlassCounts) -> tuple[np.ndarray[Any, Any], ...]:
    """Precision, recall, F1 and support per class (0 where undefined, as scikit-learn's
    zero_division=0), over the classes present in the labels or the predictions."""
    m = c.confusion.astype(float)
    tp = np.diag(m)
    predicted, support = m.sum(axis=0), m.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    present = (predicted + support) > 0
    return precision[present], recall[present], f1[present], support[present]


def accuracy(c: MulticlassCounts) -> Estimate:
    return wilson(int(np.trace(c.confusion)), c.n)


def _macro(index: int) -> Callable[[MulticlassCounts], Estimate]:
    def metric(c: MulticlassCounts) -> Estimate:
        if c.n == 0:
            return Estimate(None, None, None, 0)
        return Estimate(float(_per_class(c)[index].mean()), None, None, c.n)

    return metric


def _weighted(index: int) -> Callable[[MulticlassCounts], Estimate]:
    def metric(c: MulticlassCounts) -> Estimate:
        if c.n == 0:
            return Estimate(None, None, None, 0)
        parts = _per_class(c)
        support = parts[3]
        return Estimate(float((parts[index] * support).sum() / support.sum()), None, None, c.n)

    return metric


def log_loss(c: MulticlassCounts) -> Estimate:
    return mean_estimate(c.log_loss_sum, c.log_loss_sq, c.log_loss_n)


METRICS: dict[str, Callable[[MulticlassCounts], Estimate]] = {
    "accuracy": accuracy,
    "macro_precision": _macro(0),
    "macro_recall": _macro(1),
    "macro_f1": _macro(2),
    "weighted_precision": _weighted(0),
    "weighted_recall": _weighted(1),
    "weighted_f1": _weighted(2),
    "log_loss": log_loss,
}


def class_recall(c: MulticlassCounts) -> dict[str, Estimate]:
    """Each class's recall with its Wilson interval (the column of the metric row)."""
    return {
        cls: wilson(int(c.confusion[i, i]), int(c.confusion[i].sum()))
        for i, cls in enumerate(c.classes)
    }


def counts_from_rows(
    classes: tuple[str, ...], labels: Any, predictions: Any, true_class_scores: Any = None
) -> MulticlassCounts:
    """The same counts from raw rows, in numpy: for tests."""
    index = {c: i for i, c in enumerate(classes)}
    k = len(classes)
    y = np.array([index[v] for v in labels])
    p = np.array([index[v] for v in predictions])
    confusion = np.bincount(y * k + p, minlength=k * k).reshape(k, k).astype(np.int64)
    if true_class_scores is None:
        return MulticlassCounts(classes, confusion)
    ll = -np.log(np.clip(np.asarray(true_class_scores, float), 1e-15, 1 - 1e-15))
    return MulticlassCounts(classes, confusion, float(ll.sum()), float((ll**2).sum()), len(ll))
