"""Multiple testing: the false discovery rate across a window's columns and segments."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (q-values), in the input order.

    Benjamini & Hochberg (1995), Controlling the false discovery rate; computed by
    ``scipy.stats.false_discovery_control`` (equal to statsmodels' ``fdr_bh``).
    """
    if len(p_values) == 0:
        return []
    p = np.clip(np.asarray(p_values, dtype=float), 0.0, 1.0)
    return [float(x) for x in stats.false_discovery_control(p, method="bh")]


__all__ = ["benjamini_hochberg"]
