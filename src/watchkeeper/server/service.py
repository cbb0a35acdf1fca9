"""The app's state: its workspaces (reader, writer, scheduler), the writer's group commit,
the scheduler, the Prometheus registry and the API keys."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from fastapi import Request
from prometheus_client import CollectorRegistry

from watchkeeper.config import Config
from watchkeeper.server.auth import Denied, check, csrf_ok, load_keys, presented_key
from watchkeeper.server.exporter import StoreCollector
from watchkeeper.server.http import ApiError
from watchkeeper.server.scheduler import Scheduler
from watchkeeper.server.writer import Writer
from watchkeeper.workspace import Workspace

T = TypeVar("T")


class Service:
    """The app's state: its workspaces, writer, scheduler and keys."""

    def __init__(
        self,
        config: Config,
        clock: Callable[[], datetime],
        schedule: bool,
        environ: dict[str, str] | None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.keys = load_keys(config, environ)  # a missing key variable stops us here
        self.read_lock = threading.Lock()
        self.run_lock = threading.Lock()
        self.schedule = schedule and config.server.schedule_every is not None
        self.registry = CollectorRegistry()
        self.registry.register(StoreCollector(config, self.read, self.health))

    def start(self) -> None:
        """Open the store three times (reader, writer, scheduler) and start the threads."""
        config, clock = self.config, self.clock
        self.reader = Workspace.open(config, clock=clock)
        self.writer_ws = Workspace.open(config, clock=clock)
        self.writer = Writer(self.writer_ws.store, clock, config.server.group_commit_rows)
        self.scheduler_ws = Workspace.open(config, clock=clock)
        every = config.server.schedule_every
        self.scheduler = Scheduler(
            self.scheduler_ws, every.total_seconds() if every else 0.0, self.run_lock
        )
        self.writer.start()
        if self.schedule:
            self.scheduler.start()

    def stop(self) -> None:
        if self.schedule:
            self.scheduler.stop()
        self.writer.stop()
        for ws in (self.reader, self.writer_ws, self.scheduler_ws):
            ws.close()

    def read(self, fn: Callable[[Workspace], T]) -> T:
        with self.read_lock:
            return fn(self.reader)

    def health(self) -> dict[str, float]:
        return {
            "ingest_groups_total": float(self.writer.groups),
            "ingest_requests_total": float(self.writer.requests),
            "scheduler_ticks_total": float(self.scheduler.ticks),
            "scheduler_errors_total": float(self.scheduler.errors),
        }

    def authorize(self, request: Request, scope: str) -> None:
        # The session cookie counts for the dashboard's pages, and for the API only with
        # the CSRF token the dashboard's script sends beside it.
        page = not request.url.path.startswith(("/api/", "/metrics"))
        allow = page or csrf_ok(request.headers, request.cookies)
        try:
            check(self.keys, presented_key(request.headers, request.cookies, allow), scope)
        except Denied as exc:
            raise ApiError(exc.status, exc.message, "authorization") from None

    def model_or_404(self, name: str) -> None:
        self.config.model(name)  # UnknownModelError → 404


__all__ = ["Service"]
