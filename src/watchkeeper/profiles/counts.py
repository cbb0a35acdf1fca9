"""The labelled events' aggregates, per window × version × segment: what the engine pushes
down for performance, and what each model task's metrics are functions of.

Each is small, typed and mergeable: ``zero()`` is the aggregate of no events and ``merge``
adds two (an hour's counts merged give the day's).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

SCORE_BINS = 100  # uniform score bins on [0, 1] for AUC and calibration
EPS = 1e-15  # probabilities are clipped to [EPS, 1 - EPS] for log loss, as scikit-learn does
MAPE_FLOOR = 1e-9  # labels closer to zero than this are left out of MAPE (and counted)


def score_bins(scores: Any, bins: int = SCORE_BINS) -> np.ndarray[Any, np.dtype[np.intp]]:
    """The score bin of each value: the number of interior edges ``k / bins`` at or below
    it, so bin ``k`` holds ``k / bins <= s < (k + 1) / bins`` with the edges as float64
    computes them (scores below 0 go to the first bin, 1 and above to the last).

    ``int(s * bins)`` is not that: ``0.29 * 100`` is 28.999999999999996 in float64, which
    would put 0.29 in the bin below its edge. The engine's query compares with the same
    edges (``profiles.labelled.score_bin_sql``)."""
    edges = np.arange(1, bins) / bins
    found: np.ndarray[Any, np.dtype[np.intp]] = np.searchsorted(
        edges, np.asarray(scores, dtype=float), side="right"
    )
    return found


@dataclass(frozen=True, eq=False)
class BinaryCounts:
    """Mergeable counts of one window's labelled events (binary classification).

    ``positive_rank_sum`` is the sum over the positives of the rank of their score among
    the window's labelled events (1 for the lowest; tied scores share their average rank):
    the exact ROC AUC is a function of it. Ranks do not add up across windows or segments,
    so a merge of two non-empty counts has none (its AUC falls back to the score bins,
    with its bound); merging with empty counts keeps it."""

    positives: np.ndarray[Any, np.dtype[np.int64]]  # per score bin, label 1
    negatives: np.ndarray[Any, np.dtype[np.int64]]  # per score bin, label 0
    score_sums: np.ndarray[Any, np.dtype[np.float64]]  # per score bin, sum of scores
    tp: int
    fp: int
    tn: int
    fn: int
    log_loss_sum: float = 0.0
    log_loss_sq: float = 0.0
    brier_sum: float = 0.0
    brier_sq: float = 0.0
    positive_rank_sum: float | None = None

    @classmethod
    def zero(cls, bins: int = SCORE_BINS) -> BinaryCounts:
        z = np.zeros(bins, dtype=np.int64)
        return cls(z, z.copy(), np.zeros(bins), 0, 0, 0, 0, positive_rank_sum=0.0)

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.tn + self.fn

    def merge(self, other: BinaryCounts) -> BinaryCounts:
        return BinaryCounts(
            self.positives + other.positives,
            self.negatives + other.negatives,
            self.score_sums + other.score_sums,
            self.tp + other.tp,
            self.fp + other.fp,
            self.tn + other.tn,
            self.fn + other.fn,
            self.log_loss_sum + other.log_loss_sum,
            self.log_loss_sq + other.log_loss_sq,
            self.brier_sum + other.brier_sum,
            self.brier_sq + other.brier_sq,
            other.positive_rank_sum
            if self.n == 0
            else self.positive_rank_sum
            if other.n == 0
            else None,
        )

    def __eq__(self, other: object) -> bool:
        """The same counts and sums; the rank sums are compared where both are known (a
        merge has none, and is still the same aggregate as the whole counted at once)."""
        if not isinstance(other, BinaryCounts):
            return NotImplemented
        ranks = (self.positive_rank_sum, other.positive_rank_sum)
        return (
            (None in ranks or _close([ranks[0] or 0.0], [ranks[1] or 0.0]))
            and (self.tp, self.fp, self.tn, self.fn) == (other.tp, other.fp, other.tn, other.fn)
            and np.array_equal(self.positives, other.positives)
            and np.array_equal(self.negatives, other.negatives)
            and _close(
                [
                    *self.score_sums,
                    self.log_loss_sum,
                    self.log_loss_sq,
                    self.brier_sum,
                    self.brier_sq,
                ],
                [
                    *other.score_sums,
                    other.log_loss_sum,
                    other.log_loss_sq,
                    other.brier_sum,
                    other.brier_sq,
                ],
            )
        )

    def _sums(self) -> list[float]:
        return [self.log_loss_sum, self.log_loss_sq, self.brier_sum, self.brier_sq]

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, eq=False)
class MulticlassCounts:
    """A window's confusion matrix (rows: label, columns: prediction) over ``classes``, and
    the log-loss sums where per-class scores are logged."""

    classes: tuple[str, ...]
    confusion: np.ndarray[Any, np.dtype[np.int64]]
    log_loss_sum: float = 0.0
    log_loss_sq: float = 0.0
    log_loss_n: int = 0

    @classmethod
    def zero(cls, classes: Sequence[str]) -> MulticlassCounts:
        k = len(classes)
        return cls(tuple(classes), np.zeros((k, k), dtype=np.int64))

    @property
    def n(self) -> int:
        return int(self.confusion.sum())

    def merge(self, other: MulticlassCounts) -> MulticlassCounts:
        if self.classes != other.classes:
            raise ValueError("confusion matrices over different classes cannot be merged")
        return MulticlassCounts(
            self.classes,
            self.confusion + other.confusion,
            self.log_loss_sum + other.log_loss_sum,
            self.log_loss_sq + other.log_loss_sq,
            self.log_loss_n + other.log_loss_n,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MulticlassCounts):
            return NotImplemented
        return (
            self.classes == other.classes
            and np.array_equal(self.confusion, other.confusion)
            and self.log_loss_n == other.log_loss_n
            and _close(
                [self.log_loss_sum, self.log_loss_sq], [other.log_loss_sum, other.log_loss_sq]
            )
        )

    __hash__ = None  # type: ignore[assignment]


class _Sums:
    """Sums that merge field by field (the dataclass defaults are the zero)."""

    @classmethod
    def zero(cls) -> Any:
        return cls()

    def merge(self, other: Any) -> Any:
        return type(self)(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}  # type: ignore[arg-type]
        )

    def close_to(self, other: Any) -> bool:
        names = [f.name for f in fields(self)]  # type: ignore[arg-type]
        return _close([getattr(self, n) for n in names], [getattr(other, n) for n in names])


@dataclass(frozen=True)
class RegressionSums(_Sums):
    """The residual moments (``e = prediction - label``) of a window's labelled events."""

    n: int = 0
    error: float = 0.0  # sum of e
    error_sq: float = 0.0  # sum of e²
    error_4: float = 0.0  # sum of e⁴, for the squared error's own variance
    abs_error: float = 0.0  # sum of |e|
    label: float = 0.0  # sum of y
    label_sq: float = 0.0  # sum of y²
    ape: float = 0.0  # sum of |e| / |y| over labels away from zero
    ape_sq: float = 0.0
    ape_n: int = 0

    def minus(self, part: RegressionSums) -> RegressionSums:
        """The sums of the events not in ``part`` (a segment's complement)."""
        return RegressionSums(
            **{f.name: getattr(self, f.name) - getattr(part, f.name) for f in fields(self)}
        )


@dataclass(frozen=True)
class RankingSums(_Sums):
    """Per-query ranking quality summed over a window's queries."""

    queries: int = 0
    impressions: int = 0  # labelled events shown
    clicks: int = 0  # impressions with a positive label
    precision_at_k: float = 0.0  # sum over queries of hits@k / k
    precision_sq: float = 0.0
    ndcg: float = 0.0  # sum over queries with a relevant item of DCG@k / IDCG@k
    ndcg_sq: float = 0.0
    ndcg_queries: int = 0
    reciprocal_rank: float = 0.0  # sum over queries of 1 / rank of the first relevant item
    reciprocal_rank_sq: float = 0.0

    @property
    def n(self) -> int:
        return self.queries


def _close(a: Sequence[float], b: Sequence[float]) -> bool:
    return bool(np.allclose(np.asarray(a, float), np.asarray(b, float), rtol=1e-9, atol=1e-9))


LabelledCounts = BinaryCounts | MulticlassCounts | RegressionSums | RankingSums

__all__ = [
    "EPS",
    "MAPE_FLOOR",
    "SCORE_BINS",
    "BinaryCounts",
    "LabelledCounts",
    "MulticlassCounts",
    "RankingSums",
    "RegressionSums",
    "score_bins",
]
