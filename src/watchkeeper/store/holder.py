"""Who holds an embedded store: `watchkeeper serve` leaves a note beside the DuckDB file
(its URL and process id) while it runs, so a CLI command that finds the file locked can say
which server holds it and how to reach it, instead of DuckDB's raw lock message."""

from __future__ import annotations

import json
import os
import re
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from watchkeeper.errors import StoreError

_PID = re.compile(r"PID (\d+)")


def note_path(engine_url: str) -> Path | None:
    """Where the note of a DuckDB file store lives (None for other engines)."""
    if not engine_url.startswith("duckdb://"):
        return None
    path = engine_url.removeprefix("duckdb://")
    if not path or path == ":memory:":
        return None
    return Path(path + ".server.json")


@contextmanager
def holding(engine_url: str, url: str) -> Iterator[None]:
    """Leave the note for the duration of the block (a server's lifetime)."""
    note = note_path(engine_url)
    if threading.current_thread() is threading.main_thread():
        # A server re-raises the SIGTERM it caught once it has shut down: exit through
        # this block (removing the note) instead of dying on the default action.
        signal.signal(signal.SIGTERM, _exit)
    if note is not None:
        note.write_text(
            json.dumps({"url": url, "pid": os.getpid(), "since": datetime.now(UTC).isoformat()}),
            encoding="utf-8",
        )
    try:
        yield
    finally:
        if note is not None:
            note.unlink(missing_ok=True)


def _exit(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def holder(engine_url: str) -> dict[str, Any] | None:
    """The running server's note, if one is there and its process is alive."""
    note = note_path(engine_url)
    if note is None or not note.exists():
        return None
    try:
        found = json.loads(note.read_text(encoding="utf-8"))
        os.kill(int(found["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None  # a note left by a server that died: nobody to name
    return found if isinstance(found, dict) else None


def is_locked(exc: BaseException) -> bool:
    return "lock" in str(exc).lower() and "conflicting" in str(exc).lower()


def explain_lock(engine_url: str, exc: StoreError) -> StoreError:
    """A StoreError naming who holds the store and what to do instead."""
    where = engine_url.removeprefix("duckdb://")
    found = holder(engine_url)
    if found is not None:
        return StoreError(
            f"the store {where} is held by `watchkeeper serve` at {found['url']} (pid "
            f"{found['pid']}); DuckDB lets one process open it. Use the server's HTTP API "
            f"({found['url']}/docs; reads under /api/v1, POST /api/v1/runs for a run), or "
            "stop the server first"
        )
    pid = _PID.search(str(exc))
    who = f"another process (pid {pid.group(1)})" if pid else "another process"
    return StoreError(
        f"the store {where} is held by {who}; DuckDB lets one process open it. Wait for it "
        "to finish, or stop it first"
    )


__all__ = ["explain_lock", "holder", "holding", "is_locked", "note_path"]
