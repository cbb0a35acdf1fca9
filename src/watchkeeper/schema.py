"""What a model's events, labels, outcomes and reference rows look like once stored.

A ``TableSpec`` is derived from the model's config: which input column feeds which stored
column, its type, whether a null is allowed, and the allowed range or values. Ingestion
validates against it; the store creates tables from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from watchkeeper.config import ModelConfig

DType = Literal["string", "float64", "int64", "boolean", "timestamp"]
Kind = Literal["events", "labels", "outcomes", "reference"]
KINDS: tuple[Kind, ...] = ("events", "labels", "outcomes", "reference")

# Columns watchkeeper adds to every stored row.
INGESTED_AT = "wk_ingested_at"
BATCH = "wk_batch"
MODEL_VERSION = "wk_model_version"
KEY = "wk_key"


@dataclass(frozen=True)
class ColumnSpec:
    name: str  # the stored column
    dtype: DType
    role: str
    source: str = ""  # the input column; defaults to ``name``
    required: bool = False  # a null is quarantined as null_in_required
    must_exist: bool = False  # an absent column quarantines the batch as missing_column
    low: float | None = None
    high: float | None = None
    values: frozenset[str] | None = None  # closes the set of categories
    binary: bool = False  # int64 restricted to 0 and 1 (labels, predictions)

    @property
    def input_name(self) -> str:
        return self.source or self.name


@dataclass(frozen=True)
class TableSpec:
    model: str
    kind: Kind
    columns: tuple[ColumnSpec, ...]
    # Columns watchkeeper fills itself (not read from the input).
    system: tuple[tuple[str, DType], ...] = field(default=())

    @property
    def table(self) -> str:
        return table_name(self.kind, self.model)

    def column(self, name: str) -> ColumnSpec:
        return next(c for c in self.columns if c.name == name)

    def stored_schema(self) -> dict[str, DType]:
        return {c.name: c.dtype for c in self.columns} | dict(self.system)


def table_name(kind: Kind, model: str) -> str:
    return f"{kind}_{model}"


_FEATURE_DTYPES: dict[str, DType] = {
    "numeric": "float64",
    "categorical": "string",
    "boolean": "boolean",
}


def _feature_columns(model: ModelConfig) -> list[ColumnSpec]:
    out: list[ColumnSpec] = []
    for f in model.columns.features:
        dtype = _FEATURE_DTYPES[f.kind]
        out.append(
            ColumnSpec(
                name=f.name,
                dtype=dtype,
                role="feature",
                required=not f.nullable,
                must_exist=not f.nullable,
                low=f.range[0] if f.range else None,
                high=f.range[1] if f.range else None,
                values=frozenset(f.values) if f.values else None,
            )
        )
    return out


def _output_columns(model: ModelConfig, required: bool) -> list[ColumnSpec]:
    cols = model.columns
    out: list[ColumnSpec] = []
    task = model.task
    if cols.prediction:
        if task == "binary_classification":
            out.append(ColumnSpec(cols.prediction, "int64", "prediction", binary=True))
        elif task == "multiclass_classification":
            classes = frozenset(model.classes or ())
            out.append(ColumnSpec(cols.prediction, "string", "prediction", values=classes))
        else:
            out.append(ColumnSpec(cols.prediction, "float64", "prediction"))
    probability = task in ("binary_classification", "multiclass_classification")
    if cols.score:
        low, high = (0.0, 1.0) if probability else (None, None)
        out.append(ColumnSpec(cols.score, "float64", "score", low=low, high=high))
    for cls, name in (cols.scores or {}).items():
        out.append(ColumnSpec(name, "float64", f"score:{cls}", low=0.0, high=1.0))
    return [ColumnSpec(**{**c.__dict__, "required": required, "must_exist": required}) for c in out]


def _slice_columns(model: ModelConfig) -> list[ColumnSpec]:
    cols = model.columns
    features = {f.name for f in model.columns.features}
    out: list[ColumnSpec] = []
    seen: set[str] = set(features)
    for role, names in (("segment", cols.segments), ("sensitive", cols.sensitive)):
        for name in names:
            if name not in seen:
                out.append(ColumnSpec(name, "string", role))
                seen.add(name)
    for name in cols.metadata:
        if name not in seen:
            out.append(ColumnSpec(name, "string", "metadata"))
            seen.add(name)
    return out


def events_spec(model: ModelConfig) -> TableSpec:
    cols = model.columns
    columns = [
        ColumnSpec(cols.event_id, "string", "event_id", required=True, must_exist=True),
        ColumnSpec(cols.timestamp, "timestamp", "timestamp", required=True, must_exist=True),
        *_feature_columns(model),
        *_output_columns(model, required=True),
        *_slice_columns(model),
    ]
    if cols.latency:
        columns.append(ColumnSpec(cols.latency, "float64", "latency", low=0.0))
    if cols.status:
        columns.append(ColumnSpec(cols.status, "string", "status"))
    if cols.query_id:
        columns.append(ColumnSpec(cols.query_id, "string", "query_id", required=True))
    if cols.item_id:
        columns.append(ColumnSpec(cols.item_id, "string", "item_id"))
    if cols.position:
        columns.append(ColumnSpec(cols.position, "int64", "position", low=0.0))
    columns.append(
        ColumnSpec(MODEL_VERSION, "string", "model_version", source=cols.model_version or "")
    )
    return TableSpec(
        model.name,
        "events",
        tuple(columns),
        system=((INGESTED_AT, "timestamp"), (BATCH, "string")),
    )


def label_dtype(model: ModelConfig) -> tuple[DType, bool, frozenset[str] | None]:
    if model.task == "binary_classification":
        return "int64", True, None
    if model.task == "multiclass_classification":
        return "string", False, frozenset(model.classes or ())
    return "float64", False, None


def labels_spec(model: ModelConfig) -> TableSpec:
    dtype, binary, values = label_dtype(model)
    columns = (
        ColumnSpec(
            "event_id",
            "string",
            "event_id",
            source=model.columns.event_id,
            required=True,
            must_exist=True,
        ),
        ColumnSpec(
            "label",
            dtype,
            "label",
            source=model.labels.column,
            required=True,
            must_exist=True,
            binary=binary,
            values=values,
        ),
        ColumnSpec(
            "label_timestamp", "timestamp", "label_timestamp", source=model.labels.timestamp
        ),
    )
    return TableSpec(
        model.name, "labels", columns, system=((INGESTED_AT, "timestamp"), (BATCH, "string"))
    )


def outcomes_spec(model: ModelConfig) -> TableSpec:
    names = frozenset(o.name for o in model.outcomes) or None
    oc = model.outcome_columns
    columns = (
        ColumnSpec("event_id", "string", "event_id", source=model.columns.event_id),
        ColumnSpec(
            "outcome",
            "string",
            "outcome",
            source=oc.name,
            required=True,
            must_exist=True,
            values=names,
        ),
        ColumnSpec("value", "float64", "value", source=oc.value, required=True, must_exist=True),
        ColumnSpec("timestamp", "timestamp", "timestamp", source=oc.timestamp),
    )
    return TableSpec(
        model.name,
        "outcomes",
        columns,
        system=((KEY, "string"), (INGESTED_AT, "timestamp"), (BATCH, "string")),
    )


def reference_spec(model: ModelConfig) -> TableSpec:
    """Reference rows: the features and outputs, a label where known; ids and times optional."""
    dtype, binary, values = label_dtype(model)
    cols = model.columns
    columns = [
        ColumnSpec(cols.event_id, "string", "event_id"),
        ColumnSpec(cols.timestamp, "timestamp", "timestamp"),
        *_feature_columns(model),
        *_output_columns(model, required=False),
        *_slice_columns(model),
        ColumnSpec(model.labels.column, dtype, "label", binary=binary, values=values),
    ]
    if cols.query_id:
        columns.append(ColumnSpec(cols.query_id, "string", "query_id"))
    if cols.item_id:
        columns.append(ColumnSpec(cols.item_id, "string", "item_id"))
    if cols.position:
        columns.append(ColumnSpec(cols.position, "int64", "position", low=0.0))
    return TableSpec(
        model.name,
        "reference",
        tuple(columns),
        system=((MODEL_VERSION, "string"), (BATCH, "string"), (INGESTED_AT, "timestamp")),
    )


def spec_for(kind: Kind, model: ModelConfig) -> TableSpec:
    return {
        "events": events_spec,
        "labels": labels_spec,
        "outcomes": outcomes_spec,
        "reference": reference_spec,
    }[kind](model)
