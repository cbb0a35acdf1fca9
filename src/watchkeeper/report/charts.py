"""The bins a distribution chart shows: a numeric column's coarse ranges with readable
labels ("below", "0.12 to 0.5", "above"), a categorical column's values, as shares of the
reference's and the window's events (the charts themselves are in ``report.specs``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from watchkeeper.profiles.binning import Binning


def display_bins(
    binning: Binning, ref: Any, live: Any
) -> tuple[list[str], list[float], list[float]]:
    if binning.kind == "numeric":
        r, lv = binning.coarse_counts(ref), binning.coarse_counts(live)
        edges = binning.coarse_edges()
        labels = [
            "below",
            *[f"{_edge(edges[i])} to {_edge(edges[i + 1])}" for i in range(len(edges) - 1)],
            "above",
        ]
    else:
        r, lv = np.asarray(ref), np.asarray(live)
        labels = list(binning.labels())
    r = np.asarray(r, dtype=float)
    lv = np.asarray(lv, dtype=float)
    keep = (r + lv) > 0
    r_share = r / max(r.sum(), 1)
    l_share = lv / max(lv.sum(), 1)
    out = [(lab, a, b) for lab, a, b, k in zip(labels, r_share, l_share, keep, strict=False) if k]
    out = out[:20]
    return [o[0] for o in out], [float(o[1]) for o in out], [float(o[2]) for o in out]


def _edge(v: float) -> str:
    """An edge as people write it: 120, 1,250, 7.4, 0.031 (never 1.2e+02)."""
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 1 or a == 0:
        return f"{v:.3g}"
    return f"{v:.2g}" if a >= 1e-4 else f"{v:.1e}"


__all__ = ["display_bins"]
