"""Noise control and routing: silences, inhibition, and bringing the outbox in line with the
episodes (what to notify, to whom, at which severity)."""

from __future__ import annotations

import fnmatch
import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from watchkeeper.alerts.history import episodes, replace_episodes
from watchkeeper.alerts.notify import payload
from watchkeeper.config import AlertingConfig
from watchkeeper.errors import WatchkeeperError
from watchkeeper.store import Store
from watchkeeper.store.engine import shared_rows
from watchkeeper.store.tables import ALERTS, OUTBOX, SILENCES


def alert_labels(row: Mapping[str, Any]) -> dict[str, str]:
    """An episode's labels as notifications carry them (its severity included)."""
    return {**json.loads(row["labels"]), "severity": row["severity"]}


def matches_all(matchers: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(fnmatch.fnmatchcase(labels.get(k, ""), v) for k, v in matchers.items())


def active_silences(store: Store, now: datetime) -> list[dict[str, Any]]:
    t = store.table(SILENCES)
    return list(store.execute(t.filter((t.starts_at <= now) & (t.ends_at > now))).to_pylist())


def add_silence(
    store: Store,
    matchers: Mapping[str, str],
    ends_at: datetime,
    now: datetime,
    created_by: str = "",
    comment: str = "",
) -> str:
    if not matchers:
        raise WatchkeeperError("a silence needs at least one matcher, e.g. model=fraud")
    if ends_at <= now:
        raise WatchkeeperError("a silence must end in the future")
    silence_id = uuid.uuid4().hex[:12]
    store.insert(
        SILENCES,
        shared_rows(
            SILENCES,
            [
                {
                    "silence_id": silence_id,
                    "matchers": json.dumps(dict(matchers), sort_keys=True),
                    "starts_at": now,
                    "ends_at": ends_at,
                    "created_by": created_by,
                    "comment": comment,
                }
            ],
        ),
    )
    return silence_id


def expire_silence(store: Store, silence_id: str, now: datetime) -> None:
    t = store.table(SILENCES)
    rows = store.execute(t.filter(t.silence_id == silence_id)).to_pylist()
    if not rows:
        raise WatchkeeperError(f"no silence {silence_id!r}")
    with store.transaction():
        store.delete(SILENCES, lambda t: t.silence_id == silence_id)
        store.insert(SILENCES, shared_rows(SILENCES, [{**rows[0], "ends_at": now}]))


def why_muted(
    row: Mapping[str, Any],
    firing: Sequence[Mapping[str, Any]],
    silences: Sequence[Mapping[str, Any]],
    alerting: AlertingConfig,
) -> str:
    """Why an episode is not to be notified now ('' when it is)."""
    labels = alert_labels(row)
    for s in silences:
        if matches_all(json.loads(s["matchers"]), labels):
            return f"silenced by {s['silence_id']}"
    for rule in alerting.inhibit:
        if not matches_all(rule.target, labels):
            continue
        for other in firing:
            if other["alert_id"] == row["alert_id"]:
                continue
            source = alert_labels(other)
            if matches_all(rule.source, source) and all(
                source.get(k) == labels.get(k) for k in rule.equal
            ):
                return f"inhibited by {other['alert_id']} ({other['rule']})"
    return ""


def reconcile(
    store: Store, alerting: AlertingConfig, now: datetime, model: str | None = None
) -> tuple[dict[str, str], int]:
    """Bring notifications in line with the episodes: a firing episode that is not muted and
    was not sent at its severity is queued; a resolved one that was sent is queued as
    resolved. Muting is re-judged each time, so an expired silence or a resolved source of
    inhibition lets what it held back through."""
    t = store.table(ALERTS)
    open_ = t.state == "firing"
    unsent = (t.state == "resolved") & t.notified_severity.notnull() & ~t.resolved_notified
    expr = t.filter(open_ | unsent)
    if model is not None:
        expr = expr.filter(expr.model == model)
    rows = store.execute(expr).to_pylist()
    firing_all = episodes(store, lambda t: t.state == "firing")
    silences = active_silences(store, now)
    muted: dict[str, str] = {}
    notes: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    for row in rows:
        if row["state"] == "firing":
            reason = why_muted(row, firing_all, silences, alerting)
            if reason:
                muted[row["alert_id"]] = reason
            if reason != (row["muted"] or ""):
                row = {**row, "muted": reason}
                changed.append(row)
            if reason or row["notified_severity"] == row["severity"]:
                continue
            kind = "firing" if row["notified_severity"] is None else "escalated"
            notes += notifications(alerting, row, kind, now)
            changed.append({**row, "notified_severity": row["severity"]})
        else:
            notes += notifications(alerting, row, "resolved", now)
            changed.append({**row, "resolved_notified": True})
    latest = {r["alert_id"]: r for r in changed}
    replace_episodes(store, list(latest.values()))
    resolved = [r["alert_id"] for r in rows if r["state"] != "firing"]
    if resolved:  # a refresh still queued must not re-open what has resolved
        store.delete(
            OUTBOX,
            lambda t: t.alert_id.isin(resolved) & (t.kind == REFRESH) & t.delivered_at.isnull(),
        )
    queued = {n["alert_id"] for n in notes}
    sent = [
        r
        for r in rows
        if r["state"] == "firing"
        and r["alert_id"] not in muted
        and r["notified_severity"] == r["severity"]
        and r["alert_id"] not in queued
    ]
    refresh = refreshes(store, alerting, sent, now)
    if refresh:
        ids = [n["notification_id"] for n in refresh]
        store.delete(OUTBOX, lambda t: t.notification_id.isin(ids))
    if notes or refresh:
        store.insert(OUTBOX, shared_rows(OUTBOX, notes + refresh))
    return muted, len(notes)


REFRESH = "refresh"


def refreshes(
    store: Store, alerting: AlertingConfig, rows: list[dict[str, Any]], now: datetime
) -> list[dict[str, Any]]:
    """Alertmanager expects a client to keep sending the alerts that are active, and
    resolves one it has not heard of for its ``resolve_timeout``: each firing alert sent
    to an Alertmanager receiver is sent again once ``resend_every`` has passed since it
    last was (one row per alert and receiver, replaced each time)."""
    managers = [r for r in alerting.receivers if r.type == "alertmanager"]
    if not rows or not managers:
        return []
    t = store.table(OUTBOX)
    ids = [r["alert_id"] for r in rows]
    found = store.execute(
        t.filter(t.alert_id.isin(ids))
        .group_by(["alert_id", "receiver"])
        .aggregate(last=t.created_at.max(), pending=(t.delivered_at.isnull() & ~t.gave_up).any())
    ).to_pylist()
    last = {(f["alert_id"], f["receiver"]): f for f in found}
    out = []
    for row in rows:
        labels = alert_labels(row)
        for receiver in managers:
            if not matches_all(receiver.match, labels):
                continue
            seen = last.get((row["alert_id"], receiver.name))
            if seen is None or seen["pending"] or now - seen["last"] < alerting.resend_every:
                continue  # never sent here (muted when it fired), on its way, or recent
            out.append(
                {
                    "notification_id": f"{REFRESH}-{row['alert_id']}-{receiver.name}",
                    "receiver": receiver.name,
                    "alert_id": row["alert_id"],
                    "kind": REFRESH,
                    "payload": json.dumps(payload(receiver, alerting, row, "firing", now)),
                    "created_at": now,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "gave_up": False,
                }
            )
    return out


def notifications(
    alerting: AlertingConfig, row: Mapping[str, Any], kind: str, now: datetime
) -> list[dict[str, Any]]:
    labels = alert_labels(row)
    out = []
    for receiver in alerting.receivers:
        if not matches_all(receiver.match, labels):
            continue
        out.append(
            {
                "notification_id": uuid.uuid4().hex,
                "receiver": receiver.name,
                "alert_id": row["alert_id"],
                "kind": kind,
                "payload": json.dumps(payload(receiver, alerting, row, kind, now)),
                "created_at": now,
                "attempts": 0,
                "next_attempt_at": now,
                "gave_up": False,
            }
        )
    return out


__all__ = [
    "active_silences",
    "add_silence",
    "alert_labels",
    "expire_silence",
    "matches_all",
    "notifications",
    "reconcile",
    "why_muted",
]
