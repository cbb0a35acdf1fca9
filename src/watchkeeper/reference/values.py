"""The value each metric has on the reference data, for rules that compare with it
("accuracy dropped 5% from the reference", "missing values doubled")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ibis

from watchkeeper.config import ModelConfig
from watchkeeper.profiles.base import Engine, Segment, Source
from watchkeeper.reference.profile import ReferenceProfile
from watchkeeper.schema import BATCH, spec_for
from watchkeeper.store import Store
from watchkeeper.tasks.registry import task_of

ReferenceValues = dict[tuple[str, str, str], float]


def reference_values(store: Store, model: ModelConfig, ref: ReferenceProfile) -> ReferenceValues:
    """(model, metric, column) → the metric on the reference: missing rates per column,
    and where the reference has labels, the task's performance metrics over its labelled
    rows, computed as a window's are (the declared prediction column included)."""
    out: ReferenceValues = {}
    for name, column in ref.overall.columns.items():
        if column.count:
            out[(model.name, "missing_rate", name)] = column.missing / column.count
    table = store.table(spec_for("reference", model).table)
    label = model.labels.column
    if label not in table.columns:
        return out
    mine = table.filter((table[BATCH] == ref.reference_id) & table[label].notnull())
    found = labelled_values(store, within(model, set(table.columns)), mine, ref.version)
    out |= {(model.name, k, ""): v for k, v in found.items()}
    return out


def segment_counts(
    store: Store, model: ModelConfig, ref: ReferenceProfile, segments: Mapping[str, Segment]
) -> dict[tuple[str, str], Any]:
    """(segment column, value) → the task's labelled counts on the reference, for the
    segment columns the reference holds (``*``, ``*`` is the whole reference): what a
    segment's gap is judged against, so a segment that was always harder is not news."""
    table = store.table(spec_for("reference", model).table)
    label = model.labels.column
    present = {c: s for c, s in segments.items() if c in table.columns}
    if label not in table.columns:
        return {}
    mine = table.filter((table[BATCH] == ref.reference_id) & table[label].notnull())
    source = Source(mine, None, ibis.literal(ref.version), None, present)
    counts = task_of(model).counts(within(model, set(table.columns)), source, None, store)
    return {(key[2], key[3]): c for key, c in (counts or {}).items()}


def within(model: ModelConfig, columns: set[str]) -> ModelConfig:
    """The model as the reference can measure it: roles whose column it lacks left out."""
    cols = model.columns
    roles = ("prediction", "score", "query_id", "position", "item_id")
    update: dict[str, object] = {r: None for r in roles if getattr(cols, r) not in columns}
    if cols.scores and any(c not in columns for c in cols.scores.values()):
        update["scores"] = None
    return model.model_copy(update={"columns": cols.model_copy(update=update)})


def labelled_values(
    engine: Engine, model: ModelConfig, labelled: ibis.Table, version: str
) -> dict[str, float]:
    """The task's metrics over labelled rows taken as one window."""
    task = task_of(model)
    counts = task.counts(model, Source(labelled, None, ibis.literal(version)), None, engine)
    found: dict[str, float] = {}
    for c in (counts or {}).values():
        for name, metric in task.metrics.items():
            value = metric(c).value
            if value is not None:
                found[name] = value
        decisions = task.confusion(c)
        if decisions is not None and decisions.n:
            found["predicted_positive_rate"] = (decisions.tp + decisions.fp) / decisions.n
    return found


__all__ = [
    "ReferenceValues",
    "labelled_values",
    "reference_values",
    "segment_counts",
    "within",
]
