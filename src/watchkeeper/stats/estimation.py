"""Performance estimated without labels, from score histograms (confidence-based).

A calibration map fitted on the reference (isotonic regression over the reference's score
bins) turns each score bin into the probability that an event in it is positive. A window's
score histogram then gives the *expected* confusion matrix at the decision threshold, and
from it estimated metrics with a sampling-error band (the labels, given the scores, are
independent Bernoulli draws). The estimate holds while the relation between inputs and label
holds: under concept shift it is wrong, which backtesting against late labels shows.

References: Guo et al. (2017), On Calibration of Modern Neural Networks; NannyML's
confidence-based performance estimation (CBPE).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from watchkeeper.stats.performance import Z95, BinaryCounts, Estimate


def isotonic(values: Any, weights: Any) -> np.ndarray[Any, np.dtype[np.float64]]:
    """The weighted least-squares non-decreasing fit (pool adjacent violators, by
    ``scipy.optimize.isotonic_regression``)."""
    y = np.asarray(values, dtype=float)
    if len(y) == 0:
        return np.array([])
    from scipy import optimize  # imported when used: it costs a tenth of a second

    fitted = optimize.isotonic_regression(y, weights=np.asarray(weights, dtype=float))
    return np.asarray(fitted.x, dtype=float)


@dataclass(frozen=True, eq=False)
class CalibrationMap:
    """The probability of the positive class per score bin, and how it was chosen."""

    probability: np.ndarray[Any, np.dtype[np.float64]]
    method: str = "isotonic"  # or "scores": the model's own scores were better calibrated
    error_isotonic: float | None = None  # held-out calibration error of each choice
    error_scores: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "probability": [float(x) for x in self.probability],
            "method": self.method,
            "error_isotonic": self.error_isotonic,
            "error_scores": self.error_scores,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CalibrationMap:
        """A stored map; ValueError when it is not one."""
        try:
            probability = np.asarray(data["probability"], dtype=float)
            method = str(data["method"])
            errors = [data.get("error_isotonic"), data.get("error_scores")]
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a stored calibration map: {exc}") from None
        if probability.ndim != 1 or method not in ("isotonic", "scores"):
            raise ValueError("not a stored calibration map")
        known = [None if e is None else float(e) for e in errors]
        return cls(probability, method, known[0], known[1])

    @property
    def note(self) -> str:
        if self.method == "isotonic":
            return "scores calibrated by isotonic regression on the reference"
        return "scores read as probabilities (isotonic calibration did not improve them)"

    @classmethod
    def fit(cls, reference: BinaryCounts) -> CalibrationMap:
        """Isotonic over the reference's per-bin positive rates, weighted by the bins'
        counts; an empty bin takes the mean score of its range."""
        return cls(_isotonic_map(reference.positives, reference.negatives))

    @classmethod
    def choose(cls, folds: Sequence[BinaryCounts]) -> CalibrationMap:
        """Isotonic calibration only where it improves calibration under cross-validation:
        each fold's calibration error (the count-weighted squared gap between a bin's
        probability and its observed positive rate) under the map fitted on the other folds,
        against the same error of the scores as they are."""
        total = folds[0]
        for f in folds[1:]:
            total = total.merge(f)
        if len(folds) < 2:
            return cls.fit(total)
        iso = raw = 0.0
        for i, held in enumerate(folds):
            pos = sum((f.positives for j, f in enumerate(folds) if j != i), np.zeros(1))
            neg = sum((f.negatives for j, f in enumerate(folds) if j != i), np.zeros(1))
            iso += _calibration_error(_isotonic_map(pos, neg), held)
            raw += _calibration_error(_score_map(held), held)
        n = max(total.n, 1)
        iso, raw = iso / n, raw / n
        if iso < raw:
            return cls(_isotonic_map(total.positives, total.negatives), "isotonic", iso, raw)
        return cls(_score_map(total), "scores", iso, raw)


def _centres(bins: int) -> np.ndarray[Any, np.dtype[np.float64]]:
    return (np.arange(bins) + 0.5) / bins


def _isotonic_map(positives: Any, negatives: Any) -> np.ndarray[Any, np.dtype[np.float64]]:
    pos = np.asarray(positives, dtype=float)
    n = pos + np.asarray(negatives, dtype=float)
    rate = np.where(n > 0, pos / np.maximum(n, 1), _centres(len(n)))
    fitted: np.ndarray[Any, np.dtype[np.float64]] = np.clip(
        isotonic(rate, np.maximum(n, 1e-9)), 0.0, 1.0
    )
    return fitted


def _score_map(counts: BinaryCounts) -> np.ndarray[Any, np.dtype[np.float64]]:
    """The scores taken as probabilities: each bin's mean score (its centre when empty)."""
    n = (counts.positives + counts.negatives).astype(float)
    return np.where(n > 0, counts.score_sums / np.maximum(n, 1), _centres(len(n)))


