"""A reference version's estimator (calibration maps, the loss model): fitted once from the
stored reference and stored as data in the ``estimators`` table, never as code."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from watchkeeper.config import ModelConfig
from watchkeeper.reference.profile import ReferenceProfile
from watchkeeper.schema import BATCH, spec_for
from watchkeeper.store import Store
from watchkeeper.store.engine import shared_rows
from watchkeeper.store.tables import ESTIMATORS
from watchkeeper.tasks.registry import task_of

log = logging.getLogger("watchkeeper.reference")


def estimator(store: Store, model: ModelConfig, ref: ReferenceProfile, now: datetime) -> Any:
    """The reference's fitted estimator: from the store, or fitted now and stored. None
    where the task has none or the reference cannot fit one (no labels, too few rows)."""
    found = task_of(model).estimator
    if found is None:
        return None
    t = store.table(ESTIMATORS)
    stored = store.execute(
        t.filter((t.reference_id == ref.reference_id) & (t.kind == found.kind))
        .order_by(t.fitted_at.desc())
        .select("payload")
    )
    for payload in stored["payload"].to_pylist():
        try:
            return found.loads(payload)
        except ValueError as exc:  # an older or foreign payload: never trusted, refitted
            log.warning("refitting the %s estimator of %s: %s", found.kind, ref.reference_id, exc)
            break
    table = store.table(spec_for("reference", model).table)
    label = model.labels.column
    if label not in table.columns:
        return None
    mine = table.filter(table[BATCH] == ref.reference_id)
    fitted = found.fit(model, mine, ref.version, store)
    if fitted is None:
        return None
    row = {
        "model": model.name,
        "model_version": ref.version,
        "reference_id": ref.reference_id,
        "kind": found.kind,
        "payload": found.dumps(fitted),
        "rows": int(getattr(fitted, "rows", 0) or 0),
        "fitted_at": now,
    }
    store.insert(ESTIMATORS, shared_rows(ESTIMATORS, [row]))
    return fitted


__all__ = ["estimator"]
