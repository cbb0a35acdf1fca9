"""Ingestion over HTTP: many small requests against one large one, with and without
group commit.

    python bench/serve.py                  # 2,000 requests of 10 rows from 8 clients

Each measurement starts a fresh `watchkeeper serve` (a subprocess) on a fresh store:

bulk: one request of 20,000 rows (the ceiling).
small, grouped: 2,000 requests of 10 rows from 8 concurrent clients (group commit on).
small, one by one: the same with group commit off (`server.group_commit_rows: 1`): the
  baseline that shows what grouping buys.
body: one 60 MiB request (a JSON array, then the same rows as JSON Lines): the server's
  peak memory (VmHWM) above its idle size, and that as a multiple of the body.
windows: a run over 10,000 hourly windows of 1M events (bench/monitor.py's
  `--only windows`): its time and peak memory.

    python bench/serve.py --only body      # or: throughput, windows
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


def post(port: int, body: list[dict[str, object]] | bytes, kind: str = "application/json") -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/models/m/events",
        data=body if isinstance(body, bytes) else json.dumps(body).encode(),
        headers={"Content-Type": kind},
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


def memory_kib(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def body_memory(mib: int = 60) -> None:
    """One large body per format: the server's peak memory above idle."""
    many, size, limit = [], 2, mib * 1024 * 1024
    while True:
        row = rows(len(many), 1)[0]
        size += len(json.dumps(row)) + 2
        if size > limit:
            break
        many.append(row)
    n = len(many)
    bodies = {
        "JSON array": (json.dumps(many).encode(), "application/json"),
        "JSON Lines": ("\n".join(json.dumps(r) for r in many).encode(), "application/x-ndjson"),
    }
    del many
    for name, (body, kind) in bodies.items():
        with tempfile.TemporaryDirectory() as tmp:
            process, port = serve(Path(tmp), 200_000)
            try:
                post(port, rows(10_000_000, 10))  # warm up: the first request's imports
                idle = memory_kib(process.pid)["VmHWM"]
                started = time.perf_counter()
                post(port, body, kind)
                seconds = time.perf_counter() - started
                peak = memory_kib(process.pid)["VmHWM"]
            finally:
                process.terminate()
                process.wait()
        size = len(body) / 1024 / 1024
        extra = (peak - idle) / 1024
        print(
            f"one {size:.0f} MiB body, {name} ({n:,} rows, {seconds:.1f} s): server peak "
            f"{peak / 1024:.0f} MiB, {extra:.0f} MiB above idle ({idle / 1024:.0f} MiB) = "
            f"{extra / size:.1f}x the body",
            flush=True,
        )


def windows(counts: list[int]) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from monitor import bench_windows  # the same measurement as bench/monitor.py's

    with tempfile.TemporaryDirectory() as tmp:
        bench_windows(Path(tmp), 1_000_000, counts)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=["throughput", "body", "windows"])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--windows", type=int, nargs="+", default=[10_000])
    args = parser.parse_args()
    if args.only in (None, "body"):
        body_memory()
    if args.only in (None, "throughput"):
        throughput(args.requests, args.clients)
    if args.only in (None, "windows"):
        windows(args.windows)


def throughput(requests: int, clients: int) -> None:
    bulk = measure(200_000, 1, 20_000, 1)
    grouped = measure(200_000, requests, 10, clients)
    single = measure(1, requests, 10, clients)
    print(f"bulk, one request of 20,000 rows: {bulk:,.0f} rows/s")
    print(
        f"{requests:,} requests of 10 rows from {clients} clients, grouped: {grouped:,.0f} rows/s ({grouped / 10:,.0f} requests/s)"
    )
    print(f"the same, one commit per request: {single:,.0f} rows/s ({single / 10:,.0f} requests/s)")
    print(f"group commit: {grouped / single:.2f}x the one-by-one throughput")


if __name__ == "__main__":
    main()
