"""Regression performance estimated without labels, in a run: the loss model of a
reference (fitted once and kept in the store), and a window's events streamed through it
in batches, summed per window and segment."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

import ibis.expr.types as ir

from watchkeeper.config import ModelConfig
from watchkeeper.profiles import ALL, Key
from watchkeeper.profiles.compute import NULL_SEGMENT, Segment, segment_value
from watchkeeper.reference import ReferenceProfile
from watchkeeper.schema import BATCH, spec_for
from watchkeeper.stats.loss import LossModel, LossSums
from watchkeeper.store import Store
from watchkeeper.store.engine import shared_rows
from watchkeeper.store.tables import ESTIMATORS
from watchkeeper.windows import EPOCH

KIND = "direct_loss"
BATCH_ROWS = 65_536


def loss_model(
    store: Store, model: ModelConfig, ref: ReferenceProfile, now: datetime
) -> LossModel | None:
    """The reference's loss model: from the store, or fitted now and stored."""
    if model.columns.prediction is None:
        return None
    t = store.table(ESTIMATORS)
    found = store.execute(
        t.filter((t.reference_id == ref.reference_id) & (t.kind == KIND)).select("payload")
    )
    if found.num_rows:
        return LossModel.loads(found["payload"][0].as_py())
    table = store.table(spec_for("reference", model).table)
    label = model.labels.column
    numeric = [f.name for f in model.columns.features if f.kind == "numeric"]
    categorical = [f.name for f in model.columns.features if f.kind != "numeric"]
    wanted = [*numeric, *categorical, model.columns.prediction, label]
    if any(c not in table.columns for c in wanted):
        return None
    rows = store.execute(table.filter(table[BATCH] == ref.reference_id).select(*wanted))
    fitted = LossModel.fit(rows, numeric, categorical, model.columns.prediction, label)
    if fitted is None:
        return None
    row = {
        "model": model.name,
        "model_version": ref.version,
        "reference_id": ref.reference_id,
        "kind": KIND,
        "payload": fitted.dumps(),
        "rows": fitted.rows,
        "fitted_at": now,
    }
    store.insert(ESTIMATORS, shared_rows(ESTIMATORS, [row]))
    return fitted


def loss_sums(
    store: Store,
    events: ir.Table,
    timestamp: str,
    version: str,
    size: timedelta,
    segments: Mapping[str, Segment],
    loss: LossModel,
) -> dict[Key, LossSums]:
    """Per window × segment, the predicted losses of the events of ``events`` (already
    scoped to the windows to compute), read a batch at a time."""
    size_us = int(size.total_seconds()) * 1_000_000
    inputs = [f.name for f in loss.features] + [loss.prediction]
    columns: dict[str, ir.Value] = {
        "wk_w": store.epoch_micros(events[timestamp]) // size_us,
        **{name: events[name] for name in dict.fromkeys(inputs)},
    }
    names = list(segments)
    for i, name in enumerate(names):
        columns[f"wk_s{i}"] = segment_value(events, name, segments[name])
    query = events.filter(events[loss.prediction].notnull()).select(**columns)
    out: dict[Key, LossSums] = {}

    def add(key: Key, sums: LossSums) -> None:
        out[key] = out[key].merge(sums) if key in out else sums

    for batch in store.batches(query, BATCH_ROWS):
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
