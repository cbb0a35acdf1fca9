"""Tests that compare two groups (a segment and the rest, a slice and the rest, groups of a
protected attribute) from their sums, never from rows.

Each returns the difference and a p-value; the normal approximations are what large windows
need, and each is checked against scipy/statsmodels in the tests.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from scipy import special

Side = Literal["two-sided", "greater"]


def _p(z: float, side: Side) -> float:
    """The p-value of a standard normal statistic: two-sided, or that the first is greater."""
    if side == "greater":
        return float(special.ndtr(-z))
    return float(special.erfc(abs(z) / math.sqrt(2)))


def two_proportions(
    k1: float, n1: float, k2: float, n2: float, side: Side = "two-sided"
) -> tuple[float | None, float | None]:
    """Difference p1 - p2 and the p-value of the pooled two-proportion z-test
    (``statsmodels.stats.proportion.proportions_ztest`` with ``prop_var=False``)."""
    if n1 <= 0 or n2 <= 0:
        return None, None
    p1, p2 = k1 / n1, k2 / n2
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(max(pooled * (1 - pooled), 0.0) * (1 / n1 + 1 / n2))
    if se == 0:
        return p1 - p2, 1.0
    return p1 - p2, _p((p1 - p2) / se, side)


def welch(
    s1: float,
    q1: float,
    n1: float,
    s2: float,
    q2: float,
    n2: float,
    side: Side = "two-sided",
) -> tuple[float | None, float | None]:
    """Difference of means from sums and sums of squares, and the p-value of Welch's test
    with the normal approximation (large windows: ``scipy.stats.ttest_ind(equal_var=False)``
    tends to it)."""
    if n1 < 2 or n2 < 2:
        return None, None
    m1, m2 = s1 / n1, s2 / n2
    v1 = max(q1 / n1 - m1 * m1, 0.0) * n1 / (n1 - 1)
    v2 = max(q2 / n2 - m2 * m2, 0.0) * n2 / (n2 - 1)
    se = math.sqrt(v1 / n1 + v2 / n2)
    if se == 0:
        return m1 - m2, 1.0
    return m1 - m2, _p((m1 - m2) / se, side)


def homogeneity(table: np.ndarray[Any, Any]) -> tuple[float, float] | None:
    """Pearson's chi-square test that the rows of a contingency table share one
    distribution over its columns (as ``scipy.stats.chi2_contingency`` without correction):
    statistic and p-value, or None when, empty rows and columns left out, fewer than two of
    either remain."""
    table = np.asarray(table, dtype=float)
    table = table[table.sum(axis=1) > 0]
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[0] < 2 or table.shape[1] < 2:
        return None
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0) / table.sum()
    statistic = float(((table - expected) ** 2 / expected).sum())
    dof = (table.shape[0] - 1) * (table.shape[1] - 1)
    return statistic, float(special.chdtrc(dof, statistic))


def homogeneity_p(table: np.ndarray[Any, Any]) -> float | None:
    """The p-value that the rows (groups) share one proportion (None when untestable)."""
    found = homogeneity(table)
    return None if found is None else found[1]


__all__ = ["Side", "homogeneity", "homogeneity_p", "two_proportions", "welch"]
