"""Ingestion into a real DuckDB file: quarantine, idempotency, late and corrected labels."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import watchkeeper
from tests.helpers import MODEL_YAML, Clock, event
from watchkeeper.ingest.readers import rows_to_table
from watchkeeper.ingest.validate import REASONS
from watchkeeper.store.tables import INGESTIONS, QUARANTINE, TOUCHED


def stored(ws: watchkeeper.Workspace, table: str) -> pa.Table:
    return ws.store.execute(ws.store.table(table))


def test_good_rows_land_and_bad_rows_are_quarantined_with_raw_values(
    ws: watchkeeper.Workspace,
) -> None:
    rows = [event(i) for i in range(5)]
    rows[1]["amount"] = -5.0
    rows[3]["country"] = "XX"
    result = ws.ingest_events("fraud", rows)
    assert (result.rows, result.accepted, result.duplicates) == (5, 3, 0)
    assert dict(result.quarantined) == {"out_of_range": 1, "unknown_category": 1}
    ids = sorted(stored(ws, "events_fraud")["id"].to_pylist())
    assert ids == ["e0", "e2", "e4"]
    q = ws.quarantine("fraud").to_pylist()
    by_row = {r["row_number"]: r for r in q}
    assert by_row[1]["reason"] == "out_of_range"
    assert json.loads(by_row[1]["raw"])["amount"] == -5.0
    assert json.loads(by_row[3]["raw"])["country"] == "XX"
    assert by_row[3]["detail"] == "country: not one of the declared values"


def test_every_reason_code_reaches_the_quarantine(
    ws: watchkeeper.Workspace, tmp_path: Path
) -> None:
    rows = [event(i) for i in range(10)]
    rows[1]["amount"] = "lots"  # bad_type
    rows[2]["amount"] = 5000.0  # out_of_range
    rows[3]["country"] = "XX"  # unknown_category
    rows[4]["score"] = None  # null_in_required
    rows[5]["ts"] = "tomorrow"  # unparseable_timestamp
    rows[7]["ts"] = "9999-12-31T23:59:59Z"  # timestamp_out_of_range
    rows[8]["amount"] = "Infinity"  # non_finite_number
    rows.append(dict(rows[6]))  # duplicate_id
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n{broken\n")  # unparseable_row
    result = ws.ingest_events("fraud", path)
    missing = ws.ingest_events("fraud", [{k: v for k, v in event(99).items() if k != "amount"}])
    found = set(result.quarantined) | set(missing.quarantined)
    assert found == set(REASONS)
    assert result.accepted == 3
    reasons = {r["reason"] for r in ws.quarantine("fraud").to_pylist()}
    assert reasons == set(REASONS)


def test_reingesting_the_same_file_changes_nothing(
    ws: watchkeeper.Workspace, tmp_path: Path
) -> None:
    rows = [event(i) for i in range(20)]
    rows[4]["amount"] = -1.0
    path = tmp_path / "events.parquet"
    pq.write_table(rows_to_table(rows), path)
    first = ws.ingest_events("fraud", path)
    before = {t: stored(ws, t).num_rows for t in ("events_fraud", QUARANTINE, TOUCHED)}
    second = ws.ingest_events("fraud", path)
    after = {t: stored(ws, t).num_rows for t in ("events_fraud", QUARANTINE, TOUCHED)}
    assert (first.accepted, first.duplicates) == (19, 0)
    assert (second.accepted, second.duplicates) == (0, 19)
    assert second.quarantined == {"out_of_range": 1}  # reported again, stored once
    assert before == after
    assert stored(ws, INGESTIONS).num_rows == 2


def test_duplicates_across_batches_of_one_file_are_quarantined(
    ws: watchkeeper.Workspace, tmp_path: Path
) -> None:
    rows = [event(i) for i in range(10)] + [event(3, amount=99.0)]
    path = tmp_path / "events.parquet"
    pq.write_table(rows_to_table(rows), path)
    result = ws.ingest("events", "fraud", path, batch_rows=4)
    assert result.accepted == 10
    assert result.quarantined == {"duplicate_id": 1}
    assert result.duplicates == 0
    events = stored(ws, "events_fraud").to_pandas().set_index("id")
    assert events.loc["e3", "amount"] == 13.0  # the first one wins


def test_every_input_kind_is_accepted(ws: watchkeeper.Workspace, tmp_path: Path) -> None:
    rows = [event(i) for i in range(12)]
    table = rows_to_table(rows)
    csv_path = tmp_path / "a.csv"
    pd.DataFrame(rows[6:8]).to_csv(csv_path, index=False)
    json_path = tmp_path / "b.json"
    json_path.write_text(json.dumps(rows[8:10]))
    parquet_path = tmp_path / "c.parquet"
    pq.write_table(table.slice(10, 2), parquet_path)
    sources: list[object] = [
        pd.DataFrame(rows[0:2]),
        pl.DataFrame(rows[2:4]),
        table.slice(4, 2),
        csv_path,
        json_path,
        parquet_path,
    ]
    accepted = [ws.ingest_events("fraud", s).accepted for s in sources]
    assert accepted == [2, 2, 2, 2, 2, 2]
    assert ws.count("fraud", "events") == 12
    # CSV is read as text and typed by validation.
    events = stored(ws, "events_fraud").to_pandas().set_index("id")
    assert events.loc["e6", "amount"] == 16.0
    assert bool(events.loc["e6", "is_new"]) is True


def test_a_mixed_type_column_quarantines_rows_not_the_file(
    ws: watchkeeper.Workspace, tmp_path: Path
) -> None:
    rows = [event(i) for i in range(3)]
    rows[2]["amount"] = "n/a"
    frame = pd.DataFrame(rows)
    result = ws.ingest_events("fraud", frame)
    assert (result.accepted, dict(result.quarantined)) == (2, {"bad_type": 1})
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text(
        "id,ts,amount,score,pred\n"
        "c1,2026-04-30T01:00:00Z,5,0.1,0\n"
        "c2,2026-04-30T01:00:00Z,5,0.1\n"  # a field short
        "c3,2026-04-30T01:00:00Z,abc,0.1,0\n"
    )
    result = ws.ingest_events("fraud", bad_csv)
    assert result.accepted == 1
    assert dict(result.quarantined) == {"unparseable_row": 1, "bad_type": 1}
    assert "country" in result.missing_columns


def test_labels_before_and_after_their_events(ws: watchkeeper.Workspace, clock: Clock) -> None:
    ws.ingest_events("fraud", [event(0), event(1)])
    clock.now += timedelta(days=2)
    early = ws.ingest_labels("fraud", [{"id": "e1", "is_fraud": 1}, {"id": "e2", "is_fraud": 0}])
    assert early.accepted == 2  # e2's event has not arrived: the label waits
    clock.now += timedelta(days=1)
    ws.ingest_events("fraud", [event(2)])
    ws.ingest_labels("fraud", [{"id": "e0", "is_fraud": 0, "labelled_at": "2026-05-03T00:00:00Z"}])
    events = ws.events("fraud")
    labels = ws.labels("fraud")
    joined = events.left_join(labels, events.id == labels.event_id)
    got = {
        r["id"]: (r["label"], r["label_timestamp"])
        for r in ws.store.execute(joined.select("id", "label", "label_timestamp")).to_pylist()
    }
    assert got["e0"] == (0, datetime(2026, 5, 3, tzinfo=UTC))
    # No label time given: the time it was received is used.
    assert got["e1"] == (1, clock.now - timedelta(days=1))
    assert got["e2"][0] == 0


def test_a_corrected_label_replaces_the_earlier_one_and_is_recorded(
    ws: watchkeeper.Workspace, clock: Clock
) -> None:
    ws.ingest_events("fraud", [event(0), event(1)])
    ws.ingest_labels("fraud", [{"id": "e0", "is_fraud": 0}, {"id": "e1", "is_fraud": 1}])
    clock.now += timedelta(days=5)
    again = ws.ingest_labels("fraud", [{"id": "e0", "is_fraud": 1}, {"id": "e1", "is_fraud": 1}])
    assert (again.accepted, again.corrected, again.duplicates) == (1, 1, 1)
    current = ws.store.execute(ws.labels("fraud").order_by("event_id"))
    assert current["label"].to_pylist() == [1, 1]
    history = ws.label_history("fraud", "e0")
    assert history["label"].to_pylist() == [0, 1]
    assert history["wk_ingested_at"].to_pylist() == [clock.now - timedelta(days=5), clock.now]
    # Resending the correction changes nothing.
    clock.now += timedelta(hours=1)
    same = ws.ingest_labels("fraud", [{"id": "e0", "is_fraud": 1}])
    assert (same.accepted, same.duplicates) == (0, 1)


def test_outcomes_per_event_and_as_time_series(ws: watchkeeper.Workspace, clock: Clock) -> None:
    ws.ingest_events("fraud", [event(0)])
    first = ws.ingest_outcomes(
        "fraud",
        [
            {"id": "e0", "outcome": "chargeback", "value": 1},
            {"outcome": "chargeback", "value": 3, "timestamp": "2026-04-30T00:00:00Z"},
            {"outcome": "chargeback", "value": 3},  # neither event nor time
            {"id": "e0", "outcome": "refund", "value": 1},  # not declared
        ],
    )
    assert first.accepted == 2
    assert dict(first.quarantined) == {"null_in_required": 1, "unknown_category": 1}
    clock.now += timedelta(hours=1)
    fixed = ws.ingest_outcomes(
        "fraud", [{"outcome": "chargeback", "value": 4, "timestamp": "2026-04-30T00:00:00Z"}]
    )
    assert fixed.corrected == 1
    values = sorted(ws.store.execute(ws.outcomes("fraud"))["value"].to_pylist())
    assert values == [1.0, 4.0]


def test_reference_sets_per_version(ws: watchkeeper.Workspace, clock: Clock) -> None:
    rows = [{k: v for k, v in event(i).items() if k not in ("id", "ts")} for i in range(4)]
    for r in rows:
        r["is_fraud"] = 1
    first = ws.set_reference("fraud", rows, version="3")
    assert first.accepted == 4 and not first.unexpected_columns
    clock.now += timedelta(hours=1)
    ws.set_reference("fraud", rows[:2], version="3")
    ws.set_reference("fraud", rows[:1], version="4")
    assert ws.store.execute(ws.reference("fraud", "3")).num_rows == 2
    assert ws.store.execute(ws.reference("fraud", "4")).num_rows == 1
    assert ws.store.execute(ws.reference("fraud", "9")).num_rows == 0


def test_touched_hours_follow_event_time(ws: watchkeeper.Workspace) -> None:
    ws.ingest_events("fraud", [event(1), event(2), event(2 + 24)])
    ws.ingest_labels("fraud", [{"id": "e1", "is_fraud": 1}, {"id": "zz", "is_fraud": 1}])
    touched = stored(ws, TOUCHED).to_pylist()
    by_kind: dict[str, set[int]] = {}
    for row in touched:
        by_kind.setdefault(row["kind"], set()).add(row["hour"].hour)
    assert by_kind == {"events": {1, 2}, "labels": {1}}


def test_model_version_defaults_from_the_config(ws: watchkeeper.Workspace) -> None:
    ws.ingest_events("fraud", [event(0, version=None), event(1)])
    versions = stored(ws, "events_fraud").sort_by("id")["wk_model_version"].to_pylist()
    assert versions == ["1", "3"]


def test_tables_are_created_idempotently_and_grow_with_the_config(
    config: watchkeeper.Config,
) -> None:
    with watchkeeper.open(config) as ws:
        ws.ingest_events("fraud", [event(0)])
    grown = config.model_copy(
        update={
            "models": (
                config.models[0].model_copy(
                    update={
                        "columns": config.models[0].columns.model_copy(
                            update={"metadata": ("feature_version", "dataset_id")}
                        )
                    }
                ),
                config.models[1],
            )
        }
    )
    with watchkeeper.open(grown) as ws:
        ws.ingest_events("fraud", [event(1, dataset_id="d7")])
        rows = stored(ws, "events_fraud").sort_by("id")["dataset_id"].to_pylist()
    assert rows == [None, "d7"]


def test_a_store_from_a_newer_release_is_refused(config: watchkeeper.Config) -> None:
    with watchkeeper.open(config) as ws:
        ws.store.backend.raw_sql("UPDATE wk_meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(watchkeeper.StoreError, match="schema version 99"):
        watchkeeper.open(config)


def test_engine_errors_become_store_errors(tmp_path: Path) -> None:
    (tmp_path / "dir.duckdb").mkdir()
    config = watchkeeper.parse_config("engine: {path: dir.duckdb}\n", base_dir=tmp_path)
    with pytest.raises(watchkeeper.StoreError) as info:
        watchkeeper.open(config)
    assert info.value.__cause__ is not None


def test_an_interrupted_call_keeps_whole_batches_and_a_rerun_completes_it(
    ws: watchkeeper.Workspace,
) -> None:
    rows = [event(i) for i in range(5)]

    def interrupt_after_first_batch(rows: int, total: int | None) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ws.ingest("events", "fraud", rows, progress=interrupt_after_first_batch, batch_rows=2)
    assert ws.count("fraud", "events") == 2
    assert stored(ws, INGESTIONS).num_rows == 0
    rerun = ws.ingest("events", "fraud", rows, batch_rows=2)
    assert (rerun.accepted, rerun.duplicates) == (3, 2)
    assert ws.count("fraud", "events") == 5


def test_a_batch_that_fails_midway_is_rolled_back_whole(
    ws: watchkeeper.Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [event(i) for i in range(4)]
    rows[1]["amount"] = -1.0
    real_insert = ws.store.insert

    def failing_insert(name: str, data: object) -> None:
        if name == QUARANTINE:
            raise watchkeeper.StoreError("disk full")
        real_insert(name, data)  # type: ignore[arg-type]

    monkeypatch.setattr(ws.store, "insert", failing_insert)
    with pytest.raises(watchkeeper.StoreError, match="disk full"):
        ws.ingest_events("fraud", rows)
    monkeypatch.undo()
    assert ws.count("fraud", "events") == 0  # the events of the failed batch are not kept
    assert stored(ws, TOUCHED).num_rows == 0


def test_unreadable_input_is_an_input_error(ws: watchkeeper.Workspace, tmp_path: Path) -> None:
    with pytest.raises(watchkeeper.InputError, match="no such file"):
        ws.ingest_events("fraud", tmp_path / "nope.parquet")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(watchkeeper.InputError, match="unknown file type"):
        ws.ingest_events("fraud", tmp_path / "x.txt")
    with pytest.raises(watchkeeper.InputError, match="cannot ingest a int"):
        ws.ingest_events("fraud", 42)


def test_progress_reports_rows_and_the_total(ws: watchkeeper.Workspace, tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    pq.write_table(rows_to_table([event(i) for i in range(5)]), path)
    calls: list[tuple[int, int | None]] = []
    ws.ingest("events", "fraud", path, batch_rows=2, progress=lambda n, t: calls.append((n, t)))
    assert calls == [(2, 5), (2, 5), (1, 5)]


def test_a_changed_column_type_is_refused_with_a_clear_message(
    config: watchkeeper.Config,
) -> None:
    with watchkeeper.open(config):
        pass
    fraud = config.models[0]
    features = list(fraud.columns.features)
    features[2] = features[2].model_copy(update={"kind": "numeric"})  # channel: text → number
    changed = config.model_copy(
        update={
            "models": (
                fraud.model_copy(
                    update={
                        "columns": fraud.columns.model_copy(update={"features": tuple(features)})
                    }
                ),
                config.models[1],
            )
        }
    )
    with pytest.raises(watchkeeper.StoreError, match="stores column 'channel' as string"):
        watchkeeper.open(changed)


def test_a_run_raises_the_memory_limit_and_puts_it_back(ws: watchkeeper.Workspace) -> None:
    raw = ws.store.backend.con

    def limit() -> str:
        return str(raw.sql("SELECT current_setting('memory_limit')").fetchone()[0])

    before = limit()
    with ws.store.working_memory("1GB"):
        assert limit() != before
    assert limit() == before


def test_shedding_the_cache_gives_back_blocks_past_the_stores_own_limit(
    tmp_path: Path,
) -> None:
    """Between the batches of a long run, the table blocks the run's larger pool cached are
    given back down to the store's own limit, and the run's limit stays as it was."""
    from watchkeeper.store.engine import Store

    store = Store.open(f"duckdb://{tmp_path / 's.duckdb'}", memory_limit="64MB")
    raw = store.backend.con
    raw.execute("CREATE TABLE t AS SELECT range AS i, random() AS x FROM range(15000000)")
    raw.execute("CHECKPOINT")

    def held() -> int:
        return int(raw.sql("SELECT sum(memory_usage_bytes) FROM duckdb_memory()").fetchone()[0])

    def limit() -> str:
        return str(raw.sql("SELECT current_setting('memory_limit')").fetchone()[0])

    with store.working_memory("1GB"):
        run_limit = limit()
        raw.sql("SELECT sum(x) FROM t").fetchall()  # reads every block into the pool
        assert held() > 80 << 20
        store.shed_cache()
        assert held() <= 64 << 20
        assert limit() == run_limit
    store.backend.disconnect()


def test_a_group_commit_tells_each_request_what_it_would_have_been_told_alone(
    tmp_path: Path, clock: Clock
) -> None:
    """Requests merged into one batch (same columns, no shared ids) and requests that are
    not (a retry of an id, other columns) get the results they would get one at a time."""
    from watchkeeper.config import parse_config
    from watchkeeper.ingest.pipeline import Job, ingest_group
    from watchkeeper.ingest.readers import open_source

    requests = [
        [event(i) for i in range(5)],
        [event(10), event(11, amount=-3), event(11), event(12)],  # bad, repeated in itself
        [event(20), event(1)],  # e1 is in the first request: a retry, counted a duplicate
        [event(30), event(31)],
        [{k: v for k, v in event(40).items() if k != "channel"}],  # other columns
        [event(50), event(51, ts="not a time")],
    ]

    def results(folder: Path, grouped: bool) -> tuple[list[dict[str, Any]], list[str], list[Any]]:
        folder.mkdir()
        config = parse_config(MODEL_YAML, base_dir=folder)
        with watchkeeper.open(config, clock=clock) as ws:
            model = config.model("fraud")
            ws.ingest("events", "fraud", [event(3)])  # stored before: e3 is a duplicate
            jobs = [Job(model, "events", open_source(rows)) for rows in requests]
            if grouped:
                found = ingest_group(ws.store, jobs, clock())
            else:
                found = [ingest_group(ws.store, [job], clock())[0] for job in jobs]
            ids = sorted(ws.store.execute(ws.events("fraud").select("id"))["id"].to_pylist())
            q = ws.quarantine("fraud").to_pylist()
            quarantined = sorted((r["reason"], r["row_number"]) for r in q)
        keep = ("rows", "accepted", "duplicates", "quarantined", "missing_columns")
        return (
            [{k: v for k, v in r.to_dict().items() if k in keep} for r in found],
            ids,
            quarantined,
        )

    alone = results(tmp_path / "alone", grouped=False)
    together = results(tmp_path / "together", grouped=True)
    assert together == alone
    # The bad e11 is quarantined, so the second e11 is the first valid one and lands.
    assert alone[0][1]["accepted"] == 3 and alone[0][1]["quarantined"] == {"out_of_range": 1}
    assert alone[0][0]["duplicates"] == 1 and alone[0][2]["duplicates"] == 1


@pytest.mark.parametrize("stamp", ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z"])
def test_an_event_at_the_end_of_time_is_quarantined_and_runs_go_on(
    ws: watchkeeper.Workspace, clock: Clock, stamp: str
) -> None:
    """One event stamped at year 9999 (or 1) used to make every later run overflow."""
    ws.set_reference("fraud", [event(i, is_fraud=i % 3 == 0) for i in range(200)])
    result = ws.ingest_events("fraud", [event(0), event(1, ts=stamp), event(2)])
    assert result.accepted == 2
    assert dict(result.quarantined) == {"timestamp_out_of_range": 1}
    detail = ws.quarantine("fraud").to_pylist()[0]["detail"]
    assert "ts: outside the accepted times" in detail and "times:" in detail
    clock.now += timedelta(days=2)
    done = ws.run("fraud")
    assert done.windows  # the good rows' windows were computed


def test_the_accepted_times_are_a_setting(tmp_path: Path, clock: Clock) -> None:
    text = MODEL_YAML.replace(
        "    task: binary_classification\n",
        "    task: binary_classification\n    times: {earliest: 2026-04-30T10:00:00Z, ahead: 2h}\n",
        1,
    )
    path = tmp_path / "watchkeeper.yaml"
    path.write_text(text)
    with watchkeeper.Workspace.open(path, clock=clock) as ws:
        late = clock.now + timedelta(hours=3)
        result = ws.ingest_events(
            "fraud", [event(3), event(12), event(13, ts=f"{late:%Y-%m-%dT%H:%M:%SZ}")]
        )
    assert result.accepted == 1  # 03:15 is before the earliest, the third too far ahead
    assert dict(result.quarantined) == {"timestamp_out_of_range": 2}


def test_every_documented_timestamp_form_is_accepted(ws: watchkeeper.Workspace) -> None:
    forms = [
        "2026-04-30",
        "2026-04-30T10:00:00.123456789Z",
        "2026-04-30T10:00:00+02:00",
        "2026-04-30 10:00:00",
        "2026-04-30T10:00Z",
    ]
    result = ws.ingest_events("fraud", [event(i, ts=f) for i, f in enumerate(forms)])
    assert result.accepted == len(forms), dict(result.quarantined)


JSON_BODIES = [
    '[{"a": 1}, {"a": 2.5, "b": "x"}]',
    '[{"a": 1}, 7, {"a": 3}]',
    '[{"a": 1}, ' + '{"a":' * 5000 + "1" + "}" * 5000 + ', {"a": 2}]',
    '[{"a": "\\ud800"}, {"a": "ok"}]',
    "[]",
    " [ ] ",
    "[1, 2]",
    '[{"a": 1}',
    '[{"a": 1} {"a": 2}]',
    '[{"a": 1}] x',
    '{"a": 1}',
    '[{"a": 12345, "b": -1.5e10}, {"a": true, "b": null}, {"a": false}, 67890]',
    '[{"a": "\\u00e9\\\\\\"", "b": "é漢🙂"}, {"a": "\\ud83d\\ude42"}]',
    '[\n  {"a": 1} ,\n\t{"a": 2}\r\n]\n',
    '[{"a": 1}, {"a": "x"}, {"a": 2}, {"a": 2.5}, {"b": 1}, {"b": 1.5}, {"c": [1]}, {"c": 2}]',
    '[{"a": "abc',
    '[{"a": 1}, tru]',
    '[{"a": 1}, {"a": 1e}]',
    '[{"a": 1},]',
]


@pytest.mark.parametrize("body", JSON_BODIES, ids=range(len(JSON_BODIES)))
def test_a_large_json_array_is_read_element_by_element_as_a_small_one_is_at_once(
    body: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past a size, a JSON array is parsed one element at a time (bounded memory): the
    rows, their batches, the rejected elements and the refusals are the same."""
    from watchkeeper.errors import InputError
    from watchkeeper.ingest import json_text, readers

    def read(limit: int, slice_bytes: int = 1 << 20, step: int = 2) -> Any:
        monkeypatch.setattr(readers, "_JSON_LOADS_BYTES", limit)
        monkeypatch.setattr(json_text, "_JSON_READ_BYTES", slice_bytes)
        monkeypatch.setattr(readers, "_OBJECTS_AT_ONCE", step)
        source = readers.Source("b", iter(()))
        try:
            batches = list(readers.json_array(body.encode(), source, "b", 2))
        except InputError as exc:
            return ("refused", str(exc).split(":")[1].strip())
        rows = [r for b in batches for r in b.to_pylist()]
        return rows, [b.num_rows for b in batches], [(r.line, r.reason) for r in source.rejected]

    small = read(1 << 20)
    # Read whole, and a few bytes at a time (every value cut by the end of a slice), in
    # rows turned into Arrow one at a time: the same rows, batches, rejections, refusals.
    for large in (read(0), read(0, 1), read(0, 3), read(0, 7, 1)):
        assert large == small or (large[0] == small[0] == "refused")


