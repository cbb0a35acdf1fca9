"""Killed with SIGKILL under load, the server restarts with every acknowledged event
present exactly once; a client's retry of the batches it got no answer for stores each
event once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import duckdb

from tests.helpers import MODEL_YAML, event, free_port


def start(folder: Path, port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "watchkeeper.cli", "--config"]
    command += [str(folder / "watchkeeper.yaml"), "serve", "--port", str(port), "--no-schedule"]
    with (folder / f"serve-{port}.log").open("ab") as log:
        process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=log,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError((folder / f"serve-{port}.log").read_text())


def post(port: int, rows: list[dict[str, object]]) -> bool:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/models/fraud/events",
        data=json.dumps(rows).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status == 200
    except (OSError, urllib.error.URLError):
        return False


def test_kill_minus_nine_under_load_loses_no_acknowledged_event(tmp_path: Path) -> None:
    (tmp_path / "watchkeeper.yaml").write_text(MODEL_YAML + "server:\n  schedule_every: null\n")
    port = free_port()
    server = start(tmp_path, port)
    batches = {
        (t, b): [event(i, id=f"t{t}-b{b}-{i}") for i in range(50)]
        for t in range(4)
        for b in range(1000)
    }
    acked: set[tuple[int, int]] = set()
    tried: set[tuple[int, int]] = set()
    lock = threading.Lock()
    stop = threading.Event()

    def client(t: int) -> None:
        for b in range(1000):
            if stop.is_set():
                return
            with lock:
                tried.add((t, b))
            if post(port, batches[(t, b)]):
                with lock:
                    acked.add((t, b))

    threads = [threading.Thread(target=client, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    while len(acked) < 60:
        time.sleep(0.01)
    server.send_signal(signal.SIGKILL)  # requests are in flight
    server.wait()
    stop.set()
    for th in threads:
        th.join()
    assert len(tried) > len(acked) >= 60
    server = start(tmp_path, port)
    try:
        # The client retries what got no answer, and (harmlessly) one acknowledged batch.
        unanswered = sorted(tried - acked)
        for key in [*unanswered, min(acked)]:
            assert post(port, batches[key])
    finally:
        server.terminate()
        server.wait(timeout=30)
    con = duckdb.connect(str(tmp_path / "store.duckdb"), read_only=True)
    total, distinct = con.sql("SELECT count(*), count(DISTINCT id) FROM events_fraud").fetchone()
    stored = {r[0] for r in con.sql("SELECT id FROM events_fraud").fetchall()}
    con.close()
    expected = {row["id"] for key in tried for row in batches[key]}
    assert total == distinct == len(expected)
    assert stored == expected
