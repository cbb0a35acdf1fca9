"""Regression: residual moments per window, the metrics over them, a segment's mean
absolute error against the rest (Welch), and performance estimated by direct loss
estimation (each event's error predicted by a model of the reference, streamed in batches)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

import ibis.expr.types as ir

from watchkeeper.config import ModelConfig
from watchkeeper.profiles.base import (
    ALL,
    NULL_SEGMENT,
    Engine,
    Key,
    Segment,
    Source,
    Windowing,
    segment_value,
)
from watchkeeper.profiles.counts import RegressionSums
from watchkeeper.profiles.labelled import compute_regression_sums
from watchkeeper.stats.comparisons import welch
from watchkeeper.stats.loss import LOSS_ESTIMATES, LossModel, LossSums
from watchkeeper.stats.regression import METRICS
from watchkeeper.tasks.base import Estimated, EstimationInputs, Gap, Task
from watchkeeper.windows import EPOCH

BATCH_ROWS = 65_536
OUTSIDE_SHARE = 0.05  # a window with this share of events beyond the reference's range


def counts(
    model: ModelConfig, source: Source, windowing: Windowing | None, engine: Engine
) -> dict[Key, RegressionSums] | None:
    if model.columns.prediction is None:
        return None
    return compute_regression_sums(
        source, model.columns.prediction, model.labels.column, windowing, engine
    )


def gaps(c: RegressionSums, whole: RegressionSums) -> list[Gap]:
    rest = whole.minus(c)
    diff, p = welch(c.abs_error, c.error_sq, c.n, rest.abs_error, rest.error_sq, rest.n)
    return [Gap("mae", diff, p, False)]


def loss(model: ModelConfig, labelled: ir.Table) -> tuple[ir.Value, bool] | None:
    prediction = model.columns.prediction
    if prediction is None:
        return None
    error = labelled[prediction].cast("float64") - labelled.wk_label.cast("float64")
    return error.abs(), False


def residual(model: ModelConfig, labelled: ir.Table) -> ir.Value | None:
    prediction = model.columns.prediction
    if prediction is None:
        return None
    return labelled[prediction].cast("float64") - labelled.wk_label.cast("float64")


def realized(c: RegressionSums, name: str) -> float | None:
    return METRICS[name](c).value if name in METRICS else None


class DirectLoss:
    """A model of each event's absolute and squared error, fitted on the reference."""

    kind = "direct_loss"
    scales = False  # the reference's loss sums would need its events' times

    def scaled(self, aggregate: LossSums, events: float) -> LossSums:
        raise NotImplementedError("the direct loss estimate is judged by its own band")

    def fit(
        self, model: ModelConfig, reference: ir.Table, version: str, engine: Engine
    ) -> LossModel | None:
        prediction, label = model.columns.prediction, model.labels.column
        if prediction is None:
            return None
        numeric = [f.name for f in model.columns.features if f.kind == "numeric"]
        categorical = [f.name for f in model.columns.features if f.kind != "numeric"]
        wanted = [*numeric, *categorical, prediction, label]
        if any(c not in reference.columns for c in wanted):
            return None
        rows = engine.execute(reference.select(*wanted))
        return LossModel.fit(rows, numeric, categorical, prediction, label)

    def dumps(self, fitted: LossModel) -> str:
        return fitted.dumps()

    def loads(self, text: str) -> LossModel:
        return LossModel.loads(text)

    def note(self, fitted: LossModel) -> str:
        return f"errors predicted by a model of the reference's {fitted.rows:,} rows"

    def aggregate(self, fitted: LossModel, inputs: EstimationInputs) -> dict[Key, LossSums]:
        return loss_sums(
            inputs.engine,
            inputs.scoped,
            inputs.model.columns.timestamp,
            inputs.version,
            inputs.size,
            inputs.segments,
            fitted,
        )

    def estimate(self, model: ModelConfig, fitted: LossModel, aggregate: LossSums) -> Estimated:
        note = ""
        if aggregate.n and aggregate.outside / aggregate.n >= OUTSIDE_SHARE:
            note = (
                f"{aggregate.outside / aggregate.n:.0%} of events outside the reference's "
                "range, where the loss model cannot extrapolate"
            )
        found = {name: f(aggregate, fitted.rows) for name, f in LOSS_ESTIMATES.items()}
        return Estimated(found, note)


def loss_sums(
    engine: Engine,
    events: ir.Table,
    timestamp: str,
    version: str,
    size: timedelta,
    segments: Mapping[str, Segment],
    loss: LossModel,
) -> dict[Key, LossSums]:
    """Per window × segment, the predicted losses of ``events`` (already scoped to the
    windows to compute), read a batch at a time so no window is ever held in memory."""
    size_us = int(size.total_seconds()) * 1_000_000
    features = [f.name for f in loss.features] + [loss.prediction]
    columns: dict[str, ir.Value] = {
        "wk_w": engine.epoch_micros(events[timestamp]) // size_us,
        **{name: events[name] for name in dict.fromkeys(features)},
    }
    names = list(segments)
    for i, name in enumerate(names):
        columns[f"wk_s{i}"] = segment_value(events, name, segments[name])
    query = events.filter(events[loss.prediction].notnull()).select(**columns)
    out: dict[Key, LossSums] = {}
    for batch in engine.batches(query, BATCH_ROWS):
        if batch.num_rows == 0:
            continue
        absolute, squared = loss.predict(batch)
        outside = loss.outside(batch)
        windows = batch.column("wk_w").to_numpy(zero_copy_only=False)
        for w in set(windows.tolist()):
            start = EPOCH + timedelta(microseconds=int(w) * size_us)
            in_window = windows == w
            masks = [((ALL, ALL), in_window)]
            for i, name in enumerate(names):
                text = batch.column(f"wk_s{i}").to_numpy(zero_copy_only=False)
                masks += [
                    (
                        (name, NULL_SEGMENT if value is None else str(value)),
                        in_window & (text == value),
                    )
                    for value in set(text[in_window].tolist())
                ]
            for (seg_col, seg_val), mask in masks:
                sums = LossSums.of(absolute[mask], squared[mask], int(outside[mask].sum()))
                key = (start, version, seg_col, seg_val)
                out[key] = out[key].merge(sums) if key in out else sums
    return out


TASK = Task(
    key="regression",
    headline="mae",
    metrics=METRICS,
    counts=counts,
    gaps=gaps,
    loss=loss,
    estimator=DirectLoss(),
    residual=residual,
    realized=realized,
)

__all__ = ["BATCH_ROWS", "TASK", "DirectLoss", "loss_sums"]
