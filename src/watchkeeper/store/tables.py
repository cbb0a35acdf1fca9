"""The store's tables and their typed schemas.

Per model: ``events_<model>``, ``labels_<model>``, ``outcomes_<model>`` and
``reference_<model>``, typed from the config (see ``watchkeeper.schema``). Shared by all
models: the tables below. ``SCHEMA_VERSION`` is written to ``wk_meta`` so that a later
release can migrate an existing file.
"""

from __future__ import annotations

from watchkeeper.schema import DType

SCHEMA_VERSION = 1

META = "wk_meta"
QUARANTINE = "quarantine"
INGESTIONS = "ingestions"
TOUCHED = "touched"
REFERENCE_SETS = "reference_sets"
REFERENCE_PROFILES = "reference_profiles"
METRICS = "metrics"
WINDOW_PROFILES = "window_profiles"
ALERTS = "alerts"
RUNS = "runs"
ESTIMATORS = "estimators"

SHARED: dict[str, dict[str, DType]] = {
    META: {"key": "string", "value": "string"},
    # A row that failed validation, with its reason and its raw values as JSON.
    QUARANTINE: {
        "model": "string",
        "kind": "string",
        "wk_batch": "string",
        "row_number": "int64",
        "reason": "string",
        "detail": "string",
        "raw": "string",
        "fingerprint": "string",
        "source": "string",
        "wk_ingested_at": "timestamp",
    },
    # One row per ingestion call: what came in and what became of it.
    INGESTIONS: {
        "wk_batch": "string",
        "model": "string",
        "kind": "string",
        "source": "string",
        "rows": "int64",
        "accepted": "int64",
        "duplicates": "int64",
        "corrected": "int64",
        "quarantined": "int64",
        "missing_columns": "string",  # JSON list: optional columns absent from the input
        "unexpected_columns": "string",  # JSON list: input columns the schema does not declare
        "started_at": "timestamp",
        "finished_at": "timestamp",
    },
    # The event-time hours each ingestion touched, so a run recomputes only those windows.
    TOUCHED: {
        "model": "string",
        "kind": "string",
        "hour": "timestamp",
        "wk_batch": "string",
        "wk_ingested_at": "timestamp",
    },
    REFERENCE_SETS: {
        "model": "string",
        "model_version": "string",
        "reference_id": "string",
        "rows": "int64",
        "source": "string",
        "set_at": "timestamp",
    },
    REFERENCE_PROFILES: {
        "model": "string",
        "model_version": "string",
        "reference_id": "string",
        "column": "string",
        "profile": "string",
        "fitted_at": "timestamp",
    },
    METRICS: {
        "model": "string",
        "model_version": "string",
        "window_start": "timestamp",
        "window_end": "timestamp",
        "segment_column": "string",
        "segment_value": "string",
        "metric": "string",
        "column": "string",
        "value": "float64",
        "lower": "float64",
        "upper": "float64",
        "p_value": "float64",
        "threshold": "float64",
        "sample_size": "int64",
        "status": "string",
        "provisional": "boolean",
        "detail": "string",
        "run_id": "string",
        "computed_at": "timestamp",
    },
    # The profile behind the metrics: counts over the reference's bins, per column.
    WINDOW_PROFILES: {
        "model": "string",
        "model_version": "string",
        "window_start": "timestamp",
        "window_end": "timestamp",
        "segment_column": "string",
        "segment_value": "string",
        "column": "string",
        "profile": "string",
        "run_id": "string",
    },
    ALERTS: {
        "alert_id": "string",
        "fingerprint": "string",
        "rule": "string",
        "model": "string",
        "severity": "string",
        "owner": "string",
        "state": "string",
        "labels": "string",
        "evidence": "string",
        "summary": "string",
        "started_at": "timestamp",
        "updated_at": "timestamp",
        "resolved_at": "timestamp",
        "verdict": "string",
        "comment": "string",
    },
    # Models fitted on a reference to estimate performance without labels (pickled, base64).
    ESTIMATORS: {
        "model": "string",
        "model_version": "string",
        "reference_id": "string",
        "kind": "string",
        "payload": "string",
        "rows": "int64",
        "fitted_at": "timestamp",
    },
    RUNS: {
        "run_id": "string",
        "model": "string",
        "started_at": "timestamp",
        "finished_at": "timestamp",
        "status": "string",
        "windows": "int64",
        "detail": "string",
    },
}
