"""Performance estimated without labels, from score histograms (confidence-based).

A calibration map fitted on the reference (isotonic regression over the reference's score
bins) turns each score bin into the probability that an event in it is positive. A window's
score histogram then gives the *expected* confusion matrix, and from it estimated metrics.
The estimate holds while the relation between inputs and label holds: under concept shift it
is wrong, which backtesting against late labels shows.

The band (95%) is meant to cover the realized value, so its variance is that of realized
minus estimated, two independent parts:

- the realized value's sampling error given the window's scores: its labels are independent
  Bernoulli draws with the calibrated probabilities (Σ n·p·(1 − p) per group of bins);
- the calibration map's own error, from a finite reference: each block of score bins that
  the isotonic fit of the reference pools has a positive rate known to p·(1 − p)/N from the
  N reference events in it (an error shared by the block's bins, independent across
  blocks), carried to the estimate through its gradient. A map of the scores as they are
  has no fitted rate, but the reference vouches for their calibration no better than that,
  so it is given the same error.

Both go through the delta method (for ROC AUC, Hanley & McNeil's (1982) variance at the
expected class sizes for the first part). The multiclass macro averages add the covariances
between the classes' counts (an event is counted by every class's one-vs-rest), see
``estimated_multiclass``.

References: Guo et al. (2017), On Calibration of Modern Neural Networks; NannyML's
confidence-based performance estimation (CBPE).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from watchkeeper.stats.performance import Z95, BinaryCounts, Estimate

FORMAT = "watchkeeper-calibration/2"  # a stored map's format (older ones are refitted)
Floats = np.ndarray[Any, np.dtype[np.float64]]
Ints = np.ndarray[Any, np.dtype[np.int64]]


def isotonic(values: Any, weights: Any) -> Floats:
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
    """The probability of the positive class per score bin, how it was chosen, and the
    reference's labelled events per bin it was fitted on (its error comes from them)."""

    probability: Floats
    method: str = "isotonic"  # or "scores": the model's own scores were better calibrated
    error_isotonic: float | None = None  # held-out calibration error of each choice
    error_scores: float | None = None
    positives: Ints | None = None  # the reference's positives and negatives per score bin
    negatives: Ints | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "probability": [float(x) for x in self.probability],
            "method": self.method,
            "error_isotonic": self.error_isotonic,
            "error_scores": self.error_scores,
            "positives": None if self.positives is None else [int(x) for x in self.positives],
            "negatives": None if self.negatives is None else [int(x) for x in self.negatives],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CalibrationMap:
        """A stored map; ValueError when it is not one of this format (an older map, which
        lacks the reference's counts its band needs, is refitted)."""
        try:
            if data["format"] != FORMAT:
                raise ValueError(f"format {data['format']!r}, not {FORMAT!r}")
            probability = np.asarray(data["probability"], dtype=float)
            method = str(data["method"])
            errors = [data.get("error_isotonic"), data.get("error_scores")]
            counts = [
                None if data[k] is None else np.asarray(data[k], dtype=np.int64)
                for k in ("positives", "negatives")
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a stored calibration map: {exc}") from None
        if probability.ndim != 1 or method not in ("isotonic", "scores"):
            raise ValueError("not a stored calibration map")
        if any(c is not None and c.shape != probability.shape for c in counts):
            raise ValueError("not a stored calibration map: counts of other bins")
        known = [None if e is None else float(e) for e in errors]
        return cls(probability, method, known[0], known[1], counts[0], counts[1])

    @property
    def note(self) -> str:
        if self.method == "isotonic":
            return "scores calibrated by isotonic regression on the reference"
        return "scores read as probabilities (isotonic calibration did not improve them)"

    @classmethod
    def fit(cls, reference: BinaryCounts) -> CalibrationMap:
        """Isotonic over the reference's per-bin positive rates, weighted by the bins'
        counts; an empty bin takes the mean score of its range."""
        pos, neg = reference.positives, reference.negatives
        return cls(_isotonic_map(pos, neg), positives=pos.copy(), negatives=neg.copy())

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
        counts = {"positives": total.positives.copy(), "negatives": total.negatives.copy()}
        if iso < raw:
            probability = _isotonic_map(total.positives, total.negatives)
            return cls(probability, "isotonic", iso, raw, **counts)
        return cls(_score_map(total), "scores", iso, raw, **counts)

    @cached_property
    def blocks(self) -> tuple[Ints, Floats]:
        """Each score bin's block (the runs of bins the isotonic fit of the reference
        pools) and each block's variance of its positive rate, p(1 - p)/N over its N
        reference events (p shrunk towards 1/2 by half an event each way, so that a block
        of one class still has some; an empty block counts as one event). Without the
        reference's counts, one block a bin and no variance."""
        if self.positives is None or self.negatives is None:
            bins = len(self.probability)
            return np.arange(bins, dtype=np.int64), np.zeros(bins)
        pos = np.asarray(self.positives, dtype=float)
        n = pos + np.asarray(self.negatives, dtype=float)
        fitted = _isotonic_map(pos, self.negatives)
        block = np.concatenate([[0], np.cumsum(np.diff(fitted) != 0)]).astype(np.int64)
        events = np.bincount(block, weights=n)
        rate = (np.bincount(block, weights=pos) + 0.5) / (events + 1)
        return block, rate * (1 - rate) / np.maximum(events, 1)


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
    and negatives per score bin, which bins are predicted positive, and each bin's block of
    the calibration map with the blocks' variances (``CalibrationMap.blocks``).

    ``split``: the histogram is twice the score bins, the events predicted negative then
    those predicted positive (a declared prediction, or one class against the rest)."""

    counts: Floats  # events per score bin
    probability: Floats  # P(positive) per bin
    above: np.ndarray[Any, np.dtype[np.bool_]]  # bins predicted positive
    block: Ints | None = None  # each bin's block of the calibration map
    block_var: Floats | None = None  # each block's variance of its positive rate
    split: bool = False

    @property
    def _positives(self) -> Floats:
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
        """The sampling variance of TP (and of FP: above the threshold they move together);
        the labels are independent Bernoulli draws given the scores."""
        v = self.counts * self.probability * (1 - self.probability)
        return float(v[self.above].sum())

    @property
    def var_positive_below(self) -> float:
        """The sampling variance of FN (and of TN)."""
        v = self.counts * self.probability * (1 - self.probability)
        return float(v[~self.above].sum())

    @property
    def negatives_above_sq(self) -> float:
        """Σ n·(1 - p)² over the bins predicted positive: what the covariances of the other
        classes' counts among these events are made of (``estimated_multiclass``)."""
        return float((self.counts * (1 - self.probability) ** 2)[self.above].sum())

    def calibration_spread(self, gradient: Floats) -> float:
        """The variance the calibration map's error gives a quantity whose derivative with
        respect to each bin's probability is ``gradient``: Σ over blocks of (the block's
        summed derivative)² × the block's variance."""
        if self.block is None or self.block_var is None:
            return 0.0
        g = np.bincount(self.block, weights=gradient, minlength=len(self.block_var))
        return float((g * g * self.block_var).sum())

    @cached_property
    def calibration(self) -> tuple[float, float, float]:
        """The calibration map's error as variances of TP and FN and their covariance
        (TP moves with p in the bins predicted positive, FN in the others)."""
        if self.block is None or self.block_var is None:
            return 0.0, 0.0, 0.0
        k = len(self.block_var)
        a = np.bincount(self.block, weights=self.counts * self.above, minlength=k)
        b = np.bincount(self.block, weights=self.counts * ~self.above, minlength=k)
        v = self.block_var
        return float((a * a * v).sum()), float((b * b * v).sum()), float((a * b * v).sum())

    @property
    def var_tp(self) -> float:
        """TP's variance about the realized value: sampling and calibration."""
        return self.var_positive_above + self.calibration[0]

    @property
    def var_fn(self) -> float:
        return self.var_positive_below + self.calibration[1]

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
    block, block_var = calibration.blocks
    return ExpectedConfusion(counts, calibration.probability, above, block, block_var)


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


# A metric of the expected confusion: its value and its derivatives with respect to TP and
# FN, which vary (TP with the bins predicted positive, FN with the others); the predicted
# positives and n are fixed by the window's histogram, so FP and TN follow from them.
Gradient = tuple[float, float, float]


def _accuracy(e: ExpectedConfusion) -> Gradient | None:
    """(TP + TN) / n, TN = below - FN."""
    if e.n <= 0:
        return None
    return (e.tp + e.tn) / e.n, 1 / e.n, -1 / e.n


def _recall(e: ExpectedConfusion) -> Gradient | None:
    """TP / (TP + FN)."""
    positives = e.tp + e.fn
    if positives <= 0:
        return None
    return e.tp / positives, e.fn / positives**2, -e.tp / positives**2


def _precision(e: ExpectedConfusion) -> Gradient | None:
    """TP / (TP + FP): the predicted positives are fixed, so only TP varies."""
    predicted = e.tp + e.fp
    if predicted <= 0:
        return None
    return e.tp / predicted, 1 / predicted, 0.0


def _specificity(e: ExpectedConfusion) -> Gradient | None:
    """TN / (TN + FP) = (below - FN) / (n - TP - FN)."""
    negatives = e.n - e.tp - e.fn
    if negatives <= 0:
        return None
    return e.tn / negatives, e.tn / negatives**2, -e.fp / negatives**2


def _f1(e: ExpectedConfusion) -> Gradient | None:
    """2TP / (2TP + FP + FN) = 2TP / (predicted positives + TP + FN)."""
    predicted = e.tp + e.fp
    denom = predicted + e.tp + e.fn
    if denom <= 0:
        return None
    return 2 * e.tp / denom, 2 * (predicted + e.fn) / denom**2, -2 * e.tp / denom**2


def _sd(e: ExpectedConfusion, d_tp: float, d_fn: float) -> float:
    """The delta-method sd of a function of (TP, FN): their sampling errors are
    independent (disjoint events), their calibration errors are not."""
    _, _, cov = e.calibration
    var = d_tp**2 * e.var_tp + d_fn**2 * e.var_fn + 2 * d_tp * d_fn * cov
    return math.sqrt(max(var, 0.0))


def _roc_auc(e: ExpectedConfusion) -> tuple[float, float] | None:
    """The ROC AUC of the expected positives and negatives per score bin (ties within a
    bin count half), with Hanley & McNeil's (1982) variance at the expected class sizes
    plus the calibration map's error through the AUC's derivative in each bin's p."""
    c = e.counts
    pos_all = c * e.probability
    pos, neg = pos_all, c - pos_all
    bins = len(c)
    if e.split:  # one score axis: the two halves' bins are the same scores
        bins = len(c) // 2
        pos, neg = pos[:bins] + pos[bins:], neg[:bins] + neg[bins:]
    n_pos, n_neg = float(pos.sum()), float(neg.sum())
    if n_pos < 1 or n_neg < 1:
        return None
    neg_below = np.cumsum(neg) - neg
    pos_above = pos.sum() - np.cumsum(pos)
    pairs = n_pos * n_neg
    auc = float((pos * (neg_below + 0.5 * neg)).sum() / pairs)
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc * auc) + (n_neg - 1) * (q2 - auc * auc)) / (
        n_pos * n_neg
    )
    # A bin's p moving one event from its negatives to its positives.
    d_pos = (neg_below + 0.5 * neg) / pairs - auc / n_pos
    d_neg = (pos_above + 0.5 * pos) / pairs - auc / n_neg
    per_bin = d_pos - d_neg
    gradient = c * (np.concatenate([per_bin, per_bin]) if e.split else per_bin)
    return auc, math.sqrt(max(var, 0.0) + e.calibration_spread(gradient))


