"""One ingestion call's batches: validated, quarantined with their reasons, deduplicated
against what is stored, appended, and the event-time hours they touched recorded; each
batch commits whole."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from watchkeeper.config import ModelConfig
from watchkeeper.ingest.readers import Source
from watchkeeper.ingest.result import IngestResult
from watchkeeper.ingest.validate import (
    DUPLICATE_ID,
    NULL_IN_REQUIRED,
    UNPARSEABLE_ROW,
    Validated,
    raw_rows,
    validate,
)
from watchkeeper.schema import BATCH, INGESTED_AT, KEY, MODEL_VERSION, TableSpec, spec_for
from watchkeeper.store import Store
from watchkeeper.store.engine import arrow_schema
from watchkeeper.store.tables import INGESTIONS, QUARANTINE, SHARED, TOUCHED

_TOUCHED_SCHEMA = arrow_schema(SHARED[TOUCHED])
_QUARANTINE_SCHEMA = arrow_schema(SHARED[QUARANTINE])
_INGESTIONS_SCHEMA = arrow_schema(SHARED[INGESTIONS])


class BatchRun:
    """The state of one ingestion call across its batches."""

    def __init__(
        self,
        store: Store,
        spec: TableSpec,
        model: ModelConfig,
        result: IngestResult,
        now: datetime,
        version: str,
    ) -> None:
        self.store = store
        self.spec = spec
        self.model = model
        self.result = result
        self.now = now
        self.version = version
        self.table = store.table(spec.table)
        self._touched: set[Any] = set()
        # Reference files are often event logs: their service columns are not surprising.
        self._event_inputs = {c.input_name for c in spec_for("events", model).columns}

    # -- one batch ------------------------------------------------------------------------

    def batch(
        self,
        batch: pa.RecordBatch,
        offset: int,
        row_numbers: np.ndarray[Any, Any] | None = None,
    ) -> tuple[np.ndarray[Any, Any], list[tuple[int, str, str]]]:
        """Validate and store one batch; returns the positions of the rows stored and the
        rows quarantined (position, reason, detail). ``row_numbers`` are the numbers the
        quarantine reports for the positions (default: ``offset`` + position)."""
        times = self.model.times
        checked = validate(batch, self.spec, (times.earliest, self.now + times.ahead))
        self._note_columns(checked)
        bad: list[tuple[int, str, str]] = [
            (row, *checked.problems.primary(row)) for row in sorted(checked.problems.rows)
        ]
        good, positions = checked.good, checked.good_rows
        kind = self.spec.kind
        if kind in ("events", "reference"):
            good = _fill(good, MODEL_VERSION, self.version)
        if kind == "events":
            good, positions = self._events(good, positions, bad)
        elif kind == "labels":
            good = _fill(good, "label_timestamp", self.now)
            good, positions = self._keyed(good, positions, bad, "event_id", ("label",))
        elif kind == "outcomes":
            good, positions = self._outcomes(good, positions, bad)
        if kind != "reference" and good.num_rows:
            self._touch(good)
        good = self._stamp(good)
        self.store.insert(self.spec.table, good)
        self.result.accepted += good.num_rows
        self._quarantine(batch, offset, bad, row_numbers)
        return positions, bad

    def _note_columns(self, checked: Validated) -> None:
        for name in checked.absent_required:
            if name not in self.result.absent_required:
                self.result.absent_required.append(name)
        for name in checked.missing_columns:
            if name not in self.result.missing_columns:
                self.result.missing_columns.append(name)
        expected = self._event_inputs if self.spec.kind == "reference" else set()
        for name in checked.unexpected_columns:
            if name not in self.result.unexpected_columns and name not in expected:
                self.result.unexpected_columns.append(name)

    def _stamp(self, good: pa.Table) -> pa.Table:
        n = good.num_rows
        extra: dict[str, pa.Array] = {
            INGESTED_AT: pa.repeat(pa.scalar(self.now, pa.timestamp("us", tz="UTC")), n),
            BATCH: pa.repeat(pa.scalar(self.result.batch, pa.string()), n),
        }
        for name, _ in self.spec.system:
            if name not in good.column_names:
                good = good.append_column(name, extra[name])
        return good.select(list(self.spec.stored_schema())).cast(
            arrow_schema(self.spec.stored_schema())
        )

    def _events(
        self, good: pa.Table, positions: np.ndarray[Any, Any], bad: list[tuple[int, str, str]]
    ) -> tuple[pa.Table, np.ndarray[Any, Any]]:
        id_col = self.model.columns.event_id
        good, positions = _first_only(good, positions, id_col, bad)
        if good.num_rows == 0:
            return good, positions
        stored = self.table.select(id=self.table[id_col], batch=self.table[BATCH])
        found = self.store.query_with(
            pa.table({"id": good[id_col]}),
            lambda ids: stored.semi_join(ids, stored.id == ids.id),
            cache=f"{self.spec.table}:stored ids",
        )
        if found.num_rows == 0:
            return good, positions
        ours = pc.equal(found["batch"], self.result.batch)
        earlier_in_file = pc.filter(found["id"], ours)
        self.result.duplicates += found.num_rows - len(earlier_in_file)
        keep = pc.invert(pc.is_in(good[id_col], found["id"]))
        if len(earlier_in_file):
            repeat = _mask(pc.is_in(good[id_col], earlier_in_file))
            for pos in positions[repeat]:
                bad.append((int(pos), DUPLICATE_ID, f"{id_col}: appears earlier in this input"))
        return good.filter(keep), positions[_mask(keep)]

    def _keyed(
        self,
        good: pa.Table,
        positions: np.ndarray[Any, Any],
        bad: list[tuple[int, str, str]],
        key: str,
        compare: tuple[str, ...],
    ) -> tuple[pa.Table, np.ndarray[Any, Any]]:
        """Append-only with the newest row in force: skip rows equal to the one in force."""
        good, positions = _first_only(good, positions, key, bad)
        if good.num_rows == 0:
            return good, positions
        t = self.table

        def in_force(keys: ir.Table) -> ir.Table:
            mine = t.semi_join(keys, t[key] == keys.k)
            order = [ibis.desc(t[INGESTED_AT]), ibis.desc(t[BATCH])]
            ranked = mine.mutate(rank=ibis.row_number().over(group_by=t[key], order_by=order))
            return ranked.filter(ranked.rank == 0).select(key, BATCH, *compare)

        current = self.store.query_with(
            pa.table({"k": good[key]}), in_force, cache=f"{self.spec.table}:in force"
        )
        if current.num_rows == 0:
            return good, positions
        work = good.select([key, *compare]).append_column(
            "_pos", pa.array(np.arange(good.num_rows))
        )
        joined = work.join(
            current.rename_columns([key, "_batch", *(f"_old_{c}" for c in compare)]),
            keys=key,
            join_type="inner",
        )
        pos = joined["_pos"].to_numpy()
        same = np.ones(len(pos), dtype=bool)
        for c in compare:
            equal = pc.equal(joined[c], joined[f"_old_{c}"])
            both_null = pc.and_(joined[c].is_null(), joined[f"_old_{c}"].is_null())
            same &= _mask(pc.or_(equal, both_null))
        ours = _mask(pc.equal(joined["_batch"], self.result.batch))
        drop = np.zeros(good.num_rows, dtype=bool)
        for p in pos[ours]:
            bad.append((int(positions[p]), DUPLICATE_ID, f"{key}: appears earlier in this input"))
        drop[pos[ours]] = True
        drop[pos[same & ~ours]] = True
        self.result.duplicates += int((same & ~ours).sum())
        self.result.corrected += int((~same & ~ours).sum())
        return good.filter(pa.array(~drop)), positions[~drop]

    def _outcomes(
        self, good: pa.Table, positions: np.ndarray[Any, Any], bad: list[tuple[int, str, str]]
    ) -> tuple[pa.Table, np.ndarray[Any, Any]]:
        # An outcome is keyed by its event, or for a time series by its time.
        anchor = pc.coalesce(
            good["event_id"], pc.strftime(good["timestamp"], format="@%Y-%m-%dT%H:%M:%S.%f")
        )
        orphan = _mask(anchor.is_null())
        for p in positions[orphan]:
            bad.append((int(p), NULL_IN_REQUIRED, "an outcome needs an event id or a timestamp"))
        good = good.filter(pa.array(~orphan))
        positions = positions[~orphan]
        anchor = pc.filter(anchor, pa.array(~orphan))
        keys = pc.binary_join_element_wise(good["outcome"], anchor, "|")
        good = good.append_column(KEY, keys)
        return self._keyed(good, positions, bad, KEY, ("value",))

    def _touch(self, good: pa.Table) -> None:
        if self.spec.kind == "events":
            times = good[self.model.columns.timestamp]
        elif self.spec.kind == "outcomes" and good["event_id"].null_count == good.num_rows:
            times = good["timestamp"]
        else:
            # Labels and per-event outcomes touch the hours of their events, if stored yet;
            # an event that arrives later touches its own hour then.
            events = self.store.table(spec_for("events", self.model).table)
            ts = events[self.model.columns.timestamp]
            event_id = events[self.model.columns.event_id]
            found = self.store.query_with(
                pa.table({"id": good["event_id"]}),
                lambda ids: (
                    events.semi_join(ids, event_id == ids.id)
                    .select(hour=ts.truncate("h"))
                    .distinct()
                ),
                cache=f"{self.spec.table}:event hours",
            )
            times = found["hour"]
        hours_arr = pc.unique(pc.floor_temporal(times, unit="hour").drop_null())
        new = [h for h in hours_arr.to_pylist() if h not in self._touched]
        if not new:
            return
        self._touched.update(new)
        n = len(new)
        self.store.insert(
            TOUCHED,
            pa.table(
                {
                    "model": [self.model.name] * n,
                    "kind": [self.spec.kind] * n,
                    "hour": new,
                    "wk_batch": [self.result.batch] * n,
                    "wk_ingested_at": [self.now] * n,
                },
                schema=_TOUCHED_SCHEMA,
            ),
        )

    # -- quarantine ---------------------------------------------------------------------

    def _quarantine(
        self,
        batch: pa.RecordBatch,
        offset: int,
        bad: list[tuple[int, str, str]],
        row_numbers: np.ndarray[Any, Any] | None = None,
    ) -> None:
        if not bad:
            return
        bad.sort()
        raws = raw_rows(batch, [row for row, _, _ in bad])
        self._write_quarantine(
            [
                (
                    offset + row if row_numbers is None else int(row_numbers[row]),
                    reason,
                    detail,
                    raw,
                )
                for (row, reason, detail), raw in zip(bad, raws, strict=True)
            ]
        )

    def rejected_lines(self, source: Source) -> None:
        """Lines that were not rows at all (bad CSV or JSON), with their text."""
        if source.rejected:
            self._write_quarantine(
                [
                    (
                        r.line if r.line is not None and r.line >= 0 else -1,
                        UNPARSEABLE_ROW,
                        r.reason,
                        r.text,
                    )
                    for r in source.rejected
                ]
            )
            self.result.rows += len(source.rejected)

    def _write_quarantine(self, rows: list[tuple[int, str, str, str]]) -> None:
        kind = self.spec.kind
        prints = [
            hashlib.sha1(f"{kind}|{reason}|{raw}".encode()).hexdigest()
            for _, reason, _, raw in rows
        ]
        # Idempotent: a bad row already quarantined by an earlier call is not stored again.
        q = self.store.table(QUARANTINE)
        seen = q.filter((q.model == self.model.name) & (q.wk_batch != self.result.batch))
        found = self.store.query_with(
            pa.table({"fp": prints}),
            lambda probe: seen.semi_join(probe, seen.fingerprint == probe.fp).select("fingerprint"),
        )
        known = set(found["fingerprint"].to_pylist())
        keep = [i for i, fp in enumerate(prints) if fp not in known]
        for i in range(len(rows)):
            self.result.quarantined[rows[i][1]] += 1
            self.result.examples.setdefault(rows[i][1], rows[i][2])
        if not keep:
            return
        n = len(keep)
        self.store.insert(
            QUARANTINE,
            pa.table(
                {
                    "model": [self.model.name] * n,
                    "kind": [kind] * n,
                    "wk_batch": [self.result.batch] * n,
                    "row_number": [rows[i][0] for i in keep],
                    "reason": [rows[i][1] for i in keep],
                    "detail": [rows[i][2] for i in keep],
                    "raw": [rows[i][3] for i in keep],
                    "fingerprint": [prints[i] for i in keep],
                    "source": [self.result.source] * n,
                    "wk_ingested_at": [self.now] * n,
                },
                schema=_QUARANTINE_SCHEMA,
            ),
        )

    def log_row(self, time_done: datetime) -> pa.Table:
        r = self.result
        return pa.table(
            {
                "wk_batch": [r.batch],
                "model": [r.model],
                "kind": [r.kind],
                "source": [r.source],
                "rows": [r.rows],
                "accepted": [r.accepted],
                "duplicates": [r.duplicates],
                "corrected": [r.corrected],
                "quarantined": [r.quarantined_total],
                "missing_columns": [json.dumps(r.missing_columns)],
                "unexpected_columns": [json.dumps(r.unexpected_columns)],
                "started_at": [self.now],
                "finished_at": [time_done],
            },
            schema=_INGESTIONS_SCHEMA,
        )


def _mask(array: Any) -> np.ndarray[Any, np.dtype[np.bool_]]:
    return np.asarray(pc.fill_null(array, False).to_numpy(zero_copy_only=False), dtype=bool)


def _fill(good: pa.Table, column: str, value: Any) -> pa.Table:
    """Fill the nulls of ``column`` with ``value``; add the column if it is not there."""
    i = good.schema.get_field_index(column)
    if i < 0:
        return good.append_column(column, pa.repeat(pa.scalar(value), good.num_rows))
    filled = pc.fill_null(good[column], pa.scalar(value, good.schema.field(column).type))
    return good.set_column(i, column, filled)


def _first_only(
    good: pa.Table,
    positions: np.ndarray[Any, Any],
    key: str,
    bad: list[tuple[int, str, str]],
) -> tuple[pa.Table, np.ndarray[Any, Any]]:
    """Keep the first row of each key in the batch; later ones are duplicate_id."""
    if good.num_rows < 2:
        return good, positions
    codes = pc.dictionary_encode(good[key].combine_chunks()).indices.to_numpy()
    _, first = np.unique(codes, return_index=True)
    if len(first) == good.num_rows:
        return good, positions
    keep = np.zeros(good.num_rows, dtype=bool)
    keep[first] = True
    for pos in positions[~keep]:
        bad.append((int(pos), DUPLICATE_ID, f"{key}: appears earlier in this input"))
    return good.filter(pa.array(keep)), positions[keep]


__all__ = ["BatchRun"]
