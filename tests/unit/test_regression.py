"""Regression metrics from sums, against scikit-learn on exact data."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from watchkeeper.stats import regression as reg

RNG = np.random.default_rng(11)
Y = RNG.gamma(3, 50, 4000) + 1
P = Y * RNG.normal(1.0, 0.2, 4000) + RNG.normal(5, 10, 4000)
SUMS = reg.sums_from_rows(P, Y)


@pytest.mark.parametrize(
    ("name", "reference"),
    [
        ("mae", lambda y, p: skm.mean_absolute_error(y, p)),
        ("rmse", lambda y, p: skm.root_mean_squared_error(y, p)),
        ("mape", lambda y, p: skm.mean_absolute_percentage_error(y, p)),
        ("r2", lambda y, p: skm.r2_score(y, p)),
        ("mean_error", lambda y, p: float(np.mean(p - y))),
    ],
)
def test_metrics_match_scikit_learn(name: str, reference: object) -> None:
    estimate = reg.METRICS[name](SUMS)
    assert estimate.value == pytest.approx(reference(Y, P), rel=1e-9)  # type: ignore[operator]
    assert estimate.sample_size == 4000
    if estimate.lower is not None:
        assert estimate.lower < estimate.value < estimate.upper  # type: ignore[operator]


def test_mape_leaves_out_labels_at_zero() -> None:
    y = np.array([0.0, 2.0, 4.0])
    p = np.array([1.0, 3.0, 2.0])
    s = reg.sums_from_rows(p, y)
    assert s.ape_n == 2
    assert reg.mape(s).value == pytest.approx((0.5 + 0.5) / 2)


def test_intervals_cover_the_truth() -> None:
    true_mae = float(np.mean(np.abs(P - Y)))
    true_rmse = float(np.sqrt(np.mean((P - Y) ** 2)))
    hits = {"mae": 0, "rmse": 0}
    for _ in range(300):
        idx = RNG.integers(0, len(Y), 300)
        s = reg.sums_from_rows(P[idx], Y[idx])
        for name, truth in (("mae", true_mae), ("rmse", true_rmse)):
            e = reg.METRICS[name](s)
            hits[name] += e.lower <= truth <= e.upper  # type: ignore[operator]
    assert 0.9 <= hits["mae"] / 300 <= 0.99
    assert hits["rmse"] / 300 >= 0.85  # the chi-square approximation is rough for skewed errors


def test_merge_adds_up_and_empty_has_no_value() -> None:
    a, b = reg.sums_from_rows(P[:100], Y[:100]), reg.sums_from_rows(P[100:], Y[100:])
    assert reg.mae(a.merge(b)).value == pytest.approx(reg.mae(SUMS).value)
    for metric in reg.METRICS.values():
        assert metric(reg.RegressionSums()).value is None
