"""A reference version in the store: its rows, fitting everything once (the bins profile
and the estimator) and storing it as data, and reading the fitted profile back."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from watchkeeper.config import ModelConfig
from watchkeeper.errors import NoReferenceError
from watchkeeper.reference.estimators import estimator
from watchkeeper.reference.profile import (
    ReferenceProfile,
    column_roles,
    fit,
    fit_reconstruction,
)
from watchkeeper.schema import BATCH, spec_for
from watchkeeper.store import Store
from watchkeeper.store.engine import arrow_schema
from watchkeeper.store.tables import REFERENCE_PROFILES, REFERENCE_SETS, SHARED


def reference_id(store: Store, model: str, version: str) -> str | None:
    """The newest reference set stored for a model version."""
    sets = store.table(REFERENCE_SETS)
    mine = sets.filter((sets.model == model) & (sets.model_version == version))
    latest = store.execute(mine.order_by(ibis.desc(mine.set_at)).limit(1))
    return None if latest.num_rows == 0 else str(latest["reference_id"][0].as_py())


def reference_rows(store: Store, model: ModelConfig, version: str) -> ir.Table:
    """The rows of the newest reference set of a model version (none if there is none)."""
    found = reference_id(store, model.name, version)
    ref = store.table(spec_for("reference", model).table)
    if found is None:
        return ref.filter(ibis.literal(False))
    return ref.filter(ref[BATCH] == found)


def fit_reference(
    store: Store, model: ModelConfig, version: str, segments: list[str], now: datetime
) -> ReferenceProfile:
    """Fit a version's reference profile (bins, vocabularies, per-segment profiles, the
    multivariate drift's components) and its estimator from the stored reference, and
    store both."""
    found = reference_id(store, model.name, version)
    if found is None:
        raise NoReferenceError(model.name)
    rows_of = reference_rows(store, model, version)
    profile = fit(
        rows_of,
        column_roles(model),
        store,
        model=model.name,
        version=version,
        reference_id=found,
        segments=segments,
        max_segment_values=model.monitoring.max_segment_values,
    )
    profile = replace(profile, reconstruction=fit_reconstruction(rows_of, model, store))
    rows = profile.to_rows()
    table = pa.table(
        {
            "model": [model.name] * len(rows),
            "model_version": [version] * len(rows),
            "reference_id": [found] * len(rows),
            "column": [c for c, _ in rows],
            "profile": [p for _, p in rows],
            "fitted_at": [now] * len(rows),
        },
        schema=arrow_schema(SHARED[REFERENCE_PROFILES]),
    )
    with store.transaction():
        store.insert(REFERENCE_PROFILES, table)
    estimator(store, model, profile, now)
    return profile


def load_profile(
    store: Store,
    model: str,
    version: str,
    cache: dict[tuple[str, str], tuple[Any, ReferenceProfile]] | None = None,
) -> ReferenceProfile | None:
    """The reference profile fitted last for a model version, if any. With ``cache``, a
    profile read before is kept while it is still the last fitted (one small query)."""
    t = store.table(REFERENCE_PROFILES)
    mine = t.filter((t.model == model) & (t.model_version == version))
    last = store.execute(
        mine.order_by(ibis.desc(mine.fitted_at)).limit(1).select("fitted_at", "reference_id")
    )
    if last.num_rows == 0:
        return None
    fitted_at = last["fitted_at"][0].as_py()
    stamp = (fitted_at, last["reference_id"][0].as_py())
    known = cache.get((model, version)) if cache is not None else None
    if known is not None and known[0] == stamp:
        return known[1]
    rows = store.execute(mine.filter(mine.fitted_at == fitted_at).select("column", "profile"))
    profile = ReferenceProfile.from_rows(
        model,
        version,
        stamp[1],
        list(zip(rows["column"].to_pylist(), rows["profile"].to_pylist(), strict=True)),
    )
    if cache is not None:
        cache[(model, version)] = (stamp, profile)
    return profile


__all__ = ["fit_reference", "load_profile", "reference_id", "reference_rows"]
