"""Multiple testing: the false discovery rate across a window's columns and segments."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (q-values), in the input order.

    Benjamini & Hochberg (1995), Controlling the false discovery rate. Equal to
    ``scipy.stats.false_discovery_control(p, method="bh")`` (a test checks it), written
    here because importing ``scipy.stats`` costs a run about 0.4 s, more than all its
    adjustments together.
    """
    p = np.clip(np.asarray(p_values, dtype=float), 0.0, 1.0)
    n = len(p)
    if n == 0:
        return []
    order = np.argsort(p)
    ranked = p[order] * n / np.arange(1, n + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(n)
    out[order] = np.minimum(adjusted, 1.0)
    return [float(x) for x in out]


__all__ = ["benjamini_hochberg"]
