"""The scheduler inside ``serve``: every ``schedule_every``, for each model, compute the
windows that closed and the dirty ones (late events, late labels), evaluate the alert rules
and deliver their notifications.

Runs are idempotent (a window's metrics are replaced, never added to) and alert state is
stored, so a restart neither loses nor double-counts anything: the next tick picks up what
is due.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime

from watchkeeper.workspace import Workspace

log = logging.getLogger("watchkeeper.server")


class Scheduler:
    def __init__(
        self,
        workspace: Workspace,
        every_seconds: float,
        lock: threading.Lock,
    ) -> None:
        self.ws = workspace
        self.every = every_seconds
        self.lock = lock  # held while a tick works (serializes with the API's runs)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name="watchkeeper-scheduler", daemon=True
        )
        self.ticks = 0
        self.errors = 0
        self.last_tick: datetime | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.tick()
            self._stop.wait(max(self.every - (time.monotonic() - started), 0.05))

    def tick(self) -> None:
        """One cycle over every model (run, evaluate, deliver); a model that fails is logged
        and counted, and the others go on."""
        with self.lock:
            try:
                done = self.ws.cycle(strict=False)
                self.errors += len(done.failed)
            except Exception:  # delivery or the store itself: logged, counted, next tick
                self.errors += 1
                log.exception("the scheduled cycle failed")
            self.ticks += 1
            self.last_tick = self.ws.clock()