def _calibration_error(probability: Any, held: BinaryCounts) -> float:
    """Σ over bins of n · (p - observed rate)²: the part of the Brier score calibration
    changes, summed (divide by the events for the mean)."""
    n = (held.positives + held.negatives).astype(float)
    rate = held.positives / np.maximum(n, 1)
    return float((n * (np.asarray(probability) - rate) ** 2).sum())


@dataclass(frozen=True, eq=False)
class ExpectedConfusion:
    """A window's score histogram read through a calibration map: the expected positives
    and negatives per score bin, and which bins are predicted positive."""

    counts: np.ndarray[Any, np.dtype[np.float64]]  # events per score bin
    probability: np.ndarray[Any, np.dtype[np.float64]]  # P(positive) per bin
    above: np.ndarray[Any, np.dtype[np.bool_]]  # bins predicted positive

    @property
    def _positives(self) -> np.ndarray[Any, np.dtype[np.float64]]:
        return self.counts * self.probability

    @property
    def tp(self) -> float:
        return float(self._positives[self.above].sum())

    @property
    def fn(self) -> float:
        return float(self._positives[~self.above].sum())

    @property
    def fp(self) -> float:
        return float(self.counts[self.above].sum()) - self.tp

    @property
    def tn(self) -> float:
        return float(self.counts[~self.above].sum()) - self.fn

    @property
    def var_positive_above(self) -> float:
        """The variance of TP (and of FP: above the threshold they move together); the
        labels are independent Bernoulli draws given the scores."""
        v = self.counts * self.probability * (1 - self.probability)
        return float(v[self.above].sum())

    @property
    def var_positive_below(self) -> float:
        """The variance of FN (and of TN)."""
        v = self.counts * self.probability * (1 - self.probability)
        return float(v[~self.above].sum())

    @property
    def n(self) -> float:
        return float(self.counts.sum())


def expected_confusion(
    window: Any, calibration: CalibrationMap, threshold: float
) -> ExpectedConfusion:
    """The expected confusion matrix of a window's score histogram (events per score bin,
    labelled or not) at ``threshold``; a bin is predicted positive when its lower edge is at
    or above the threshold (the threshold should be a bin edge, as 0.5 is)."""
    counts = np.asarray(window, dtype=float)
    above = (np.arange(len(counts)) / len(counts)) >= threshold - 1e-12
    return ExpectedConfusion(counts, calibration.probability, above)


def _band(value: float, sd: float, n: float) -> Estimate:
    half = Z95 * sd
    return Estimate(
        value,
        max(value - half, 0.0),
        min(value + half, 1.0),
        round(n),
        method="expected (CBPE)",
    )


def _none(e: ExpectedConfusion) -> Estimate:
    return Estimate(None, None, None, round(e.n))


def _delta(e: ExpectedConfusion, d_tp: float, d_fn: float) -> float:
    """The delta-method sd of a function of (TP, FN), which vary independently (TP with
    the bins above the threshold, FN with those below); FP and TN follow from them."""
    return math.sqrt(d_tp**2 * e.var_positive_above + d_fn**2 * e.var_positive_below)


def _accuracy(e: ExpectedConfusion) -> tuple[float, float] | None:
    """(TP + TN) / n, TN = below - FN."""
    if e.n <= 0:
        return None
    return (e.tp + e.tn) / e.n, _delta(e, 1 / e.n, -1 / e.n)


def _recall(e: ExpectedConfusion) -> tuple[float, float] | None:
    """TP / (TP + FN)."""
    positives = e.tp + e.fn
    if positives <= 0:
        return None
    return e.tp / positives, _delta(e, e.fn / positives**2, -e.tp / positives**2)


def _precision(e: ExpectedConfusion) -> tuple[float, float] | None:
    """TP / (TP + FP): the predicted positives are fixed, so only TP varies."""
    predicted = e.tp + e.fp
    if predicted <= 0:
        return None
    return e.tp / predicted, _delta(e, 1 / predicted, 0.0)


