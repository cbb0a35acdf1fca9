"""Loss models are stored as data: gradient-boosted trees read out of scikit-learn and
predicted with numpy give scikit-learn's predictions, survive the store as JSON, and a
store payload that is not that JSON (an old pickle above all) is refused, never run."""

from __future__ import annotations

import base64
import copy
import json
import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor

from watchkeeper.stats import loss
from watchkeeper.stats.trees import TreeEnsemble

N_FEATURES = 6
CATEGORICAL = (1, 4)  # not the first columns: scikit-learn moves them first internally
LEVELS = 7


def rows(rng: np.random.Generator, n: int, scale: float = 1.0) -> np.ndarray[Any, Any]:
    x = rng.normal(0, scale, (n, N_FEATURES))
    x[rng.uniform(size=x.shape) < 0.1] = np.nan
    for c in CATEGORICAL:
        x[:, c] = rng.integers(0, LEVELS, n)
    return x


def fitted(loss_name: str, categorical: bool, seed: int) -> tuple[Any, np.ndarray[Any, Any]]:
    rng = np.random.default_rng(seed)
    x = rows(rng, 4000)
    if categorical:
        # Code 3 of the second categorical never occurs at fit: scikit-learn's encoder
        # numbers the categories it saw, so 3 is unknown to it (and treated as missing).
        x[x[:, CATEGORICAL[1]] == 3, CATEGORICAL[1]] = 2
        x[rng.uniform(size=len(x)) < 0.05, CATEGORICAL[0]] = np.nan
    z = np.nan_to_num(x)
    signal = np.abs(z[:, 0]) + np.sin(3 * z[:, 2]) + 0.3 * z[:, 3] * z[:, 5]
    if categorical:
        signal = signal + 0.4 * (z[:, CATEGORICAL[0]] % 3) - 0.3 * (z[:, CATEGORICAL[1]] == 1)
    target = np.exp(0.5 * signal) * rng.gamma(2.0, 0.5, len(x))
    if loss_name == "squared_error":
        target = target - 1.0
    mask = np.zeros(N_FEATURES, dtype=bool)
    if categorical:
        mask[list(CATEGORICAL)] = True
    model = HistGradientBoostingRegressor(
        loss=loss_name,
        categorical_features=mask if categorical else None,
        max_iter=60,
        early_stopping=False,
        random_state=seed,
    )
    model.fit(x, target)
    return model, x


def probes(rng: np.random.Generator, categorical: bool) -> np.ndarray[Any, Any]:
    """Rows within and far outside the training range, with missing values everywhere,
    categories seen and unseen (NaN, as the loss model gives them, and codes the model
    never saw)."""
    x = np.concatenate([rows(rng, 3000), rows(rng, 3000, scale=10.0)])
    x[:20] = np.nan
    x[20:40, 0] = np.inf
    x[40:60, 0] = -np.inf
    if categorical:
        for c in CATEGORICAL:
            x[rng.uniform(size=len(x)) < 0.1, c] = np.nan
            x[rng.uniform(size=len(x)) < 0.05, c] = rng.choice([LEVELS, LEVELS + 5, 3.0])
    return x


@pytest.mark.parametrize("categorical", [False, True], ids=["numeric", "categorical"])
@pytest.mark.parametrize("loss_name", ["poisson", "squared_error"])
def test_trees_predict_what_sklearn_predicts(loss_name: str, categorical: bool) -> None:
    model, _ = fitted(loss_name, categorical, seed=3)
    ensemble = TreeEnsemble.from_sklearn(model)
    assert ensemble.link == ("log" if loss_name == "poisson" else "identity")
    assert len(ensemble.trees) == model.n_iter_
    if categorical:
        assert any(t.is_categorical.any() for t in ensemble.trees)
    x = probes(np.random.default_rng(4), categorical)
    np.testing.assert_allclose(ensemble.predict(x), model.predict(x), rtol=1e-12, atol=0)
    # And after a trip through JSON text, exactly the same.
    again = TreeEnsemble.from_json(json.loads(json.dumps(ensemble.to_json())))
    np.testing.assert_array_equal(again.predict(x), ensemble.predict(x))


def test_rows_of_the_wrong_width_are_refused() -> None:
    ensemble = TreeEnsemble.from_sklearn(fitted("poisson", False, seed=5)[0])
    with pytest.raises(ValueError, match="6 features"):
        ensemble.predict(np.zeros((3, 5)))
    assert ensemble.predict(np.zeros((0, 6))).shape == (0,)


@pytest.fixture(scope="module")
def model() -> loss.LossModel:
    rng = np.random.default_rng([21, 1])
    n = 3000
    x = rng.normal(0, 1, n)
    region = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    sigma = 0.5 + 0.8 * np.abs(x) + 0.7 * (region == "b")
    prediction = 3 * x
    label = prediction + rng.normal(0, sigma)
    reference = pa.table({"x": x, "region": region, "prediction": prediction, "label": label})
    fitted = loss.LossModel.fit(reference, ["x"], ["region"], "prediction", "label")
    assert fitted is not None
    return fitted


