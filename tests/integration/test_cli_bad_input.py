"""A corpus of bad files and configs given to the CLI: each gets one clear line and an exit
code, never a traceback; the good rows of a file with bad ones are stored."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from tests.helpers import MODEL_YAML, corrupt_parquet_pages, event
from watchkeeper.cli import main

GOOD = [event(i) for i in range(5)]


def _jsonl(rows: list[dict[str, object]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def _parquet(rows: list[dict[str, object]]) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), sink)
    return sink.getvalue()


def _csv(rows: list[dict[str, object]]) -> bytes:
    head = list(rows[0])
    lines = [",".join(head)] + [",".join(str(r[k]) for k in head) for r in rows]
    return ("\n".join(lines) + "\n").encode()


DEEP = '{"a":' * 50_000 + "1" + "}" * 50_000
# (file name, content, exit code, what the output must say, good rows stored)
FILES: list[tuple[str, bytes, int, str, int | None]] = [
    ("events.jsonl.gz", gzip.compress(_jsonl(GOOD)), 0, "5 accepted", 5),
    ("events.jsonl", gzip.compress(_jsonl(GOOD)), 0, "5 accepted", 5),  # gzip by content
    ("events.json.gz", gzip.compress(json.dumps(GOOD).encode()), 0, "5 accepted", 5),
    ("events.csv.gz", gzip.compress(_csv(GOOD)), 0, "5 accepted", 5),
    ("events.jsonl.gz", gzip.compress(_jsonl(GOOD))[:-30], 1, "cannot read", 0),
    ("events.jsonl.gz", b"\x1f\x8b" + b"\x00" * 50, 1, "cannot read", 0),
    ("events.csv", b"\x00\xff\xfe garbage \x89PNG\r\n" * 40, 1, "", None),
    ("events.csv", b"", 1, "empty", 0),
    ("events.csv", _csv(GOOD)[:-40], 3, "quarantined", 4),
    ("events.jsonl", _jsonl(GOOD) + DEEP.encode() + b"\n", 3, "nested too deeply", 5),
    ("events.json", json.dumps([*GOOD, "x"]).encode(), 3, "JSON object", 5),
    ("events.json", ("[" + DEEP + "," + json.dumps(GOOD[0]) + "]").encode(), 3, "quarantined", 1),
    ("events.jsonl", _jsonl(GOOD) + b'{"id": "\\ud800"}\n', 3, "quarantined", 5),
    ("events.json", b'[{"id": "\\ud800"}]', 3, "quarantined", 0),
    ("events.jsonl", b"\xff\xfe\n" + _jsonl(GOOD), 3, "not valid JSON", 5),
    ("events.parquet", corrupt_parquet_pages(_parquet(GOOD)), 1, "cannot read", 0),
    ("events.parquet", _parquet(GOOD)[:100], 1, "cannot read", 0),
    ("events.parquet", b"PAR1" + b"\x00" * 100 + b"PAR1", 1, "cannot read", 0),
    ("events.json", b"[", 1, "not valid JSON", 0),
    ("events.json", b'{"id": 1}', 3, "", 0),  # one JSON object: a JSON line
    ("events.jsonl", ("1" * 5000).encode() + b"\n" + _jsonl(GOOD), 3, "quarantined", 5),
    ("events.jsonl", _jsonl([event(9, ts="9999-12-31T23:59:59Z"), *GOOD]), 3, "timestamp", 5),
    ("events.jsonl", _jsonl([event(9, latency_ms="Infinity"), *GOOD]), 3, "non_finite", 5),
    (
        "events.jsonl",
        _jsonl([{k: v for k, v in e.items() if k != "amount"} for e in GOOD]),
        3,
        "required columns missing, so every row was quarantined: amount",
        0,
    ),
    ("events.xlsx", b"PK\x03\x04", 1, "unknown file type", 0),
    ("events.tsv.zst", b"\x28\xb5\x2f\xfd" + b"\x00" * 20, 1, "cannot read", 0),
]


def invoke(cwd: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--config", str(cwd / "watchkeeper.yaml"), *args])
    text = result.output
    assert "Traceback" not in text, text
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"{args}: raised {result.exception!r}\n{text}")
    return result.exit_code, text


@pytest.mark.parametrize(
    ("name", "content", "code", "says", "stored"),
    FILES,
    ids=[f"{i}-{f[0]}" for i, f in enumerate(FILES)],
)
def test_a_bad_file_gets_one_line_and_an_exit_code(
    tmp_path: Path, name: str, content: bytes, code: int, says: str, stored: int | None
) -> None:
    (tmp_path / "watchkeeper.yaml").write_text(MODEL_YAML)
    path = tmp_path / name
    path.write_bytes(content)
    got, text = invoke(tmp_path, "ingest", "events", "--model", "fraud", str(path))
    assert got == code, text
    assert says in text, text
    if stored is not None:
        got, text = invoke(tmp_path, "ingest", "events", "--model", "fraud", str(path), "--json")
        if got in (0, 3):
            summary = json.loads(text.splitlines()[0])
            assert summary["accepted"] + summary["duplicates"] == stored, summary


CONFIGS: list[tuple[str, Callable[[str], bytes], str]] = [
    ("not UTF-8", lambda y: y.encode("utf-16"), "UTF-8"),
    ("latin-1 bytes", lambda y: y.encode() + b"\n# caf\xe9\n", "UTF-8"),
    ("empty", lambda y: b"", "empty"),
    ("only a comment", lambda y: b"# nothing\n", "empty"),
    (
        "duplicate key",
        lambda y: (
            y.replace("models:", "models:\n", 1).encode()
            + b"server:\n  port: 1\nserver:\n  port: 2\n"
        ),
        "duplicate",
    ),
    ("tabs", lambda y: y.replace("  ", "\t", 1).encode(), "line"),
    ("a list at the top", lambda y: b"- a\n- b\n", "mapping"),
    ("binary", lambda y: b"\x00\x01\x02" * 30, ""),
]


def _swap(old: str, new: str) -> Callable[[str], bytes]:
    def make(text: str) -> bytes:
        assert old in text, old
        return text.replace(old, new, 1).encode()

    return make


# Mistakes inside a valid YAML file: each named with its place and a whole sentence.
CONFIGS += [
    ("reversed range", _swap("range: [0, 1000]", "range: [50000, 0]"), "low < high"),
    ("range of one", _swap("range: [0, 1000]", "range: [5]"), "range"),
    ("range of text", _swap("range: [0, 1000]", "range: [a, b]"), "range"),
    (
        "zero window",
        _swap("    threshold: 0.5\n", "    threshold: 0.5\n    monitoring: {window: 0s}\n"),
        "longer than zero",
    ),
    (
        "negative window",
        _swap("    threshold: 0.5\n", "    threshold: 0.5\n    monitoring: {window: -1h}\n"),
        "window",
    ),
    ("zero schedule", lambda y: (y + "server:\n  schedule_every: 0s\n").encode(), "schedule_every"),
    (
        "huge window",
        _swap("    threshold: 0.5\n", "    threshold: 0.5\n    monitoring: {window: 99999999d}\n"),
        "days",
    ),
    ("threshold above one", _swap("threshold: 0.5", "threshold: 1.5"), "threshold"),
    ("unknown task", _swap("task: binary_classification", "task: clustering"), "task"),
    ("unknown kind", _swap("kind: boolean}", "kind: bool}"), "kind"),
    ("a model name with spaces", _swap("name: fraud", "name: Fraud Model"), "name"),
    ("two models of one name", _swap("name: prices", "name: fraud"), "fraud"),
    (
        "a bad sha256",
        lambda y: (
            y + "server:\n  api_keys:\n    - {name: k, scopes: [ingest], sha256: x}\n"
        ).encode(),
        "sha256",
    ),
    (
        "an unknown scope",
        lambda y: (
            y + "server:\n  api_keys:\n    - {name: k, scopes: [root], sha256: " + "a" * 64 + "}\n"
        ).encode(),
        "scopes",
    ),
    ("a port out of range", lambda y: (y + "server:\n  port: 70000\n").encode(), "port"),
    ("an unknown top-level key", lambda y: (y + "modles: []\n").encode(), "modles"),
    (
        "times in the future",
        _swap("    threshold: 0.5\n", "    threshold: 0.5\n    times: {ahead: 0s}\n"),
        "ahead",
    ),
    ("an unclosed bracket", _swap("range: [0, 1000]", "range: [0, 1000"), "line"),
]


@pytest.mark.parametrize(("label", "make", "says"), CONFIGS, ids=[c[0] for c in CONFIGS])
def test_a_bad_config_is_one_line_that_names_the_problem(
    tmp_path: Path, label: str, make: Callable[[str], bytes], says: str
) -> None:
    (tmp_path / "watchkeeper.yaml").write_bytes(make(MODEL_YAML))
    got, text = invoke(tmp_path, "models")
    assert got == 2, text
    assert says.lower() in text.lower(), text


def test_the_line_keys_new_prints_validates_when_pasted(tmp_path: Path) -> None:
    from watchkeeper.config import parse_config

    (tmp_path / "watchkeeper.yaml").write_text(MODEL_YAML)
    got, text = invoke(tmp_path, "keys", "new", "--name", "serving_app", "--scopes", "ingest,read")
    assert got == 0, text
    line = next(t for t in text.splitlines() if "sha256:" in t)
    assert "scopes: [ingest, read]" in line
    config = parse_config(MODEL_YAML + "server:\n  api_keys:\n" + line + "\n")
    assert config.server.api_keys[0].scopes == ("ingest", "read")
    bad, said = invoke(tmp_path, "keys", "new", "--name", "Serving App")
    assert bad == 2 and "--name" in said
