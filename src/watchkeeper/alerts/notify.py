"""Notifications: what each receiver is sent, and the outbox that sends it.

Every notification is written to the outbox (in the transaction that decided it) before it
is sent. ``deliver`` takes the due ones, records the attempt *before* sending (so a crash
mid-send is retried, never forgotten), sends, and records the delivery. A notification
whose send was cut short by a crash is sent again after restart; it carries the same
``notification_id`` (in the body and the ``Idempotency-Key`` header) so a receiver can
drop the repeat, and Alertmanager merges it by its labels.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from watchkeeper.config import AlertingConfig, ReceiverConfig
from watchkeeper.store import Store
from watchkeeper.store.engine import shared_rows
from watchkeeper.store.tables import OUTBOX

log = logging.getLogger("watchkeeper.alerts")

BACKOFF_FIRST = timedelta(seconds=5)
BACKOFF_MAX = timedelta(minutes=30)


def link(alerting: AlertingConfig, row: Mapping[str, Any]) -> str:
    """Where the dashboard shows the alert."""
    base = alerting.dashboard_url.rstrip("/")
    return f"{base}/models/{row['model']}/alerts/{row['alert_id']}"


def _time(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else None


def payload(
    receiver: ReceiverConfig,
    alerting: AlertingConfig,
    row: Mapping[str, Any],
    kind: str,
    now: datetime,
) -> Any:
    """The body for ``receiver`` (the outbox adds the notification id for webhooks)."""
    labels = {**json.loads(row["labels"]), "severity": row["severity"]}
    evidence = json.loads(row["evidence"] or "[]")
    url = link(alerting, row)
    if receiver.type == "alertmanager":
        annotations = {
            "summary": row["summary"] or "",
            "description": "; ".join(e["text"] for e in evidence) or row["summary"] or "",
            "dashboard": url,
            "window": f"{_time(row['window_start'])} ({row['window_size_s']} s)",
        }
        alert: dict[str, Any] = {
            "labels": labels,
            "annotations": annotations,
            "startsAt": _time(row["started_at"]),
            "generatorURL": url,
        }
        if kind == "resolved":
            alert["endsAt"] = _time(row["resolved_at"] or now)
        return [alert]
    if receiver.type == "slack":
        icon = {"page": ":rotating_light:", "ticket": ":warning:"}.get(row["severity"], ":bell:")
        head = "RESOLVED" if kind == "resolved" else row["severity"].upper()
        text = f"{icon} [{head}] {row['summary']}"
        lines = "\n".join(f"• {e['text']}" for e in evidence[:5])
        return {
            "text": text,
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": f"*{text}*\n{lines}"}},
                {
                    "type": "context",
                    "elements": [
                        {
                            "type": "mrkdwn",
                            "text": f"rule {row['rule']} · owner {row['owner']} · "
                            f"<{url}|dashboard>",
                        }
                    ],
                },
            ],
        }
    return {
        "kind": kind,
        "alert_id": row["alert_id"],
        "rule": row["rule"],
        "model": row["model"],
        "severity": row["severity"],
        "owner": row["owner"],
        "state": "resolved" if kind == "resolved" else "firing",
        "labels": labels,
        "summary": row["summary"],
        "evidence": evidence,
        "window_start": _time(row["window_start"]),
        "started_at": _time(row["started_at"]),
        "resolved_at": _time(row["resolved_at"]),
        "dashboard": url,
    }


Sender = Callable[[ReceiverConfig, str, Any], None]


def http_send(receiver: ReceiverConfig, notification_id: str, body: Any) -> None:
    """POST the body as JSON; any answer but 2xx raises."""
    if receiver.type == "log":
        text = body.get("summary") if isinstance(body, dict) else json.dumps(body)
        log.warning("alert %s: %s", body.get("kind", "") if isinstance(body, dict) else "", text)
        return
    assert receiver.url is not None
    url = receiver.url
    if receiver.type == "alertmanager":
        url = url.rstrip("/") + "/api/v2/alerts"
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Idempotency-Key": notification_id},
    )
    with urllib.request.urlopen(request, timeout=receiver.timeout.total_seconds()) as answer:
        if not 200 <= answer.status < 300:
            raise OSError(f"{url} answered {answer.status}")


@dataclass(frozen=True)
class Delivery:
    delivered: int
    failed: int
    gave_up: int


def deliver(
    store: Store,
    alerting: AlertingConfig,
    now: datetime,
    send: Sender = http_send,
    limit: int = 500,
) -> Delivery:
    """Send the due notifications, oldest first; failures are retried with exponential
    backoff (5 s doubling to 30 min) until ``max_attempts``."""
    receivers = {r.name: r for r in alerting.receivers}
    t = store.table(OUTBOX)
    due = store.execute(
        t.filter(t.delivered_at.isnull() & ~t.gave_up & (t.next_attempt_at <= now))
        .order_by(["created_at", "notification_id"])
        .limit(limit)
    ).to_pylist()
    delivered = failed = gave_up = 0
    for row in due:
        attempts = int(row["attempts"]) + 1
        wait = min(BACKOFF_FIRST * 2 ** (attempts - 1), BACKOFF_MAX)
        receiver = receivers.get(row["receiver"])
        # The attempt is recorded before the send: a crash now means a retry, not a loss.
        pending = {**row, "attempts": attempts, "next_attempt_at": now + wait}
        _put(store, pending)
        if receiver is None:
            _put(store, {**pending, "gave_up": True, "last_error": "receiver removed"})
            gave_up += 1
            continue
        body = json.loads(row["payload"])
        if receiver.type == "webhook" and isinstance(body, dict):
            body = {"notification_id": row["notification_id"], **body}
        try:
            send(receiver, row["notification_id"], body)
        except (OSError, urllib.error.URLError, ValueError) as exc:
            failed += 1
            final = attempts >= alerting.max_attempts
            gave_up += final
            _put(store, {**pending, "last_error": str(exc)[:500], "gave_up": final})
            log.warning(
                "notification %s to %s failed: %s", row["notification_id"], receiver.name, exc
            )
            continue
        _put(store, {**pending, "delivered_at": now, "last_error": None})
        delivered += 1
    return Delivery(delivered, failed, gave_up)


def _put(store: Store, row: dict[str, Any]) -> None:
    with store.transaction():
        store.delete(OUTBOX, lambda t: t.notification_id == row["notification_id"])
        store.insert(OUTBOX, shared_rows(OUTBOX, [row]))
