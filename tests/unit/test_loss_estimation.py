"""Direct loss estimation for regression: bands that cover the realized MAE and RMSE under
covariate shift, and that miss them under concept shift."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from watchkeeper.stats import loss
from watchkeeper.stats import regression as reg


def world(rng: np.random.Generator, n: int, shift: float, concept: bool) -> pa.Table:
    """A model whose error grows with |x| and is larger in region "b"; covariate shift
    moves x and the mix of regions, concept shift makes the world noisier for the same x."""
    x = rng.normal(shift, 1, n)
    region = np.where(rng.uniform(size=n) < 0.3 + 0.2 * shift, "b", "a")
    sigma = 0.5 + 0.8 * np.abs(x) + 0.7 * (region == "b")
    if concept:
        sigma = sigma * 1.6
    prediction = 3 * x
    label = prediction + rng.normal(0, sigma)
    return pa.table({"x": x, "region": region, "prediction": prediction, "label": label})


@pytest.fixture(scope="module")
def model() -> loss.LossModel:
    rng = np.random.default_rng([11, 1])
    fitted = loss.LossModel.fit(
        world(rng, 30_000, 0.0, False), ["x"], ["region"], "prediction", "label"
    )
    assert fitted is not None
    return fitted


def estimate_and_truth(
    model: loss.LossModel, rng: np.random.Generator, shift: float, concept: bool
) -> dict[str, tuple[float, float, float]]:
    window = world(rng, 1500, shift, concept)
    sums = loss.LossSums()
    for batch in window.to_batches(max_chunksize=400):  # streamed, as a run reads them
        sums = sums.merge(loss.LossSums.of(*model.predict(batch)))
    realized = reg.sums_from_rows(window["prediction"].to_numpy(), window["label"].to_numpy())
    out = {}
    for name, estimator in loss.LOSS_ESTIMATES.items():
        e = estimator(sums, model.rows)
        out[name] = (e.lower, reg.METRICS[name](realized).value, e.upper)  # type: ignore[assignment]
    return out


def test_bands_cover_realized_mae_and_rmse_under_covariate_shift(model: loss.LossModel) -> None:
    rng = np.random.default_rng([12, 1])
    # Shifts within the reference's support: trees do not extrapolate, so beyond it the
    # estimate is biased low (the run says what share of a window lies outside).
    hits = {"mae": 0, "rmse": 0}
    runs = 80
    for i in range(runs):
        found = estimate_and_truth(model, rng, (i % 4) * 0.2, concept=False)
        for name, (low, truth, high) in found.items():
            hits[name] += low <= truth <= high
    assert all(h / runs >= 0.9 for h in hits.values()), hits


def test_the_estimate_fails_under_concept_shift(model: loss.LossModel) -> None:
    rng = np.random.default_rng([13, 1])
    misses = 0
    for _ in range(30):
        low, truth, high = estimate_and_truth(model, rng, 0.3, concept=True)["mae"]
        misses += not (low <= truth <= high)
    assert misses / 30 > 0.8


def test_unseen_categories_and_missing_values_are_predicted(model: loss.LossModel) -> None:
    batch = pa.table(
        {"x": [0.0, None], "region": ["zz", None], "prediction": [1.0, 2.0], "label": [0.0, 0.0]}
    )
    absolute, squared = model.predict(batch)
    assert np.isfinite(absolute).all() and (squared >= absolute**2).all()


def test_a_loss_model_survives_the_store(model: loss.LossModel) -> None:
    batch = world(np.random.default_rng(1), 50, 0.0, False)
    again = loss.LossModel.loads(model.dumps())
    assert again.predict(batch)[0] == pytest.approx(model.predict(batch)[0])


def test_events_outside_the_reference_range_are_counted(model: loss.LossModel) -> None:
    batch = pa.table(
        {"x": [0.0, 50.0, None], "region": ["a", "a", "a"], "prediction": [0.0, 1.0, 500.0]}
    )
    assert model.outside(batch).tolist() == [False, True, True]  # x = 50 and a prediction of 500
