"""Data-quality metrics: pure functions of a window's profile (and its reference's bins)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from watchkeeper.errors import UnknownMethodError
from watchkeeper.profiles.binning import Binning
from watchkeeper.profiles.types import ColumnKind, ColumnProfile


@dataclass(frozen=True)
class QualityMetric:
    key: str
    kinds: frozenset[ColumnKind]
    description: str
    compute: Callable[[ColumnProfile, Binning], tuple[float, int]]  # value, its sample size


REGISTRY: dict[str, QualityMetric] = {}


def register(metric: QualityMetric) -> QualityMetric:
    if not (metric.description and metric.kinds):
        raise ValueError(f"quality metric {metric.key!r} is registered without its metadata")
    REGISTRY[metric.key] = metric
    return metric


def get(key: str) -> QualityMetric:
    try:
        return REGISTRY[key]
    except KeyError:
        raise UnknownMethodError("quality metric", key, REGISTRY) from None


def _rate(part: float, whole: int) -> tuple[float, int]:
    return (part / whole if whole else float("nan")), whole


BOTH: frozenset[ColumnKind] = frozenset({"numeric", "categorical"})

register(
    QualityMetric(
        "missing_rate",
        BOTH,
        "Share of the window's rows where the column is null (NaN counts as null).",
        lambda p, b: _rate(p.missing, p.count),
    )
)
register(
    QualityMetric(
        "out_of_range_rate",
        frozenset({"numeric"}),
        "Share of the column's values outside the reference's range (below its lowest or "
        "above its highest fitted edge).",
        lambda p, b: _rate(float(p.bins[0] + p.bins[-1]), p.present),
    )
)
register(
    QualityMetric(
        "unseen_rate",
        frozenset({"categorical"}),
        "Share of the column's values that never occur in the reference.",
        lambda p, b: _rate(float(p.bins[-1]), p.present),
    )
)
register(
    QualityMetric(
        "mean",
        frozenset({"numeric"}),
        "Mean of the column's non-missing values.",
        lambda p, b: (p.mean, p.present),
    )
)
register(
    QualityMetric(
        "std",
        frozenset({"numeric"}),
        "Standard deviation (population) of the column's non-missing values.",
        lambda p, b: (p.std, p.present),
    )
)


def quantile_ranks(n: int, q: float, z: float = 1.96) -> tuple[int | None, int | None]:
    """The order statistics (1-based ranks) bounding the ``q`` quantile of ``n`` values with
    95% confidence, distribution-free: the number of values below the true quantile is
    binomial(n, q), whose 2.5% and 97.5% points are taken by the Cornish-Fisher expansion
    (the normal's, corrected for the binomial's skew near q = 0.99); each tail then holds
    at most 2.5% (checked exactly against the binomial for n up to a million). A rank
    beyond the sample is None: with 50 values the true p99 is above their maximum two
    times in five, so the maximum is no upper bound."""
    if n <= 0:
        return None, None
    centre, spread = n * q, z * math.sqrt(n * q * (1.0 - q))
    skew = (z * z - 1.0) * (1.0 - 2.0 * q) / 6.0
    lower = math.floor(centre - spread + skew)
    upper = math.ceil(centre + spread + skew + 0.5)
    return (lower if lower >= 1 else None), (upper if upper <= n else None)


def histogram_quantile_interval(
    profile: ColumnProfile, edges: tuple[float, ...], q: float
) -> tuple[float | None, float | None]:
    """The values at :func:`quantile_ranks` of a histogram (None beyond the sample)."""
    n = profile.present
    lower, upper = quantile_ranks(n, q)
    return (
        None if lower is None else histogram_quantile(profile, edges, lower / n),
        None if upper is None else histogram_quantile(profile, edges, upper / n),
    )


def histogram_quantile(profile: ColumnProfile, edges: tuple[float, ...], q: float) -> float:
    """A quantile from a histogram, interpolating within the bin (below/above bins are
    closed at the profile's min and max)."""
    counts = profile.bins.astype(float)
    total = counts.sum()
    if total == 0:
        return float("nan")
    lo = profile.low if np.isfinite(profile.low) else edges[0]
    hi = profile.high if np.isfinite(profile.high) else edges[-1]
    grid = np.concatenate([[min(lo, edges[0])], edges, [max(hi, edges[-1])]])
    cum = np.concatenate([[0.0], np.cumsum(counts)]) / total
    i = int(np.searchsorted(cum, q, side="left"))
    i = min(max(i, 1), len(grid) - 1)
    span = cum[i] - cum[i - 1]
    frac = (q - cum[i - 1]) / span if span > 0 else 0.0
    value = grid[i - 1] + frac * (grid[i] - grid[i - 1])
    return float(min(max(value, lo), hi))
