"""Alert state and episodes in the store: each instance's evaluation state, each firing's
episode (from firing to resolved, with its evidence), the events log, and the feedback
people give (acknowledgement, verdicts)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from watchkeeper.alerts.machine import AlertEvent, AlertState
from watchkeeper.errors import UnknownAlertError, WatchkeeperError
from watchkeeper.store import Store
from watchkeeper.store.engine import shared_rows
from watchkeeper.store.tables import ALERT_EVENTS, ALERT_STATES, ALERTS

VERDICTS = ("actionable", "noise", "expected_change")


def load_states(store: Store, model: str) -> dict[str, AlertState]:
    t = store.table(ALERT_STATES)
    rows = store.execute(t.filter(t.model == model)).to_pylist()
    return {
        r["fingerprint"]: AlertState.from_json(
            r["fingerprint"], r["rule"], json.loads(r["labels"]), r["state"]
        )
        for r in rows
    }


def save_states(store: Store, model: str, states: Mapping[str, AlertState], now: datetime) -> None:
    if not states:
        return
    keys = list(states)
    store.delete(ALERT_STATES, lambda t: (t.model == model) & t.fingerprint.isin(keys))
    store.insert(
        ALERT_STATES,
        shared_rows(
            ALERT_STATES,
            [
                {
                    "fingerprint": fp,
                    "rule": s.rule,
                    "model": model,
                    "labels": json.dumps(dict(s.labels), sort_keys=True),
                    "state": s.to_json(),
                    "updated_at": now,
                }
                for fp, s in states.items()
            ],
        ),
    )


def episodes(store: Store, where: Callable[[Any], Any] | None = None) -> list[dict[str, Any]]:
    t = store.table(ALERTS)
    expr = t if where is None else t.filter(where(t))
    return list(store.execute(expr.order_by("started_at")).to_pylist())


def episode(store: Store, alert_id: str) -> dict[str, Any]:
    """One alert episode; UnknownAlertError if there is none."""
    found = episodes(store, lambda t: t.alert_id == alert_id)
    if not found:
        raise UnknownAlertError(alert_id)
    return found[0]


def replace_episodes(store: Store, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    ids = [r["alert_id"] for r in rows]
    store.delete(ALERTS, lambda t: t.alert_id.isin(ids))
    store.insert(ALERTS, shared_rows(ALERTS, rows))


def apply_events(store: Store, events: list[AlertEvent], now: datetime) -> None:
    if not events:
        return
    ids = list({e.alert_id for e in events})
    current = {r["alert_id"]: r for r in episodes(store, lambda t: t.alert_id.isin(ids))}
    for e in events:
        evidence = json.dumps([x.to_dict() for x in e.evidence])
        if e.kind == "firing":
            current[e.alert_id] = {
                "alert_id": e.alert_id,
                "fingerprint": e.fingerprint,
                "rule": e.rule,
                "model": e.labels.get("model"),
                "severity": e.severity,
                "owner": e.labels.get("owner"),
                "state": "firing",
                "labels": json.dumps(dict(e.labels), sort_keys=True),
                "evidence": evidence,
                "summary": e.summary,
                "started_at": e.window_end,
                "updated_at": now,
                "window_start": e.window_start,
                "window_size_s": int((e.window_end - e.window_start).total_seconds()),
                "resolved_notified": False,
            }
            continue
        row = current.get(e.alert_id)
        if row is None:  # state without its episode (should not happen): start one
            continue
        row = dict(row)
        row["updated_at"] = now
        if e.kind == "escalated":
            row |= {"severity": e.severity, "summary": e.summary, "evidence": evidence}
        elif e.kind == "resolved":
            row |= {"state": "resolved", "resolved_at": e.window_end}
        current[e.alert_id] = row
    replace_episodes(store, list(current.values()))
    store.insert(
        ALERT_EVENTS,
        shared_rows(
            ALERT_EVENTS,
            [
                {
                    "alert_id": e.alert_id,
                    "fingerprint": e.fingerprint,
                    "rule": e.rule,
                    "model": e.labels.get("model"),
                    "kind": e.kind,
                    "severity": e.severity,
                    "window_start": e.window_start,
                    "at": now,
                    "summary": e.summary,
                }
                for e in events
            ],
        ),
    )


def log_event(store: Store, row: Mapping[str, Any], kind: str, now: datetime, text: str) -> None:
    store.insert(
        ALERT_EVENTS,
        shared_rows(
            ALERT_EVENTS,
            [
                {
                    "alert_id": row["alert_id"],
                    "fingerprint": row["fingerprint"],
                    "rule": row["rule"],
                    "model": row["model"],
                    "kind": kind,
                    "severity": row["severity"],
                    "window_start": row["window_start"],
                    "at": now,
                    "summary": text,
                }
            ],
        ),
    )


def acknowledge(
    store: Store, alert_id: str, now: datetime, by: str = "", comment: str = ""
) -> None:
    row = episode(store, alert_id)
    updated = {**row, "acknowledged_at": now, "acknowledged_by": by, "updated_at": now}
    if comment:
        updated["comment"] = comment
    with store.transaction():
        replace_episodes(store, [updated])
        log_event(store, row, "acknowledged", now, comment or f"acknowledged by {by or 'someone'}")


def close(
    store: Store, alert_id: str, verdict: str, now: datetime, comment: str = "", by: str = ""
) -> None:
    """Close an alert with a verdict: was it actionable, noise, or an expected change?"""
    if verdict not in VERDICTS:
        raise WatchkeeperError(f"verdict must be one of {', '.join(VERDICTS)}, not {verdict!r}")
    row = episode(store, alert_id)
    updated = {
        **row,
        "verdict": verdict,
        "comment": comment or row["comment"],
        "closed_at": now,
        "updated_at": now,
        "acknowledged_at": row["acknowledged_at"] or now,
        "acknowledged_by": row["acknowledged_by"] or by,
    }
    with store.transaction():
        replace_episodes(store, [updated])
        log_event(store, row, "closed", now, f"{verdict}: {comment}" if comment else verdict)


__all__ = [
    "VERDICTS",
    "acknowledge",
    "apply_events",
    "close",
    "episode",
    "episodes",
    "load_states",
    "log_event",
    "replace_episodes",
    "save_states",
]
