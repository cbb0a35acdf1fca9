"""The metric row: one computed value, the one shape every reader and writer shares.

Families produce rows, the run writes them, the metrics-table reader returns them, alert
rules step through them, triage, the report, the dashboard, the exporter and the API read
them. The first fields are a window's value (what an alert series is made of), so a row
reads naturally as a point of a series: ``MetricRow(start, end, 0.91, status="ok")``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import pyarrow as pa

ALL = "*"  # the segment column and value (and version) that stand for the whole traffic

OK, DRIFTED, INSUFFICIENT, ERROR = "ok", "drifted", "insufficient_data", "error"


class MetricRow(NamedTuple):
    """Immutable; a named tuple because a run makes tens of thousands (a frozen dataclass
    costs four times as much to build)."""

    window_start: datetime
    window_end: datetime
    value: float | None
    lower: float | None = None
    upper: float | None = None
    sample_size: int = 0
    status: str = OK
    provisional: bool = False
    metric: str = ""
    column: str = ""
    segment_column: str = ALL
    segment_value: str = ALL
    model_version: str = ALL
    p_value: float | None = None
    threshold: float | None = None
    detail: str = ""
    model: str = ""
    run_id: str = ""
    computed_at: datetime | None = None

    @property
    def segment(self) -> str:
        """``*`` for the whole traffic, else ``column=value``."""
        if self.segment_column == ALL:
            return ALL
        return f"{self.segment_column}={self.segment_value}"

    @property
    def whole_traffic(self) -> bool:
        return self.segment_column == ALL

    @property
    def known(self) -> float | None:
        """The value, or None when it is missing or not finite."""
        v = self.value
        return None if v is None or not math.isfinite(v) else float(v)

    def with_(self, **changes: Any) -> MetricRow:
        return self._replace(**changes)

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()


@dataclass(frozen=True)
class Where:
    """Where a family's row belongs: a window, a model version, a segment."""

    window_start: datetime
    window_end: datetime
    version: str
    segment_column: str = ALL
    segment_value: str = ALL

    def row(
        self, metric: str, column: str, value: float | None, sample_size: int, **rest: Any
    ) -> MetricRow:
        """A row of this place."""
        return MetricRow(
            self.window_start,
            self.window_end,
            None if value is None else float(value),
            sample_size=int(sample_size),
            metric=metric,
            column=column,
            segment_column=self.segment_column,
            segment_value=self.segment_value,
            model_version=self.version,
            **rest,
        )


# The metrics table's columns, in its stored order (the store derives its schema from these).
TABLE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("model", "string"),
    ("model_version", "string"),
    ("window_start", "timestamp"),
    ("window_end", "timestamp"),
    ("segment_column", "string"),
    ("segment_value", "string"),
    ("metric", "string"),
    ("column", "string"),
    ("value", "float64"),
    ("lower", "float64"),
    ("upper", "float64"),
    ("p_value", "float64"),
    ("threshold", "float64"),
    ("sample_size", "int64"),
    ("status", "string"),
    ("provisional", "boolean"),
    ("detail", "string"),
    ("run_id", "string"),
    ("computed_at", "timestamp"),
)
_NAMES = set(MetricRow._fields)


def to_arrow(rows: Sequence[MetricRow], schema: pa.Schema, **constants: Any) -> pa.Table:
    """Rows as an Arrow table of the metrics table's schema; ``constants`` set a column for
    every row (the model, the run). A column at a time: a batch of a backfill is hundreds
    of thousands of rows, and its Python lists are not all held at once."""
    n = len(rows)
    columns = [
        pa.repeat(pa.scalar(constants[f.name], f.type), n)
        if f.name in constants
        else pa.array([getattr(r, f.name) for r in rows], f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def from_records(records: Iterable[Mapping[str, Any]]) -> list[MetricRow]:
    """Rows from the metrics table's records (columns it lacks take their defaults)."""
    out = []
    for r in records:
        data = {k: v for k, v in r.items() if k in _NAMES}
        for text in ("status", "detail", "column", "model", "run_id"):
            if data.get(text) is None and text in data:
                data[text] = "" if text != "status" else OK
        for name in ("segment_column", "segment_value", "model_version"):
            if data.get(name) is None and name in data:
                data[name] = ALL
        if data.get("sample_size") is None and "sample_size" in data:
            data["sample_size"] = 0
        data["provisional"] = bool(data.get("provisional"))
        out.append(MetricRow(**data))
    return out


__all__ = [
    "ALL",
    "DRIFTED",
    "ERROR",
    "INSUFFICIENT",
    "OK",
    "TABLE_COLUMNS",
    "MetricRow",
    "Where",
    "from_records",
    "to_arrow",
]
