"""How often the bands of performance estimated without labels cover the realized value on
stationary windows (no drift, no concept shift, labels complete), and how wide they are.

    python bench/bands.py                      # every scenario, 5 references each
    python bench/bands.py --references 10 --windows 100

For each scenario: a labelled reference of ``--reference`` events is drawn, the estimator
is fitted on it as a run fits it (the calibration map chosen over five folds of the
reference's score bins; the loss model on its rows), then ``--windows`` windows of
``--window`` events are drawn from the same distribution and each window's estimate (band:
95%) is compared with its realized metric, through the same pure functions a run calls.
Printed per scenario and estimated metric: the share of windows whose band covered the
realized value (mean and lowest over the references) and the mean band width.

A reference is one draw: its calibration error is shared by all the windows estimated with
it, so the coverage over one reference's windows varies from reference to reference, around
the 95% the bands aim at when they account for that error.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from watchkeeper.profiles.counts import score_bins
from watchkeeper.stats import estimation as est
from watchkeeper.stats import multiclass as mc
from watchkeeper.stats import performance as perf
from watchkeeper.stats import regression as reg
from watchkeeper.stats.loss import LOSS_ESTIMATES, LossModel, LossSums

Array = np.ndarray[Any, Any]
FOLDS = 5


def folds(score: Array, y: Array) -> list[perf.BinaryCounts]:
    """The reference's five folds as ``tasks.binary.fit_calibration`` makes them: rows
    ordered by score and label, dealt in turn."""
    order = np.lexsort((y, score))
    fold = np.empty(len(score), dtype=int)
    fold[order] = np.arange(len(score)) % FOLDS
    return [
        perf.counts_from_rows(score[fold == i], y[fold == i], score[fold == i] >= 0.5)
        for i in range(FOLDS)
    ]


# -- binary: (scores, labels) of n events ---------------------------------------------------


def calibrated(rng: np.random.Generator, n: int) -> tuple[Array, Array]:
    x = rng.normal(0, 1, n)
    score = 1 / (1 + np.exp(-(1.5 * x - 1)))
    return score, (rng.uniform(size=n) < score).astype(int)


def squashed(rng: np.random.Generator, n: int) -> tuple[Array, Array]:
    score, y = calibrated(rng, n)
    return score**2, y  # ranks as well, calibrated badly: isotonic is chosen


def beta(rng: np.random.Generator, n: int) -> tuple[Array, Array]:
    """The scores of the integration tests: labels first, scores nudged up for positives."""
    y = (rng.uniform(size=n) < 0.3).astype(int)
    return np.clip(rng.beta(2, 5, n) + 0.35 * y, 0, 1), y


BINARY = ("accuracy", "precision", "recall", "specificity", "f1", "roc_auc")


def binary(world: Callable[..., tuple[Array, Array]], args: Any, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng([seed, 1])
    score, y = world(rng, args.reference)
    calibration = est.CalibrationMap.choose(folds(score, y))
    out: dict[str, list[tuple[bool, float]]] = {k: [] for k in BINARY}
    for _ in range(args.windows):
        score, y = world(rng, args.window)
        counts = perf.counts_from_rows(score, y, score >= 0.5)
        expected = est.expected_confusion(counts.positives + counts.negatives, calibration, 0.5)
        for name in BINARY:
            band = est.ESTIMATES[name](expected)
            realized = perf.METRICS[name](counts).value
            out[name].append(_covered(band, realized))
    return out


# -- multiclass: softmax scores of three classes --------------------------------------------

CLASSES = ("a", "b", "c")


def softmax(rng: np.random.Generator, n: int, power: float = 1.0) -> tuple[Array, Array]:
    x = rng.normal(0, 1, (n, 2))
    logits = np.stack([x[:, 0], x[:, 1], -x[:, 0] - x[:, 1]], axis=1) * 1.5
    prob = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = (rng.uniform(size=n)[:, None] > np.cumsum(prob, axis=1)).sum(axis=1)
    if power != 1.0:  # the scores the model logs, miscalibrated
        prob = prob**power / (prob**power).sum(axis=1, keepdims=True)
    return prob, y


MULTICLASS = ("accuracy", "macro_precision", "macro_recall", "macro_f1", "recall:a", "recall:c")


def multiclass(power: float, args: Any, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng([seed, 2])
    prob, y = softmax(rng, args.reference, power)
    maps = {
        cls: est.CalibrationMap.choose(folds(prob[:, i], (y == i).astype(int)))
        for i, cls in enumerate(CLASSES)
    }
    out: dict[str, list[tuple[bool, float]]] = {k: [] for k in MULTICLASS}
    for _ in range(args.windows):
        prob, y = softmax(rng, args.window, power)
        predicted = prob.argmax(axis=1)
        per_class = {
            cls: est.one_vs_rest(
                np.bincount(score_bins(prob[:, i]) + 100 * (predicted == i), minlength=200),
                maps[cls],
            )
            for i, cls in enumerate(CLASSES)
        }
        found = est.estimated_multiclass(per_class)
        counts = mc.counts_from_rows(
            CLASSES, [CLASSES[j] for j in y], [CLASSES[j] for j in predicted]
        )
        for name in MULTICLASS:
            if name.startswith("recall:"):
                realized = mc.class_recall(counts)[name.split(":")[1]].value
            else:
                realized = mc.METRICS[name](counts).value
            out[name].append(_covered(found[name], realized))
    return out


# -- regression: a prediction whose error grows with |x0| ----------------------------------


def regression_rows(rng: np.random.Generator, n: int) -> pa.Table:
    x = rng.normal(0, 1, (n, 3))
    prediction = x.sum(axis=1)
    label = prediction + rng.normal(0, 1, n) * (0.5 + np.abs(x[:, 0]))
    columns = {f"x{i}": x[:, i] for i in range(3)}
    return pa.table({**columns, "prediction": prediction, "label": label})


def regression(_: Any, args: Any, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng([seed, 3])
    model = LossModel.fit(
        regression_rows(rng, args.reference), ["x0", "x1", "x2"], [], "prediction", "label"
    )
    assert model is not None
    out: dict[str, list[tuple[bool, float]]] = {k: [] for k in LOSS_ESTIMATES}
    for _ in range(args.windows):
        window = regression_rows(rng, args.window)
        sums = LossSums.of(*model.predict(window))
        realized = reg.sums_from_rows(window["prediction"].to_numpy(), window["label"].to_numpy())
        for name, estimate in LOSS_ESTIMATES.items():
            try:
                band = estimate(sums, model.rows)  # type: ignore[call-arg]
            except TypeError:  # before the bands knew the reference's size
                band = estimate(sums)  # type: ignore[call-arg]
            out[name].append(_covered(band, reg.METRICS[name](realized).value))
    return out


def _covered(band: perf.Estimate, realized: float | None) -> tuple[bool, float]:
    assert band.lower is not None and band.upper is not None and realized is not None
    return band.lower <= realized <= band.upper, band.upper - band.lower


SCENARIOS: dict[str, tuple[Callable[..., dict[str, Any]], Any]] = {
    "binary, calibrated scores": (binary, calibrated),
    "binary, squared scores (isotonic)": (binary, squashed),
    "binary, the integration tests' scores (isotonic)": (binary, beta),
    "multiclass, calibrated softmax": (multiclass, 1.0),
    "multiclass, sharpened softmax (isotonic)": (multiclass, 2.0),
    "regression, direct loss estimation": (regression, None),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--references", type=int, default=5)
    parser.add_argument("--reference", type=int, default=5000, help="reference events")
    parser.add_argument("--windows", type=int, default=100)
    parser.add_argument("--window", type=int, default=3000, help="events per window")
    parser.add_argument("--only", help="scenarios whose name contains this")
    args = parser.parse_args()
    print(
        f"{args.references} references of {args.reference:,} events, "
        f"{args.windows} windows of {args.window:,} each"
    )
    for title, (run, world) in SCENARIOS.items():
        if args.only and args.only not in title:
            continue
        per_seed = [run(world, args, seed) for seed in range(args.references)]
        print(f"\n{title}\n  {'metric':16s} {'coverage':>8s} {'lowest':>7s} {'width':>8s}")
        for name in per_seed[0]:
            shares = [np.mean([c for c, _ in found[name]]) for found in per_seed]
            width = np.mean([w for found in per_seed for _, w in found[name]])
            print(f"  {name:16s} {np.mean(shares):8.1%} {min(shares):7.0%} {width:8.4f}")


if __name__ == "__main__":
    main()
