"""The expressions that build profiles, pushed down to the engine.

For a table of events (or reference rows), a window size and a set of segment columns, two
kinds of query run in the engine, and only their small results come back:

- one *moments* query per segment set: rows, errors, and per column its missing count, sum,
  sum of squares, min and max, grouped by window × model version × segment value;
- one *histogram* query per column: counts per bin (the bin computed in the engine by a
  binary search over the reference's edges, or a join with the vocabulary), for every
  segment set at once (a union), grouped the same way.

Columnar engines read only the columns a query names, so a query per column costs about one
read of that column; the result size is windows × segments × bins, whatever the rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa

from watchkeeper.profiles.binning import Binning
from watchkeeper.profiles.types import ColumnProfile, Profile
from watchkeeper.windows import EPOCH

ALL = "*"  # the segment column and value that stand for the whole traffic
NULL_SEGMENT = "(null)"
OTHER_SEGMENT = "(other)"

# (window start, model version, segment column, segment value)
Key = tuple[datetime, str, str, str]

Executor = Callable[[ir.Expr], pa.Table]
# Runs an expression that needs an Arrow table registered (the vocabulary of a column).
ExecutorWith = Callable[[pa.Table, Callable[[ir.Table], ir.Expr]], pa.Table]


@dataclass(frozen=True)
class Source:
    """What to profile: a table and how to read its roles."""

    table: ir.Table
    timestamp: str | None  # None: the whole table is one window (a reference)
    version: str | ir.Value  # a column name, or a constant
    status: str | None = None
    segments: Mapping[str, Sequence[str]] = field(default_factory=dict)  # column -> values kept


@dataclass(frozen=True)
class Windowing:
    size: timedelta
    since: datetime | None = None
    until: datetime | None = None
    starts: tuple[datetime, ...] | None = None  # only these windows (dirty ones)


def compute_profiles(
    source: Source,
    binnings: Sequence[Binning],
    windowing: Windowing | None,
    execute: Executor,
    execute_with: ExecutorWith,
    progress: Callable[[int], None] | None = None,
) -> dict[Key, Profile]:
    """Profiles of every window × version × segment of ``source``, computed in the engine.

    ``progress`` is called with 1 after each query (one for the moments, one per column).
    """
    base, size = _base(source, windowing)
    sets: list[tuple[str, Sequence[str]]] = [(ALL, ()), *source.segments.items()]
    moments = _moments(base, binnings, sets, source.status)
    found = execute(moments)
    if progress is not None:
        progress(1)
    partial: dict[Key, dict[str, Any]] = {}
    for row in found.to_pylist():
        key = _key(row, size)
        partial[key] = row
    hists: dict[str, dict[Key, np.ndarray[Any, Any]]] = {}
    for b in binnings:
        hists[b.name] = _histograms(base, b, sets, size, execute, execute_with)
        if progress is not None:
            progress(1)
    out: dict[Key, Profile] = {}
    for key, row in partial.items():
        columns = {}
        for b in binnings:
            bins = hists[b.name].get(key)
            if bins is None:
                bins = np.zeros(b.n_bins, dtype=np.int64)
            present = int(row[f"{b.name}__n"] or 0)
            columns[b.name] = ColumnProfile(
                b.kind,
                int(row["rows"]),
                int(row["rows"]) - present,
                bins,
                float(row.get(f"{b.name}__sum") or 0.0),
                float(row.get(f"{b.name}__sq") or 0.0),
                _float(row.get(f"{b.name}__min")),
                _float(row.get(f"{b.name}__max")),
            )
        out[key] = Profile(int(row["rows"]), int(row.get("errors") or 0), columns)
    return out


def _float(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _base(source: Source, windowing: Windowing | None) -> tuple[ir.Table, int]:
    t = source.table
    version = t[source.version] if isinstance(source.version, str) else source.version
    if source.timestamp is None or windowing is None:
        window = ibis.literal(0, type="int64")
        size = 0
    else:
        ts = t[source.timestamp]
        if windowing.since is not None:
            t = t.filter(ts >= windowing.since)
        if windowing.until is not None:
            t = t.filter(ts < windowing.until)
        size = max(int(windowing.size.total_seconds()), 1)
        ts = t[source.timestamp]
        window = (ts.epoch_seconds() // size).cast("int64")
        if windowing.starts is not None:
            wanted = [int((s - EPOCH).total_seconds()) // size for s in windowing.starts]
            t = t.filter(window.isin(wanted))
            ts = t[source.timestamp]
            window = (ts.epoch_seconds() // size).cast("int64")
        version = t[source.version] if isinstance(source.version, str) else source.version
    return t.mutate(wk_w=window, wk_v=version.cast("string")), size


def _segment(t: ir.Table, seg_col: str, values: Sequence[str]) -> ir.StringValue:
    """The segment value of each row: the value if kept, else (other); (null) for nulls."""
    if seg_col == ALL:
        return ibis.literal(ALL)
    text = t[seg_col].cast("string")
    if not values:
        return text.fill_null(NULL_SEGMENT)
    kept = ibis.ifelse(text.isin(list(values)), text, ibis.literal(OTHER_SEGMENT))
    return ibis.ifelse(text.isnull(), ibis.literal(NULL_SEGMENT), kept)


def _moments(
    base: ir.Table,
    binnings: Sequence[Binning],
    sets: Sequence[tuple[str, Sequence[str]]],
    status: str | None,
) -> ir.Table:
    parts = []
    for seg_col, values in sets:
        t = base.mutate(wk_sc=ibis.literal(seg_col), wk_sv=_segment(base, seg_col, values))
        aggs: dict[str, ir.Scalar] = {"rows": t.count()}
        if status is not None:
            s = t[status]
            aggs["errors"] = (s.notnull() & (s.lower() != "ok")).cast("int64").sum()
        for b in binnings:
            x = t[b.name]
            aggs[f"{b.name}__n"] = x.count()
            if b.kind == "numeric":
                xf = x.cast("float64")
                aggs[f"{b.name}__sum"] = xf.sum()
                aggs[f"{b.name}__sq"] = (xf * xf).sum()
                aggs[f"{b.name}__min"] = xf.min()
                aggs[f"{b.name}__max"] = xf.max()
        parts.append(t.group_by(["wk_w", "wk_v", "wk_sc", "wk_sv"]).aggregate(**aggs))
    return ibis.union(*parts) if len(parts) > 1 else parts[0]


def _key(row: Mapping[str, Any], size: int) -> Key:
    start = EPOCH + timedelta(seconds=int(row["wk_w"]) * size)
    return (start, str(row["wk_v"]), str(row["wk_sc"]), str(row["wk_sv"]))


def _histograms(
    base: ir.Table,
    b: Binning,
    sets: Sequence[tuple[str, Sequence[str]]],
    size: int,
    execute: Executor,
    execute_with: ExecutorWith,
) -> dict[Key, np.ndarray[Any, Any]]:
    if b.kind == "numeric":
        x = base[b.name].cast("float64")
        present = base.filter(x.notnull())
        coded = present.mutate(wk_bin=bin_expr(present[b.name].cast("float64"), b.edges))
        result = execute(_count_by_bin(coded, sets))
    else:
        vocab = pa.table(
            {
                "wk_cat": pa.array([*b.categories, *b.known], pa.string()),
                "wk_code": pa.array(
                    [*range(len(b.categories)), *([len(b.categories)] * len(b.known))], pa.int64()
                ),
            }
        )
        # a known category in the vocabulary appears twice; keep its vocabulary code
        vocab = (
            vocab.group_by("wk_cat")
            .aggregate([("wk_code", "min")])
            .rename_columns(["wk_cat", "wk_code"])
        )
        unseen = len(b.categories) + 1

        def build(mapping: ir.Table) -> ir.Expr:
            x = base[b.name].cast("string")
            present = base.mutate(wk_x=x).filter(x.notnull())
            joined = present.left_join(mapping, present.wk_x == mapping.wk_cat)
            coded = joined.mutate(wk_bin=joined.wk_code.fill_null(unseen))
            return _count_by_bin(coded, sets)

        result = execute_with(vocab, build)
    out: dict[Key, np.ndarray[Any, Any]] = {}
    for row in result.to_pylist():
        key = _key(row, size)
        bins = out.setdefault(key, np.zeros(b.n_bins, dtype=np.int64))
        bins[int(row["wk_bin"])] += int(row["n"])
    return out


def _count_by_bin(coded: ir.Table, sets: Sequence[tuple[str, Sequence[str]]]) -> ir.Table:
    parts = []
    for seg_col, values in sets:
        t = coded.mutate(wk_sc=ibis.literal(seg_col), wk_sv=_segment(coded, seg_col, values))
        parts.append(
            t.group_by(["wk_w", "wk_v", "wk_sc", "wk_sv", "wk_bin"]).aggregate(n=t.count())
        )
    return ibis.union(*parts) if len(parts) > 1 else parts[0]


def bin_expr(x: ir.NumericValue, edges: Sequence[float]) -> ir.IntegerValue:
    """0 below the first edge, 1..k inside (last bin closed), k+1 above the last edge."""
    k = len(edges) - 1

    def search(lo: int, hi: int) -> ir.IntegerValue:
        # 1 + the number of interior edges edges[lo..hi] that are <= x
        if lo > hi:
            return ibis.literal(lo, type="int64")
        mid = (lo + hi) // 2
        return ibis.ifelse(x < edges[mid], search(lo, mid - 1), search(mid + 1, hi))

    inside = search(1, k - 1)
    return ibis.ifelse(x < edges[0], 0, ibis.ifelse(x > edges[-1], k + 1, inside))
