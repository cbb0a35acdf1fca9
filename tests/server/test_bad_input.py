"""A corpus of bad input over HTTP: every case answers 2xx (its bad rows quarantined with
their reason, the good rows stored) or a 4xx that names the problem, never a 5xx; and
after the whole corpus the monitor still runs."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from tests.helpers import (
    MODEL_YAML,
    NOW,
    SERVER,
    Clock,
    corrupt_parquet_pages,
    event,
    with_reference,
)
from watchkeeper.config import parse_config
from watchkeeper.server import create_app

EVENTS = "/api/v1/models/fraud/events"
JSON = {"Content-Type": "application/json"}
NDJSON = {"Content-Type": "application/x-ndjson"}
PARQUET = {"Content-Type": "application/vnd.apache.parquet"}
ARROW = {"Content-Type": "application/vnd.apache.arrow.stream"}


@dataclass
class Case:
    name: str
    method: str
    path: str
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    stored: int | None = None  # good rows that must land (a 2xx), else a 4xx is expected
    says: str = ""  # what the answer or the quarantine must name


def _good(i: int) -> str:
    return json.dumps(event(i))


def _parquet(rows: list[dict[str, Any]]) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), sink)
    return sink.getvalue()


def _arrow(rows: list[dict[str, Any]], batch_rows: int | None = None) -> bytes:
    table = pa.Table.from_pylist(rows)
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=batch_rows)
    return sink.getvalue()


def _last_group_corrupt(rows: list[dict[str, Any]]) -> bytes:
    """Parquet in row groups of three rows, the pages of its last group garbage."""
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), sink, row_group_size=3)
    raw = bytearray(sink.getvalue())
    meta = pq.ParquetFile(io.BytesIO(bytes(raw))).metadata
    group = meta.row_group(meta.num_row_groups - 1)
    for c in range(group.num_columns):
        chunk = group.column(c)
        start = chunk.dictionary_page_offset or chunk.data_page_offset
        for i in range(start, start + chunk.total_compressed_size, 2):
            raw[i] ^= 0xA5
    return bytes(raw)


def corpus() -> Iterator[Case]:
    n = 0

    def row_cases(name: str, bad: str, says: str) -> Iterator[Case]:
        """One bad row beside a good one, as a JSON array and as JSON Lines."""
        nonlocal n
        n += 2
        yield Case(f"{name} (json)", "POST", EVENTS, f"[{_good(n)}, {bad}]".encode(), JSON, 1, says)
        yield Case(
            f"{name} (jsonl)", "POST", EVENTS, f"{_good(n + 1)}\n{bad}\n".encode(), NDJSON, 1, says
        )

    def with_value(column: str, raw: str) -> str:
        n_row = event(900 + len(raw) % 50)
        text = json.dumps(n_row)
        return text.replace(f'"{column}": {json.dumps(n_row[column])}', f'"{column}": {raw}', 1)

    # Rows nested too deeply for any parser, in both places.
    for depth in (200, 5_000, 50_000):
        says = "unparseable_row" if depth > 1_000 else ""  # 200 deep is read, then refused
        deep = '{"a":' * depth + "1" + "}" * depth
        yield from row_cases(f"object nested {depth} deep", deep, says)
        deep_list = "[" * depth + "]" * depth
        yield from row_cases(f"array nested {depth} deep", deep_list, "unparseable_row")
        yield from row_cases(f"a value nested {depth} deep", with_value("country", deep_list), says)
    # Text that is not Unicode.
    for sur in ("\\ud800", "\\udfff", "x\\udc00y", "\\ud83d"):
        yield from row_cases(f"lone surrogate {sur}", with_value("country", f'"{sur}"'), "")
        yield from row_cases(f"surrogate in a key {sur}", f'{{"k{sur}": 1, "id": "s"}}', "")
    # Times at the ends of the calendar, and times the docs accept.
    for stamp in (
        "9999-12-31T23:59:59Z",
        "0001-01-01T00:00:00Z",
        "1969-12-31T23:59:59Z",
        "2999-01-01T00:00:00Z",
        "9999-12-31",
        "0001-01-01",
    ):
        yield from row_cases(f"time {stamp}", with_value("ts", json.dumps(stamp)), "timestamp")
    for stamp in ("yesterday", "2026-02-30T00:00:00Z", "2026-04-30T25:00:00Z", "", "12"):
        yield from row_cases(f"bad time {stamp!r}", with_value("ts", json.dumps(stamp)), "")
    # Numbers JSON cannot hold, or Python will not read.
    for raw in ("Infinity", "-Infinity", "1e999", "-1e999", '"Infinity"', '"inf"'):
        yield from row_cases(f"latency {raw}", with_value("latency_ms", raw), "non_finite")
    for raw in ("NaN", '"nan"'):  # missing, as documented: stored as null, counted as missing
        n += 1
        yield Case(
            f"latency {raw}",
            "POST",
            EVENTS,
            f"{_good(n)}\n{with_value('latency_ms', raw)}\n".encode(),
            NDJSON,
            2,
        )
    for raw in ("1" + "0" * 5000, "-" + "9" * 4400):
        n += 1
        yield Case(
            f"{len(raw)}-digit number (json)",
            "POST",
            EVENTS,
            f"[{_good(n)}, {with_value('amount', raw)}]".encode(),
            JSON,
            None,
            "JSON",
        )
        n += 1
        yield Case(
            f"{len(raw)}-digit number (jsonl)",
            "POST",
            EVENTS,
            f"{_good(n)}\n{with_value('amount', raw)}\n".encode(),
            NDJSON,
            1,
            "",
        )
    # Wrong shapes and types.
    for bad, label in (
        ("[1, 2]", "an array as a row"),
        ('"text"', "a string as a row"),
        ("null", "null as a row"),
        ('{"id": ["a"], "ts": {}}', "containers as values"),
        ('{"id": "x", "amount": "12,5"}', "a decimal comma"),
        ('{"id": "x", "score": true}', "a boolean score"),
        ('{"id": "' + "x" * 100_000 + '"}', "a 100 kB id"),
        ('{"": 1}', "an empty key"),
        ('{"id": "x\\u0000y"}', "a NUL in text"),
    ):
        n += 1
        yield Case(f"{label} (jsonl)", "POST", EVENTS, f"{_good(n)}\n{bad}\n".encode(), NDJSON, 1)
    # Broken bodies: refused whole, with the reason.
    good_rows = [event(i) for i in range(700, 710)]
    parquet = _parquet(good_rows)
    arrow = _arrow(good_rows)
    broken: list[tuple[str, bytes, dict[str, str], str]] = [
        ("truncated JSON", b"[" + _good(1).encode(), JSON, "not valid JSON"),
        ("JSON object, not array", _good(1).encode(), JSON, "array of objects"),
        ("JSON of numbers", b"[1,2,3]", JSON, "array of objects"),
        ("invalid UTF-8 JSON", b'[{"id": "\xff\xfe"}]', JSON, "not valid JSON"),
        ("parquet with corrupt pages", corrupt_parquet_pages(parquet), PARQUET, "parquet"),
        ("parquet cut short", parquet[: len(parquet) // 2], PARQUET, "parquet"),
        ("parquet footer only", parquet[-200:], PARQUET, "parquet"),
        ("arrow cut short", arrow[: len(arrow) // 2], ARROW, "arrow"),
        ("arrow garbage", b"\x00" * 64, ARROW, "arrow"),
        # Broken at their end, after rows that a reader a batch at a time has given.
        (
            "JSON array broken at its end",
            json.dumps(good_rows)[:-1].encode() + b", {",
            JSON,
            "JSON",
        ),
        ("JSON array, then garbage", json.dumps(good_rows).encode() + b" x", JSON, "extra data"),
        ("arrow batches cut in the last", _arrow(good_rows, 3)[:-40], ARROW, "arrow"),
        ("parquet, its last row group corrupt", _last_group_corrupt(good_rows), PARQUET, "parquet"),
        (
            "gzip cut short",
            gzip.compress(b"[" + _good(1).encode() + b"]")[:20],
            {**JSON, "Content-Encoding": "gzip"},
            "gzip",
        ),
        (
            "gzip of garbage",
            gzip.compress(b"\xff" * 100),
            {**JSON, "Content-Encoding": "gzip"},
            "JSON",
        ),
        ("unknown encoding", b"[]", {**JSON, "Content-Encoding": "br"}, "encoding"),
        ("unknown content type", b"a,b\n1,2", {"Content-Type": "text/csv"}, "content type"),
        ("empty body", b"", JSON, "empty"),
        ("whitespace body", b"   \n ", JSON, "JSON"),
    ]
    for name, content, headers, says in broken:
        yield Case(name, "POST", EVENTS, content, headers, None, says)
    for kind in ("labels", "outcomes", "reference", "nonsense"):
        yield Case(
            f"{kind}: truncated JSON", "POST", f"/api/v1/models/fraud/{kind}", b"[{", JSON, None, ""
        )
    # Query parameters out of every range.
    for window in ("99999999999999999d", "0.0000001ms", "-1h", "1y", "1e309h", "h", "∞"):
        yield Case(
            f"window={window}",
            "GET",
            f"/api/v1/models/fraud/metrics?window={window}",
            says="window",
        )
    for at in (
        "0001-01-01",
        "9999-12-31T23:59:59Z",
        "1899-12-31",
        "10000-01-01",
        "2026-13-01",
        "now",
        "2026-04-30T10:00:00+99:00",
    ):
        yield Case(f"triage at={at}", "GET", f"/api/v1/models/fraud/triage?at={at}", says="at")
        yield Case(
            f"metrics since={at}", "GET", f"/api/v1/models/fraud/metrics?since={at}", says="since"
        )
        yield Case(f"alerts since={at}", "GET", f"/api/v1/alerts?since={at}", says="since")
    for limit in ("-1", "0", "99999999999999999999", "x"):
        yield Case(f"limit={limit}", "GET", f"/api/v1/models/fraud/metrics?limit={limit}")
        yield Case(f"runs limit={limit}", "GET", f"/api/v1/runs?limit={limit}")
    for last in ("-5", "0", "1" + "0" * 30):
        yield Case(f"backtest last={last}", "GET", f"/api/v1/models/fraud/backtest?last={last}")
    for segment in ("=", "a=b=c", "x" * 501, "%00"):
        yield Case(
            f"segment={segment[:20]}", "GET", f"/api/v1/models/fraud/metrics?segment={segment}"
        )
    for model in ("nope", "%2e%2e", "a" * 300, "FRAUD"):
        yield Case(f"model {model[:20]}", "GET", f"/api/v1/models/{model}/metrics")
        yield Case(
            f"ingest model {model[:20]}",
            "POST",
            f"/api/v1/models/{model}/events",
            _good(1).encode(),
            NDJSON,
        )
    for alert in ("nope", "x" * 300, "%00"):
        yield Case(f"alert {alert[:10]}", "GET", f"/api/v1/alerts/{alert}")
        yield Case(f"ack {alert[:10]}", "POST", f"/api/v1/alerts/{alert}/ack", b"{}", JSON)
    for body in (
        b"",
        b"[]",
        b'{"model": 1}',
        b'{"model": "nope"}',
        b'{"model": "fraud", "now": "x"}',
        b"{",
        b'{"model": "fraud", "window": "-1h"}',
    ):
        yield Case(f"runs body {body[:30]!r}", "POST", "/api/v1/runs", body, JSON)


CORPUS = list(corpus())


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    base = tmp_path_factory.mktemp("bad-input")
    config = with_reference(parse_config(MODEL_YAML + SERVER, base_dir=base))
    with TestClient(create_app(config, clock=Clock(NOW)), raise_server_exceptions=False) as c:
        yield c


def test_the_corpus_is_large() -> None:
    assert len(CORPUS) >= 150, len(CORPUS)  # beside the CLI and config corpora


@pytest.mark.parametrize("case", CORPUS, ids=[c.name for c in CORPUS])
def test_no_bad_input_gets_a_5xx_or_loses_a_good_row(client: TestClient, case: Case) -> None:
    answer = client.request(case.method, case.path, content=case.content, headers=case.headers)
    assert answer.status_code < 500, f"{case.name}: {answer.status_code} {answer.text[:300]}"
    if case.stored is not None:
        assert answer.status_code == 200, answer.text[:300]
        body = answer.json()
        assert body["accepted"] + body["duplicates"] == case.stored, body
        assert sum(body["quarantined"].values()) == body["rows"] - case.stored, body
        if case.says:
            assert any(case.says in reason for reason in body["quarantined"]), body
    elif case.content is not None and case.stored is None and case.says:
        assert 400 <= answer.status_code < 500, answer.text[:300]
        error = answer.json()["error"]
        assert case.says.lower() in (error["message"] + error["where"]).lower(), error
    elif answer.status_code >= 400:
        error = answer.json()["error"]
        assert error["message"], error
        if case.says:
            assert case.says in error["where"] or case.says in error["message"], error


def test_after_the_corpus_the_monitor_still_runs(client: TestClient) -> None:
    for case in CORPUS:
        client.request(case.method, case.path, content=case.content, headers=case.headers)
    runs = client.post("/api/v1/runs", json={"model": "fraud"})
    assert runs.status_code == 200, runs.text[:300]
    assert client.get("/api/v1/models/fraud/metrics").status_code == 200


def test_a_body_streamed_from_disk_is_answered_as_one_read_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large body is written to a temporary file as it arrives and read from there a
    batch at a time as it is stored: every ingest case of the corpus, sent that way, gets
    the same status and stores the same rows (a body broken at its end is still refused
    whole), and no temporary file is left behind."""
    import tempfile

    from watchkeeper.ingest import readers
    from watchkeeper.server import http

    def answers(folder: Path) -> list[tuple[int, Any]]:
        config = with_reference(parse_config(MODEL_YAML + SERVER, base_dir=folder))
        app = create_app(config, clock=Clock(NOW))
        out = []
        with TestClient(app, raise_server_exceptions=False) as c:
            for case in CORPUS:
                if not case.path.startswith("/api/v1/models/") or case.method != "POST":
                    continue
                answer = c.request(
                    case.method, case.path, content=case.content, headers=case.headers
                )
                body = answer.json() if answer.status_code == 200 else None
                kept = body and (
                    body["rows"],
                    body["accepted"],
                    body["duplicates"],
                    body["quarantined"],
                )
                out.append((case.name, answer.status_code, kept))
        with duckdb.connect(config.engine_url().removeprefix("duckdb://")) as db:
            for table in ("events_fraud", "quarantine"):
                out.append((table, 0, db.sql(f"SELECT count(*) FROM {table}").fetchone()))
        return out

    (tmp_path / "memory").mkdir()
    (tmp_path / "disk").mkdir()
    monkeypatch.setattr(readers, "DEFAULT_BATCH_ROWS", 2)  # bodies of several batches
    in_memory = answers(tmp_path / "memory")
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(http, "IN_MEMORY_BODY", 0)
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    streamed = answers(tmp_path / "disk")
    assert streamed == in_memory
    assert not list(spool.iterdir())
