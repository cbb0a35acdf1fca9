"""Performance estimated without labels: isotonic calibration against scikit-learn, and
bands that cover the realized value under covariate shift but fail under concept shift."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression

from watchkeeper.profiles.counts import score_bins
from watchkeeper.stats import estimation as est
from watchkeeper.stats import multiclass as mc
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


@pytest.mark.parametrize("name", sorted(est.ESTIMATES))
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


def folds(score: np.ndarray, y: np.ndarray, k: int = 5) -> list[perf.BinaryCounts]:
    fold = np.arange(len(score)) % k
    return [
        perf.counts_from_rows(score[fold == i], y[fold == i], (score[fold == i] >= 0.5))
        for i in range(k)
    ]


def test_isotonic_is_chosen_where_it_improves_calibration() -> None:
    squashed = REFERENCE_SCORE**2  # ranks well, calibrated badly
    chosen = est.CalibrationMap.choose(folds(squashed, REFERENCE_Y))
    assert chosen.method == "isotonic"
    assert chosen.error_isotonic < chosen.error_scores  # type: ignore[operator]


def test_calibrated_scores_are_kept_as_they_are() -> None:
    # A calibrated model on a small reference: isotonic's own fitting noise costs more
    # than it corrects, so the held-out error keeps the scores.
    kept = 0
    for seed in range(10):
        rng = np.random.default_rng([seed, 7])
        score = rng.uniform(0, 1, 3000)
        y = (rng.uniform(size=3000) < score).astype(int)
        kept += est.CalibrationMap.choose(folds(score, y)).method == "scores"
    assert kept >= 7


def test_estimated_roc_auc_equals_the_realized_one_in_expectation() -> None:
    score, _ = world(20_000, 0.0, False)
    counts = np.bincount(score_bins(score), minlength=100)
    expected = est.estimated_roc_auc(est.expected_confusion(counts, CALIBRATION, 0.5))
    draws = []
    for _ in range(200):
        y = (RNG.uniform(size=len(score)) < score).astype(int)
        draws.append(perf.roc_auc(perf.counts_from_rows(score, y, score >= 0.5)).value)
    assert expected.value == pytest.approx(np.mean(draws), abs=0.003)
    # the band is about as wide as the spread of the realized value (not a tenth of it)
    half = (expected.upper - expected.lower) / 2  # type: ignore[operator]
    assert 0.7 < half / (1.96 * np.std(draws)) < 2.5


CLASSES = ("a", "b", "c")


def three_classes(rng: np.random.Generator, n: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    """Softmax scores of a calibrated three-class model; the shift moves the inputs."""
    x = rng.normal(shift, 1, (n, 2))
    logits = np.stack([x[:, 0], x[:, 1], -x[:, 0] - x[:, 1]], axis=1) * 1.5
    prob = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(3, p=p) for p in prob])
    return prob, y


def multiclass_expected(
    prob: np.ndarray, calibrations: dict[str, est.CalibrationMap]
) -> dict[str, est.ExpectedConfusion]:
    predicted = prob.argmax(axis=1)
    out = {}
    for i, cls in enumerate(CLASSES):
        bins = score_bins(prob[:, i]) + 100 * (predicted == i)
        out[cls] = est.one_vs_rest(np.bincount(bins, minlength=200), calibrations[cls])
    return out


def test_multiclass_bands_cover_the_realized_values_under_covariate_shift() -> None:
    rng = np.random.default_rng([5, 1])
    prob, y = three_classes(rng, 30_000, 0.0)
    calibrations = {
        cls: est.CalibrationMap.fit(perf.counts_from_rows(prob[:, i], y == i, prob[:, i] >= 0.5))
        for i, cls in enumerate(CLASSES)
    }
    hits = {"accuracy": 0, "macro_f1": 0, "macro_recall": 0, "recall:a": 0}
    runs = 60
    for i in range(runs):
        prob, y = three_classes(rng, 1500, (i % 4) * 0.25)
        found = est.estimated_multiclass(multiclass_expected(prob, calibrations))
        counts = mc.counts_from_rows(
            CLASSES, [CLASSES[j] for j in y], [CLASSES[j] for j in prob.argmax(axis=1)]
        )
        realized = {
            "accuracy": mc.accuracy(counts).value,
            "macro_f1": mc.METRICS["macro_f1"](counts).value,
            "macro_recall": mc.METRICS["macro_recall"](counts).value,
            "recall:a": mc.class_recall(counts)["a"].value,
        }
        for name in hits:
            band = found[name]
            hits[name] += band.lower <= realized[name] <= band.upper  # type: ignore[operator]
    assert all(h / runs >= 0.9 for h in hits.values()), hits
