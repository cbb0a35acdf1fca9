"""``watchkeeper.compare(reference, current)``: drift between two tables, for notebooks.

It runs on the same engine path as ``watchkeeper run`` (an in-memory DuckDB reading the
Parquet files or Arrow data where they are), not on a separate pandas path: the reference
is fitted into bins, both tables are profiled by the engine, and the drift methods compare
the profiles.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from watchkeeper.config import DriftConfig, MonitoringConfig
from watchkeeper.errors import InputError
from watchkeeper.ingest.infer import EVENT_ID, LABEL_TIMESTAMP, TIMESTAMP, named_as
from watchkeeper.ingest.readers import rows_to_table
from watchkeeper.profiles import ALL, Source, compute_profiles
from watchkeeper.profiles.types import ColumnKind
from watchkeeper.reference import ColumnRole, fit
from watchkeeper.stats import drift as drift_methods
from watchkeeper.stats.drift import Comparison
from watchkeeper.stats.multiple import benjamini_hochberg
from watchkeeper.store import Store

Data = Any  # a Parquet path, a pandas or polars DataFrame, a pyarrow Table, or a list of dicts


@dataclass(frozen=True)
class FeatureDrift:
    column: str
    kind: ColumnKind
    method: str | None  # the effect size that decides
    statistic: float | None
    threshold: float | None
    test: str | None
    p_value: float | None  # Benjamini-Hochberg adjusted across the features
    drifted: bool
    reference_rows: int
    current_rows: int
    all_methods: Mapping[str, tuple[float, float | None]]  # method -> (statistic, raw p-value)


@dataclass(frozen=True)
class DriftReport:
    features: tuple[FeatureDrift, ...]
    min_rows: int
    # Columns not compared because they are identifiers or event times (not asked for).
    left_out: tuple[str, ...] = ()

    def to_pandas(self) -> Any:
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "column": f.column,
                    "kind": f.kind,
                    "method": f.method,
                    "statistic": f.statistic,
                    "threshold": f.threshold,
                    "test": f.test,
                    "p_value": f.p_value,
                    "drifted": f.drifted,
                    "reference_rows": f.reference_rows,
                    "current_rows": f.current_rows,
                }
                for f in self.features
            ]
        )

    def methods(self) -> Any:
        """Every applicable method's statistic and raw p-value, one row per feature × method."""
        import pandas as pd

        return pd.DataFrame(
            [
                {"column": f.column, "method": m, "statistic": s, "p_value": p}
                for f in self.features
                for m, (s, p) in f.all_methods.items()
            ]
        )

    @property
    def drifted(self) -> list[str]:
        return [f.column for f in self.features if f.drifted]

    def summary(self) -> str:
        text = self._summary()
        return text + (f" (left out: {', '.join(self.left_out)})" if self.left_out else "")

    def _summary(self) -> str:
        n = len(self.features)
        if not self.drifted:
            return f"no drift in {n} feature{'s' if n != 1 else ''}"
        ranked = sorted(
            (f for f in self.features if f.drifted),
            key=lambda f: -(f.statistic or 0) / (f.threshold or 1),
        )
        parts = []
        for f in ranked:
            text = f"{f.column} ({f.method} {f.statistic:.3g}, threshold {f.threshold:g}"
            if f.p_value is not None:
                text += f"; {f.test} q={f.p_value:.2g}"
            parts.append(text + ")")
        return f"{len(ranked)} of {n} features drifted: " + ", ".join(parts)


def compare(
    reference: Data,
    current: Data,
    *,
    kinds: Mapping[str, ColumnKind] | None = None,
    columns: Sequence[str] | None = None,
    numeric_drift: DriftConfig | None = None,
    categorical_drift: DriftConfig | None = None,
    min_rows: int = 1,
    memory_limit: str = "256MB",
) -> DriftReport:
    """Compare two tables column by column; feature kinds are inferred unless given."""
    defaults = MonitoringConfig()
    rules = {
        "numeric": numeric_drift or defaults.numeric_drift,
        "categorical": categorical_drift or defaults.categorical_drift,
    }
    store = Store.open("duckdb://", memory_limit=memory_limit)
    try:
        with _table(store, reference) as ref, _table(store, current) as cur:
            roles, left_out = _roles(ref, cur, kinds, columns)
            fitted = fit(ref, roles, store)
            window = compute_profiles(
                Source(cur, None, ibis.literal("current")), fitted.binnings, None, store
            )
    finally:
        store.close()
    current_profile = next(p for (_, _, c, _), p in window.items() if c == ALL)
    pending = []
    for b in fitted.binnings:
        comparison = Comparison(b, fitted.overall.columns[b.name], current_profile.columns[b.name])
        enough = min(comparison.reference.present, comparison.current.present) >= min_rows
        results = {
            m.key: drift_methods.compare(m.key, comparison) if enough else None
            for m in drift_methods.methods_for(b.kind)
        }
        pending.append((b, comparison, results, rules[b.kind]))
    p_values = [
        (i, results[rule.test].p_value)  # type: ignore[union-attr]
        for i, (_, _, results, rule) in enumerate(pending)
        if rule.test and results.get(rule.test) is not None
    ]
    adjusted = dict(
        zip(
            [i for i, _ in p_values],
            benjamini_hochberg([p or 0.0 for _, p in p_values]),
            strict=True,
        )
    )
    features = []
    for i, (b, comparison, results, rule) in enumerate(pending):
        effect = results.get(rule.effect) if rule.effect else None
        threshold = rule.threshold
        if threshold is None and rule.effect:
            threshold = drift_methods.get(rule.effect).threshold
        q = adjusted.get(i)
        decided = (not rule.effect or effect is not None) and (not rule.test or q is not None)
        big = effect is None or effect.statistic >= (threshold or 0.0)
        significant = q is None or q < rule.alpha
        features.append(
            FeatureDrift(
                b.name,
                b.kind,
                rule.effect,
                None if effect is None else effect.statistic,
                threshold,
                rule.test,
                q,
                bool(decided and big and significant),
                comparison.reference.present,
                comparison.current.present,
                {k: (r.statistic, r.p_value) for k, r in results.items() if r is not None},
            )
        )
    return DriftReport(tuple(features), min_rows, left_out)


