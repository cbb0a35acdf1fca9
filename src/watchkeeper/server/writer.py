"""One writer: ingestion requests are queued and committed in groups.

Requests wait in a queue; the writer thread takes as many as are waiting (up to a number of
rows), ingests them in one transaction (``ingest_group``) and answers each with its own
result only after the commit. Many small requests therefore cost one commit, not one each.
If a group fails, its requests are retried one by one, so one bad request cannot fail the
others.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa

from watchkeeper.config import ModelConfig
from watchkeeper.ingest.pipeline import IngestResult, Job, ingest_group
from watchkeeper.ingest.readers import Rejected, Source
from watchkeeper.schema import Kind
from watchkeeper.store import Store

log = logging.getLogger("watchkeeper.server")


@dataclass
class _Request:
    model: ModelConfig
    kind: Kind
    batches: list[pa.RecordBatch]  # read in full before queueing, so a retry can reread
    rejected: list[Rejected]
    name: str
    version: str | None
    future: Future[IngestResult]

    @property
    def rows(self) -> int:
        return sum(b.num_rows for b in self.batches)

    def job(self) -> Job:
        source = Source(self.name, iter(self.batches), self.rows, list(self.rejected))
        return Job(self.model, self.kind, source, self.version)


class Writer:
    def __init__(self, store: Store, clock: Callable[[], datetime], max_rows: int) -> None:
        self.store = store
        self.clock = clock
        self.max_rows = max_rows
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="watchkeeper-writer", daemon=True)
        self.groups = 0
        self.requests = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    def submit(
        self, model: ModelConfig, kind: Kind, source: Source, version: str | None = None
    ) -> Future[IngestResult]:
        """Queue a request; its future is answered after the commit."""
        batches = list(source.batches)  # reading may add rejected lines to the source
        future: Future[IngestResult] = Future()
        self._queue.put(
            _Request(model, kind, batches, source.rejected, source.name, version, future)
        )
        return future

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            rows = first.rows
            stop = False
            while rows < self.max_rows:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                group.append(nxt)
                rows += nxt.rows
            self._commit(group)
            if stop:
                return

    def _commit(self, group: list[_Request]) -> None:
        try:
            results = ingest_group(self.store, [r.job() for r in group], self.clock())
        except Exception:  # handed to the request's future: its client gets the error
            if len(group) == 1:
                log.exception("ingestion failed")
                group[0].future.set_exception(_last_error())
                return
            for r in group:  # one by one, so a bad request fails alone
                self._commit([r])
            return
        self.groups += 1
        self.requests += len(group)
        for r, result in zip(group, results, strict=True):
            r.future.set_result(result)


def _last_error() -> BaseException:
    import sys

    error = sys.exc_info()[1]
    return error if error is not None else RuntimeError("ingestion failed")
