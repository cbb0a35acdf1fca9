"""Binary classification performance from counts, never from rows.

A window's ``BinaryCounts`` are what the engine pushes down: events per score bin × label
(with the sum of their scores, for calibration), the confusion counts at the decision
threshold, the positives' rank sum (for the exact ROC AUC), and the sums behind log loss and
the Brier score. Every metric here is a function of those counts, returns its sample size
and a confidence interval, and states the bound where binning makes it approximate (PR AUC,
and ROC AUC of merged counts, which have no rank sum; calibration uses bins by definition).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from watchkeeper.profiles.counts import EPS, SCORE_BINS, BinaryCounts, score_bins

Z95 = 1.959963984540054  # the standard normal's 97.5% quantile
CALIBRATION_BINS = 10  # the reliability table's bins (each 10 score bins)


@dataclass(frozen=True)
class Estimate:
    value: float | None
    lower: float | None
    upper: float | None
    sample_size: int
    bound: float = 0.0  # how far the exact (unbinned) value can be from this one
    method: str = ""  # how the interval was computed


def wilson(successes: int, trials: int, z: float = Z95) -> Estimate:
    """A proportion with its Wilson score interval (Wilson 1927)."""
    if trials <= 0:
        return Estimate(None, None, None, 0, method="wilson")
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return Estimate(p, max(centre - half, 0.0), min(centre + half, 1.0), trials, method="wilson")


def mean_estimate(total: float, squares: float, n: int, method: str = "normal") -> Estimate:
    """A mean from its sum and sum of squares, with a normal (central limit) interval."""
    if n <= 0:
        return Estimate(None, None, None, 0, method=method)
    mean = total / n
    var = max(squares / n - mean * mean, 0.0) * n / max(n - 1, 1)
    half = Z95 * math.sqrt(var / n)
    return Estimate(mean, mean - half, mean + half, n, method=method)


def accuracy(c: BinaryCounts) -> Estimate:
    return wilson(c.tp + c.tn, c.n)


def precision(c: BinaryCounts) -> Estimate:
    return wilson(c.tp, c.tp + c.fp)


def recall(c: BinaryCounts) -> Estimate:
    return wilson(c.tp, c.tp + c.fn)


def specificity(c: BinaryCounts) -> Estimate:
    return wilson(c.tn, c.tn + c.fp)


def false_positive_rate(c: BinaryCounts) -> Estimate:
    return wilson(c.fp, c.fp + c.tn)


def false_negative_rate(c: BinaryCounts) -> Estimate:
    return wilson(c.fn, c.fn + c.tp)


def positive_rate(c: BinaryCounts) -> Estimate:
    return wilson(c.tp + c.fp, c.n)


def f1(c: BinaryCounts) -> Estimate:
    """F1 with a delta-method interval over the multinomial confusion counts."""
    denom = 2 * c.tp + c.fp + c.fn
    if denom == 0:
        return Estimate(None, None, None, c.n, method="delta")
    value = 2 * c.tp / denom
    n = c.n
    # F1 = 2a / (2a + b) with a = TP/n, b = (FP + FN)/n; gradient and multinomial covariance.
    a, b = c.tp / n, (c.fp + c.fn) / n
    s = 2 * a + b
    ga, gb = 2 * b / (s * s), -2 * a / (s * s)
    var = (ga * ga * a * (1 - a) + gb * gb * b * (1 - b) - 2 * ga * gb * a * b) / n
    half = Z95 * math.sqrt(max(var, 0.0))
    return Estimate(value, max(value - half, 0.0), min(value + half, 1.0), n, method="delta")


def roc_auc(c: BinaryCounts) -> Estimate:
    """ROC AUC, exact where the counts carry the positives' rank sum (the Mann-Whitney U
    over the positive-negative pairs, ties counting half, as scikit-learn's
    ``roc_auc_score``): (rank sum - n₊(n₊ + 1)/2) / (n₊ n₋). Merged counts have no rank sum:
    then from the score bins, pairs in the same bin counting as ties (half), within half the
    share of positive-negative pairs that share a bin of the exact value. Interval: Hanley &
    McNeil (1982)."""
    pos, neg = np.asarray(c.positives, float), np.asarray(c.negatives, float)
    n_pos, n_neg = pos.sum(), neg.sum()
    if n_pos == 0 or n_neg == 0:
        return Estimate(None, None, None, int(n_pos + n_neg), method="hanley-mcneil")
    if c.positive_rank_sum is not None:
        auc = (c.positive_rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
        auc = min(max(float(auc), 0.0), 1.0)
        tied = 0.0
    else:
        neg_below = np.cumsum(neg) - neg
        auc = float((pos * (neg_below + 0.5 * neg)).sum() / (n_pos * n_neg))
        tied = float((pos * neg).sum() / (n_pos * n_neg))
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc * auc) + (n_neg - 1) * (q2 - auc * auc)) / (
        n_pos * n_neg
    )
    half = Z95 * math.sqrt(max(var, 0.0))
    return Estimate(
        auc,
        max(auc - half, 0.0),
        min(auc + half, 1.0),
        int(n_pos + n_neg),
        bound=tied / 2,
        method="hanley-mcneil",
    )


def pr_auc(c: BinaryCounts) -> Estimate:
    """Average precision (as scikit-learn's average_precision_score) over thresholds at the
    score-bin edges, highest first. Binning merges thresholds within a bin; the bound given
    is the largest share of positives in one bin (the most one step can move the sum)."""
    pos, neg = np.asarray(c.positives, float)[::-1], np.asarray(c.negatives, float)[::-1]
    n_pos = pos.sum()
    if n_pos == 0:
        return Estimate(None, None, None, int(pos.sum() + neg.sum()))
    tp, fp = np.cumsum(pos), np.cumsum(neg)
    keep = (pos + neg) > 0
    prec = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 0.0)
    recall_steps = pos / n_pos
    ap = float((recall_steps * prec)[keep].sum())
    return Estimate(ap, None, None, int(n_pos + neg.sum()), bound=float((pos / n_pos).max()))


def log_loss(c: BinaryCounts) -> Estimate:
    """Mean negative log-likelihood (probabilities clipped to [1e-15, 1 - 1e-15])."""
    return mean_estimate(c.log_loss_sum, c.log_loss_sq, c.n)


def brier(c: BinaryCounts) -> Estimate:
    return mean_estimate(c.brier_sum, c.brier_sq, c.n)


@dataclass(frozen=True)
class ReliabilityRow:
    low: float
    high: float
    count: int
    mean_score: float | None
    positive_rate: float | None


def reliability(c: BinaryCounts, bins: int = CALIBRATION_BINS) -> list[ReliabilityRow]:
    """The reliability table over ``bins`` equal-width score bins."""
    step = len(c.positives) // bins
    rows = []
    for i in range(bins):
        part = slice(i * step, (i + 1) * step)
        n = int(c.positives[part].sum() + c.negatives[part].sum())
        rows.append(
            ReliabilityRow(
                i / bins,
                (i + 1) / bins,
                n,
                float(c.score_sums[part].sum() / n) if n else None,
                float(c.positives[part].sum() / n) if n else None,
            )
        )
    return rows


def expected_calibration_error(c: BinaryCounts, bins: int = CALIBRATION_BINS) -> Estimate:
    """ECE: the count-weighted mean gap between mean score and positive rate per bin
    (Naeini, Cooper & Hauskrecht 2015), over ``bins`` equal-width bins."""
    table = reliability(c, bins)
    n = sum(r.count for r in table)
    if n == 0:
        return Estimate(None, None, None, 0)
    gap = sum(
        r.count * abs((r.mean_score or 0.0) - (r.positive_rate or 0.0)) for r in table if r.count
    )
    return Estimate(gap / n, None, None, n)


METRICS: dict[str, Callable[[BinaryCounts], Estimate]] = {
    "accuracy": accuracy,
    "precision": precision,
    "recall": recall,
    "specificity": specificity,
    "false_positive_rate": false_positive_rate,
    "false_negative_rate": false_negative_rate,
    "f1": f1,
    "positive_rate": positive_rate,
    "roc_auc": roc_auc,
    "pr_auc": pr_auc,
    "log_loss": log_loss,
    "brier": brier,
    "expected_calibration_error": expected_calibration_error,
}


def counts_from_rows(
    scores: np.ndarray[Any, Any],
    labels: np.ndarray[Any, Any],
    predictions: np.ndarray[Any, Any],
    bins: int = SCORE_BINS,
) -> BinaryCounts:
    """The same counts from raw rows, in numpy: for tests and small in-memory checks."""
    s = np.asarray(scores, float)
    y = np.asarray(labels, int)
    yhat = np.asarray(predictions, int)
    b = score_bins(s, bins)
    p = np.clip(s, EPS, 1 - EPS)
    ll = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    br = (s - y) ** 2
    return BinaryCounts(
        np.bincount(b[y == 1], minlength=bins).astype(np.int64),
        np.bincount(b[y == 0], minlength=bins).astype(np.int64),
        np.bincount(b, weights=s, minlength=bins).astype(np.float64),
        int(((yhat == 1) & (y == 1)).sum()),
        int(((yhat == 1) & (y == 0)).sum()),
        int(((yhat == 0) & (y == 0)).sum()),
        int(((yhat == 0) & (y == 1)).sum()),
        float(ll.sum()),
        float((ll**2).sum()),
        float(br.sum()),
        float((br**2).sum()),
        positive_rank_sum(s, y),
    )


def positive_rank_sum(scores: Any, labels: Any) -> float:
    """The sum over the positives of their score's rank among all the scores (1 for the
    lowest, ties sharing their average rank), as the engine's window functions compute it."""
    s, y = np.asarray(scores, float), np.asarray(labels, int)
    if len(s) == 0:
        return 0.0
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    average = np.cumsum(counts) - (counts - 1) / 2  # the mean of ranks first..last of a value
    return float(average[inverse.ravel()][y == 1].sum())


__all__ = [
    "EPS",
    "METRICS",
    "SCORE_BINS",
    "BinaryCounts",
    "Estimate",
    "counts_from_rows",
    "positive_rank_sum",
    "wilson",
]
