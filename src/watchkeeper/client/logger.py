"""The SDK logger for serving apps: log predictions, labels and outcomes without slowing
the request path.

``log_prediction`` and friends only append to a bounded in-memory queue (a full queue drops
the row and counts it, rather than growing without limit or blocking). A background thread
sends batches as gzip-compressed JSON Lines to ``watchkeeper serve``, retrying with backoff
while the server is down; a batch keeps its rows (and their event ids) across retries, so a
retry of a batch the server did commit is stored once. ``close`` (also at exit) flushes.

``AsyncLogger`` is the same queue sent from a task on an asyncio loop; ``DirectLogger``
has the same methods and writes straight to the store, for batch jobs. ``watch`` (a
decorator) and ``WatchkeeperMiddleware`` (ASGI) in ``watchkeeper.client.serving`` log a
served prediction with its latency and status from any of them.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import gzip
import json
import logging
import threading
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

log = logging.getLogger("watchkeeper.client")  # the package's name (what users configure)

KINDS = ("events", "labels", "outcomes")
DEFAULT_NAMES = {
    "event_id": "event_id",
    "timestamp": "timestamp",
    "label": "label",
    "outcome": "outcome",
    "value": "value",
    # What ``watch`` and the ASGI middleware write (watchkeeper.client.serving).
    "score": "score",
    "latency": "latency_ms",
    "status": "status",
    "model_version": "model_version",
}


class _Rows:
    """The logging methods, with label and outcome rows under the configured names."""

    names: dict[str, str]

    def _put(self, kind: str, row: dict[str, Any]) -> bool:
        raise NotImplementedError

    def log_prediction(self, event: Mapping[str, Any]) -> bool:
        """Queue one event (a dict with the config's column names). False if dropped."""
        return self._put("events", dict(event))

    def log_label(self, event_id: str, label: Any, **extra: Any) -> bool:
        return self._put("labels", self._label(event_id, label, extra))

    def log_outcome(self, event_id: str | None, outcome: str, value: Any, **extra: Any) -> bool:
        return self._put("outcomes", self._outcome(event_id, outcome, value, extra))

    def _label(self, event_id: str, label: Any, extra: dict[str, Any]) -> dict[str, Any]:
        return {self.names["event_id"]: event_id, self.names["label"]: label, **extra}

    def _outcome(
        self, event_id: str | None, outcome: str, value: Any, extra: dict[str, Any]
    ) -> dict[str, Any]:
        row = {self.names["outcome"]: outcome, self.names["value"]: value, **extra}
        if event_id is not None:
            row[self.names["event_id"]] = event_id
        return row


@dataclass
class Stats:
    queued: int = 0
    sent: int = 0  # rows the server acknowledged
    dropped: int = 0  # rows refused because the queue was full
    rejected: int = 0  # rows in batches the server refused as bad input (4xx)
    quarantined: int = 0  # rows of acknowledged batches the server quarantined as bad rows
    retries: int = 0
    reasons: dict[str, int] = field(default_factory=dict)  # quarantined rows per reason


def _count_quarantined(stats: Stats, kind: str, answer: Mapping[str, Any]) -> None:
    """Add an ingest answer's quarantined rows to ``stats``, with a warning naming the
    reasons (a serving team must learn that its rows are refused)."""
    found = {str(k): int(v) for k, v in (answer.get("quarantined") or {}).items()}
    total = sum(found.values())
    if not total:
        return
    stats.quarantined += total
    for reason, n in found.items():
        stats.reasons[reason] = stats.reasons.get(reason, 0) + n
    examples = answer.get("examples") or {}
    said = "; ".join(
        f"{reason}: {n}" + (f" (e.g. {examples[reason]})" if reason in examples else "")
        for reason, n in sorted(found.items())
    )
    missing = answer.get("absent_required") or []
    log.warning(
        "watchkeeper quarantined %d of %d %s: %s%s",
        total,
        int(answer.get("rows") or total),
        kind,
        said,
        f"; required columns missing: {', '.join(missing)}" if missing else "",
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)


class _Batches(_Rows):
    """The queue both remote loggers share: bounded, in batches per kind, a batch kept
    (with its event ids) until the server has it, and the HTTP send."""

    def __init__(
        self,
        url: str,
        model: str,
        *,
        api_key: str | None,
        max_queue: int,
        batch_size: int,
        flush_interval: float,
        timeout: float,
        max_backoff: float,
        names: Mapping[str, str] | None,
    ) -> None:
        self.names = {**DEFAULT_NAMES, **(names or {})}
        self.url = url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.max_queue = max_queue
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.timeout = timeout
        self.max_backoff = max_backoff
        self.stats = Stats()
        self._queues: dict[str, deque[dict[str, Any]]] = {k: deque() for k in KINDS}
        self._pending: dict[str, list[dict[str, Any]]] = {}  # a batch being sent (or retried)
        self._lock = threading.Lock()  # the request path may be any thread
        self._closing = False

    def _enqueue(self, kind: str, row: dict[str, Any]) -> tuple[bool, bool]:
        """(taken, a batch is full). Call with the lock held."""
        if self._closing or self._size() >= self.max_queue:
            self.stats.dropped += 1
            return False, False
        self._queues[kind].append(row)
        self.stats.queued += 1
        return True, len(self._queues[kind]) >= self.batch_size

    def _size(self) -> int:
        return sum(len(q) for q in self._queues.values()) + sum(
            len(b) for b in self._pending.values()
        )

    def _next_batch(self) -> tuple[str, list[dict[str, Any]]] | None:
        with self._lock:
            for kind, rows in self._pending.items():
                return kind, rows
            for kind in KINDS:
                q = self._queues[kind]
                if q:
                    rows = [q.popleft() for _ in range(min(len(q), self.batch_size))]
                    self._pending[kind] = rows
                    return kind, rows
        return None

    def _done(self, kind: str) -> bool:
        """Forget a batch the server has; True when nothing is left to send."""
        with self._lock:
            self._pending.pop(kind, None)
            return self._size() == 0

    def _send(self, kind: str, rows: list[dict[str, Any]]) -> bool:
        """True when the batch is done with (committed, or refused as bad input)."""
        body = "\n".join(json.dumps(r, default=_json_default) for r in rows).encode()
        request = urllib.request.Request(
            f"{self.url}/api/v1/models/{self.model}/{kind}",
            data=gzip.compress(body),
            method="POST",
            headers={
                "Content-Type": "application/x-ndjson",
                "Content-Encoding": "gzip",
                **({"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                said = answer.read()
        except urllib.error.HTTPError as exc:
            if 400 <= exc.code < 500 and exc.code not in (408, 429):
                self.stats.rejected += len(rows)
                log.warning("watchkeeper refused a batch of %d %s: %s", len(rows), kind, exc.code)
                return True
            return False
        except (OSError, urllib.error.URLError):
            return False
        self.stats.sent += len(rows)
        # An answer that is not the ingest summary has nothing more to count.
        with contextlib.suppress(ValueError, AttributeError):
            _count_quarantined(self.stats, kind, json.loads(said))
        return True


class Logger(_Batches):
    """Logs to a watchkeeper server from a background thread."""

    def __init__(
        self,
        url: str,
        model: str,
        *,
        api_key: str | None = None,
        max_queue: int = 100_000,
        batch_size: int = 1_000,
        flush_interval: float = 1.0,
        timeout: float = 10.0,
        max_backoff: float = 30.0,
        names: Mapping[str, str] | None = None,
    ) -> None:
        """``names`` maps the roles (``event_id``, ``timestamp``, ``label``, ``outcome``,
        ``value``, and for ``watch`` and the middleware ``score``, ``latency``, ``status``,
        ``model_version``) to the column names in your watchkeeper.yaml when they differ
        (``{"label": "is_fraud"}``)."""
        super().__init__(
            url,
            model,
            api_key=api_key,
            max_queue=max_queue,
            batch_size=batch_size,
            flush_interval=flush_interval,
            timeout=timeout,
            max_backoff=max_backoff,
            names=names,
        )
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._thread = threading.Thread(target=self._loop, name="watchkeeper-logger", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    # -- the request path: append and return -----------------------------------------------

    def _put(self, kind: str, row: dict[str, Any]) -> bool:
        with self._lock:
            taken, full = self._enqueue(kind, row)
            if taken:
                self._idle.clear()
        if full:
            self._wake.set()
        return taken

    # -- the background sender ------------------------------------------------------------------

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything queued so far is sent; False on timeout."""
        self._wake.set()
        return self._idle.wait(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Send what is queued (waiting at most ``timeout``), then stop."""
        if self._closed.is_set():
            return
        self.flush(timeout)
        with self._lock:
            self._closing = True
        self._closed.set()
        self._wake.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        backoff = 0.5
        while True:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            while True:
                batch_kind = self._next_batch()
                if batch_kind is None:
                    break
                kind, rows = batch_kind
                if self._send(kind, rows):
                    backoff = 0.5
                    self._done(kind)
                    continue
                # Down: keep the batch, wait, try again (unless closing with nothing sent).
                self.stats.retries += 1
                if self._closed.is_set():
                    return
                self._wake.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff)
            with self._lock:
                if self._size() == 0:
                    self._idle.set()
            if self._closed.is_set():
                return


class AsyncLogger(_Batches):
    """Logs to a watchkeeper server from a task on the running event loop, for asyncio
    services: ``log_*`` append and return (from the loop or any thread), and the sending
    runs off the loop in a worker thread so a slow server never blocks a request.

    ``async with AsyncLogger(url, "fraud") as wk:`` starts it and flushes at the end; or
    ``await wk.start()`` in the app's startup and ``await wk.aclose()`` in its shutdown."""

    def __init__(
        self,
        url: str,
        model: str,
        *,
        api_key: str | None = None,
        max_queue: int = 100_000,
        batch_size: int = 1_000,
        flush_interval: float = 1.0,
        timeout: float = 10.0,
        max_backoff: float = 30.0,
        names: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            url,
            model,
            api_key=api_key,
            max_queue=max_queue,
            batch_size=batch_size,
            flush_interval=flush_interval,
            timeout=timeout,
            max_backoff=max_backoff,
            names=names,
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None

    async def start(self) -> AsyncLogger:
        if self._task is None:
            self._loop = asyncio.get_running_loop()
            self._wake, self._idle = asyncio.Event(), asyncio.Event()
            with self._lock:
                if self._size() == 0:
                    self._idle.set()
            self._task = self._loop.create_task(self._run(), name="watchkeeper-logger")
        return self

    async def __aenter__(self) -> AsyncLogger:
        return await self.start()

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    def _put(self, kind: str, row: dict[str, Any]) -> bool:
        with self._lock:
            taken, full = self._enqueue(kind, row)
        if taken and self._loop is not None:
            # asyncio's events are not thread-safe: set them on the loop's own thread.
            with contextlib.suppress(RuntimeError):  # the loop has closed
                self._loop.call_soon_threadsafe(self._signal, full)
        return taken

    def _signal(self, full: bool) -> None:
        assert self._wake is not None and self._idle is not None
        self._idle.clear()
        if full:
            self._wake.set()

    async def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything queued so far is sent; False on timeout."""
        await self.start()
        assert self._wake is not None and self._idle is not None
        self._wake.set()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def aclose(self, timeout: float = 30.0) -> None:
        """Send what is queued (waiting at most ``timeout``), then stop the task."""
        if self._task is None or self._task.done():
            return
        await self.flush(timeout)
        with self._lock:
            self._closing = True
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        assert self._wake is not None and self._idle is not None
        backoff = 0.5
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_interval)
            self._wake.clear()
            while (batch := self._next_batch()) is not None:
                kind, rows = batch
                if await asyncio.to_thread(self._send, kind, rows):
                    backoff = 0.5
                    self._done(kind)
                    continue
                self.stats.retries += 1  # down: keep the batch, wait, try again
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), backoff)
                self._wake.clear()
                backoff = min(backoff * 2, self.max_backoff)
            with self._lock:
                if self._size() == 0:
                    self._idle.set()


class DirectLogger(_Rows):
    """The same methods, writing straight to the store in batches (for batch jobs)."""

    def __init__(self, workspace: Any, model: str, batch_size: int = 10_000) -> None:
        cfg = workspace.config.model(model)
        roles = {
            "event_id": cfg.columns.event_id,
            "timestamp": cfg.columns.timestamp,
            "label": cfg.labels.column,
            "outcome": cfg.outcome_columns.name,
            "value": cfg.outcome_columns.value,
            "score": cfg.columns.score,
            "latency": cfg.columns.latency,
            "status": cfg.columns.status,
            "model_version": cfg.columns.model_version,
        }
        self.names = {role: name for role, name in roles.items() if name}
        self.ws = workspace
        self.model = model
        self.batch_size = batch_size
        self.stats = Stats()
        self._rows: dict[str, list[dict[str, Any]]] = {k: [] for k in KINDS}

    def _put(self, kind: str, row: dict[str, Any]) -> bool:
        self._rows[kind].append(row)
        self.stats.queued += 1
        if len(self._rows[kind]) >= self.batch_size:
            self._write(kind)
        return True

    def _write(self, kind: str) -> None:
        rows, self._rows[kind] = self._rows[kind], []
        if rows:
            result = self.ws.ingest(kind, self.model, rows)
            self.stats.sent += len(rows)
            _count_quarantined(self.stats, kind, result.to_dict())

    def flush(self, timeout: float = 0.0) -> bool:
        for kind in KINDS:
            self._write(kind)
        return True

    def close(self, timeout: float = 0.0) -> None:
        self.flush()


__all__ = ["AsyncLogger", "DirectLogger", "Logger", "Stats"]
