"""Fitting a reference profile: the bins every window of a model version is counted in.

Fitted once per model version from the stored reference (refitting is explicit), and
stored, so that every window is compared with the same bins and scores are comparable
across windows.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc

from watchkeeper.config import ModelConfig
from watchkeeper.profiles.base import ALL, Engine, Segment, Source
from watchkeeper.profiles.binning import (
    FINE_BINS,
    KNOWN_CAP,
    LATENCY_EDGES,
    VOCABULARY,
    Binning,
    coarse_grid,
    numeric_edges,
)
from watchkeeper.profiles.columns import compute_profiles
from watchkeeper.profiles.types import ColumnKind, ColumnProfile, Profile
from watchkeeper.stats import reconstruction

QUANTILE_SAMPLE = 200_000  # reference rows the quantile edges are taken from, at most
RECONSTRUCTION_SAMPLE = 100_000  # reference rows reconstruction drift is fitted on, at most
RECONSTRUCTION = "*reconstruction"  # the reference_profiles row that holds its fit


@dataclass(frozen=True)
class ColumnRole:
    name: str
    kind: ColumnKind
    role: str  # feature, score, prediction, label
    categories: tuple[str, ...] = ()  # a set known up front (classes, 0/1, false/true)


def column_roles(model: ModelConfig, *, label: bool = True) -> list[ColumnRole]:
    """The columns a model's profiles cover, with the kind of bins each gets."""
    cols = model.columns
    roles = []
    for f in cols.features:
        if f.kind == "numeric":
            roles.append(ColumnRole(f.name, "numeric", "feature"))
        elif f.kind == "boolean":
            roles.append(ColumnRole(f.name, "categorical", "feature", ("false", "true")))
        else:
            roles.append(ColumnRole(f.name, "categorical", "feature", f.values or ()))
    if cols.score:
        roles.append(ColumnRole(cols.score, "numeric", "score"))
    for name in (cols.scores or {}).values():
        roles.append(ColumnRole(name, "numeric", "score"))
    out_kind: ColumnKind = (
        "categorical"
        if model.task in ("binary_classification", "multiclass_classification")
        else "numeric"
    )
    classes: tuple[str, ...] = ()
    if model.task == "binary_classification":
        classes = ("0", "1")
    elif model.task == "multiclass_classification":
        classes = tuple(model.classes or ())
    if cols.prediction:
        roles.append(ColumnRole(cols.prediction, out_kind, "prediction", classes))
    if label:
        roles.append(ColumnRole(model.labels.column, out_kind, "label", classes))
    return roles


def latency_binning(name: str) -> Binning:
    edges = (0.0, *LATENCY_EDGES)
    return Binning(name, "numeric", "latency", edges=edges, coarse=tuple(range(len(edges))))


@dataclass(frozen=True, eq=False)
class ReferenceProfile:
    model: str
    version: str
    reference_id: str
    binnings: tuple[Binning, ...]
    overall: Profile
    segments: Mapping[tuple[str, str], Profile] = field(default_factory=dict)
    # multivariate drift's fit (None: fewer than two features, or turned off)
    reconstruction: reconstruction.Reconstruction | None = None

    def binning(self, name: str) -> Binning | None:
        return self._by_name.get(name)

    @cached_property
    def _by_name(self) -> dict[str, Binning]:
        return {b.name: b for b in self.binnings}

    def for_segment(self, column: str, value: str) -> tuple[Profile, bool]:
        """The reference of a segment, or the whole reference when it has no such segment."""
        found = self.segments.get((column, value))
        if column == ALL or found is None:
            return self.overall, column == ALL
        return found, True

    def to_rows(self) -> list[tuple[str, str]]:
        """(column, JSON) rows for the reference_profiles table; column '*' holds the rest."""
        rows = []
        for b in self.binnings:
            payload = {
                "binning": b.to_json(),
                "overall": self.overall.columns[b.name].to_json(),
                "segments": {
                    f"{c}\x1f{v}": p.columns[b.name].to_json()
                    for (c, v), p in self.segments.items()
                    if b.name in p.columns
                },
            }
            rows.append((b.name, json.dumps(payload)))
        totals = {
            "overall": [self.overall.rows, self.overall.errors],
            "segments": {f"{c}\x1f{v}": [p.rows, p.errors] for (c, v), p in self.segments.items()},
        }
        rows.append((ALL, json.dumps(totals)))
        if self.reconstruction is not None:
            rows.append((RECONSTRUCTION, json.dumps(self.reconstruction.to_json())))
        return rows

    @classmethod
    def from_rows(
        cls, model: str, version: str, reference_id: str, rows: Sequence[tuple[str, str]]
    ) -> ReferenceProfile:
        data = {column: json.loads(payload) for column, payload in rows}
        totals = data.pop(ALL)
        fitted = data.pop(RECONSTRUCTION, None)
        binnings = tuple(Binning.from_json(d["binning"]) for d in data.values())
        overall_cols = {b.name: ColumnProfile.from_json(data[b.name]["overall"]) for b in binnings}
        overall = Profile(totals["overall"][0], totals["overall"][1], overall_cols)
        segments = {}
        for key, (n, errors) in totals["segments"].items():
            col, val = key.split("\x1f")
            seg_cols = {
                b.name: ColumnProfile.from_json(data[b.name]["segments"][key])
                for b in binnings
                if key in data[b.name]["segments"]
            }
            segments[(col, val)] = Profile(n, errors, seg_cols)
        return cls(
            model,
            version,
            reference_id,
            binnings,
            overall,
            segments,
            None if fitted is None else reconstruction.Reconstruction.from_json(fitted),
        )