def _binary(
    value: Callable[[ExpectedConfusion], Gradient | None],
) -> Callable[[ExpectedConfusion], tuple[float, float] | None]:
    def found(e: ExpectedConfusion) -> tuple[float, float] | None:
        g = value(e)
        return None if g is None else (g[0], _sd(e, g[1], g[2]))

    return found


def _estimator(
    value: Callable[[ExpectedConfusion], tuple[float, float] | None],
    doc: str | None,
) -> Callable[[ExpectedConfusion], Estimate]:
    def estimate(e: ExpectedConfusion) -> Estimate:
        found = value(e)
        return _none(e) if found is None else _band(found[0], found[1], e.n)

    estimate.__doc__ = doc
    return estimate


estimated_accuracy = _estimator(_binary(_accuracy), _accuracy.__doc__)
estimated_recall = _estimator(_binary(_recall), _recall.__doc__)
estimated_precision = _estimator(_binary(_precision), _precision.__doc__)
estimated_specificity = _estimator(_binary(_specificity), _specificity.__doc__)
estimated_f1 = _estimator(_binary(_f1), _f1.__doc__)
estimated_roc_auc = _estimator(_roc_auc, _roc_auc.__doc__)


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
    ``compute_score_histogram`` returns it); the calibration map is the class's. A binary
    histogram split by the declared prediction is read the same way."""
    counts = np.asarray(split, dtype=float)
    bins = len(counts) // 2
    probability = np.concatenate([calibration.probability, calibration.probability])
    above = np.arange(2 * bins) >= bins
    block, block_var = calibration.blocks
    blocks = np.concatenate([block, block])
    return ExpectedConfusion(counts, probability, above, blocks, block_var, split=True)


def _shares(per_class: Sequence[ExpectedConfusion]) -> Floats:
    """``q[k, m]``: the share of class k among the labels of the events predicted as m
    that are not m. Only each class's expected FN (its labels predicted otherwise) and FP
    (the other labels it is predicted for) are known, the margins of the matrix of these
    errors: the matrix is filled by iterative proportional fitting from uniform."""
    k = len(per_class)
    rows = np.array([max(e.fn, 1e-9) for e in per_class])
    columns = np.array([max(e.fp, 1e-9) for e in per_class])
    columns *= rows.sum() / columns.sum()
    m = np.ones((k, k)) - np.eye(k)
    for _ in range(50):
        m *= (rows / np.maximum(m.sum(axis=1), 1e-300))[:, None]
        m *= (columns / np.maximum(m.sum(axis=0), 1e-300))[None, :]
    shares: Floats = m / np.maximum(m.sum(axis=0, keepdims=True), 1e-300)
    return shares


def _macro_sd(per_class: Sequence[ExpectedConfusion], grads: Sequence[Gradient]) -> float:
    """The delta-method sd of the mean over classes of a function of each class's (TP, FN).

    The classes' counts are of the same events, so they covary: an event predicted as m
    with probabilities p adds to TP_m, and to FN_k for its label k ≠ m, one label at a
    time. Its non-m probability is shared out as the shares ``q`` of the window's expected
    errors (``_shares``), so that Cov(TP_m, FN_k) = -q[k, m]·Σ p_m(1 - p_m) and
    Cov(FN_i, FN_k) = -Σ over m ∉ {i, k} of q[i, m]·q[k, m]·Σ (1 - p_m)² (sums over the
    events predicted m). TP and FN of a class add their calibration errors; the classes'
    maps are fitted apart and taken as independent."""
    k = len(per_class)
    q = _shares(per_class)
    cov = np.zeros((2 * k, 2 * k))
    for m, e in enumerate(per_class):
        cov[m, m], cov[k + m, k + m] = e.var_tp, e.var_fn
        cov[m, k + m] = cov[k + m, m] = e.calibration[2]
        for j in range(k):
            if j != m:
                cov[m, k + j] = cov[k + j, m] = -q[j, m] * e.var_positive_above
    for i in range(k):
        for j in range(k):
            if i != j:
                cov[k + i, k + j] = -sum(
                    q[i, m] * q[j, m] * per_class[m].negatives_above_sq
                    for m in range(k)
                    if m not in (i, j)
                )
    g = np.array([d for _, d, _ in grads] + [d for _, _, d in grads]) / k
    return math.sqrt(max(float(g @ cov @ g), 0.0))


def estimated_multiclass(per_class: Mapping[str, ExpectedConfusion]) -> dict[str, Estimate]:
    """Accuracy and the macro averages of precision, recall and F1 from each class's
    one-vs-rest expected confusion; the classes' own recalls as ``recall:<class>``.

    Each event is predicted as one class, so the expected correct predictions are the sum
    of the classes' expected true positives, whose variances add (disjoint events; the
    classes' calibration errors independent). A macro average's band adds the covariances
    of the classes' counts (``_macro_sd``)."""
    if not per_class:
        return {}
    n = max(e.n for e in per_class.values())
    out: dict[str, Estimate] = {}
    if n > 0:
        correct = sum(e.tp for e in per_class.values())
        sd = math.sqrt(sum(e.var_tp for e in per_class.values())) / n
        out["accuracy"] = _band(correct / n, sd, n)
    classes = list(per_class.values())
    for name, value in (("precision", _precision), ("recall", _recall), ("f1", _f1)):
        found = {cls: value(e) for cls, e in per_class.items()}
        if name == "recall":
            out.update(
                {
                    f"recall:{cls}": _none(per_class[cls])
                    if g is None
                    else _band(g[0], _sd(per_class[cls], g[1], g[2]), n)
                    for cls, g in found.items()
                }
            )
        known = [g for g in found.values() if g is not None]
        if len(known) != len(found):
            out[f"macro_{name}"] = Estimate(None, None, None, round(n))
            continue
        mean = sum(g[0] for g in known) / len(known)
        out[f"macro_{name}"] = _band(mean, _macro_sd(classes, known), n)
    return out
