"""Regression performance estimated without labels: direct loss estimation.

Two gradient-boosted models are fitted on the reference (scikit-learn's
``HistGradientBoostingRegressor``): one predicts an event's absolute error, the other its
squared error, from the event's features and the model's prediction. A window's estimated
MAE is the mean predicted absolute error; its estimated RMSE the root of the mean predicted
squared error. Both hold while the relation between inputs and label holds (no concept
shift); the backtest against late labels shows when it does not.

The band (95%) is meant to cover the realized value, so its variance is that of realized
minus estimated, two parts:

- the realized value's sampling error given the events: an event's absolute error varies
  around its prediction with variance E[e²] - E[|e|]² (both predicted), and its squared
  error with variance 2·E[e²]² (exact for a centred normal error);
- the loss model's own error, from a finite reference: the mean of its predictions is
  anchored to the mean loss of the reference rows it learnt from, which is no surer than
  a mean over that many events of the same spread: the window's mean per-event variance
  over the reference's rows. With n events in the window and N reference rows, the
  sampling variance of the mean is multiplied by 1 + n/N.

Windows are read in batches (``LossSums`` merge), so no window is ever held in memory.

A fitted model is kept in the store as JSON data (``dumps``): its trees' node arrays
(``watchkeeper.stats.trees``), predicted with numpy. A store file may come from elsewhere,
so nothing read from it may run code: no pickle is ever loaded, and ``loads`` refuses
anything that is not this JSON.

Reference: NannyML's direct loss estimation (DLE).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from watchkeeper.stats.performance import Z95, Estimate
from watchkeeper.stats.trees import TreeEnsemble

MAX_CATEGORIES = 250  # HistGradientBoosting takes at most 255 categories per feature
FIT_ROWS = 200_000  # the reference rows the loss models learn from, at most
FORMAT = "watchkeeper-loss-model/1"  # the stored form's name and version


@dataclass(frozen=True)
class LossFeature:
    name: str
    vocabulary: tuple[str, ...] | None  # None: numeric


@dataclass(frozen=True, eq=False)
class LossModel:
    """Predicts each event's absolute and squared error from its features and prediction."""

    features: tuple[LossFeature, ...]
    prediction: str
    absolute: TreeEnsemble  # the fitted HistGradientBoostingRegressors' trees
    squared: TreeEnsemble
    rows: int  # the reference rows it learnt from
    # The reference's range of each numeric input (features, then the prediction): trees
    # do not extrapolate, so beyond it the estimate is less sure.
    ranges: tuple[tuple[float, float], ...] = ()

    @classmethod
    def fit(
        cls,
        reference: pa.Table,
        numeric: list[str],
        categorical: list[str],
        prediction: str,
        label: str,
        seed: int = 0,
    ) -> LossModel | None:
        """Fit on the reference's labelled rows; None when fewer than 100 have a label."""
        from sklearn.ensemble import HistGradientBoostingRegressor

        known = reference.filter(
            pc.and_(pc.is_valid(reference[label]), pc.is_valid(reference[prediction]))
        )
        if known.num_rows < 100:
            return None
        if known.num_rows > FIT_ROWS:
            rng = np.random.default_rng(seed)
            known = known.take(np.sort(rng.choice(known.num_rows, FIT_ROWS, replace=False)))
        features = [LossFeature(n, None) for n in numeric] + [
            LossFeature(n, _vocabulary(known[n])) for n in categorical
        ]
        x = _matrix(features, prediction, known)
        numeric_x = x[
            :, [i for i, f in enumerate([*features, None]) if f is None or not f.vocabulary]
        ]
        ranges = tuple(
            (float(np.nanmin(c)), float(np.nanmax(c))) if np.isfinite(c).any() else (0.0, 0.0)
            for c in numeric_x.T
        )
        error = _floats(known[prediction]) - _floats(known[label])
        mask = [f.vocabulary is not None for f in features] + [False]
        models = []
        for target in (np.abs(error), error * error):
            # Poisson deviance: a model of a non-negative quantity's mean, positive by design.
            model = HistGradientBoostingRegressor(
                loss="poisson" if target.sum() > 0 else "squared_error",
                categorical_features=np.array(mask) if any(mask) else None,
                max_iter=200,
                early_stopping=True,
                random_state=seed,
            )
            models.append(TreeEnsemble.from_sklearn(model.fit(x, target)))
        return cls(tuple(features), prediction, models[0], models[1], known.num_rows, ranges)

    def outside(self, batch: pa.Table | pa.RecordBatch) -> np.ndarray[Any, Any]:
        """Which events have a numeric input outside the reference's range."""
        x = self.matrix(batch)
        numeric = [i for i, f in enumerate([*self.features, None]) if f is None or not f.vocabulary]
        out = np.zeros(batch.num_rows, dtype=bool)
        for column, (low, high) in zip(numeric, self.ranges, strict=True):
            with np.errstate(invalid="ignore"):
                out |= (x[:, column] < low) | (x[:, column] > high)
        return out

    def matrix(self, batch: pa.Table | pa.RecordBatch) -> np.ndarray[Any, Any]:
        """The features (categories as codes of the reference's vocabulary, unseen ones
        missing) and the prediction, as the loss models read them."""
        return _matrix(self.features, self.prediction, batch)

    def predict(self, batch: pa.Table | pa.RecordBatch) -> tuple[np.ndarray[Any, Any], ...]:
        """Each event's predicted absolute and squared error."""
        x = self.matrix(batch)
        absolute = np.maximum(self.absolute.predict(x), 0.0)
        squared = np.maximum(self.squared.predict(x), absolute**2)
        return absolute, squared

    def dumps(self) -> str:
        """The model as JSON data, as the store keeps it."""
        return json.dumps(
            {
                "format": FORMAT,
                "features": [
                    {
                        "name": f.name,
                        "vocabulary": None if f.vocabulary is None else list(f.vocabulary),
                    }
                    for f in self.features
                ],
                "prediction": self.prediction,
                "rows": self.rows,
                "ranges": [list(r) for r in self.ranges],
                "absolute": self.absolute.to_json(),
                "squared": self.squared.to_json(),
            },
            separators=(",", ":"),
        )

    @staticmethod
    def loads(text: str) -> LossModel:
        """A model from ``dumps``' JSON. Anything else (an old pickled payload, a malformed
        document) raises ValueError: it is only ever parsed as JSON, never unpickled."""
        try:
            data = json.loads(text)
        except (ValueError, TypeError, RecursionError) as e:
            raise ValueError(f"not a watchkeeper loss model (not JSON: {e})") from None
        if not isinstance(data, dict) or "format" not in data:
            raise ValueError("not a watchkeeper loss model (not an object with a format key)")
        if data["format"] != FORMAT:
            raise ValueError(
                f"not a watchkeeper loss model of a known format: {data['format']!r} "
                f"(this version reads {FORMAT!r})"
            )
        try:
            return _from_json(data)
        except ValueError as e:
            raise ValueError(f"not a watchkeeper loss model: {e}") from None


