"""The rows a profiling query reads, and how its results are keyed and rolled up.

For a table of events (or reference rows), a window size and a set of segment columns, the
rows to profile (filtered to the time range, with their window index and segment values)
are an Ibis expression compiled once (``Base``); each aggregate query groups those rows by
window × segment values (× bin) and only its small result comes back.

The segment columns are grouped all at once and rolled up afterwards (one pass over the
rows) while their combinations are few; otherwise each segment column is grouped on its
own, in one query (a union). Columnar engines read only the columns a query names, so a
query costs about one read of its column; the result size is windows × segments × bins,
whatever the number of rows.

The queries are SQL text built here, not Ibis expressions: Ibis' compiler spent longer on a
column's hundred-branch CASE than the engine spent running it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from watchkeeper.windows import EPOCH

ALL = "*"  # the segment column and value that stand for the whole traffic
NULL_SEGMENT = "(null)"
OTHER_SEGMENT = "(other)"

# Group by every segment column at once while their value combinations are at most this.
COMBINATIONS_CAP = 512

# (window start, model version, segment column, segment value)
Key = tuple[datetime, str, str, str]


class Engine(Protocol):
    """What profiling needs from the store."""

    def execute(self, expr: ir.Expr) -> pa.Table: ...

    def sql(self, query: str) -> pa.Table: ...

    def compile(self, expr: ir.Expr) -> str: ...

    def quote(self, name: str) -> str: ...

    def epoch_micros(self, ts: ir.TimestampValue) -> ir.IntegerValue: ...

    def arrow(self, data: pa.Table) -> AbstractContextManager[ir.Table]: ...

    def batches(self, expr: ir.Table, rows: int = 65_536) -> Iterator[pa.RecordBatch]: ...

    def scalar(self, expr: ir.Scalar) -> Any: ...


@dataclass(frozen=True)
class Source:
    """What to profile: a table and how to read its roles."""

    table: ir.Table
    timestamp: str | None  # None: the whole table is one window (a reference)
    version: str | ir.Value  # a column name, or a constant (ibis.literal)
    status: str | None = None
    segments: Mapping[str, Segment] = field(default_factory=dict)


@dataclass(frozen=True)
class Segment:
    """A segment column's values: the most frequent ones are kept, the rest are (other).
    ``complete`` when they are all the values there are (nothing needs mapping)."""

    values: tuple[str, ...]
    complete: bool = False


@dataclass(frozen=True)
class Windowing:
    size: timedelta
    since: datetime | None = None
    until: datetime | None = None
    starts: tuple[datetime, ...] | None = None  # only these windows (dirty ones)


@dataclass
class Parts:
    counts: np.ndarray[Any, Any]
    sums: dict[str, float]
    extremes: dict[str, float]  # the measures that are minima (lo...) and maxima (hi...)
    per_code: dict[str, np.ndarray[Any, Any]] = field(default_factory=dict)


def _reduction(measure: str) -> str:
    """How a measure combines across groups: lo... by min, hi... by max, the rest by sum."""
    return "min" if measure.startswith("lo") else "max" if measure.startswith("hi") else "sum"


@dataclass(frozen=True)
class Base:
    """The rows to profile as compiled SQL, and how their results are keyed.

    Constant keys (one window, one version) are not grouped by, since grouping by a
    constant still costs a hash per row; they are added to the results instead.
    """

    sql: str
    size: int  # window size in seconds; 0: the whole table is one window
    version: str | None  # the version when it is constant
    segments: tuple[str, ...]  # segment columns, as wk_s0, wk_s1, ... in the rows
    combined: bool  # group by all segment columns at once, then roll up
    quote: Callable[[str], str]

    @classmethod
    def of(
        cls,
        source: Source,
        columns: Sequence[str],
        windowing: Windowing | None,
        engine: Engine,
    ) -> Base:
        t = source.table
        constant = _constant(source.version)
        size = 0
        keep: dict[str, ir.Value] = {}
        if source.timestamp is not None and windowing is not None:
            ts = t[source.timestamp]
            size = max(int(windowing.size.total_seconds()), 1)
            since, until = windowing.since, windowing.until
            if windowing.starts:
                # A time range first, so the engine can skip what is outside it.
                first = min(windowing.starts)
                last = max(windowing.starts) + timedelta(seconds=size)
                since = first if since is None else max(since, first)
                until = last if until is None else min(until, last)
            if since is not None:
                t = t.filter(ts >= since)
            if until is not None:
                t = t.filter(ts < until)
            window = engine.epoch_micros(t[source.timestamp]) // (size * 1_000_000)
            t = t.mutate(wk_w=window)
            if windowing.starts is not None:
                wanted = [int((s - EPOCH).total_seconds()) // size for s in windowing.starts]
                t = t.filter(t.wk_w.isin(wanted))
            keep["wk_w"] = t.wk_w
        if constant is None:
            assert isinstance(source.version, str)
            keep["wk_v"] = t[source.version].cast("string")
        names = tuple(source.segments)
        combos = 1
        for i, name in enumerate(names):
            seg = source.segments[name]
            keep[f"wk_s{i}"] = segment_value(t, name, seg)
            combos *= len(seg.values) + (1 if seg.complete else 2)
        if source.status is not None:
            keep[source.status] = t[source.status]
        for name in columns:
            if name not in keep:
                keep[name] = t[name]
        projected = t.select(**keep) if keep else t.select(wk_one=ibis.literal(1))
        return cls(
            engine.compile(projected),
            size,
            constant,
            names,
            combos <= COMBINATIONS_CAP,
            engine.quote,
        )

    def group_keys(self) -> list[str]:
        return (["wk_w"] if self.size else []) + (["wk_v"] if self.version is None else [])

    def query(self, source: str, measures: Sequence[str], extra: Sequence[str] = ()) -> str:
        """Aggregate ``source`` by the keys: one GROUP BY, or one per segment set (UNION ALL)."""
        q = self.quote
        if self.combined:
            keys = [*self.group_keys(), *(f"wk_s{i}" for i in range(len(self.segments))), *extra]
            return _select(keys, measures, source, q)
        return self.query_per_set(lambda partition: source, measures, extra)

    def query_per_set(
        self,
        source: Callable[[Sequence[str]], str],
        measures: Sequence[str],
        extra: Sequence[str] = (),
    ) -> str:
        """Aggregate by the keys with one GROUP BY per segment set (the whole traffic, then
        each segment column), UNION ALL, whether or not the segments are ``combined``:
        for what does not roll up from finer groups, such as ranks. ``source(partition)``
        is the rows of a set, given the set's keys (quoted; none for a whole table's
        traffic), the partition its window functions run over. ``collect`` its result
        with ``per_set=True``."""
        q = self.quote
        parts = []
        for i in range(len(self.segments) + 1):
            keys = [*self.group_keys(), *extra]
            name = self.segments[i - 1] if i else ALL
            value = f"CAST({q(f'wk_s{i - 1}')} AS STRING)" if i else f"'{ALL}'"
            columns = [q(k) for k in keys] + [f"'{sql_text(name)}' AS wk_sc", f"{value} AS wk_sv"]
            group = [q(k) for k in keys] + ([q(f"wk_s{i - 1}")] if i else [])
            partition = [q(k) for k in self.group_keys()] + ([q(f"wk_s{i - 1}")] if i else [])
            by = f" GROUP BY {', '.join(group)}" if group else ""
            parts.append(f"SELECT {', '.join([*columns, *measures])} FROM {source(partition)}{by}")
        return " UNION ALL ".join(parts)

    def collect(
        self,
        result: pa.Table,
        extra: str | None = None,
        width: int = 1,
        per_code: Sequence[str] = (),
        per_set: bool = False,
    ) -> dict[Key, Parts]:
        """Results per (window, version, segment): counts per ``extra`` code, sums, min, max,
        and the ``per_code`` measures' sums per code too. ``per_set``: the result is
        ``query_per_set``'s, already one group per segment set (nothing to roll up)."""
        if result.num_rows == 0:
            return {}
        if self.combined and not per_set:
            frames = [self._rolled(result, None)] + [
                self._rolled(result, i) for i in range(len(self.segments))
            ]
            result = pa.concat_tables(frames)
        group = [*self.group_keys(), "wk_sc", "wk_sv"]
        codes, firsts = _group_codes(result, group)
        n_groups = len(firsts)
        counts = np.zeros((n_groups, width), dtype=np.int64)
        coded: dict[str, np.ndarray[Any, Any]] = {}
        if extra is not None:
            code = result[extra].to_numpy()
            np.add.at(counts, (codes, code), result["n"].to_numpy())
            for m in per_code:
                coded[m] = np.zeros((n_groups, width))
                np.add.at(coded[m], (codes, code), _floats(result[m]))
        measures = [c for c in result.column_names if not c.startswith("wk_")]
        sums: dict[str, np.ndarray[Any, Any]] = {}
        extremes: dict[str, np.ndarray[Any, Any]] = {}
        for m in measures:
            how = _reduction(m)
            if how == "sum":
                sums[m] = np.bincount(codes, weights=_floats(result[m]), minlength=n_groups)
                continue
            fill = np.inf if how == "min" else -np.inf
            acc = np.full(n_groups, fill)
            (np.minimum if how == "min" else np.maximum).at(acc, codes, _floats(result[m], fill))
            extremes[m] = np.where(np.isfinite(acc), acc, np.nan)
        rows = result.take(pa.array(firsts)).select(group).to_pylist()
        out: dict[Key, Parts] = {}
        for g, row in enumerate(rows):
            out[self.key(row)] = Parts(
                counts[g],
                {m: float(v[g]) for m, v in sums.items()},
                {m: float(v[g]) for m, v in extremes.items()},
                {m: v[g] for m, v in coded.items()},
            )
        return out

    def _rolled(self, result: pa.Table, segment: int | None) -> pa.Table:
        """One segment set's rows from the combined result (grouped again, in Arrow)."""
        keys = [*self.group_keys(), *([f"wk_s{segment}"] if segment is not None else [])]
        keys += [c for c in ("wk_bin",) if c in result.column_names]
        measures = [c for c in result.column_names if not c.startswith("wk_")]
        aggs = [(m, _reduction(m)) for m in measures]
        grouped = result.group_by(keys, use_threads=False).aggregate(aggs)
        grouped = grouped.rename_columns(
            [
                c.rsplit("_", 1)[0] if c in {f"{m}_{f}" for m, f in aggs} else c
                for c in grouped.column_names
            ]
        )
        n = grouped.num_rows
        name = ALL if segment is None else self.segments[segment]
        sv = grouped[f"wk_s{segment}"] if segment is not None else pa.array([ALL] * n)
        grouped = grouped.append_column("wk_sc", pa.array([name] * n)).append_column("wk_sv", sv)
        if segment is not None:
            grouped = grouped.drop([f"wk_s{segment}"])
        return grouped.select(sorted(grouped.column_names))

    def key(self, row: Mapping[str, Any]) -> Key:
        start = EPOCH + timedelta(seconds=int(row.get("wk_w") or 0) * self.size)
        version = self.version if self.version is not None else str(row["wk_v"])
        value = row["wk_sv"]
        return (start, version, str(row["wk_sc"]), NULL_SEGMENT if value is None else str(value))


