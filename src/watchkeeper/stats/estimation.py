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
from dataclasses import dataclass
from typing import Any

import numpy as np

from watchkeeper.stats.performance import Z95, BinaryCounts, Estimate


def isotonic(values: Any, weights: Any) -> np.ndarray[Any, np.dtype[np.float64]]:
    """The weighted least-squares non-decreasing fit (pool adjacent violators)."""
    y = np.asarray(values, dtype=float)
    w = np.asarray(weights, dtype=float)
    blocks: list[list[float]] = []  # [weighted mean, weight, length]
    for yi, wi in zip(y, w, strict=True):
        blocks.append([yi, wi, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, w2, n2 = blocks.pop()
            m1, w1, n1 = blocks.pop()
            total = w1 + w2
            mean = (m1 * w1 + m2 * w2) / total if total > 0 else (m1 + m2) / 2
            blocks.append([mean, total, n1 + n2])
    return np.concatenate([np.full(int(n), m) for m, _, n in blocks]) if blocks else np.array([])


@dataclass(frozen=True, eq=False)
class CalibrationMap:
    """The probability of the positive class per score bin."""

    probability: np.ndarray[Any, np.dtype[np.float64]]

    @classmethod
    def fit(cls, reference: BinaryCounts) -> CalibrationMap:
        """Isotonic over the reference's per-bin positive rates, weighted by the bins'
        counts; an empty bin takes the mean score of its range."""
        pos = reference.positives.astype(float)
        n = pos + reference.negatives
        bins = len(n)
        centres = (np.arange(bins) + 0.5) / bins
        rate = np.where(n > 0, pos / np.maximum(n, 1), centres)
        return cls(np.clip(isotonic(rate, np.maximum(n, 1e-9)), 0.0, 1.0))


@dataclass(frozen=True)
class ExpectedConfusion:
    tp: float
    fp: float
    tn: float
    fn: float
    # variances of the counts (sums of the bins' Bernoulli variances)
    var_positive_above: float  # of TP (= of FP: above the threshold they move together)
    var_positive_below: float  # of FN (= of TN)

    @property
    def n(self) -> float:
        return self.tp + self.fp + self.tn + self.fn


def expected_confusion(
    window: Any, calibration: CalibrationMap, threshold: float
) -> ExpectedConfusion:
    """The expected confusion matrix of a window's score histogram (events per score bin,
    labelled or not) at ``threshold``; a bin is predicted positive when its lower edge is at
    or above the threshold (the threshold should be a bin edge, as 0.5 is)."""
    counts = np.asarray(window, dtype=float)
    bins = len(counts)
    p = calibration.probability
    above = (np.arange(bins) / bins) >= threshold - 1e-12
    positives = counts * p
    var = counts * p * (1 - p)
    return ExpectedConfusion(
        tp=float(positives[above].sum()),
        fp=float((counts - positives)[above].sum()),
        tn=float((counts - positives)[~above].sum()),
        fn=float(positives[~above].sum()),
        var_positive_above=float(var[above].sum()),
        var_positive_below=float(var[~above].sum()),
    )


def _band(value: float, sd: float, n: float) -> Estimate:
    half = Z95 * sd
    return Estimate(value, value - half, value + half, round(n), method="expected (CBPE)")


def estimated_accuracy(e: ExpectedConfusion) -> Estimate:
    """(TP + TN) / n; the band from TP and FN (TN = below - FN) varying independently."""
    if e.n <= 0:
        return Estimate(None, None, None, 0)
    value = (e.tp + e.tn) / e.n
    sd = math.sqrt(e.var_positive_above + e.var_positive_below) / e.n
    return _band(value, sd, e.n)


def estimated_recall(e: ExpectedConfusion) -> Estimate:
    """TP / (TP + FN), with a delta-method band."""
    positives = e.tp + e.fn
    if positives <= 0:
        return Estimate(None, None, None, round(e.n))
    value = e.tp / positives
    # d/dTP = FN / P², d/dFN = -TP / P²
    sd = math.sqrt(
        (e.fn / positives**2) ** 2 * e.var_positive_above
        + (e.tp / positives**2) ** 2 * e.var_positive_below
    )
    return _band(value, sd, e.n)


def estimated_precision(e: ExpectedConfusion) -> Estimate:
    """TP / (TP + FP): the predicted positives are fixed, so only TP varies."""
    predicted = e.tp + e.fp
    if predicted <= 0:
        return Estimate(None, None, None, round(e.n))
    return _band(e.tp / predicted, math.sqrt(e.var_positive_above) / predicted, e.n)


ESTIMATES = {
    "accuracy": estimated_accuracy,
    "precision": estimated_precision,
    "recall": estimated_recall,
}
