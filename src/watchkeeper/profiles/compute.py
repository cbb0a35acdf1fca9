"""The queries that build profiles, pushed down to the engine.

For a table of events (or reference rows), a window size and a set of segment columns, the
engine runs one query for the row counts and one query per column, and only their small
results come back:

- the rows to profile (filtered to the time range, with their window index and segment
  values) are an Ibis expression, compiled once;
- each column's query groups those rows by window × segment values × bin and counts them
  (numeric columns also sum, sum squares, and take min and max). The bin is found in the
  engine by a binary search over the reference's edges written as nested CASEs, or for a
  categorical column by a join with its vocabulary.

The segment columns are grouped all at once and rolled up afterwards (one pass over the
rows) while their combinations are few; otherwise each segment column is grouped on its
own, in one query (a union). Columnar engines read only the columns a query names, so a
query costs about one read of its column; the result size is windows × segments × bins,
whatever the number of rows.

The per-column queries are SQL text built here, not Ibis expressions: Ibis' compiler spent
longer on a column's hundred-branch CASE than the engine spent running it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from watchkeeper.profiles.binning import Binning
from watchkeeper.profiles.types import ColumnProfile, Profile
from watchkeeper.stats.multiclass import MulticlassCounts
from watchkeeper.stats.performance import EPS, SCORE_BINS, BinaryCounts
from watchkeeper.stats.ranking import RankingSums
from watchkeeper.stats.regression import MAPE_FLOOR, RegressionSums
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


def compute_profiles(
    source: Source,
    binnings: Sequence[Binning],
    windowing: Windowing | None,
    engine: Engine,
    progress: Callable[[int], None] | None = None,
) -> dict[Key, Profile]:
    """Profiles of every window × version × segment of ``source``, computed in the engine.

    ``progress`` is called with 1 after each query (one for the row counts, one per column).
    """
    base = _Base.of(source, [b.name for b in binnings], windowing, engine)
    q = engine.quote
    measures = ["COUNT(*) AS rows"]
    if source.status is not None:
        s = q(source.status)
        measures.append(
            f"SUM(CASE WHEN {s} IS NOT NULL AND LOWER({s}) <> 'ok' THEN 1 ELSE 0 END) AS errors"
        )
    # The moments of every numeric column in the same scan: one query, not one per column.
    numeric = [b for b in binnings if b.kind == "numeric"]
    for i, b in enumerate(numeric):
        x = f"CAST({q(b.name)} AS DOUBLE)"
        measures += [
            f"SUM({x}) AS s__{i}",
            f"SUM({x} * {x}) AS q__{i}",
            f"MIN({x}) AS lo__{i}",
            f"MAX({x}) AS hi__{i}",
        ]
    totals = base.collect(engine.sql(base.query(f"({base.sql}) AS wk_t", measures)))
    if progress is not None:
        progress(1)
    hists: dict[str, dict[Key, _Parts]] = {}
    for b in binnings:
        hists[b.name] = _histogram(base, b, engine)
        if progress is not None:
            progress(1)
    out: dict[Key, Profile] = {}
    index = {b.name: i for i, b in enumerate(numeric)}
    for key, parts in totals.items():
        rows = int(parts.sums["rows"])
        columns = {}
        for b in binnings:
            h = hists[b.name].get(key)
            bins = h.counts if h is not None else np.zeros(b.n_bins, dtype=np.int64)
            profile = ColumnProfile(b.kind, rows, rows - int(bins.sum()), bins)
            if b.name in index:
                j = index[b.name]
                profile = ColumnProfile(
                    b.kind,
                    profile.count,
                    profile.missing,
                    bins,
                    parts.sums[f"s__{j}"],
                    parts.sums[f"q__{j}"],
                    parts.extremes[f"lo__{j}"],
                    parts.extremes[f"hi__{j}"],
                )
            columns[b.name] = profile
        out[key] = Profile(rows, int(parts.sums.get("errors", 0)), columns)
    return out


@dataclass
class _Parts:
    counts: np.ndarray[Any, Any]
    sums: dict[str, float]
    extremes: dict[str, float]  # the measures that are minima (lo...) and maxima (hi...)
    per_code: dict[str, np.ndarray[Any, Any]] = field(default_factory=dict)


def _reduction(measure: str) -> str:
    """How a measure combines across groups: lo... by min, hi... by max, the rest by sum."""
    return "min" if measure.startswith("lo") else "max" if measure.startswith("hi") else "sum"


@dataclass(frozen=True)
class _Base:
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
    ) -> _Base:
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
        parts = []
        for i in range(len(self.segments) + 1):
            keys = [*self.group_keys(), *extra]
            name = self.segments[i - 1] if i else ALL
            value = f"CAST({q(f'wk_s{i - 1}')} AS STRING)" if i else f"'{ALL}'"
            columns = [q(k) for k in keys] + [f"'{_sql_text(name)}' AS wk_sc", f"{value} AS wk_sv"]
            group = [q(k) for k in keys] + ([q(f"wk_s{i - 1}")] if i else [])
            by = f" GROUP BY {', '.join(group)}" if group else ""
            parts.append(f"SELECT {', '.join([*columns, *measures])} FROM {source}{by}")
        return " UNION ALL ".join(parts)

    def collect(
        self,
        result: pa.Table,
        extra: str | None = None,
        width: int = 1,
        per_code: Sequence[str] = (),
    ) -> dict[Key, _Parts]:
        """Results per (window, version, segment): counts per ``extra`` code, sums, min, max,
        and the ``per_code`` measures' sums per code too."""
        if result.num_rows == 0:
            return {}
        if self.combined:
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
        out: dict[Key, _Parts] = {}
        for g, row in enumerate(rows):
            out[self.key(row)] = _Parts(
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


def _lead(keys: Sequence[str]) -> str:
    """Key columns at the head of a select list ("" when there are none)."""
    return "".join(f"{k}, " for k in keys)


def _sql_text(text: str) -> str:
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


def _histogram(base: _Base, b: Binning, engine: Engine) -> dict[Key, _Parts]:
    q = engine.quote
    x = q(b.name)
    if b.kind == "numeric":
        value = f"CAST({x} AS DOUBLE)"
        measures = ["COUNT(*) AS n"]
        keys = [q(k) for k in base.group_keys()] + [
            q(f"wk_s{i}") for i in range(len(base.segments))
        ]
        # The value is projected first and binned after, so the engine casts it once.
        values = f"SELECT {', '.join([*keys, f'{value} AS wk_x'])} FROM ({base.sql}) AS wk_t"
        binned = [*keys, f"{bin_sql('wk_x', b.edges)} AS wk_bin"]
        inner = (
            f"(SELECT {', '.join(binned)} FROM ({values} WHERE {x} IS NOT NULL) AS wk_v) AS wk_b"
        )
        result = engine.sql(base.query(inner, measures, ["wk_bin"]))
        return base.collect(result, "wk_bin", b.n_bins)
    vocab = pa.table(
        {
            "wk_cat": pa.array([*b.categories, *b.known], pa.string()),
            "wk_code": pa.array(
                [*range(len(b.categories)), *([len(b.categories)] * len(b.known))], pa.int64()
            ),
        }
    )
    # a known category that is in the vocabulary appears twice; keep its vocabulary code
    vocab = (
        vocab.group_by("wk_cat")
        .aggregate([("wk_code", "min")])
        .rename_columns(["wk_cat", "wk_code"])
    )
    unseen = len(b.categories) + 1
    with engine.arrow(vocab) as mapping:
        name = q(mapping.get_name())
        keys = [f"wk_t.{q(k)}" for k in base.group_keys()] + [
            f"wk_t.{q(f'wk_s{i}')}" for i in range(len(base.segments))
        ]
        inner = (
            f"(SELECT {', '.join([*keys, f'COALESCE(wk_m.wk_code, {unseen}) AS wk_bin'])} "
            f"FROM ({base.sql}) AS wk_t LEFT JOIN {name} AS wk_m "
            f"ON CAST(wk_t.{x} AS STRING) = wk_m.wk_cat WHERE wk_t.{x} IS NOT NULL) AS wk_b"
        )
        result = engine.sql(base.query(inner, ["COUNT(*) AS n"], ["wk_bin"]))
    return base.collect(result, "wk_bin", b.n_bins)


def compute_score_histogram(
    source: Source,
    score: str,
    windowing: Windowing | None,
    engine: Engine,
    predicted: tuple[str, str] | None = None,
) -> dict[Key, np.ndarray[Any, Any]]:
    """Per window × version × segment, events per equal-width score bin on [0, 1] (labelled
    or not): what estimating performance without labels starts from. With ``predicted``
    (a prediction column and a class), twice the bins: first the events predicted as another
    class, then those predicted as that class (one class against the rest)."""
    base = _Base.of(source, [score, *(predicted[:1] if predicted else [])], windowing, engine)
    q = engine.quote
    s = f"CAST({q(score)} AS DOUBLE)"
    keys = [q(k) for k in base.group_keys()] + [q(f"wk_s{i}") for i in range(len(base.segments))]
    code = f"LEAST(GREATEST(CAST(FLOOR({s} * {SCORE_BINS}) AS BIGINT), 0), {SCORE_BINS - 1})"
    bins = SCORE_BINS
    if predicted is not None:
        column, cls = predicted
        flag = f"CASE WHEN CAST({q(column)} AS STRING) = '{_sql_text(cls)}' THEN 1 ELSE 0 END"
        code = f"{flag} * {SCORE_BINS} + {code}"
        bins = 2 * SCORE_BINS
    inner = (
        f"(SELECT {', '.join([*keys, f'{code} AS wk_bin'])} FROM ({base.sql}) AS wk_t "
        f"WHERE {q(score)} IS NOT NULL) AS wk_b"
    )
    result = engine.sql(base.query(inner, ["COUNT(*) AS n"], ["wk_bin"]))
    return {k: p.counts for k, p in base.collect(result, "wk_bin", bins).items()}


def compute_binary_counts(
    source: Source,
    score: str,
    label: str,
    predicted: str | None,
    threshold: float,
    windowing: Windowing | None,
    engine: Engine,
) -> dict[Key, BinaryCounts]:
    """Per window × version × segment, the counts binary-classification metrics need:
    events per score bin × label × prediction (with their score sums), and the sums behind
    log loss and the Brier score. ``source`` holds labelled events only."""
    columns = [score, label, *([predicted] if predicted else [])]
    base = _Base.of(source, columns, windowing, engine)
    q = engine.quote
    bins = SCORE_BINS
    s, y = f"CAST({q(score)} AS DOUBLE)", f"CAST({q(label)} AS BIGINT)"
    yhat = (
        f"CAST({q(predicted)} AS BIGINT)"
        if predicted
        else f"CASE WHEN {s} >= {_num(threshold)} THEN 1 ELSE 0 END"
    )
    clipped = f"GREATEST(LEAST({s}, {1 - EPS!r}), {EPS!r})"
    keys = [q(k) for k in base.group_keys()] + [q(f"wk_s{i}") for i in range(len(base.segments))]
    bin_code = f"LEAST(GREATEST(CAST(FLOOR({s} * {bins}) AS BIGINT), 0), {bins - 1})"
    inner = (
        f"(SELECT {_lead(keys)}({bin_code}) * 4 + {y} * 2 + {yhat} AS wk_bin, "
        f"{s} AS wk_s, -({y} * LN({clipped}) + (1 - {y}) * LN(1 - {clipped})) AS wk_ll, "
        f"({s} - {y}) * ({s} - {y}) AS wk_br "
        f"FROM ({base.sql}) AS wk_t WHERE {q(score)} IS NOT NULL AND {q(label)} IS NOT NULL) "
        "AS wk_b"
    )
    measures = [
        "COUNT(*) AS n",
        "SUM(wk_s) AS ss",
        "SUM(wk_ll) AS ll",
        "SUM(wk_ll * wk_ll) AS llq",
        "SUM(wk_br) AS br",
        "SUM(wk_br * wk_br) AS brq",
    ]
    result = engine.sql(base.query(inner, measures, ["wk_bin"]))
    out: dict[Key, BinaryCounts] = {}
    for key, parts in base.collect(result, "wk_bin", bins * 4, per_code=["ss"]).items():
        cube = parts.counts.reshape(bins, 2, 2)  # score bin, label, prediction
        out[key] = BinaryCounts(
            cube[:, 1, :].sum(axis=1),
            cube[:, 0, :].sum(axis=1),
            parts.per_code["ss"].reshape(bins, 4).sum(axis=1),
            int(cube[:, 1, 1].sum()),
            int(cube[:, 0, 1].sum()),
            int(cube[:, 0, 0].sum()),
            int(cube[:, 1, 0].sum()),
            parts.sums["ll"],
            parts.sums["llq"],
            parts.sums["br"],
            parts.sums["brq"],
        )
    return out


def compute_regression_sums(
    source: Source,
    prediction: str,
    label: str,
    windowing: Windowing | None,
    engine: Engine,
) -> dict[Key, RegressionSums]:
    """Per window × version × segment, the residual moments regression metrics need."""
    base = _Base.of(source, [prediction, label], windowing, engine)
    q = engine.quote
    p, y = f"CAST({q(prediction)} AS DOUBLE)", f"CAST({q(label)} AS DOUBLE)"
    keys = [q(k) for k in base.group_keys()] + [q(f"wk_s{i}") for i in range(len(base.segments))]
    away = f"ABS(wk_y) >= {MAPE_FLOOR!r}"
    inner = (
        f"(SELECT {_lead(keys)}{p} - {y} AS wk_e, {y} AS wk_y FROM ({base.sql}) AS wk_t "
        f"WHERE {q(prediction)} IS NOT NULL AND {q(label)} IS NOT NULL) AS wk_b"
    )
    ape = f"CASE WHEN {away} THEN ABS(wk_e) / ABS(wk_y) END"
    measures = [
        "COUNT(*) AS rows",
        "SUM(wk_e) AS e1",
        "SUM(wk_e * wk_e) AS e2",
        "SUM(wk_e * wk_e * wk_e * wk_e) AS e4",
        "SUM(ABS(wk_e)) AS ae",
        "SUM(wk_y) AS y1",
        "SUM(wk_y * wk_y) AS y2",
        f"SUM({ape}) AS ape1",
        f"SUM(({ape}) * ({ape})) AS ape2",
        f"SUM(CASE WHEN {away} THEN 1 ELSE 0 END) AS apen",
    ]
    out: dict[Key, RegressionSums] = {}
    for key, parts in base.collect(engine.sql(base.query(inner, measures))).items():
        m = parts.sums
        out[key] = RegressionSums(
            int(m["rows"]),
            m["e1"],
            m["e2"],
            m["e4"],
            m["ae"],
            m["y1"],
            m["y2"],
            m["ape1"],
            m["ape2"],
            int(m["apen"]),
        )
    return out


def compute_multiclass_counts(
    source: Source,
    prediction: str,
    label: str,
    classes: Sequence[str],
    scores: Mapping[str, str] | None,
    windowing: Windowing | None,
    engine: Engine,
) -> dict[Key, MulticlassCounts]:
    """Per window × version × segment, the confusion matrix over ``classes`` (and the sums
    behind log loss when every class has a score column)."""
    q = engine.quote
    k = len(classes)
    with_scores = bool(scores) and all(c in (scores or {}) for c in classes)
    columns = [prediction, label, *((scores or {}).values() if with_scores else ())]
    base = _Base.of(source, columns, windowing, engine)

    def index(column: str) -> str:
        whens = " ".join(
            f"WHEN CAST({q(column)} AS STRING) = '{_sql_text(c)}' THEN {i}"
            for i, c in enumerate(classes)
        )
        return f"CASE {whens} END"

    keys = [q(g) for g in base.group_keys()] + [q(f"wk_s{i}") for i in range(len(base.segments))]
    extra = ""
    measures = ["COUNT(*) AS n"]
    if with_scores:
        assert scores is not None
        label_text = f"CAST({q(label)} AS STRING)"
        whens = " ".join(
            f"WHEN {label_text} = '{_sql_text(c)}' THEN CAST({q(scores[c])} AS DOUBLE)"
            for c in classes
        )
        true_score = f"CASE {whens} END"
        clipped = f"GREATEST(LEAST({true_score}, {1 - EPS!r}), {EPS!r})"
        extra = f", -LN({clipped}) AS wk_ll"
        measures += ["SUM(wk_ll) AS ll", "SUM(wk_ll * wk_ll) AS llq", "COUNT(wk_ll) AS lln"]
    inner = (
        f"(SELECT {_lead(keys)}{index(label)} * {k} + {index(prediction)} AS wk_bin{extra} "
        f"FROM ({base.sql}) AS wk_t WHERE {q(prediction)} IS NOT NULL AND {q(label)} IS NOT NULL) "
        "AS wk_b"
    )
    out: dict[Key, MulticlassCounts] = {}
    result = engine.sql(base.query(inner, measures, ["wk_bin"]))
    for key, parts in base.collect(result, "wk_bin", k * k).items():
        out[key] = MulticlassCounts(
            tuple(classes),
            parts.counts.reshape(k, k),
            parts.sums.get("ll", 0.0),
            parts.sums.get("llq", 0.0),
            int(parts.sums.get("lln", 0)),
        )
    return out


def compute_ranking_sums(
    source: Source,
    query_id: str,
    label: str,
    position: str | None,
    score: str | None,
    k: int,
    windowing: Windowing | None,
    engine: Engine,
) -> dict[Key, RankingSums]:
    """Per window × version × segment, per-query ranking quality summed over queries: each
    query's hits in the top ``k``, its DCG over its ideal DCG, and its first relevant rank."""
    q = engine.quote
    columns = [query_id, label, *(c for c in (position, score) if c)]
    base = _Base.of(source, columns, windowing, engine)
    keys = [q(g) for g in base.group_keys()] + [q(f"wk_s{i}") for i in range(len(base.segments))]
    part = ", ".join([*keys, q(query_id)])
    by_score = f"CAST({q(score or '')} AS DOUBLE) DESC"
    rank = (
        f"CAST({q(position)} AS BIGINT)"
        if position
        else f"ROW_NUMBER() OVER (PARTITION BY {part} ORDER BY {by_score})"
    )
    y = f"CAST({q(label)} AS DOUBLE)"
    ranked = (
        f"SELECT {_lead(keys)}{q(query_id)} AS wk_q, {rank} AS wk_r, {y} AS wk_y, "
        f"ROW_NUMBER() OVER (PARTITION BY {part} ORDER BY {y} DESC) AS wk_i "
        f"FROM ({base.sql}) AS wk_t WHERE {q(label)} IS NOT NULL AND {q(query_id)} IS NOT NULL"
    )
    per_query = (
        f"SELECT {_lead(keys)}wk_q, COUNT(*) AS wk_n, "
        "SUM(CASE WHEN wk_y > 0 THEN 1 ELSE 0 END) AS wk_c, "
        f"SUM(CASE WHEN wk_r <= {k} AND wk_y > 0 THEN 1 ELSE 0 END) AS wk_hits, "
        f"SUM(CASE WHEN wk_r <= {k} THEN wk_y / LOG2(wk_r + 1) ELSE 0 END) AS wk_dcg, "
        f"SUM(CASE WHEN wk_i <= {k} THEN wk_y / LOG2(wk_i + 1) ELSE 0 END) AS wk_idcg, "
        "MIN(CASE WHEN wk_y > 0 THEN wk_r END) AS wk_first "
        f"FROM ({ranked}) AS wk_rk GROUP BY {', '.join([*keys, 'wk_q'])}"
    )
    precision = f"CAST(wk_hits AS DOUBLE) / {k}"
    ndcg = "CASE WHEN wk_idcg > 0 THEN wk_dcg / wk_idcg END"
    rr = "CASE WHEN wk_first IS NOT NULL THEN 1.0 / wk_first ELSE 0.0 END"
    measures = [
        "COUNT(*) AS rows",
        "SUM(wk_n) AS imp",
        "SUM(wk_c) AS clicks",
        f"SUM({precision}) AS p1",
        f"SUM(({precision}) * ({precision})) AS p2",
        f"SUM({ndcg}) AS g1",
        f"SUM(({ndcg}) * ({ndcg})) AS g2",
        "SUM(CASE WHEN wk_idcg > 0 THEN 1 ELSE 0 END) AS gn",
        f"SUM({rr}) AS r1",
        f"SUM(({rr}) * ({rr})) AS r2",
    ]
    out: dict[Key, RankingSums] = {}
    result = engine.sql(base.query(f"({per_query}) AS wk_pq", measures))
    for key, parts in base.collect(result).items():
        m = parts.sums
        out[key] = RankingSums(
            int(m["rows"]),
            int(m["imp"]),
            int(m["clicks"]),
            m["p1"],
            m["p2"],
            m["g1"],
            m["g2"],
            int(m["gn"]),
            m["r1"],
            m["r2"],
        )
    return out


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
            f"CASE WHEN {x} < {_num(edges[mid])} THEN {search(lo, mid - 1)} "
            f"ELSE {search(mid + 1, hi)} END"
        )

    return (
        f"CASE WHEN {x} < {_num(edges[0])} THEN 0 WHEN {x} > {_num(edges[-1])} THEN {k + 1} "
        f"ELSE {search(1, k - 1)} END"
    )


def _num(value: float) -> str:
    text = repr(float(value))
    return f"CAST({text} AS DOUBLE)" if "e" in text or "inf" in text else text


__all__ = [
    "ALL",
    "Engine",
    "Key",
    "Segment",
    "Source",
    "Windowing",
    "bin_sql",
    "compute_binary_counts",
    "compute_multiclass_counts",
    "compute_profiles",
    "compute_ranking_sums",
    "compute_regression_sums",
    "compute_score_histogram",
]
