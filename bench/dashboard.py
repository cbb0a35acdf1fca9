"""Dashboard page loads for a model with a year of hourly windows.

    python bench/dashboard.py

A store holds one model's metrics for 8,760 hourly windows (whole traffic and three
segments: about 70 rows a window, 600,000 rows), plus 200 alerts. Each page is requested
through the ASGI app in-process (server-side time, as a browser on the same machine would
wait for it), best of 3 after one warm-up. Target: under 0.5 s a page. The baseline is the
plainest request the app answers (GET /healthz), measured the same way.
"""

from __future__ import annotations

import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from watchkeeper.config import parse_config
from watchkeeper.store.engine import arrow_schema
from watchkeeper.store.tables import ALERTS, METRICS, SHARED

YAML = """\
engine: {path: store.duckdb}
models:
  - name: fraud
    task: binary_classification
    columns:
      features: [{name: amount, kind: numeric}, {name: country, kind: categorical}]
      score: score
      segments: [region]
      latency: latency_ms
    monitoring: {window: 1h}
alerting:
  rules:
    - {name: errors, severity: page, owner: infrastructure, conditions: [{metric: error_rate, above: 0.2}]}
"""

START = datetime(2025, 1, 1, tzinfo=UTC)
HOURS = 24 * 365
WHOLE = [
    "roc_auc", "estimated_roc_auc", "accuracy", "estimated_accuracy", "precision", "recall",
    "f1", "row_count", "error_rate", "label_coverage", "volume_ratio", "net_value",
    "expected_calibration_error", "mean_confidence", "predicted_positive_rate",
]  # fmt: skip
PER_COLUMN = ["drift", "drift_psi", "missing_rate", "mean"]
COLUMNS = ["amount", "country", "score"]
SEGMENTS = ["north", "south", "east"]


def rows() -> pa.Table:
    rng = np.random.default_rng(1)
    starts = [START + timedelta(hours=h) for h in range(HOURS)]
    out: dict[str, list[object]] = {k: [] for k in SHARED[METRICS]}

    def add(metric: str, column: str, seg: tuple[str, str], values: np.ndarray) -> None:
        n = len(starts)
        out["model"] += ["fraud"] * n
        out["model_version"] += ["1"] * n
        out["window_start"] += starts
        out["window_end"] += [s + timedelta(hours=1) for s in starts]
        out["segment_column"] += [seg[0]] * n
        out["segment_value"] += [seg[1]] * n
        out["metric"] += [metric] * n
        out["column"] += [column] * n
        out["value"] += values.tolist()
        out["lower"] += (values - 0.02).tolist()
        out["upper"] += (values + 0.02).tolist()
        out["p_value"] += [None] * n
        out["threshold"] += [None] * n
        out["sample_size"] += [1000] * n
        out["status"] += ["ok"] * n
        out["provisional"] += [False] * n
        out["detail"] += [""] * n
        out["run_id"] += ["bench"] * n
        out["computed_at"] += [START] * n

    for metric in WHOLE:
        add(metric, "", ("*", "*"), rng.uniform(0.7, 0.9, HOURS))
    for metric in PER_COLUMN:
        for column in COLUMNS:
            add(metric, column, ("*", "*"), rng.uniform(0, 0.2, HOURS))
    add("latency_p99", "latency_ms", ("*", "*"), rng.uniform(80, 120, HOURS))
    for value in SEGMENTS:
        for metric in ("roc_auc", "estimated_roc_auc", "accuracy", "row_count", "segment_gap"):
            add(metric, "", ("region", value), rng.uniform(0.6, 0.9, HOURS))
    return pa.table(out, schema=arrow_schema(SHARED[METRICS]))


def alerts() -> pa.Table:
    found = []
    for i in range(200):
        start = START + timedelta(hours=40 * i)
        found.append(
            {
                "alert_id": f"a{i}", "fingerprint": f"f{i % 7}", "rule": "errors", "model": "fraud",
                "severity": "page", "owner": "infrastructure", "state": "resolved" if i < 195 else "firing",
                "labels": json.dumps({"alertname": "errors", "model": "fraud", "metric": "error_rate"}),
                "evidence": "[]", "summary": f"fraud: error rate is high ({i})", "started_at": start,
                "updated_at": start, "resolved_at": start + timedelta(hours=3) if i < 195 else None,
                "window_start": start, "window_size_s": 3600, "resolved_notified": False,
            }
        )  # fmt: skip
    schema = arrow_schema(SHARED[ALERTS])
    return pa.Table.from_pylist([{c: r.get(c) for c in schema.names} for r in found], schema=schema)


def main() -> None:
    from fastapi.testclient import TestClient

    import watchkeeper
    from watchkeeper.server import create_app

    with tempfile.TemporaryDirectory() as tmp:
        config = parse_config(YAML, base_dir=Path(tmp))
        with watchkeeper.open(config) as ws:
            table = rows()
            ws.store.insert(METRICS, table)
            ws.store.insert(ALERTS, alerts())
        print(f"{table.num_rows:,} metric rows over {HOURS:,} hourly windows")
        now = START + timedelta(hours=HOURS + 1)
        app = create_app(config, clock=lambda: now, schedule=False)
        pages = [
            "/healthz", "/", "/models/fraud", "/models/fraud?metric=latency_p99&column=latency_ms",
            "/models/fraud/drift", "/models/fraud/segments", "/alerts", "/models/fraud/alerts/a199",
        ]  # fmt: skip
        with TestClient(app) as client:
            times = {}
            for path in pages:
                client.get(path)  # warm-up
                best = float("inf")
                for _ in range(3):
                    started = time.perf_counter()
                    answer = client.get(path)
                    best = min(best, time.perf_counter() - started)
                    assert answer.status_code == 200, (path, answer.status_code)
                times[path] = (best, len(answer.content))
        base = times["/healthz"][0]
        print("server side, in-process (best of 3):")
        for path, (seconds, size) in times.items():
            print(
                f"  {path:<55} {seconds * 1000:7.0f} ms  {size / 1024:7.0f} KiB  {seconds / base:6.0f}x /healthz"
            )
        browser(app, pages[1:])


def browser(app: object, pages: list[str]) -> None:
    """The same pages in Chromium over loopback: navigation start to the load event (the
    charts are drawn by then), best of 4."""
    import shutil
    import socket
    import threading

    import uvicorn

    path = shutil.which("chromium")
    if path is None:
        print("(no chromium: browser timings skipped)")
        return
    from playwright.sync_api import sync_playwright

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
    print("in Chromium, navigation to the load event (best of 4):")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=path, args=args)
        page = chromium.new_page()
        for url in pages:
            best = float("inf")
            for _ in range(4):
                page.goto(f"http://127.0.0.1:{port}{url}")
                page.wait_for_load_state("load")
                took = page.evaluate(
                    "() => { const t = performance.getEntriesByType('navigation')[0];"
                    " return t.loadEventEnd - t.startTime; }"
                )
                best = min(best, took)
            print(f"  {url:<55} {best:7.0f} ms")
        chromium.close()
    server.should_exit = True
    thread.join(timeout=30)


if __name__ == "__main__":
    main()