def _select(
    keys: Sequence[str], measures: Sequence[str], source: str, q: Callable[[str], str]
) -> str:
    cols = ", ".join([*(q(k) for k in keys), *measures])
    group = f" GROUP BY {', '.join(q(k) for k in keys)}" if keys else ""
    return f"SELECT {cols} FROM {source}{group}"


def lead(keys: Sequence[str]) -> str:
    """Key columns at the head of a select list ("" when there are none)."""
    return "".join(f"{k}, " for k in keys)


def sql_text(text: str) -> str:
    return text.replace("'", "''")


def _floats(column: pa.ChunkedArray, fill: float = 0.0) -> np.ndarray[Any, Any]:
    return np.asarray(pc.fill_null(column.cast(pa.float64()), fill).to_numpy(), dtype=float)


def _group_codes(table: pa.Table, columns: Sequence[str]) -> tuple[np.ndarray[Any, Any], list[int]]:
    """A group number per row (by ``columns``) and each group's first row."""
    combined = np.zeros(table.num_rows, dtype=np.int64)
    for name in columns:
        encoded = pc.dictionary_encode(
            table[name].cast(pa.string()) if name != "wk_w" else table[name]
        ).combine_chunks()
        idx = np.asarray(pc.fill_null(encoded.indices, -1).to_numpy(), dtype=np.int64) + 1
        combined = combined * (len(encoded.dictionary) + 1) + idx
    _, firsts, codes = np.unique(combined, return_index=True, return_inverse=True)
    return codes.ravel(), [int(i) for i in firsts]


