"""Plain numpy versions of what the engine computes, to test against."""

from __future__ import annotations

from typing import Any

import numpy as np

from watchkeeper.profiles.binning import Binning, coarse_grid, numeric_edges
from watchkeeper.profiles.types import ColumnProfile


def numeric_binning(reference: np.ndarray[Any, Any], name: str = "x") -> Binning:
    ref = reference[~np.isnan(reference)]
    distinct = np.unique(ref)
    edges = numeric_edges(
        np.quantile(ref, np.linspace(0, 1, 101)), distinct if len(distinct) <= 100 else None
    )
    b = Binning(name, "numeric", "feature", edges=edges)
    counts = numeric_profile(reference, b).bins
    return Binning(name, "numeric", "feature", edges=edges, coarse=coarse_grid(edges, counts))


def bin_index(values: np.ndarray[Any, Any], edges: tuple[float, ...]) -> np.ndarray[Any, Any]:
    e = np.asarray(edges)
    idx = np.searchsorted(e[1:-1], values, side="right") + 1
    idx[values < e[0]] = 0
    idx[values > e[-1]] = len(e)
    return idx


def numeric_profile(values: np.ndarray[Any, Any], b: Binning) -> ColumnProfile:
    v = np.asarray(values, dtype=float)
    present = v[~np.isnan(v)]
    bins = np.bincount(bin_index(present, b.edges), minlength=len(b.edges) + 1).astype(np.int64)
    return ColumnProfile(
        "numeric",
        len(v),
        int(np.isnan(v).sum()),
        bins,
        float(present.sum()),
        float((present**2).sum()),
        float(present.min()) if len(present) else float("nan"),
        float(present.max()) if len(present) else float("nan"),
    )


def categorical_binning(reference: list[Any], vocabulary: int = 50) -> Binning:
    values, counts = np.unique([v for v in reference if v is not None], return_counts=True)
    order = sorted(zip(values, counts, strict=True), key=lambda vc: (-vc[1], vc[0]))
    cats = tuple(str(v) for v, _ in order)
    return Binning(
        "c", "categorical", "feature", categories=cats[:vocabulary], known=tuple(sorted(cats))
    )


def categorical_profile(values: list[Any], b: Binning) -> ColumnProfile:
    k = len(b.categories)
    bins = np.zeros(k + 2, dtype=np.int64)
    index = {c: i for i, c in enumerate(b.categories)}
    known = set(b.known)
    missing = 0
    for v in values:
        if v is None:
            missing += 1
        elif str(v) in index:
            bins[index[str(v)]] += 1
        elif str(v) in known:
            bins[k] += 1
        else:
            bins[k + 1] += 1
    return ColumnProfile("categorical", len(values), missing, bins)
