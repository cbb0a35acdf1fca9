"""The store's tables and their typed schemas.

Per model: ``events_<model>``, ``labels_<model>``, ``outcomes_<model>`` and
``reference_<model>``, typed from the config (see ``watchkeeper.schema``). Shared by all
models: the tables below. ``SCHEMA_VERSION`` is written to ``wk_meta`` so that a later
release can migrate an existing file.
"""

from __future__ import annotations

from watchkeeper.rows import TABLE_COLUMNS
from watchkeeper.schema import DType

METRIC_COLUMNS: tuple[tuple[str, DType], ...] = TABLE_COLUMNS  # type: ignore[assignment]

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
ALERT_STATES = "alert_states"
ALERT_EVENTS = "alert_events"
SILENCES = "silences"
OUTBOX = "outbox"
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
    METRICS: dict(METRIC_COLUMNS),
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
    # One row per alert episode: from firing to resolved, with its evidence and verdict.
    ALERTS: {
        "alert_id": "string",
        "fingerprint": "string",
        "rule": "string",
        "model": "string",
        "severity": "string",
        "owner": "string",
        "state": "string",  # firing, resolved
        "labels": "string",  # JSON
        "evidence": "string",  # JSON list
        "summary": "string",
        "started_at": "timestamp",  # the end of the window it fired at
        "updated_at": "timestamp",
        "resolved_at": "timestamp",
        "verdict": "string",  # actionable, noise, expected_change
        "comment": "string",
        "window_start": "timestamp",  # the window it fired at
        "window_size_s": "int64",
        "muted": "string",  # why it is not notified (silenced by ..., inhibited by ...)
        "notified_severity": "string",  # the severity last sent
        "resolved_notified": "boolean",
        "acknowledged_at": "timestamp",
        "acknowledged_by": "string",
        "closed_at": "timestamp",
    },
    # Where each alert instance stands (the evaluation's state), one row per fingerprint.
    ALERT_STATES: {
        "fingerprint": "string",
        "rule": "string",
        "model": "string",
        "labels": "string",
        "state": "string",
        "updated_at": "timestamp",
    },
    # Every firing, escalation, resolution, acknowledgement and verdict.
    ALERT_EVENTS: {
        "alert_id": "string",
        "fingerprint": "string",
        "rule": "string",
        "model": "string",
        "kind": "string",
        "severity": "string",
        "window_start": "timestamp",
        "at": "timestamp",
        "summary": "string",
    },
    SILENCES: {
        "silence_id": "string",
        "matchers": "string",  # JSON: label → pattern
        "starts_at": "timestamp",
        "ends_at": "timestamp",
        "created_by": "string",
        "comment": "string",
    },
    # Notifications written before they are sent, retried until delivered.
    OUTBOX: {
        "notification_id": "string",
        "receiver": "string",
        "alert_id": "string",
        "kind": "string",
        "payload": "string",  # JSON
        "created_at": "timestamp",
        "attempts": "int64",
        "next_attempt_at": "timestamp",
        "delivered_at": "timestamp",
        "last_error": "string",
        "gave_up": "boolean",
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