@dataclass(frozen=True)
class LossSums:
    """A window's mergeable sums of predicted losses."""

    n: int = 0
    absolute: float = 0.0
    squared: float = 0.0
    var_absolute: float = 0.0  # Σ (E[e²] - E[|e|]²)
    var_squared: float = 0.0  # Σ 2·E[e²]²
    outside: int = 0  # events outside the reference's range

    @classmethod
    def of(
        cls, absolute: np.ndarray[Any, Any], squared: np.ndarray[Any, Any], outside: int = 0
    ) -> LossSums:
        return cls(
            len(absolute),
            float(absolute.sum()),
            float(squared.sum()),
            float(np.maximum(squared - absolute**2, 0.0).sum()),
            float((2 * squared**2).sum()),
            outside,
        )

    @classmethod
    def zero(cls) -> LossSums:
        return cls()

    def merge(self, other: LossSums) -> LossSums:
        return LossSums(
            self.n + other.n,
            self.absolute + other.absolute,
            self.squared + other.squared,
            self.var_absolute + other.var_absolute,
            self.var_squared + other.var_squared,
            self.outside + other.outside,
        )


METHOD = "direct loss estimation"


def _inflation(n: int, rows: int | None) -> float:
    """The variance of a window's mean relative to its sampling part alone: 1 + n/N for a
    loss model learnt from N reference rows (none given: the sampling part alone)."""
    return 1.0 + (n / rows if rows else 0.0)


def estimated_mae(s: LossSums, rows: int | None = None) -> Estimate:
    """The mean predicted absolute error; ``rows``: the reference rows the loss model
    learnt from (its own error widens the band)."""
    if s.n == 0:
        return Estimate(None, None, None, 0, method=METHOD)
    value = s.absolute / s.n
    half = Z95 * math.sqrt(s.var_absolute * _inflation(s.n, rows)) / s.n
    return Estimate(value, max(value - half, 0.0), value + half, s.n, method=METHOD)


def estimated_rmse(s: LossSums, rows: int | None = None) -> Estimate:
    """The root of the estimated MSE; the band is the MSE's, through the root."""
    if s.n == 0:
        return Estimate(None, None, None, 0, method=METHOD)
    mse = s.squared / s.n
    half = Z95 * math.sqrt(s.var_squared * _inflation(s.n, rows)) / s.n
    return Estimate(
        math.sqrt(mse), math.sqrt(max(mse - half, 0.0)), math.sqrt(mse + half), s.n, method=METHOD
    )


