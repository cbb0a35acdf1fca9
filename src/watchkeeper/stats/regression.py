"""Regression performance from pushed-down sums, never from rows.

``RegressionSums`` are the moments of the residual ``e = prediction - label`` (and of the
label, for R²) over a window's labelled events; they merge by adding. Each metric returns
its sample size and, where one applies, a normal (central limit) confidence interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from watchkeeper.profiles.counts import MAPE_FLOOR, RegressionSums
from watchkeeper.stats.performance import Estimate, mean_estimate


def mae(s: RegressionSums) -> Estimate:
    return mean_estimate(s.abs_error, s.error_sq, s.n)


def mean_error(s: RegressionSums) -> Estimate:
    """Bias: the mean of prediction minus label."""
    return mean_estimate(s.error, s.error_sq, s.n)


def rmse(s: RegressionSums) -> Estimate:
    """RMSE, with the square roots of a normal interval on the mean squared error (its
    standard error from the squared errors' spread, which the fourth moment gives)."""
    mse = mean_estimate(s.error_sq, s.error_4, s.n, method="normal, on the mean squared error")
    if mse.value is None or mse.lower is None or mse.upper is None:
        return mse
    return Estimate(
        math.sqrt(mse.value),
        math.sqrt(max(mse.lower, 0.0)),
        math.sqrt(mse.upper),
        s.n,
        method=mse.method,
    )


def mape(s: RegressionSums) -> Estimate:
    """Mean absolute percentage error, as a fraction, over labels away from zero."""
    return mean_estimate(s.ape, s.ape_sq, s.ape_n)


def r2(s: RegressionSums) -> Estimate:
    """Coefficient of determination, 1 - SS_res / SS_tot (no interval)."""
    if s.n < 2:
        return Estimate(None, None, None, s.n)
    ss_tot = s.label_sq - s.label * s.label / s.n
    if ss_tot <= 0:
        return Estimate(None, None, None, s.n)
    return Estimate(1.0 - s.error_sq / ss_tot, None, None, s.n)


METRICS: dict[str, Callable[[RegressionSums], Estimate]] = {
    "mae": mae,
    "rmse": rmse,
    "mape": mape,
    "r2": r2,
    "mean_error": mean_error,
}


def sums_from_rows(predictions: Any, labels: Any) -> RegressionSums:
    """The same sums from raw rows, in numpy: for tests."""
    p, y = np.asarray(predictions, float), np.asarray(labels, float)
    e = p - y
    away = np.abs(y) >= MAPE_FLOOR
    ape = np.abs(e[away]) / np.abs(y[away])
    return RegressionSums(
        len(e),
        float(e.sum()),
        float((e * e).sum()),
        float((e**4).sum()),
        float(np.abs(e).sum()),
        float(y.sum()),
        float((y * y).sum()),
        float(ape.sum()),
        float((ape * ape).sum()),
        int(away.sum()),
    )
