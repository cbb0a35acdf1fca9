"""Regression performance estimated without labels: direct loss estimation.

Two gradient-boosted models are fitted on the reference (scikit-learn's
``HistGradientBoostingRegressor``): one predicts an event's absolute error, the other its
squared error, from the event's features and the model's prediction. A window's estimated
MAE is the mean predicted absolute error; its estimated RMSE the root of the mean predicted
squared error. Both hold while the relation between inputs and label holds (no concept
shift); the backtest against late labels shows when it does not.

The band is the sampling error of the realized value given the events: an event's absolute
error varies around its prediction with variance E[e²] - E[|e|]² (both predicted), and its
squared error with variance at most 2·E[e²]² (exact for a centred normal error).

Windows are read in batches (``LossSums`` merge), so no window is ever held in memory.

Reference: NannyML's direct loss estimation (DLE).
"""

from __future__ import annotations

import base64
import math
import pickle
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from watchkeeper.stats.performance import Z95, Estimate

MAX_CATEGORIES = 250  # HistGradientBoosting takes at most 255 categories per feature
FIT_ROWS = 200_000  # the reference rows the loss models learn from, at most


@dataclass(frozen=True)
class LossFeature:
    name: str
    vocabulary: tuple[str, ...] | None  # None: numeric


@dataclass(frozen=True, eq=False)
class LossModel:
    """Predicts each event's absolute and squared error from its features and prediction."""

    features: tuple[LossFeature, ...]
    prediction: str
    absolute: Any  # fitted HistGradientBoostingRegressor
    squared: Any
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
        shell = cls(tuple(features), prediction, None, None, known.num_rows)
        x = shell.matrix(known)
        numeric_x = x[
            :, [i for i, f in enumerate([*features, None]) if f is None or not f.vocabulary]
        ]
        ranges = tuple(
            (float(np.nanmin(c)), float(np.nanmax(c))) if np.isfinite(c).any() else (0.0, 0.0)
            for c in numeric_x.T
        )
        error = _floats(known[prediction]) - _floats(known[label])
        mask = [f.vocabulary is not None for f in shell.features] + [False]
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
            models.append(model.fit(x, target))
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
        columns = []
        for f in self.features:
            if f.vocabulary is None:
                columns.append(_floats(batch[f.name]))
            else:
                text = pc.cast(batch[f.name], pa.string())
                codes = pc.index_in(text, value_set=pa.array(f.vocabulary, pa.string()))
                columns.append(_floats(codes))
        columns.append(_floats(batch[self.prediction]))
        return np.column_stack(columns) if columns else np.empty((batch.num_rows, 0))

    def predict(self, batch: pa.Table | pa.RecordBatch) -> tuple[np.ndarray[Any, Any], ...]:
        """Each event's predicted absolute and squared error."""
        x = self.matrix(batch)
        absolute = np.maximum(self.absolute.predict(x), 0.0)
        squared = np.maximum(self.squared.predict(x), absolute**2)
        return absolute, squared

    def dumps(self) -> str:
        return base64.b64encode(pickle.dumps(self)).decode("ascii")

    @staticmethod
    def loads(text: str) -> LossModel:
        # Written by this process's own store: the same trust as the store file itself.
        found = pickle.loads(base64.b64decode(text))
        assert isinstance(found, LossModel)
        return found


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


def estimated_mae(s: LossSums) -> Estimate:
    if s.n == 0:
        return Estimate(None, None, None, 0, method=METHOD)
    value = s.absolute / s.n
    half = Z95 * math.sqrt(s.var_absolute) / s.n
    return Estimate(value, max(value - half, 0.0), value + half, s.n, method=METHOD)


def estimated_rmse(s: LossSums) -> Estimate:
    """The root of the estimated MSE; the band is the MSE's, through the root."""
    if s.n == 0:
        return Estimate(None, None, None, 0, method=METHOD)
    mse = s.squared / s.n
    half = Z95 * math.sqrt(s.var_squared) / s.n
    return Estimate(
        math.sqrt(mse), math.sqrt(max(mse - half, 0.0)), math.sqrt(mse + half), s.n, method=METHOD
    )


LOSS_ESTIMATES = {"mae": estimated_mae, "rmse": estimated_rmse}


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