LOSS_ESTIMATES: dict[str, Callable[[LossSums, int | None], Estimate]] = {
    "mae": estimated_mae,
    "rmse": estimated_rmse,
}


def _matrix(
    features: tuple[LossFeature, ...] | list[LossFeature],
    prediction: str,
    batch: pa.Table | pa.RecordBatch,
) -> np.ndarray[Any, Any]:
    columns = []
    for f in features:
        if f.vocabulary is None:
            columns.append(_floats(batch[f.name]))
        else:
            text = pc.cast(batch[f.name], pa.string())
            codes = pc.index_in(text, value_set=pa.array(f.vocabulary, pa.string()))
            columns.append(_floats(codes))
    columns.append(_floats(batch[prediction]))
    return np.column_stack(columns) if columns else np.empty((batch.num_rows, 0))


MODEL_KEYS = frozenset(
    ("format", "features", "prediction", "rows", "ranges", "absolute", "squared")
)


def _from_json(data: dict[str, Any]) -> LossModel:
    """The model of a parsed document of the current format; ValueError if malformed."""
    missing = MODEL_KEYS - data.keys()
    if missing:
        raise ValueError(f"it lacks {', '.join(sorted(missing))}")
    extra = data.keys() - MODEL_KEYS
    if extra:
        raise ValueError(f"unknown keys {', '.join(sorted(map(str, extra)))}")
    raw_features = data["features"]
    if not isinstance(raw_features, list):
        raise ValueError("features is not a list")
    features = []
    for f in raw_features:
        if not isinstance(f, dict) or set(f) != {"name", "vocabulary"}:
            raise ValueError("a feature is not an object of a name and a vocabulary")
        name, vocabulary = f["name"], f["vocabulary"]
        if not isinstance(name, str):
            raise ValueError("a feature's name is not text")
        if vocabulary is not None and not (
            isinstance(vocabulary, list) and all(isinstance(v, str) for v in vocabulary)
        ):
            raise ValueError(f"feature {name!r}: the vocabulary is not a list of text")
        features.append(LossFeature(name, None if vocabulary is None else tuple(vocabulary)))
    prediction, rows = data["prediction"], data["rows"]
    if not isinstance(prediction, str):
        raise ValueError("prediction is not text")
    if type(rows) is not int or rows < 0:
        raise ValueError("rows is not a count")
    raw_ranges = data["ranges"]
    numeric = sum(not f.vocabulary for f in features) + 1  # as ``outside`` counts them
    if not isinstance(raw_ranges, list) or len(raw_ranges) != numeric:
        raise ValueError(f"ranges is not a list of {numeric} (one per numeric input)")
    ranges = []
    for r in raw_ranges:
        if not (isinstance(r, list) and len(r) == 2 and all(type(v) in (int, float) for v in r)):
            raise ValueError("a range is not a pair of numbers")
        ranges.append((float(r[0]), float(r[1])))
    ensembles = []
    for key in ("absolute", "squared"):
        try:
            ensemble = TreeEnsemble.from_json(data[key])
        except ValueError as e:
            raise ValueError(f"{key}: {e}") from None
        if ensemble.n_features != len(features) + 1:
            raise ValueError(
                f"{key}: its trees read {ensemble.n_features} columns, "
                f"the model has {len(features) + 1} inputs"
            )
        kinds = [c is not None for c in ensemble.categories]
        if kinds != [f.vocabulary is not None for f in features] + [False]:
            raise ValueError(f"{key}: its categorical columns are not the model's")
        ensembles.append(ensemble)
    return LossModel(tuple(features), prediction, ensembles[0], ensembles[1], rows, tuple(ranges))


def _floats(values: Any) -> np.ndarray[Any, Any]:
    """A column as float64 with nulls as NaN (booleans as 0/1)."""
    array = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if pa.types.is_boolean(array.type):
        array = pc.cast(array, pa.int8())
    array = pc.cast(array, pa.float64())
    return np.asarray(array.to_numpy(zero_copy_only=False), dtype=float)


def _vocabulary(values: pa.ChunkedArray) -> tuple[str, ...]:
    """The reference's most frequent categories (as text), most frequent first."""
    text = pc.cast(values, pa.string())
    counts = pc.value_counts(text.drop_null() if hasattr(text, "drop_null") else text)
    pairs = sorted(
        ((c["counts"], c["values"]) for c in counts.to_pylist() if c["values"] is not None),
        key=lambda p: (-p[0], p[1]),
    )
    return tuple(v for _, v in pairs[:MAX_CATEGORIES])
