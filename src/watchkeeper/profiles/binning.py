"""How a column's values fall into bins: fixed once from the reference.

Numeric columns get fine edges from the reference's quantiles (about 100 bins; one bin per
value when the column has few distinct values) and a coarse grid of about ten bins whose
edges are a subset of the fine ones, so coarse counts are sums of fine counts. Categorical
columns get a vocabulary (the most frequent reference categories) and the set of all
categories the reference has, so that a window's values split into vocabulary, ``other``
(known but rare) and ``unseen`` (never in the reference).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from watchkeeper.profiles.types import ColumnKind

FINE_BINS = 100
COARSE_BINS = 10
VOCABULARY = 50
KNOWN_CAP = 10_000
OTHER = "(other)"
UNSEEN = "(unseen)"

# Latency has fixed edges (ms), 1-2-5 steps from 0.1 ms to 10 minutes: not fitted.
LATENCY_EDGES = (*tuple(float(f"{m}e{e}") for e in range(-1, 6) for m in (1, 2, 5)), 600000.0)


@dataclass(frozen=True)
class Binning:
    name: str  # the stored column
    kind: ColumnKind
    role: str  # feature, score, prediction, label, latency
    edges: tuple[float, ...] = ()  # numeric: k + 1 increasing edges (k >= 1)
    coarse: tuple[int, ...] = ()  # numeric: indices into edges for the coarse grid
    categories: tuple[str, ...] = ()  # categorical: the vocabulary
    known: tuple[str, ...] = ()  # categorical: every reference category (capped)

    @property
    def n_bins(self) -> int:
        """Bins including the two outer ones (below/above, or other/unseen)."""
        inner = len(self.edges) - 1 if self.kind == "numeric" else len(self.categories)
        return inner + 2

    def labels(self) -> list[str]:
        if self.kind == "categorical":
            return [*self.categories, OTHER, UNSEEN]
        e = self.edges
        inner = [f"[{e[i]:.6g}, {e[i + 1]:.6g})" for i in range(len(e) - 1)]
        if inner:
            inner[-1] = inner[-1][:-1] + "]"
        return [f"< {e[0]:.6g}", *inner, f"> {e[-1]:.6g}"]

    def coarse_counts(self, bins: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """Fine counts folded onto the coarse grid (outer bins kept)."""
        if self.kind == "categorical" or not self.coarse:
            return np.asarray(bins)
        bins = np.asarray(bins)
        folded = np.add.reduceat(bins[1:-1], np.asarray(self.coarse[:-1]))
        return np.concatenate([bins[:1], folded, bins[-1:]])

    def coarse_edges(self) -> np.ndarray[Any, Any]:
        return np.asarray(self.edges)[list(self.coarse)] if self.coarse else np.asarray(self.edges)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "role": self.role,
            "edges": list(self.edges),
            "coarse": list(self.coarse),
            "categories": list(self.categories),
            "known": list(self.known),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Binning:
        return cls(
            data["name"],
            data["kind"],
            data["role"],
            tuple(float(x) for x in data["edges"]),
            tuple(int(x) for x in data["coarse"]),
            tuple(data["categories"]),
            tuple(data["known"]),
        )


def numeric_edges(
    quantiles: Sequence[float] | None, distinct: Sequence[float] | None
) -> tuple[float, ...]:
    """Fine edges: one bin per distinct value if there are few, else the quantiles."""
    if distinct is not None and len(distinct) > 0:
        values = sorted(float(v) for v in distinct)
        if len(values) == 1:
            return (values[0], values[0])
        mids = [(a + b) / 2 for a, b in itertools.pairwise(values)]
        return (values[0], *mids, values[-1])
    qs = np.unique(
        np.asarray(
            [q for q in (quantiles if quantiles is not None else ()) if q is not None],
            dtype=float,
        )
    )
    qs = qs[np.isfinite(qs)]
    if len(qs) == 0:
        return (0.0, 0.0)
    if len(qs) == 1:
        return (float(qs[0]), float(qs[0]))
    return tuple(float(q) for q in qs)


def coarse_grid(
    edges: Sequence[float],
    fine_counts: Sequence[int] | np.ndarray[Any, Any],
    target: int = COARSE_BINS,
) -> tuple[int, ...]:
    """Indices of the fine edges that cut the reference into about ``target`` equal parts."""
    k = len(edges) - 1
    inner = np.asarray(fine_counts, dtype=float)[1:-1]
    if k <= target or inner.sum() == 0:
        return tuple(range(k + 1))
    cum = np.cumsum(inner) / inner.sum()
    cuts = {0, k}
    for q in np.arange(1, target) / target:
        cuts.add(int(np.searchsorted(cum, q, side="left")) + 1)
    return tuple(sorted(c for c in cuts if 0 <= c <= k))