def test_a_loss_model_loads_back_predicting_exactly_the_same(model: loss.LossModel) -> None:
    rng = np.random.default_rng(22)
    batch = pa.table(
        {
            "x": pa.array([*rng.normal(0, 3, 500), None, 1e9]),
            "region": pa.array([*rng.choice(["a", "b", "c", "zz"], 500), None, "a"]),
            "prediction": pa.array([*rng.normal(0, 9, 500), 1.0, None]),
        }
    )
    text = model.dumps()
    again = loss.LossModel.loads(text)
    assert json.loads(text)["format"] == loss.FORMAT
    assert (again.features, again.prediction, again.rows, again.ranges) == (
        model.features,
        model.prediction,
        model.rows,
        model.ranges,
    )
    for a, b in zip(again.predict(batch), model.predict(batch), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(again.outside(batch), model.outside(batch))


SPRUNG: list[str] = []


def _spring() -> None:
    SPRUNG.append("unpickled")


class Trap:
    """Harmless, but unpickling it runs code: it records that it did."""

    def __reduce__(self) -> tuple[Callable[[], None], tuple[()]]:
        return (_spring, ())


def test_a_pickled_payload_is_refused_and_never_unpickled() -> None:
    payload = base64.b64encode(pickle.dumps(Trap())).decode("ascii")  # the old form
    with pytest.raises(ValueError, match="not a watchkeeper loss model"):
        loss.LossModel.loads(payload)
    with pytest.raises(ValueError, match="not a watchkeeper loss model"):
        loss.LossModel.loads(base64.b64decode(payload).decode("latin-1"))
    assert SPRUNG == []
    assert not hasattr(loss, "pickle")
    pickle.loads(base64.b64decode(payload))  # the trap is live: unpickling springs it
    assert SPRUNG == ["unpickled"]


def _tree(d: dict[str, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = d["absolute"]["trees"][0]
    return tree


def _split(d: dict[str, Any]) -> int:
    """The first split of the first tree."""
    return int(_tree(d)["is_leaf"].index(0))


def _last_split(d: dict[str, Any]) -> int:
    flags: list[int] = _tree(d)["is_leaf"]
    return len(flags) - 1 - flags[::-1].index(0)


MALFORMED: dict[str, Callable[[dict[str, Any]], object]] = {
    "no format": lambda d: d.pop("format"),
    "a later format": lambda d: d.update(format="watchkeeper-loss-model/99"),
    "no trees": lambda d: d.pop("absolute"),
    "an unknown key": lambda d: d.update(extra=1),
    "rows not a count": lambda d: d.update(rows="many"),
    "too few ranges": lambda d: d["ranges"].pop(),
    "a bad link": lambda d: d["squared"].update(link="logit"),
    "a tree without left": lambda d: _tree(d).pop("left"),
    "a short array": lambda d: _tree(d)["value"].pop(),
    "a long array": lambda d: _tree(d)["right"].append(0),
    "text among numbers": lambda d: _tree(d)["num_threshold"].__setitem__(0, "1.5"),
    "a float index": lambda d: _tree(d)["left"].__setitem__(0, 1.0),
    "a child out of range": lambda d: _tree(d)["left"].__setitem__(_split(d), 10**6),
    "a cycle": lambda d: _tree(d)["right"].__setitem__(_last_split(d), _split(d) + 1),
    "a shared child": lambda d: _tree(d)["right"].__setitem__(
        _split(d), _tree(d)["left"][_split(d)]
    ),
    "a feature out of range": lambda d: _tree(d)["feature_idx"].__setitem__(_split(d), 9),
    "a flag of 2": lambda d: _tree(d)["is_leaf"].__setitem__(0, 2),
    "a short bitset": lambda d: _tree(d)["left_cat_bitsets"].append([0] * 7),
    "a bitset word too big": lambda d: _tree(d)["left_cat_bitsets"].append([2**40] * 8),
    "categories too few": lambda d: d["absolute"]["categories"].pop(),
    "a vocabulary of numbers": lambda d: d["features"][1].update(vocabulary=[1, 2]),
    "trees not a list": lambda d: d["absolute"].update(trees={}),
}


@pytest.mark.parametrize("mutate", list(MALFORMED.values()), ids=list(MALFORMED))
def test_a_malformed_model_is_refused(
    model: loss.LossModel, mutate: Callable[[dict[str, Any]], object]
) -> None:
    data = json.loads(model.dumps())
    mutate(data)
    with pytest.raises(ValueError, match="not a watchkeeper loss model"):
        loss.LossModel.loads(json.dumps(data))


@pytest.mark.parametrize("text", ["", "[]", "{", "null", '"text"', "[" * 100_000])
def test_what_is_not_a_model_document_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a watchkeeper loss model"):
        loss.LossModel.loads(text)


def test_an_ensemble_checks_what_it_is_given(model: loss.LossModel) -> None:
    data = model.absolute.to_json()
    broken = copy.deepcopy(data)
    broken["trees"][0]["value"] = broken["trees"][0]["value"][:-1]
    with pytest.raises(ValueError, match=r"tree 0: \w+ has 61 entries, value has 60"):
        TreeEnsemble.from_json(broken)
    with pytest.raises(ValueError, match="lacks baseline"):
        TreeEnsemble.from_json({k: v for k, v in data.items() if k != "baseline"})
    with pytest.raises(ValueError, match="not a fitted"):
        TreeEnsemble.from_sklearn(HistGradientBoostingRegressor())