@contextmanager
def _table(store: Store, data: Data) -> Iterator[ir.Table]:
    if isinstance(data, str | Path):
        path = Path(data)
        if not path.exists():
            raise InputError(f"no such file: {path}")
        if path.suffix.lower() not in (".parquet", ".pq"):
            raise InputError(f"{path}: compare reads Parquet files; pass other data as a table")
        yield store.backend.read_parquet(str(path))
        return
    with store.arrow(_arrow(data)) as table:
        yield table


def _arrow(data: Data) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    module = type(data).__module__.split(".")[0]
    if module == "pandas":
        return pa.Table.from_pandas(data, preserve_index=False)
    if module == "polars":
        return data.to_arrow()
    if isinstance(data, list):
        return rows_to_table(data)
    raise InputError(
        f"cannot compare a {type(data).__name__}; give a Parquet path, a pandas or polars "
        "DataFrame, a pyarrow Table or a list of dicts"
    )


def _roles(
    ref: ir.Table,
    cur: ir.Table,
    kinds: Mapping[str, ColumnKind] | None,
    columns: Sequence[str] | None,
) -> tuple[list[ColumnRole], tuple[str, ...]]:
    """The features to compare, and the columns left out as identifiers or event times
    (only when the columns are not named)."""
    names = list(columns) if columns is not None else [c for c in ref.columns if c in cur.columns]
    missing = [c for c in names if c not in ref.columns or c not in cur.columns]
    if missing:
        raise InputError(f"columns not in both tables: {', '.join(missing)}")
    left_out = () if columns is not None else _keys(ref, names)
    roles = []
    schema = ref.schema()
    for name in names:
        kind = (kinds or {}).get(name) or _infer(schema[name])
        if kind is None or name in left_out:
            continue
        if kind == "categorical" and schema[name].is_boolean():
            roles.append(ColumnRole(name, kind, "feature", ("false", "true")))
        else:
            roles.append(ColumnRole(name, kind, "feature"))
    if not roles:
        if left_out:
            raise InputError(
                f"nothing to compare: {', '.join(left_out)} were left out as identifiers or "
                "event times; name the columns to compare them (columns=[...])"
            )
        raise InputError("no numeric or categorical columns to compare")
    return roles, left_out


# Names of an event's id or time (``init --from``'s): not features unless asked for.
KEY_NAMES = (*EVENT_ID, *TIMESTAMP, *LABEL_TIMESTAMP)


def _keys(ref: ir.Table, names: Sequence[str]) -> tuple[str, ...]:
    """Columns that are not features: text or integer columns named as an event's id or
    time, or named like one (``*_id``, ``label_*``) with no value repeated in the reference.
    Every value of an id is new, so it would always drift; a time always moves. A float is
    a measurement (a delay, a duration) whatever its name, and stays a feature."""
    schema = ref.schema()
    exact: set[str] = set()
    loose: list[str] = []
    for name in names:
        rank = named_as(name, KEY_NAMES)
        if rank is None or not (schema[name].is_string() or schema[name].is_integer()):
            continue
        if "*" in KEY_NAMES[rank]:
            loose.append(name)
        else:
            exact.add(name)
    if loose:
        found = (
            ref.aggregate(
                **{f"n{i}": ref[c].count() for i, c in enumerate(loose)},
                **{f"d{i}": ref[c].nunique() for i, c in enumerate(loose)},
            )
            .to_pyarrow()
            .to_pylist()[0]
        )
        exact |= {c for i, c in enumerate(loose) if found[f"n{i}"] == found[f"d{i}"] > 1}
    return tuple(n for n in names if n in exact)


def _infer(dtype: Any) -> ColumnKind | None:
    if dtype.is_boolean() or dtype.is_string():
        return "categorical"
    if dtype.is_numeric():
        return "numeric"
    return None


__all__ = ["DriftReport", "FeatureDrift", "compare"]
