"""Multiclass metrics from a confusion matrix, against scikit-learn on exact data."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from watchkeeper.stats import multiclass as mc

RNG = np.random.default_rng(13)
CLASSES = ("cat", "dog", "fox", "owl")
N = 3000
Y = RNG.choice(CLASSES, N, p=[0.4, 0.3, 0.2, 0.1])
LOGITS = RNG.normal(0, 1, (N, 4)) + 1.5 * (np.array(CLASSES) == Y[:, None])
PROBS = np.exp(LOGITS) / np.exp(LOGITS).sum(axis=1, keepdims=True)
P = np.array(CLASSES)[PROBS.argmax(axis=1)]
TRUE_SCORE = PROBS[np.arange(N), [CLASSES.index(v) for v in Y]]
COUNTS = mc.counts_from_rows(CLASSES, Y, P, TRUE_SCORE)


@pytest.mark.parametrize(
    ("name", "reference"),
    [
        ("accuracy", lambda: skm.accuracy_score(Y, P)),
        ("macro_precision", lambda: skm.precision_score(Y, P, average="macro", zero_division=0)),
        ("macro_recall", lambda: skm.recall_score(Y, P, average="macro", zero_division=0)),
        ("macro_f1", lambda: skm.f1_score(Y, P, average="macro", zero_division=0)),
        (
            "weighted_precision",
            lambda: skm.precision_score(Y, P, average="weighted", zero_division=0),
        ),
        ("weighted_recall", lambda: skm.recall_score(Y, P, average="weighted", zero_division=0)),
        ("weighted_f1", lambda: skm.f1_score(Y, P, average="weighted", zero_division=0)),
        ("log_loss", lambda: skm.log_loss(Y, PROBS, labels=list(CLASSES))),
    ],
)
def test_metrics_match_scikit_learn(name: str, reference: object) -> None:
    assert mc.METRICS[name](COUNTS).value == pytest.approx(reference(), rel=1e-9)  # type: ignore[operator]


def test_per_class_recall() -> None:
    expected = skm.recall_score(Y, P, labels=list(CLASSES), average=None)
    found = mc.class_recall(COUNTS)
    for cls, value in zip(CLASSES, expected, strict=True):
        assert found[cls].value == pytest.approx(value)
        assert found[cls].lower < found[cls].value < found[cls].upper  # type: ignore[operator]


def test_a_class_never_seen_in_the_window_is_left_out_like_scikit_learn() -> None:
    y = np.array(["cat", "dog", "cat"])
    p = np.array(["cat", "cat", "cat"])
    c = mc.counts_from_rows(CLASSES, y, p)
    assert mc.METRICS["macro_recall"](c).value == pytest.approx(
        skm.recall_score(y, p, average="macro", zero_division=0)
    )
