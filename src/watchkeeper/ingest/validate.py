"""Validate a batch of raw rows against a TableSpec, column at a time, in Arrow.

Types are coerced where no information is lost (an integer into a numeric feature, the
string "3.5" into a float, 0/1 into a boolean, a zoned timestamp into UTC). A value that
cannot be coerced, a null where one is required, a value outside its range or set: the row
is quarantined with a reason code and the raw values kept. NaN is stored as null, so every
engine counts it as missing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from watchkeeper.schema import ColumnSpec, DType, TableSpec
from watchkeeper.store.engine import ARROW_TYPES

# Reason codes, in the order that decides a row's primary reason.
MISSING_COLUMN = "missing_column"
NULL_IN_REQUIRED = "null_in_required"
UNPARSEABLE_TIMESTAMP = "unparseable_timestamp"
TIMESTAMP_OUT_OF_RANGE = "timestamp_out_of_range"
BAD_TYPE = "bad_type"
NON_FINITE = "non_finite_number"
OUT_OF_RANGE = "out_of_range"
UNKNOWN_CATEGORY = "unknown_category"
DUPLICATE_ID = "duplicate_id"
UNPARSEABLE_ROW = "unparseable_row"
REASONS = (
    UNPARSEABLE_ROW,
    MISSING_COLUMN,
    NULL_IN_REQUIRED,
    UNPARSEABLE_TIMESTAMP,
    TIMESTAMP_OUT_OF_RANGE,
    BAD_TYPE,
    NON_FINITE,
    OUT_OF_RANGE,
    UNKNOWN_CATEGORY,
    DUPLICATE_ID,
)
_PRIORITY = {reason: i for i, reason in enumerate(REASONS)}

_NUMBER = r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$|^\s*[+-]?(nan|NaN|inf|Infinity)\s*$"
_ISO = (
    r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?"
    r"\s*(Z|z|[+-]\d{2}(:?\d{2})?)?$"
)
_ZONED = r"(Z|z|[T ]\d{2}:\d{2}.*[+-]\d{2}(:?\d{2})?)$"  # a date's own "-01" is no zone
_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")


@dataclass
class Problems:
    """Per-row problems of one batch: a reason and a message per (row, column)."""

    size: int
    rows: dict[int, list[tuple[str, str]]] = field(default_factory=dict)

    def add(self, mask: np.ndarray[Any, np.dtype[np.bool_]], reason: str, message: str) -> None:
        for i in np.flatnonzero(mask):
            self.rows.setdefault(int(i), []).append((reason, message))

    def add_all(self, reason: str, message: str) -> None:
        self.add(np.ones(self.size, dtype=bool), reason, message)

    def bad_mask(self) -> np.ndarray[Any, np.dtype[np.bool_]]:
        mask = np.zeros(self.size, dtype=bool)
        if self.rows:
            mask[list(self.rows)] = True
        return mask

    def primary(self, row: int) -> tuple[str, str]:
        found = self.rows[row]
        reason = min((r for r, _ in found), key=_PRIORITY.__getitem__)
        return reason, "; ".join(m for _, m in found)


@dataclass
class Validated:
    good: pa.Table  # stored columns, typed, only the good rows
    good_rows: np.ndarray[Any, np.dtype[np.int64]]  # their positions in the input batch
    problems: Problems
    missing_columns: tuple[str, ...]  # optional columns absent from the input, filled with nulls
    unexpected_columns: tuple[str, ...]  # input columns the schema does not declare
    absent_required: tuple[str, ...] = ()  # required columns absent: every row quarantined


# A failed request (status not ok) has no model output: its missing score or prediction is
# what failing means, not bad data. It is stored and counted as an error.
OUTPUT_ROLES = ("prediction", "score")


def failed_requests(batch: pa.RecordBatch | pa.Table, spec: TableSpec) -> np.ndarray[Any, Any]:
    """The rows whose logged status says the request failed (not ok)."""
    status = next((c for c in spec.columns if c.role == "status"), None)
    if status is None or status.input_name not in batch.schema.names:
        return np.zeros(batch.num_rows, dtype=bool)
    raw = batch.column(status.input_name)
    text = pc.utf8_lower(pc.cast(raw, pa.string()))
    return _mask(pc.and_(pc.is_valid(text), pc.not_equal(text, "ok")))


def validate(
    batch: pa.RecordBatch | pa.Table,
    spec: TableSpec,
    times: tuple[datetime, datetime] | None = None,
) -> Validated:
    """Check and coerce ``batch``; ``times`` bounds every timestamp (earliest, latest)."""
    n = batch.num_rows
    problems = Problems(n)
    present = set(batch.schema.names)
    failed = failed_requests(batch, spec)
    arrays: dict[str, pa.Array] = {}
    missing: list[str] = []
    absent: list[str] = []
    for col in spec.columns:
        source = col.input_name
        if source not in present:
            if col.must_exist:
                problems.add_all(MISSING_COLUMN, f"{source}: column is missing")
                absent.append(source)
            elif not source.startswith("wk_"):
                missing.append(source)
            arrays[col.name] = pa.nulls(n, ARROW_TYPES[col.dtype])
            continue
        raw = batch.column(source)
        if isinstance(raw, pa.ChunkedArray):
            raw = raw.combine_chunks()
        output = col.role in OUTPUT_ROLES or col.role.startswith("score:")
        arrays[col.name] = _check_column(raw, col, problems, failed if output else None, times)
    declared = {c.input_name for c in spec.columns}
    unexpected = tuple(name for name in batch.schema.names if name not in declared)

    bad = problems.bad_mask()
    good_rows = np.flatnonzero(~bad).astype(np.int64)
    table = pa.table(arrays)
    if bad.any():
        table = table.filter(pa.array(~bad))
    return Validated(table, good_rows, problems, tuple(missing), unexpected, tuple(absent))


def raw_rows(batch: pa.RecordBatch | pa.Table, rows: list[int]) -> list[str]:
    """The raw values of some rows as JSON objects, for the quarantine."""
    if not rows:
        return []
    taken = batch.take(pa.array(rows, type=pa.int64())).to_pylist()
    return [json.dumps(r, default=_json_default, sort_keys=True) for r in taken]


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


# ---------------------------------------------------------------------------------------
# per column


def _mask(array: pa.Array) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """A boolean Arrow array (nulls false) as numpy."""
    return np.asarray(pc.fill_null(array, False).to_numpy(zero_copy_only=False), dtype=bool)


def _check_column(
    raw: pa.Array,
    col: ColumnSpec,
    problems: Problems,
    exempt: np.ndarray[Any, Any] | None = None,
    times: tuple[datetime, datetime] | None = None,
) -> pa.Array:
    """Coerce a column and record its problems; ``exempt`` rows may be null where it is
    required (failed requests' outputs)."""
    name = col.input_name
    values, failed = coerce(raw, col.dtype)
    if col.dtype == "timestamp":
        problems.add(failed, UNPARSEABLE_TIMESTAMP, f"{name}: not an ISO 8601 time")
        if times is not None:
            earliest, latest = (pa.scalar(t, values.type) for t in times)
            outside = pc.or_(pc.less(values, earliest), pc.greater(values, latest))
            problems.add(
                _mask(outside),
                TIMESTAMP_OUT_OF_RANGE,
                f"{name}: outside the accepted times [{times[0]:%Y-%m-%d %H:%M}, "
                f"{times[1]:%Y-%m-%d %H:%M}] UTC (the model's times: setting)",
            )
    else:
        problems.add(failed, BAD_TYPE, f"{name}: not {_A[col.dtype]}")
    if col.dtype == "float64":
        values = pc.if_else(pc.is_nan(values), pa.scalar(None, pa.float64()), values)
        # Stored, an infinity would turn a window's mean and spread into null.
        infinite = _mask(pc.is_inf(values))
        if infinite.any():
            problems.add(infinite, NON_FINITE, f"{name}: not a finite number")
            values = pc.if_else(pc.is_inf(values), pa.scalar(None, pa.float64()), values)
            failed = failed | infinite
    nulls = _mask(values.is_null()) & ~failed
    required = nulls & ~exempt if exempt is not None else nulls
    if col.required and required.any():
        problems.add(required, NULL_IN_REQUIRED, f"{name}: missing value")
    if col.low is not None or col.high is not None:
        outside = pa.scalar(False)
        if col.low is not None:
            outside = pc.or_(outside, pc.less(values, pa.scalar(col.low).cast(values.type)))
        if col.high is not None:
            outside = pc.or_(outside, pc.greater(values, pa.scalar(col.high).cast(values.type)))
        bounds = f"[{_fmt(col.low)}, {_fmt(col.high)}]"
        problems.add(_mask(outside), OUT_OF_RANGE, f"{name}: outside {bounds}")
    if col.binary:
        problems.add(
            _mask(pc.invert(pc.is_in(values, pa.array([0, 1], pa.int64())))) & ~nulls & ~failed,
            UNKNOWN_CATEGORY,
            f"{name}: must be 0 or 1",
        )
    if col.values is not None:
        allowed = pa.array(sorted(col.values), pa.string())
        unknown = _mask(pc.invert(pc.is_in(values, allowed))) & ~nulls & ~failed
        problems.add(unknown, UNKNOWN_CATEGORY, f"{name}: not one of the declared values")
    return values


def _fmt(x: float | None) -> str:
    return "-inf" if x is None else f"{x:g}"


_A = {
    "string": "text",
    "float64": "a number",
    "int64": "a whole number",
    "boolean": "true or false",
    "timestamp": "a time",
}

Coerced = tuple[pa.Array, np.ndarray[Any, np.dtype[np.bool_]]]


def _none_failed(n: int) -> np.ndarray[Any, np.dtype[np.bool_]]:
    return np.zeros(n, dtype=bool)


def _all_failed(raw: pa.Array, target: pa.DataType) -> Coerced:
    return pa.nulls(len(raw), target), _mask(raw.is_valid())


def _strings(raw: pa.Array) -> pa.Array:
    if pa.types.is_dictionary(raw.type):
        raw = raw.cast(raw.type.value_type)
    if pa.types.is_large_string(raw.type) or pa.types.is_string_view(raw.type):
        raw = raw.cast(pa.string())
    return raw


def _blank_to_null(raw: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(pc.utf8_trim_whitespace(raw), ""), pa.scalar(None, raw.type), raw)


def _to_float(raw: pa.Array) -> Coerced:
    t = raw.type
    if pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_decimal(t):
        return raw.cast(pa.float64(), safe=False), _none_failed(len(raw))
    if pa.types.is_boolean(t):
        return raw.cast(pa.float64()), _none_failed(len(raw))
    if pa.types.is_string(t):
        raw = _blank_to_null(raw)
        ok = pc.match_substring_regex(raw, _NUMBER)
        failed = _mask(pc.invert(ok))
        cleaned = pc.utf8_trim_whitespace(pc.if_else(ok, raw, pa.scalar(None, pa.string())))
        values, unparsed = _cast_or_each(cleaned, pa.float64())
        return values, failed | unparsed
    return _all_failed(raw, pa.float64())


def _to_int(raw: pa.Array) -> Coerced:
    t = raw.type
    n = len(raw)
    if pa.types.is_integer(t) or pa.types.is_boolean(t):
        return raw.cast(pa.int64(), safe=False), _none_failed(n)
    if pa.types.is_string(t):
        lowered = pc.utf8_lower(pc.utf8_trim_whitespace(_blank_to_null(raw)))
        as_bool = pc.if_else(
            pc.is_in(lowered, pa.array(["true", "false"])), pc.equal(lowered, "true"), None
        )
        numbers, failed = _to_float(lowered)
        numbers = pc.if_else(as_bool.is_valid(), as_bool.cast(pa.float64()), numbers)
        failed = failed & ~_mask(as_bool.is_valid())
        return _integral(numbers, failed)
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return _integral(raw.cast(pa.float64(), safe=False), _none_failed(n))
    return _all_failed(raw, pa.int64())


def _integral(values: pa.Array, failed: np.ndarray[Any, np.dtype[np.bool_]]) -> Coerced:
    whole = pc.equal(pc.floor(values), values)
    lossy = _mask(pc.invert(whole)) & _mask(values.is_valid())
    kept = pc.if_else(whole, values, pa.scalar(None, pa.float64()))
    return kept.cast(pa.int64(), safe=False), failed | lossy


def _to_bool(raw: pa.Array) -> Coerced:
    t = raw.type
    n = len(raw)
    if pa.types.is_boolean(t):
        return raw, _none_failed(n)
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        ok = pc.is_in(raw, pa.array([0, 1]).cast(t))
        failed = _mask(pc.invert(ok))
        return pc.if_else(ok, pc.not_equal(raw, pa.scalar(0).cast(t)), None), failed
    if pa.types.is_string(t):
        lowered = pc.utf8_lower(pc.utf8_trim_whitespace(_blank_to_null(raw)))
        true = pc.is_in(lowered, pa.array(list(_TRUE)))
        false = pc.is_in(lowered, pa.array(list(_FALSE)))
        ok = pc.or_(true, false)
        return pc.if_else(ok, true, None), _mask(pc.invert(ok))
    return _all_failed(raw, pa.bool_())


def _to_string(raw: pa.Array) -> Coerced:
    t = raw.type
    n = len(raw)
    if pa.types.is_string(t):
        return raw, _none_failed(n)
    if pa.types.is_integer(t):
        return raw.cast(pa.string()), _none_failed(n)
    if pa.types.is_floating(t):
        # 3.0 -> "3" (an integer code read as float because of nulls); 3.5 -> "3.5"
        whole = pc.equal(pc.floor(raw), raw)
        ints = pc.if_else(whole, raw, None).cast(pa.int64(), safe=False).cast(pa.string())
        return pc.if_else(whole, ints, raw.cast(pa.string())), _none_failed(n)
    if pa.types.is_boolean(t):
        return raw.cast(pa.string()), _none_failed(n)
    return _all_failed(raw, pa.string())


def _to_timestamp(raw: pa.Array) -> Coerced:
    t = raw.type
    n = len(raw)
    target = pa.timestamp("us", tz="UTC")
    if pa.types.is_timestamp(t):
        # Nanoseconds are truncated to microseconds (the store's precision), not refused.
        micros = pc.cast(raw, pa.timestamp("us", tz=t.tz), safe=False) if t.unit == "ns" else raw
        if t.tz is None:
            return micros.cast(pa.timestamp("us")).cast(target), _none_failed(n)
        return micros.cast(target), _none_failed(n)
    if pa.types.is_date(t):
        return raw.cast(pa.timestamp("us")).cast(target), _none_failed(n)
    if not pa.types.is_string(t):
        return _all_failed(raw, target)
    raw = _blank_to_null(raw)
    ok = pc.match_substring_regex(raw, _ISO)
    zoned = pc.and_(ok, pc.match_substring_regex(raw, _ZONED))
    naive = pc.and_(ok, pc.invert(zoned))
    normal = pc.replace_substring_regex(raw, r"\s+([+-]\d{2}(:?\d{2})?|Z|z)$", r"\1")
    # A date alone is its midnight; digits past the microsecond (the store's precision) are
    # dropped, as a nanosecond Arrow timestamp's are.
    normal = pc.replace_substring_regex(normal, r"^(\d{4}-\d{2}-\d{2})(Z|z)?$", r"\1T00:00:00\2")
    normal = pc.replace_substring_regex(normal, r"(\.\d{6})\d+", r"\1")
    out = pa.nulls(n, target)
    failed = _mask(pc.invert(ok))
    for part, parse in ((zoned, _parse_zoned), (naive, _parse_naive)):
        if not _mask(part).any():
            continue
        values, bad = parse(pc.if_else(part, normal, pa.scalar(None, pa.string())))
        out = pc.if_else(part, values, out)
        failed |= bad & _mask(part)
    return out, failed


def _parse_zoned(strings: pa.Array) -> Coerced:
    fixed = pc.replace_substring_regex(strings, r"([+-]\d{2})$", r"\1:00")
    fixed = pc.replace_substring_regex(fixed, r"([+-]\d{2})(\d{2})$", r"\1:\2")
    fixed = pc.replace_substring_regex(fixed, "z$", "Z")
    return _cast_or_each(fixed, pa.timestamp("us", tz="UTC"))


def _parse_naive(strings: pa.Array) -> Coerced:
    values, failed = _cast_or_each(strings, pa.timestamp("us"))
    return values.cast(pa.timestamp("us", tz="UTC")), failed


def _cast_or_each(strings: pa.Array, target: pa.DataType) -> Coerced:
    """Cast all at once; if one value is impossible (month 13), find it value by value."""
    try:
        return strings.cast(target), _none_failed(len(strings))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    values: list[Any] = []
    failed = np.zeros(len(strings), dtype=bool)
    for i, s in enumerate(strings):
        if not s.is_valid:
            values.append(None)
            continue
        try:
            values.append(pa.array([s.as_py()]).cast(target)[0].as_py())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            values.append(None)
            failed[i] = True
    return pa.array(values, target), failed


_COERCE = {
    "string": _to_string,
    "float64": _to_float,
    "int64": _to_int,
    "boolean": _to_bool,
    "timestamp": _to_timestamp,
}


def coerce(raw: pa.Array, dtype: DType) -> Coerced:
    """``raw`` as ``dtype``, with a mask of the values that could not be coerced losslessly."""
    raw = _strings(raw)
    if pa.types.is_null(raw.type):
        return pa.nulls(len(raw), ARROW_TYPES[dtype]), _none_failed(len(raw))
    return _COERCE[dtype](raw)
