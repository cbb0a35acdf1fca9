"""Drift methods: pure functions from a reference and a window profile to a number.

Each method is registered under a public key (it appears in the config, the metrics table
and Prometheus labels) with its metadata: the kinds of column it applies to, whether it is a
distance or a test, its default threshold, its source, and how to compute it exactly on raw
data (numpy/scipy) with the bound on the difference that binning allows. The conformance
suite in the tests runs every registered method through the same checks.

Distances (psi, jensen_shannon, hellinger, total_variation) use the coarse grid for numeric
columns (about ten reference-quantile bins) and every category for categorical ones;
wasserstein and ks use the fine grid (about a hundred bins).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import numpy as np
from scipy import special

from watchkeeper.errors import UnknownMethodError
from watchkeeper.profiles.binning import Binning
from watchkeeper.profiles.types import ColumnKind, ColumnProfile
from watchkeeper.stats.comparisons import homogeneity

Array = np.ndarray[Any, np.dtype[np.float64]]
# proportions below this are raised to it, so an empty bin is finite
PSI_FLOOR = 1e-4
KS_EXACT_LIMIT = 10_000  # effective sample size above which KS uses the limiting law


@dataclass(frozen=True)
class Comparison:
    """A window's column profile against the reference's, over the same bins."""

    binning: Binning
    reference: ColumnProfile
    current: ColumnProfile

    def counts(self, grid: Literal["coarse", "fine"]) -> tuple[Array, Array]:
        return self._coarse if grid == "coarse" else self._fine

    def proportions(self, grid: Literal["coarse", "fine"]) -> tuple[Array, Array]:
        ref, cur = self.counts(grid)
        return ref / ref.sum(), cur / cur.sum()

    @cached_property
    def cdfs(self) -> tuple[Array, Array, Array, Array, Array]:
        """Grid, both CDFs on it, and both fine proportions (shared by wasserstein and ks)."""
        ref, cur = self.proportions("fine")
        f_ref = np.concatenate([[0.0], np.cumsum(ref)])
        f_cur = np.concatenate([[0.0], np.cumsum(cur)])
        return self.grid(), f_ref, f_cur, ref, cur

    @cached_property
    def _fine(self) -> tuple[Array, Array]:
        return (
            np.asarray(self.reference.bins, dtype=float),
            np.asarray(self.current.bins, dtype=float),
        )

    @cached_property
    def _coarse(self) -> tuple[Array, Array]:
        ref, cur = self._fine
        return self.binning.coarse_counts(ref), self.binning.coarse_counts(cur)

    def grid(self) -> Array:
        """Fine edges with the outer bins closed at the observed extremes."""
        edges = np.asarray(self.binning.edges, dtype=float)
        lows = [x for x in (self.reference.low, self.current.low) if np.isfinite(x)]
        highs = [x for x in (self.reference.high, self.current.high) if np.isfinite(x)]
        lo = min([edges[0], *lows])
        hi = max([edges[-1], *highs])
        return np.concatenate([[lo], edges, [hi]])


@dataclass(frozen=True)
class Result:
    statistic: float
    p_value: float | None = None
    bound: float = 0.0  # how far the exact (unbinned) statistic can be from this one


@dataclass(frozen=True)
class Method:
    key: str
    kinds: frozenset[ColumnKind]
    is_test: bool  # a significance test (decides by p-value) or a distance (by size)
    threshold: float  # a distance's default drift threshold; a test's significance level
    description: str
    source: str  # where the definition comes from
    compute: Callable[[Comparison], Result]
    # The same quantity on raw samples (numpy/scipy), for the conformance suite.
    exact: Callable[[Array, Array], float]


REGISTRY: dict[str, Method] = {}


def register(method: Method) -> Method:
    if not (method.description and method.source and method.kinds):
        raise ValueError(f"drift method {method.key!r} is registered without its metadata")
    REGISTRY[method.key] = method
    return method


def get(key: str) -> Method:
    try:
        return REGISTRY[key]
    except KeyError:
        raise UnknownMethodError("drift method", key, REGISTRY) from None


def methods_for(kind: ColumnKind) -> Iterator[Method]:
    return (m for m in REGISTRY.values() if kind in m.kinds)


def _grid(c: Comparison) -> Literal["coarse", "fine"]:
    return "coarse" if c.binning.kind == "numeric" else "fine"


# -- distances over proportions ---------------------------------------------------------


def _psi(p: Array, q: Array) -> float:
    keep = (p > 0) | (q > 0)
    p, q = np.maximum(p[keep], PSI_FLOOR), np.maximum(q[keep], PSI_FLOOR)
    return float(np.sum((q - p) * np.log(q / p)))


def _js(p: Array, q: Array) -> float:
    m = (p + q) / 2

    def kl(a: Array) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return float(np.sqrt(max((kl(p) + kl(q)) / 2, 0.0)))


def _hellinger(p: Array, q: Array) -> float:
    return float(np.sqrt(max(1.0 - np.sum(np.sqrt(p * q)), 0.0)))


def _tv(p: Array, q: Array) -> float:
    return float(0.5 * np.abs(p - q).sum())


def _on_props(fn: Callable[[Array, Array], float]) -> Callable[[Comparison], Result]:
    def compute(c: Comparison) -> Result:
        p, q = c.proportions(_grid(c))
        return Result(fn(p, q))

    return compute


def _exact_props(fn: Callable[[Array, Array], float]) -> Callable[[Array, Array], float]:
    """The distance over the same bins computed from raw category or bin labels."""

    def exact(ref: Array, cur: Array) -> float:
        cats = np.union1d(ref, cur)
        p = np.array([(ref == v).sum() for v in cats], dtype=float)
        q = np.array([(cur == v).sum() for v in cats], dtype=float)
        return fn(p / p.sum(), q / q.sum())

    return exact


# -- wasserstein and ks on the fine grid ------------------------------------------------


def _cdfs(c: Comparison) -> tuple[Array, Array, Array, Array, Array]:
    return c.cdfs


def _wasserstein(c: Comparison) -> Result:
    grid, f_ref, f_cur, ref, cur = _cdfs(c)
    d = f_ref - f_cur
    widths = np.diff(grid)
    d0, d1 = d[:-1], d[1:]
    same = np.sign(d0) * np.sign(d1) >= 0
    area = np.where(
        same,
        (np.abs(d0) + np.abs(d1)) / 2 * widths,
        widths * (d0**2 + d1**2) / (2 * np.maximum(np.abs(d0) + np.abs(d1), 1e-300)),
    )
    distance = float(area.sum())
    # Within a bin the CDF lies in the box of its width and mass; the area between it and
    # the chord used here is at most half that box.
    bound = float(np.sum(widths * (ref + cur)) / 2)
    scale = c.reference.std
    if not np.isfinite(scale) or scale <= 0:
        return Result(distance, bound=bound)
    return Result(distance / scale, bound=bound / scale)


def _wasserstein_exact(ref: Array, cur: Array) -> float:
    scale = float(np.std(ref))
    from scipy import stats as sps  # imported when needed: it costs half a second

    distance = float(sps.wasserstein_distance(ref, cur))
    return distance / scale if scale > 0 else distance


def _ks(c: Comparison) -> Result:
    _, f_ref, f_cur, ref, cur = _cdfs(c)
    statistic = float(np.max(np.abs(f_ref - f_cur)))
    n, m = c.reference.present, c.current.present
    en = n * m / (n + m)
    if en <= KS_EXACT_LIMIT:  # scipy's ks_2samp(method="asymp")
        from scipy import stats as sps

        p_value = float(sps.kstwo.sf(statistic, max(round(en), 1)))
    else:  # the limiting distribution: same to ~1e-3 here, and far cheaper to evaluate
        p_value = float(special.kolmogorov(statistic * np.sqrt(en)))
    return Result(
        statistic, p_value=min(max(p_value, 0.0), 1.0), bound=float(np.max(np.maximum(ref, cur)))
    )


def _ks_exact(ref: Array, cur: Array) -> float:
    from scipy import stats as sps

    return float(sps.ks_2samp(ref, cur).statistic)


def _chi2(c: Comparison) -> Result:
    ref, cur = c.counts(_grid(c))
    found = homogeneity(np.vstack([ref, cur]))
    if found is None:
        return Result(0.0, p_value=1.0)
    return Result(found[0], p_value=found[1])


def _chi2_exact(ref: Array, cur: Array) -> float:
    cats = np.union1d(ref, cur)
    table = np.array([[(ref == v).sum() for v in cats], [(cur == v).sum() for v in cats]])
    from scipy import stats as sps

    return float(sps.chi2_contingency(table, correction=False)[0])


BOTH: frozenset[ColumnKind] = frozenset({"numeric", "categorical"})
NUMERIC: frozenset[ColumnKind] = frozenset({"numeric"})

register(
    Method(
        "psi",
        BOTH,
        False,
        0.2,
        "Population stability index: sum of (q - p) ln(q / p) over bins; proportions floored "
        "at 1e-4. Below 0.1 stable, 0.1-0.2 moderate shift, above 0.2 major shift.",
        "Yurdakul (2018), Statistical properties of population stability index.",
        _on_props(_psi),
        _exact_props(_psi),
    )
)
register(
    Method(
        "jensen_shannon",
        BOTH,
        False,
        0.1,
        "Jensen-Shannon distance (square root of the divergence, base 2), in [0, 1].",
        "Lin (1991), Divergence measures based on the Shannon entropy; "
        "scipy.spatial.distance.jensenshannon.",
        _on_props(_js),
        _exact_props(_js),
    )
)
register(
    Method(
        "hellinger",
        BOTH,
        False,
        0.1,
        "Hellinger distance, sqrt(1 - sum sqrt(p q)), in [0, 1].",
        "Hellinger (1909); see Le Cam & Yang (2000), Asymptotics in Statistics.",
        _on_props(_hellinger),
        _exact_props(_hellinger),
    )
)
register(
    Method(
        "total_variation",
        BOTH,
        False,
        0.1,
        "Total variation distance, half the L1 distance between proportions, in [0, 1].",
        "Levin, Peres & Wilmer (2009), Markov Chains and Mixing Times, ch. 4.",
        _on_props(_tv),
        _exact_props(_tv),
    )
)
register(
    Method(
        "wasserstein",
        NUMERIC,
        False,
        0.1,
        "Earth mover's distance (W1) divided by the reference's standard deviation, from the "
        "fine grid with mass spread evenly within each bin. Bound: half the sum over bins of "
        "bin width times the two distributions' mass in it, over the reference's std.",
        "Villani (2009), Optimal Transport; scipy.stats.wasserstein_distance.",
        _wasserstein,
        _wasserstein_exact,
    )
)
register(
    Method(
        "ks",
        NUMERIC,
        True,
        0.05,
        "Two-sample Kolmogorov-Smirnov statistic, the largest CDF gap on the fine grid, with "
        "the asymptotic p-value of scipy's ks_2samp. Bound: the exact statistic is within the "
        "largest single-bin proportion of the grid value.",
        "Massey (1951), The Kolmogorov-Smirnov test for goodness of fit; scipy.stats.ks_2samp.",
        _ks,
        _ks_exact,
    )
)
register(
    Method(
        "chi2",
        BOTH,
        True,
        0.05,
        "Pearson chi-square test of homogeneity of the reference and window counts over the "
        "bins (numeric: the coarse grid); bins empty in both are left out.",
        "Pearson (1900); scipy.stats.chi2_contingency.",
        _chi2,
        _chi2_exact,
    )
)


def compare(method: str, comparison: Comparison) -> Result | None:
    """The method's result, or None when either side has no values."""
    if comparison.reference.present == 0 or comparison.current.present == 0:
        return None
    m = get(method)
    if comparison.binning.kind not in m.kinds:
        raise UnknownMethodError(
            f"drift method for {comparison.binning.kind} columns",
            method,
            [k for k, v in REGISTRY.items() if comparison.binning.kind in v.kinds],
        )
    return m.compute(comparison)
