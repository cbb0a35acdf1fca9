"""Binary classification metrics from counts, checked against scikit-learn on exact data."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from sklearn import metrics as skm

from watchkeeper.stats import performance as perf

RNG = np.random.default_rng(5)


def sample(n: int = 5000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = (RNG.uniform(size=n) < 0.3).astype(int)
    scores = np.clip(RNG.beta(2, 5, n) + 0.35 * y, 0, 1)
    return scores, y, (scores >= 0.5).astype(int)


SCORES, LABELS, PREDICTIONS = sample()
COUNTS = perf.counts_from_rows(SCORES, LABELS, PREDICTIONS)


@pytest.mark.parametrize(
    ("name", "reference"),
    [
        ("accuracy", lambda y, p, s: skm.accuracy_score(y, p)),
        ("precision", lambda y, p, s: skm.precision_score(y, p)),
        ("recall", lambda y, p, s: skm.recall_score(y, p)),
        ("specificity", lambda y, p, s: skm.recall_score(y, p, pos_label=0)),
        ("false_positive_rate", lambda y, p, s: 1 - skm.recall_score(y, p, pos_label=0)),
        ("false_negative_rate", lambda y, p, s: 1 - skm.recall_score(y, p)),
        ("f1", lambda y, p, s: skm.f1_score(y, p)),
        ("positive_rate", lambda y, p, s: p.mean()),
        ("log_loss", lambda y, p, s: skm.log_loss(y, s)),
        ("brier", lambda y, p, s: skm.brier_score_loss(y, s)),
    ],
)
def test_exact_metrics_match_scikit_learn(name: str, reference: object) -> None:
    estimate = perf.METRICS[name](COUNTS)
    expected = reference(LABELS, PREDICTIONS, SCORES)  # type: ignore[operator]
    assert estimate.value == pytest.approx(expected, rel=1e-9)
    assert estimate.lower is not None and estimate.upper is not None
    assert estimate.lower <= estimate.value <= estimate.upper
    assert estimate.bound == 0


def test_roc_auc_is_exact_from_the_rank_sum() -> None:
    estimate = perf.roc_auc(COUNTS)
    assert estimate.value == pytest.approx(skm.roc_auc_score(LABELS, SCORES), abs=1e-12)
    assert estimate.bound == 0


def test_roc_auc_is_within_its_stated_bound_of_scikit_learn_without_ranks() -> None:
    estimate = perf.roc_auc(replace(COUNTS, positive_rank_sum=None))
    exact = skm.roc_auc_score(LABELS, SCORES)
    assert estimate.value is not None
    assert abs(estimate.value - exact) <= estimate.bound + 1e-12
    assert 0 < estimate.bound < 0.01


def test_ties_and_bin_edges_rank_as_scikit_learn() -> None:
    # Scores on the bin edges (0.29 * 100 < 29 in float64) and many ties.
    scores = RNG.choice(np.array([0.29, 0.57, 0.58, 0.5, 0.3, 0.0, 1.0]), 2000)
    labels = (RNG.uniform(size=2000) < scores).astype(int)
    counts = perf.counts_from_rows(scores, labels, scores >= 0.5)
    assert perf.roc_auc(counts).value == pytest.approx(skm.roc_auc_score(labels, scores), abs=1e-12)
    for value, k in [(0.29, 29), (0.57, 57), (0.58, 58), (0.3, 30), (1.0, 99), (0.0, 0)]:
        mine = scores == value
        assert counts.positives[k] == labels[mine].sum(), value
        assert counts.negatives[k] == (1 - labels[mine]).sum(), value


def test_roc_auc_is_exact_when_scores_fall_on_bins() -> None:
    scores = RNG.integers(0, 100, 3000) / 100 + 0.005  # one value per bin
    labels = (RNG.uniform(size=3000) < scores).astype(int)
    counts = perf.counts_from_rows(scores, labels, (scores >= 0.5).astype(int))
    assert perf.roc_auc(counts).value == pytest.approx(skm.roc_auc_score(labels, scores))
    assert perf.pr_auc(counts).value == pytest.approx(skm.average_precision_score(labels, scores))


def test_pr_auc_is_within_its_stated_bound() -> None:
    estimate = perf.pr_auc(COUNTS)
    exact = skm.average_precision_score(LABELS, SCORES)
    assert estimate.value is not None
    assert abs(estimate.value - exact) <= estimate.bound


def test_calibration_matches_a_direct_computation() -> None:
    table = perf.reliability(COUNTS)
    edges = np.linspace(0, 1, 11)
    which = np.minimum((SCORES * 10).astype(int), 9)
    for i, row in enumerate(table):
        mask = which == i
        assert row.count == mask.sum()
        if mask.any():
            assert row.mean_score == pytest.approx(SCORES[mask].mean())
            assert row.positive_rate == pytest.approx(LABELS[mask].mean())
        assert (row.low, row.high) == pytest.approx((edges[i], edges[i + 1]))
    ece = sum(
        mask.sum() * abs(SCORES[mask].mean() - LABELS[mask].mean())
        for i in range(10)
        if (mask := which == i).any()
    ) / len(SCORES)
    assert perf.expected_calibration_error(COUNTS).value == pytest.approx(ece)


def test_wilson_matches_scipy() -> None:
    from scipy.stats import binomtest

    for k, n in [(8, 20), (0, 15), (15, 15), (480, 1000)]:
        ci = binomtest(k, n).proportion_ci(method="wilson")
        est = perf.wilson(k, n)
        assert (est.lower, est.upper) == pytest.approx((ci.low, ci.high), abs=1e-12)
    assert perf.wilson(0, 0).value is None


def test_intervals_cover_the_truth_at_their_level() -> None:
    # Simulated windows with known truth: 95% intervals cover in about 95% of them.
    covered = {"accuracy": 0, "roc_auc": 0, "f1": 0}
    truth_scores, truth_labels, truth_pred = sample(400_000)
    truth = perf.counts_from_rows(truth_scores, truth_labels, truth_pred)
    true_values = {k: perf.METRICS[k](truth).value for k in covered}
    runs = 300
    for _ in range(runs):
        idx = RNG.integers(0, len(truth_scores), 400)
        c = perf.counts_from_rows(truth_scores[idx], truth_labels[idx], truth_pred[idx])
        for k in covered:
            e = perf.METRICS[k](c)
            covered[k] += e.lower <= true_values[k] <= e.upper  # type: ignore[operator]
    for k, n in covered.items():
        # Hanley-McNeil is known to be conservative: AUC's coverage may exceed 95%.
        assert 0.91 <= n / runs <= (1.0 if k == "roc_auc" else 0.99), (k, n / runs)


def test_merging_counts_equals_counting_the_union() -> None:
    a = perf.counts_from_rows(SCORES[:2000], LABELS[:2000], PREDICTIONS[:2000])
    b = perf.counts_from_rows(SCORES[2000:], LABELS[2000:], PREDICTIONS[2000:])
    merged = a.merge(b)
    assert merged == COUNTS
    for name, metric in perf.METRICS.items():
        if name == "roc_auc":
            # Ranks do not add up: the merged AUC is the binned one, within its bound of
            # the exact AUC of the union.
            auc = metric(merged)
            assert auc.value is not None and merged.positive_rank_sum is None
            assert abs(auc.value - metric(COUNTS).value) <= auc.bound  # type: ignore[operator]
            continue
        assert metric(merged).value == pytest.approx(metric(COUNTS).value), name


def test_empty_and_one_class_windows_have_no_value() -> None:
    empty = perf.BinaryCounts.zero()
    for name, metric in perf.METRICS.items():
        assert metric(empty).value is None, name
    only_negatives = perf.counts_from_rows(np.array([0.2, 0.7]), np.array([0, 0]), np.array([0, 1]))
    assert perf.roc_auc(only_negatives).value is None
    assert perf.precision(only_negatives).value == 0.0