def _specificity(e: ExpectedConfusion) -> tuple[float, float] | None:
    """TN / (TN + FP) = (below - FN) / (n - TP - FN)."""
    negatives = e.n - e.tp - e.fn
    if negatives <= 0:
        return None
    return e.tn / negatives, _delta(e, e.tn / negatives**2, -e.fp / negatives**2)


def _f1(e: ExpectedConfusion) -> tuple[float, float] | None:
    """2TP / (2TP + FP + FN) = 2TP / (predicted positives + TP + FN)."""
    predicted = e.tp + e.fp
    denom = predicted + e.tp + e.fn
    if denom <= 0:
        return None
    sd = _delta(e, 2 * (predicted + e.fn) / denom**2, -2 * e.tp / denom**2)
    return 2 * e.tp / denom, sd


def _roc_auc(e: ExpectedConfusion) -> tuple[float, float] | None:
    """The ROC AUC of the expected positives and negatives per score bin (ties within a
    bin count half, as the realized metric does), with the Hanley & McNeil (1982) sd at the
    expected class sizes."""
    pos = e.counts * e.probability
    neg = e.counts - pos
    n_pos, n_neg = float(pos.sum()), float(neg.sum())
    if n_pos < 1 or n_neg < 1:
        return None
    neg_below = np.cumsum(neg) - neg
    auc = float((pos * (neg_below + 0.5 * neg)).sum() / (n_pos * n_neg))
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc * auc) + (n_neg - 1) * (q2 - auc * auc)) / (
        n_pos * n_neg
    )
    return auc, math.sqrt(max(var, 0.0))


def _estimator(
    value: Callable[[ExpectedConfusion], tuple[float, float] | None],
) -> Callable[[ExpectedConfusion], Estimate]:
    def estimate(e: ExpectedConfusion) -> Estimate:
        found = value(e)
        return _none(e) if found is None else _band(found[0], found[1], e.n)

    estimate.__doc__ = value.__doc__
    return estimate


estimated_accuracy = _estimator(_accuracy)
estimated_recall = _estimator(_recall)
estimated_precision = _estimator(_precision)
estimated_specificity = _estimator(_specificity)
estimated_f1 = _estimator(_f1)
estimated_roc_auc = _estimator(_roc_auc)


ESTIMATES: dict[str, Callable[[ExpectedConfusion], Estimate]] = {
    "accuracy": estimated_accuracy,
    "precision": estimated_precision,
    "recall": estimated_recall,
    "specificity": estimated_specificity,
    "f1": estimated_f1,
    "roc_auc": estimated_roc_auc,
}


def one_vs_rest(split: Any, calibration: CalibrationMap) -> ExpectedConfusion:
    """One class against the rest: ``split`` holds a window's histogram of the class's
    score over the events predicted as another class, then over those predicted as it (as
    ``compute_score_histogram`` returns it); the calibration map is the class's."""
    counts = np.asarray(split, dtype=float)
    bins = len(counts) // 2
    probability = np.concatenate([calibration.probability, calibration.probability])
    above = np.arange(2 * bins) >= bins
    return ExpectedConfusion(counts, probability, above)


def estimated_multiclass(per_class: Mapping[str, ExpectedConfusion]) -> dict[str, Estimate]:
    """Accuracy and the macro averages of precision, recall and F1 from each class's
    one-vs-rest expected confusion; the classes' own recalls as ``recall:<class>``.

    Each event is predicted as one class, so the expected correct predictions are the sum
    of the classes' expected true positives, whose variances add (disjoint events). A macro
    average's band treats the classes' errors as independent."""
    if not per_class:
        return {}
    n = max(e.n for e in per_class.values())
    out: dict[str, Estimate] = {}
    if n > 0:
        correct = sum(e.tp for e in per_class.values())
        sd = math.sqrt(sum(e.var_positive_above for e in per_class.values())) / n
        out["accuracy"] = _band(correct / n, sd, n)
    for name, value in (("precision", _precision), ("recall", _recall), ("f1", _f1)):
        found = {cls: value(e) for cls, e in per_class.items()}
        if name == "recall":
            out.update(
                {
                    f"recall:{cls}": _none(per_class[cls]) if v is None else _band(*v, n)
                    for cls, v in found.items()
                }
            )
        known = [v for v in found.values() if v is not None]
        if len(known) != len(found):
            out[f"macro_{name}"] = Estimate(None, None, None, round(n))
            continue
        mean = sum(v for v, _ in known) / len(known)
        sd = math.sqrt(sum(d * d for _, d in known)) / len(known)
        out[f"macro_{name}"] = _band(mean, sd, n)
    return out
