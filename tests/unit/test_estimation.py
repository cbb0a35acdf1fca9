"""Performance estimated without labels: isotonic calibration against scikit-learn, and
bands that cover the realized value under covariate shift but fail under concept shift."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression

from watchkeeper.stats import estimation as est
from watchkeeper.stats import performance as perf

RNG = np.random.default_rng(23)


def test_isotonic_matches_scikit_learn() -> None:
    y = RNG.uniform(size=60) + np.linspace(0, 1, 60)
    w = RNG.uniform(0.5, 3, 60)
    x = np.arange(60)
    expected = IsotonicRegression().fit(x, y, sample_weight=w).predict(x)
    assert est.isotonic(y, w) == pytest.approx(expected)


def world(n: int, shift: float, concept: bool) -> tuple[np.ndarray, np.ndarray]:
    """Scores from a model that is calibrated on the reference; covariate shift moves the
    inputs (so the scores), concept shift changes P(y | x) itself."""
    x = RNG.normal(shift, 1, n)
    truth = 1 / (1 + np.exp(-(1.5 * x - 1)))
    score = truth  # a calibrated model of the reference's world
    if concept:
        truth = 1 / (1 + np.exp(-(0.3 * x - 1)))  # the world changed, the model did not
    y = (RNG.uniform(size=n) < truth).astype(int)
    return score, y


def realized_and_estimated(calibration: est.CalibrationMap, shift: float, concept: bool):
    score, y = world(2000, shift, concept)
    counts = perf.counts_from_rows(score, y, (score >= 0.5).astype(int))
    expected = est.expected_confusion(counts.positives + counts.negatives, calibration, 0.5)
    return counts, expected


REFERENCE_SCORE, REFERENCE_Y = world(50_000, 0.0, False)
CALIBRATION = est.CalibrationMap.fit(
    perf.counts_from_rows(REFERENCE_SCORE, REFERENCE_Y, (REFERENCE_SCORE >= 0.5).astype(int))
)


@pytest.mark.parametrize("name", ["accuracy", "precision", "recall"])
def test_bands_cover_the_realized_value_under_covariate_shift(name: str) -> None:
    hits = 0
    runs = 100
    for i in range(runs):
        counts, expected = realized_and_estimated(CALIBRATION, shift=(i % 5) * 0.3, concept=False)
        band = est.ESTIMATES[name](expected)
        realized = perf.METRICS[name](counts).value
        hits += band.lower <= realized <= band.upper  # type: ignore[operator]
    assert hits / runs >= 0.9, (name, hits)


def test_the_estimate_fails_under_concept_shift() -> None:
    misses = 0
    for _ in range(50):
        counts, expected = realized_and_estimated(CALIBRATION, shift=0.5, concept=True)
        band = est.estimated_accuracy(expected)
        realized = perf.accuracy(counts).value
        misses += not (band.lower <= realized <= band.upper)  # type: ignore[operator]
    assert misses / 50 > 0.5  # backtesting would flag it
