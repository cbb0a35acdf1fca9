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
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa

from watchkeeper.config import ModelConfig
from watchkeeper.errors import InputError
from watchkeeper.ingest.pipeline import IngestResult, Job, ingest_group
from watchkeeper.ingest.readers import Rejected, Source
from watchkeeper.schema import Kind
from watchkeeper.store import Store

log = logging.getLogger("watchkeeper.server")


@dataclass
class _Request:
    model: ModelConfig
    kind: Kind
    # Read in full before queueing, so that a retry can reread; or, for a large body, read
    # as it is stored (``streamed``): such a request is committed alone, in one go.
    batches: list[pa.RecordBatch] | Iterator[pa.RecordBatch]
    rejected: list[Rejected]
    name: str
    version: str | None
    future: Future[IngestResult]

    @property
    def streamed(self) -> bool:
        return not isinstance(self.batches, list)

    @property
    def rows(self) -> int:
        if not isinstance(self.batches, list):
            return 0
        return sum(b.num_rows for b in self.batches)

    def job(self) -> Job:
        if not isinstance(self.batches, list):
            source = Source(self.name, self.batches, None, self.rejected, streamed=True)
        else:
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
        """Queue a request; its future is answered after the commit. A streamed source is
        read by the writer as it stores it (its ``rejected`` list filled as it goes)."""
        future: Future[IngestResult] = Future()
        if source.streamed:
            request = _Request(
                model, kind, source.batches, source.rejected, source.name, version, future
            )
        else:
            batches = list(source.batches)  # reading may add rejected lines to the source
            request = _Request(model, kind, batches, source.rejected, source.name, version, future)
        self._queue.put(request)
        return future

    def _loop(self) -> None:
        held: _Request | None = None  # a streamed request met while grouping: the next group
        while True:
            first = held if held is not None else self._queue.get()
            held = None
            if first is None:
                return
            group = [first]
            rows = first.rows
            stop = False
            while rows < self.max_rows and not first.streamed:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                if nxt.streamed:
                    held = nxt
                    break
                group.append(nxt)
                rows += nxt.rows
            self._commit(group)
            if stop:
                return

    def _commit(self, group: list[_Request]) -> None:
        try:
            results = ingest_group(self.store, [r.job() for r in group], self.clock())
        except Exception as exc:  # handed to the request's future: its client gets the error
            if len(group) == 1:
                if isinstance(exc, InputError):  # the client's mistake, told to the client
                    log.info("ingestion refused: %s", exc)
                else:
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
