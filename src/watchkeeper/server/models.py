"""The HTTP API's request and response models (they make the OpenAPI spec). A metric row's
response model is made from the one metric row's fields, in the metrics table's order."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from watchkeeper.rows import TABLE_COLUMNS
from watchkeeper.server.http import finite

_TYPES: dict[str, Any] = {
    "string": str,
    "float64": float | None,
    "int64": int,
    "boolean": bool,
    "timestamp": datetime,
}


class ErrorBody(BaseModel):
    status: int
    message: str
    where: str = ""


class ErrorResponse(BaseModel):
    error: ErrorBody


class IngestResponse(BaseModel):
    model: str
    kind: str
    batch: str
    rows: int
    accepted: int
    duplicates: int
    corrected: int
    quarantined: dict[str, int] = Field(description="rows refused, by reason code")
    missing_columns: list[str]
    unexpected_columns: list[str]
    absent_required: list[str] = []  # required columns absent: every row quarantined
    examples: dict[str, str] = {}  # one quarantined row's detail per reason


class ModelInfo(BaseModel):
    name: str
    task: str
    owner: str
    version: str
    versions: list[str]
    window: str
    events: int
    labels: int


# The metric row as the API answers it: the table's columns but the run's own.
MetricRow = create_model(  # type: ignore[call-overload]
    "MetricRow",
    **{
        name: (_TYPES[kind], ...)
        for name, kind in TABLE_COLUMNS
        if name not in ("run_id", "computed_at")
    },
)


class AlertOut(BaseModel):
    alert_id: str
    rule: str
    model: str
    severity: str
    owner: str
    state: str
    labels: dict[str, str]
    evidence: list[dict[str, Any]]
    summary: str
    started_at: datetime | None
    resolved_at: datetime | None
    window_start: datetime | None
    muted: str | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    closed_at: datetime | None
    verdict: str | None
    comment: str | None


class AckIn(BaseModel):
    by: str = Field(default="", max_length=200)
    comment: str = Field(default="", max_length=5000)


class CloseIn(BaseModel):
    verdict: Literal["actionable", "noise", "expected_change"]
    comment: str = Field(default="", max_length=5000)
    by: str = Field(default="", max_length=200)


class RunOut(BaseModel):
    run_id: str
    model: str
    started_at: datetime | None
    finished_at: datetime | None
    status: str
    windows: int
    detail: str


class BacktestOut(BaseModel):
    metric: str
    windows: int
    covered: int
    coverage: float | None
    mean_error: float | None
    mean_absolute_error: float | None
    trust: str
    caveat: str


class RunIn(BaseModel):
    model: str = Field(max_length=200)


class RunResultOut(BaseModel):
    model: str
    windows: int
    metrics: int
    summary: str


class Health(BaseModel):
    status: str
    models: list[str]
    scheduler_ticks: int
    auth: bool


def alert_out(row: dict[str, Any]) -> AlertOut:
    return AlertOut(
        **{
            **finite(row),
            "labels": json.loads(row["labels"] or "{}"),
            "evidence": [finite(e) for e in json.loads(row["evidence"] or "[]")],
            "owner": row["owner"] or "",
            "summary": row["summary"] or "",
        }
    )


__all__ = [
    "AckIn",
    "AlertOut",
    "BacktestOut",
    "CloseIn",
    "ErrorBody",
    "ErrorResponse",
    "Health",
    "IngestResponse",
    "MetricRow",
    "ModelInfo",
    "RunIn",
    "RunOut",
    "RunResultOut",
    "alert_out",
]
