"""The value each metric has on the reference data, for rules that compare with it
("accuracy dropped 5% from the reference", "missing values doubled")."""

from __future__ import annotations

import ibis

from watchkeeper.config import ModelConfig
from watchkeeper.profiles import Source
from watchkeeper.profiles.compute import (
    compute_binary_counts,
    compute_multiclass_counts,
    compute_regression_sums,
)
from watchkeeper.reference import ReferenceProfile
from watchkeeper.schema import BATCH, spec_for
from watchkeeper.stats.multiclass import METRICS as MULTICLASS
from watchkeeper.stats.performance import METRICS as PERFORMANCE
from watchkeeper.stats.regression import METRICS as REGRESSION
from watchkeeper.store import Store


def reference_values(
    store: Store, model: ModelConfig, ref: ReferenceProfile
) -> dict[tuple[str, str, str], float]:
    """(model, metric, column) → the metric on the reference: missing rates per column,
    and where the reference has labels, its performance metrics."""
    out: dict[tuple[str, str, str], float] = {}
    for name, column in ref.overall.columns.items():
        if column.count:
            out[(model.name, "missing_rate", name)] = column.missing / column.count
    table = store.table(spec_for("reference", model).table)
    label = model.labels.column
    if label not in table.columns:
        return out
    mine = table.filter((table[BATCH] == ref.reference_id) & table[label].notnull())
    source = Source(mine, None, ibis.literal(ref.version))
    cols = model.columns
    found: dict[str, float | None] = {}
    if model.task == "binary_classification" and cols.score and cols.score in table.columns:
        counts = compute_binary_counts(
            source, cols.score, label, None, model.decision_threshold, None, store
        )
        for c in counts.values():
            found |= {k: f(c).value for k, f in PERFORMANCE.items()}
            found["predicted_positive_rate"] = (c.tp + c.fp) / c.n if c.n else None
    elif model.task == "regression" and cols.prediction and cols.prediction in table.columns:
        sums = compute_regression_sums(source, cols.prediction, label, None, store)
        for r in sums.values():
            found |= {k: f(r).value for k, f in REGRESSION.items()}
    elif (
        model.task == "multiclass_classification"
        and cols.prediction
        and cols.prediction in table.columns
    ):
        counts_mc = compute_multiclass_counts(
            source, cols.prediction, label, model.classes or (), None, None, store
        )
        for m in counts_mc.values():
            found |= {k: f(m).value for k, f in MULTICLASS.items()}
    out |= {(model.name, k, ""): v for k, v in found.items() if v is not None}
    return out
