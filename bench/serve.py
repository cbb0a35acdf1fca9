"""Ingestion over HTTP: many small requests against one large one, with and without
group commit.

    python bench/serve.py                  # 2,000 requests of 10 rows from 8 clients

Each measurement starts a fresh `watchkeeper serve` (a subprocess) on a fresh store:

bulk: one request of 20,000 rows (the ceiling).
small, grouped: 2,000 requests of 10 rows from 8 concurrent clients (group commit on).
small, one by one: the same with group commit off (`server.group_commit_rows: 1`): the
  baseline that shows what grouping buys.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

YAML = """engine: {{path: store.duckdb}}
models:
  - name: m
    task: binary_classification
    columns:
      event_id: id
      timestamp: ts
      features: [{{name: x, kind: numeric}}, {{name: c, kind: categorical}}]
      score: score
server:
  schedule_every: null
  group_commit_rows: {group}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rows(start: int, n: int) -> list[dict[str, object]]:
    return [
        {"id": f"e{i}", "ts": "2026-01-01T00:00:00Z", "x": i * 0.5, "c": "abc"[i % 3], "score": 0.3}
        for i in range(start, start + n)
    ]


def post(port: int, body: list[dict[str, object]]) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/models/m/events",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=120) as answer:
        assert answer.status == 200


def serve(folder: Path, group: int) -> tuple[subprocess.Popen[bytes], int]:
    (folder / "watchkeeper.yaml").write_text(YAML.format(group=group))
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "watchkeeper.cli",
            "--config",
            str(folder / "watchkeeper.yaml"),
            "serve",
            "--port",
            str(port),
            "--no-schedule",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ},
    )
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return process, port
        except OSError:
            time.sleep(0.1)


def measure(group: int, requests: int, size: int, clients: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        process, port = serve(Path(tmp), group)
        try:
            post(port, rows(10_000_000, 10))  # warm up
            work = list(range(requests))
            lock = threading.Lock()

            def client() -> None:
                while True:
                    with lock:
                        if not work:
                            return
                        i = work.pop()
                    post(port, rows(i * size, size))

            started = time.perf_counter()
            threads = [threading.Thread(target=client) for _ in range(clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return requests * size / (time.perf_counter() - started)
        finally:
            process.terminate()
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    bulk = measure(200_000, 1, 20_000, 1)
    grouped = measure(200_000, args.requests, 10, args.clients)
    single = measure(1, args.requests, 10, args.clients)
    print(f"bulk, one request of 20,000 rows: {bulk:,.0f} rows/s")
    print(
        f"{args.requests:,} requests of 10 rows from {args.clients} clients, grouped: {grouped:,.0f} rows/s ({grouped / 10:,.0f} requests/s)"
    )
    print(f"the same, one commit per request: {single:,.0f} rows/s ({single / 10:,.0f} requests/s)")
    print(f"group commit: {grouped / single:.2f}x the one-by-one throughput")


if __name__ == "__main__":
    main()
