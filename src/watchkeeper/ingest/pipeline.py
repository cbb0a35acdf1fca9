"""Ingest a source of events, labels, outcomes or reference rows into the store.

Every call: validate each batch in Arrow, quarantine bad rows with their reason and raw
values, drop what is already stored (an event id, or a label identical to the stored one),
append the rest, record the event-time hours it touched, and log the call in
``ingestions``. Each batch commits whole (its rows, its quarantine and the hours it
touched), so memory stays bounded for a file of any size; a call that is interrupted keeps
its committed batches, and running it again stores the rest, because what is stored already
is skipped. A reference set becomes visible only when its last batch is in.

Labels and outcomes are append-only: a corrected label is a new row, and the newest row
per key is the label in force, so the change history is the table itself. A label may
arrive before its event; it joins when the event does, because the join is made when
metrics are computed, not here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa

from watchkeeper.config import ModelConfig
from watchkeeper.ingest.batches import BatchRun
from watchkeeper.ingest.readers import Source
from watchkeeper.ingest.result import IngestResult, new_batch_id
from watchkeeper.schema import Kind, spec_for
from watchkeeper.store import Store
from watchkeeper.store.engine import arrow_schema
from watchkeeper.store.tables import INGESTIONS, REFERENCE_SETS, SHARED

# Called after each batch with the rows it held and the input's total rows, if known.
Progress = Callable[[int, int | None], None]

_REFERENCE_SETS_SCHEMA = arrow_schema(SHARED[REFERENCE_SETS])


def ingest(
    store: Store,
    model: ModelConfig,
    kind: Kind,
    source: Source,
    *,
    now: datetime,
    version: str | None = None,
    progress: Progress | None = None,
) -> IngestResult:
    return _ingest_one(
        store, model, kind, source, source.batches, now, version, progress, store.transaction
    )


def _ingest_one(
    store: Store,
    model: ModelConfig,
    kind: Kind,
    source: Source,
    batches: Iterable[pa.RecordBatch],
    now: datetime,
    version: str | None,
    progress: Progress | None,
    commit: Callable[[], AbstractContextManager[None]],
) -> IngestResult:
    """One ingestion: each batch, then the rejected lines and the log row, each inside
    ``commit`` (a transaction of its own, or nothing inside a caller's)."""
    batch_id = new_batch_id(now)
    result = IngestResult(model.name, kind, batch_id, source.name)
    run = BatchRun(store, spec_for(kind, model), model, result, now, version or model.version)
    offset = 0
    for batch in batches:
        with commit():
            run.batch(batch, offset)
        offset += batch.num_rows
        result.rows += batch.num_rows
        if progress is not None:
            progress(batch.num_rows, source.total_rows)
    with commit():
        _finish(store, run, source, kind, model, batch_id, now)
    return result


@dataclass(frozen=True)
class Job:
    """One ingestion request of a group (see ``ingest_group``)."""

    model: ModelConfig
    kind: Kind
    source: Source
    version: str | None = None


def ingest_group(store: Store, jobs: Sequence[Job], now: datetime) -> list[IngestResult]:
    """Several small ingestions in one transaction (group commit): each is validated,
    deduplicated and logged as if alone, and a later one sees the earlier ones' rows (a
    client's retry inside the same group counts as duplicates). All commit or none do.

    Events requests of the same model, version and columns, with no event id in common,
    are validated and stored as one batch and their results told apart afterwards, so a
    group of many small requests costs about what one request of their size does."""
    if len(jobs) == 1 and jobs[0].source.streamed:  # read as it is stored, in one go
        job = jobs[0]
        with store.transaction():
            args = (job.source, job.source.batches, now, job.version, None, nullcontext)
            return [_ingest_one(store, job.model, job.kind, *args)]
    if any(job.source.streamed for job in jobs):
        raise ValueError("a streamed source is ingested alone")
    results: list[IngestResult | None] = [None] * len(jobs)
    batches = [list(job.source.batches) for job in jobs]
    with store.transaction():
        for indices in _mergeable(jobs, batches):
            if len(indices) > 1:
                found = _ingest_merged(
                    store, [jobs[i] for i in indices], [batches[i] for i in indices], now
                )
                for i, result in zip(indices, found, strict=True):
                    results[i] = result
                continue
            i = indices[0]
            job = jobs[i]
            if job.kind == "reference":
                raise ValueError("references are set one at a time")
            results[i] = _ingest_one(
                store,
                job.model,
                job.kind,
                job.source,
                batches[i],
                now,
                job.version,
                None,
                nullcontext,
            )
    return [r for r in results if r is not None]


def _mergeable(jobs: Sequence[Job], batches: list[list[pa.RecordBatch]]) -> list[list[int]]:
    """Runs of consecutive jobs that can be stored as one batch: events of one model and
    version, the same columns, no rejected lines, and no event id in two of them."""
    out: list[list[int]] = []
    ids: set[Any] = set()  # the event ids of the current run
    for i, job in enumerate(jobs):
        ok = _can_merge(job, batches[i])
        mine: set[Any] = set()
        if ok:
            for b in batches[i]:
                mine.update(b.column(job.model.columns.event_id).to_pylist())
        if ok and out:
            head = out[-1][0]
            first = jobs[head]
            if (
                _can_merge(first, batches[head])
                and first.model.name == job.model.name
                and (first.version or first.model.version) == (job.version or job.model.version)
                and batches[head][0].schema == batches[i][0].schema
                and not (mine & ids)
            ):
                out[-1].append(i)
                ids |= mine
                continue
        out.append([i])
        ids = mine
    return out


def _can_merge(job: Job, batches: list[pa.RecordBatch]) -> bool:
    return (
        job.kind == "events"
        and not job.source.rejected
        and bool(batches)
        and all(job.model.columns.event_id in b.schema.names for b in batches)
    )


def _ingest_merged(
    store: Store, jobs: list[Job], batches: list[list[pa.RecordBatch]], now: datetime
) -> list[IngestResult]:
    model = jobs[0].model
    version = jobs[0].version or model.version
    tables = [pa.Table.from_batches(b) for b in batches]
    merged = pa.concat_tables(tables).combine_chunks()
    sizes = np.array([t.num_rows for t in tables])
    origin = np.repeat(np.arange(len(jobs)), sizes)
    row_numbers = np.concatenate([np.arange(n) for n in sizes])
    batch_id = new_batch_id(now)
    everything = IngestResult(model.name, "events", batch_id, "requests")
    run = BatchRun(store, spec_for("events", model), model, everything, now, version)
    positions: np.ndarray[Any, Any] = np.array([], dtype=np.int64)
    bad: list[tuple[int, str, str]] = []
    for batch in merged.to_batches():  # one batch: combine_chunks made it contiguous
        positions, bad = run.batch(batch, 0, row_numbers)
    accepted = np.bincount(origin[np.asarray(positions, dtype=np.int64)], minlength=len(jobs))
    results = []
    for i, job in enumerate(jobs):
        result = IngestResult(model.name, "events", batch_id, job.source.name)
        result.rows = int(sizes[i])
        result.accepted = int(accepted[i])
        for row, reason, _ in bad:
            if origin[row] == i:
                result.quarantined[reason] += 1
        result.duplicates = result.rows - result.accepted - result.quarantined_total
        result.missing_columns = list(everything.missing_columns)
        result.unexpected_columns = list(everything.unexpected_columns)
        results.append(result)
        run.result = result
        store.insert(INGESTIONS, run.log_row(time_done=now))
    return results


def _finish(
    store: Store,
    run: BatchRun,
    source: Source,
    kind: Kind,
    model: ModelConfig,
    batch_id: str,
    now: datetime,
) -> None:
    """What closes an ingestion: the rejected lines, the reference set, the log row."""
    result = run.result
    run.rejected_lines(source)
    if kind == "reference":
        store.insert(
            REFERENCE_SETS,
            pa.table(
                {
                    "model": [model.name],
                    "model_version": [run.version],
                    "reference_id": [batch_id],
                    "rows": [result.accepted],
                    "source": [source.name],
                    "set_at": [now],
                },
                schema=_REFERENCE_SETS_SCHEMA,
            ),
        )
    store.insert(INGESTIONS, run.log_row(time_done=now))


__all__ = ["IngestResult", "Job", "Progress", "ingest", "ingest_group", "new_batch_id"]