def test_nesting_read_in_slices_of_lines_equals_nesting_read_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The depth check of JSON Lines reads a chunk in slices (bounded memory); the depth it
    finds is the same, whatever brackets, quotes and escapes cross the slices."""
    import random

    from watchkeeper.ingest import json_text

    rng = random.Random(1)
    for _ in range(300):
        lines = ["".join(rng.choice('[]{}"\\ab') for _ in range(rng.randint(0, 30)))]
        lines += [
            "".join(rng.choice('[]{}"\\ab') for _ in range(rng.randint(0, 30)))
            for _ in range(rng.randint(0, 200))
        ]
        chunk = "\n".join(lines).encode()
        monkeypatch.setattr(json_text, "_NESTING_SLICE", 1 << 40)
        whole = json_text.nesting(chunk)
        monkeypatch.setattr(json_text, "_NESTING_SLICE", rng.randint(1, 50))
        assert json_text.nesting(chunk) == whole, chunk


@pytest.mark.parametrize("depth", [65, 900, 5_000])
@pytest.mark.parametrize("loads_bytes", [1 << 20, 0])
def test_a_row_nested_past_the_limit_is_refused_alike_on_every_python(
    depth: int, loads_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python 3.11's parser gives up near 1,000 deep, 3.13's reads 5,000 (and Arrow then
    exhausted memory on it): a row past 64 deep is refused by itself on any Python, from a
    small body or a streamed one, and the rows after it keep their numbers."""
    from watchkeeper.ingest import readers

    monkeypatch.setattr(readers, "_JSON_LOADS_BYTES", loads_bytes)
    deep = '{"a":' * depth + "1" + "}" * depth
    body = f'[{{"a": 1}}, {deep}, 7, {{"a": 2}}]'
    source = readers.Source("b", iter(()))
    rows = [r for b in readers.json_array(body.encode(), source, "b", 10) for r in b.to_pylist()]
    assert rows == [{"a": 1}, {"a": 2}]
    assert [(r.line, r.reason) for r in source.rejected] == [
        (2, "nested too deeply to read"),
        (3, "a row must be a JSON object"),
    ]
    lines = "\n".join(['{"a": 1}', deep, '{"a": 2}']).encode()
    source = readers.Source("b", iter(()))
    rows = [r for b in readers._json_chunks(io.BytesIO(lines), source) for r in b.to_pylist()]
    assert rows == [{"a": 1}, {"a": 2}]
    assert [(r.line, r.reason) for r in source.rejected] == [(2, "nested too deeply to read")]