def fit(
    table: ir.Table,
    roles: Sequence[ColumnRole],
    engine: Engine,
    *,
    model: str = "",
    version: str = "",
    reference_id: str = "",
    segments: Sequence[str] = (),
    max_segment_values: int = 20,
) -> ReferenceProfile:
    """Fit bins from the reference's own distribution, then profile it over those bins."""
    present = [r for r in roles if r.name in table.columns]
    binnings = _fit_bins(table, present, engine.execute)
    segment_values = top_values(
        table, [s for s in segments if s in table.columns], engine.execute, max_segment_values
    )
    source = Source(table, None, ibis.literal(version), segments=segment_values)
    profiles = compute_profiles(source, binnings, None, engine)
    overall = next((p for (_, _, c, _), p in profiles.items() if c == ALL), None)
    if overall is None:  # an empty reference
        overall = Profile(0, 0, {})
    final = []
    for b in binnings:
        if b.kind == "numeric" and b.name in overall.columns:
            b = replace(b, coarse=coarse_grid(b.edges, overall.columns[b.name].bins))
        final.append(b)
    segs = {(c, v): p for (_, _, c, v), p in profiles.items() if c != ALL}
    return ReferenceProfile(model, version, reference_id, tuple(final), overall, segs)


def fit_reconstruction(
    table: ir.Table, model: ModelConfig, engine: Engine
) -> reconstruction.Reconstruction | None:
    """Reconstruction drift fitted on a sample of the reference (in time order where it has
    a timestamp): None when it is off or the model has fewer than two features."""
    wanted = model.monitoring.multivariate
    features = [f for f in model.columns.features if f.name in table.columns]
    if not wanted.reconstruction or len(features) < 2:
        return None
    rows = int(engine.scalar(table.count()))
    sample = table
    if rows > RECONSTRUCTION_SAMPLE:
        sample = table.sample(RECONSTRUCTION_SAMPLE / rows, method="row", seed=13)
    ts = model.columns.timestamp
    names = [f.name for f in features]
    order = [ts, *names] if ts in table.columns and ts not in names else names
    # Sorted here, not by the engine, so that every engine splits the sample alike (ties
    # and nulls are ordered differently by each; arrow puts nulls last).
    found = engine.execute(sample.select(*order))
    found = found.take(pc.sort_indices(found, [(c, "ascending") for c in order]))
    data: dict[str, Sequence[object]] = {}
    for f in features:
        column = found[f.name]
        if f.kind == "numeric":
            data[f.name] = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
        else:
            data[f.name] = column.to_pylist()
    kinds = {f.name: "numeric" if f.kind == "numeric" else "categorical" for f in features}
    return reconstruction.fit(data, kinds, wanted.variance_share)


def _fit_bins(
    table: ir.Table, roles: Sequence[ColumnRole], execute: Callable[[ir.Expr], pa.Table]
) -> list[Binning]:
    numeric = [r for r in roles if r.kind == "numeric"]
    out: dict[str, Binning] = {}
    if numeric:
        qs = [i / FINE_BINS for i in range(FINE_BINS + 1)]
        # Edges need not be exact quantiles (the counts over them are exact), so a large
        # reference is sampled for them: the quantile sketches cost more than the scan.
        rows = int(execute(table.aggregate(n=table.count()))["n"][0].as_py())
        sample = table
        if rows > QUANTILE_SAMPLE:
            sample = table.sample(QUANTILE_SAMPLE / rows, method="row", seed=7)
        aggs: dict[str, ir.Scalar] = {}
        for r in numeric:
            x = sample[r.name].cast("float64")
            aggs[f"{r.name}__q"] = x.approx_quantile(qs)
        row = execute(sample.aggregate(**aggs)).to_pylist()[0]
        for r in numeric:
            distinct = None
            found_qs = [q for q in row[f"{r.name}__q"] or () if q is not None]
            # Repeated quantiles mean few distinct values: then give each its own bin.
            if len(set(found_qs)) < len(qs):
                x = table[r.name].cast("float64")
                values = execute(
                    table.filter(x.notnull()).select(v=x).distinct().limit(FINE_BINS * 2)
                )
                found = values["v"].to_pylist()
                if len(found) <= FINE_BINS:
                    distinct = found
            edges = numeric_edges(row[f"{r.name}__q"], distinct)
            out[r.name] = Binning(r.name, "numeric", r.role, edges=edges)
    for r in roles:
        if r.kind != "categorical":
            continue
        x = table[r.name].cast("string")
        counts = (
            table.filter(x.notnull())
            .group_by(v=x)
            .aggregate(n=ibis._.count())
            .order_by([ibis.desc("n"), "v"])
            .limit(KNOWN_CAP)
        )
        found = execute(counts)["v"].to_pylist()
        declared = list(r.categories)
        vocabulary = declared or found[:VOCABULARY]
        out[r.name] = Binning(
            r.name,
            "categorical",
            r.role,
            categories=tuple(vocabulary),
            known=tuple(sorted(set(found) | set(declared))),
        )
    return [out[r.name] for r in roles]


def top_values(
    table: ir.Table,
    columns: Sequence[str],
    execute: Callable[[ir.Expr], pa.Table],
    limit: int,
) -> dict[str, Segment]:
    """The most frequent values of each segment column (the rest count as (other))."""
    out: dict[str, Segment] = {}
    for name in columns:
        x = table[name].cast("string")
        counts = (
            table.filter(x.notnull())
            .group_by(v=x)
            .aggregate(n=ibis._.count())
            .order_by([ibis.desc("n"), "v"])
            .limit(limit + 1)
        )
        found = tuple(execute(counts)["v"].to_pylist())
        out[name] = Segment(found[:limit], complete=len(found) <= limit)
    return out


__all__ = [
    "ColumnRole",
    "ReferenceProfile",
    "column_roles",
    "fit",
    "fit_reconstruction",
    "latency_binning",
    "top_values",
]