def _constant(version: str | ir.Value) -> str | None:
    if isinstance(version, str):
        return None
    value = getattr(version.op(), "value", None)
    return None if value is None else str(value)


def segment_value(t: ir.Table, seg_col: str, seg: Segment) -> ir.Value:
    """The segment value of each row. With every value kept, the column itself (nulls are
    named afterwards); else the value if kept, "(other)" if not, "(null)" for nulls."""
    text = t[seg_col].cast("string")
    if seg.complete:
        return text
    kept = ibis.ifelse(text.isin(list(seg.values)), text, ibis.literal(OTHER_SEGMENT))
    return ibis.ifelse(text.isnull(), ibis.literal(NULL_SEGMENT), kept)


def bin_sql(x: str, edges: Sequence[float]) -> str:
    """SQL for the bin of ``x``: 0 below the first edge, 1..k inside (the last bin closed),
    k+1 above the last edge; a binary search, so about log2(k) comparisons a value."""
    k = len(edges) - 1

    def search(lo: int, hi: int) -> str:
        # 1 + the number of interior edges edges[lo..hi] that are <= x
        if lo > hi:
            return str(lo)
        mid = (lo + hi) // 2
        return (
            f"CASE WHEN {x} < {sql_number(edges[mid])} THEN {search(lo, mid - 1)} "
            f"ELSE {search(mid + 1, hi)} END"
        )

    return (
        f"CASE WHEN {x} < {sql_number(edges[0])} THEN 0 "
        f"WHEN {x} > {sql_number(edges[-1])} THEN {k + 1} "
        f"ELSE {search(1, k - 1)} END"
    )


def sql_number(value: float) -> str:
    text = repr(float(value))
    return f"CAST({text} AS DOUBLE)" if "e" in text or "inf" in text else text


__all__ = [
    "ALL",
    "COMBINATIONS_CAP",
    "NULL_SEGMENT",
    "OTHER_SEGMENT",
    "Base",
    "Engine",
    "Key",
    "Parts",
    "Segment",
    "Source",
    "Windowing",
    "bin_sql",
    "lead",
    "segment_value",
    "sql_number",
    "sql_text",
]
