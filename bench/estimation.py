"""Regression performance without labels: events streamed through the loss model.

    python bench/estimation.py                  # 1M and 5M events
    python bench/estimation.py --rows 1000000

Events (10 numeric and 2 categorical features, a prediction, 24 hourly windows) are in a
DuckDB file. Each measurement is a fresh process:

stream: watchkeeper's ``loss_sums``: the events read in batches of 65,536 rows, each batch
  through the two loss models (absolute and squared error), summed per window.
whole: the baseline: every event read into memory at once, predicted in one call per loss
  model, and summed per window with numpy.

The loss models are fitted once per process on a 100,000-row reference (timed apart).
Target: the stream within about 1.2x of the whole-table time, with memory that does not grow
with the number of events.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

N_NUMERIC = 10
START = datetime(2026, 1, 1, tzinfo=UTC)
HOURS = 24


def table(n: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (n, N_NUMERIC))
    prediction = x[:, :3].sum(axis=1)
    noise = 0.5 + np.abs(x[:, 0])
    columns: dict[str, object] = {f"x{i}": x[:, i] for i in range(N_NUMERIC)}
    columns["c0"] = rng.choice(["a", "b", "c", "d"], n)
    columns["c1"] = rng.choice([f"v{i}" for i in range(50)], n)
    columns["prediction"] = prediction
    columns["label"] = prediction + rng.normal(0, noise)
    columns["ts"] = pa.array(
        [START + timedelta(seconds=float(s)) for s in rng.uniform(0, HOURS * 3600, n)]
        if n <= 100_000
        else np.datetime64(START.replace(tzinfo=None))
        + (rng.uniform(0, HOURS * 3600, n) * 1e6).astype("timedelta64[us]"),
        pa.timestamp("us", tz="UTC"),
    )
    return pa.table(columns)


def fitted_model() -> tuple[object, float]:
    from watchkeeper.stats.loss import LossModel

    started = time.perf_counter()
    model = LossModel.fit(
        table(100_000, 1), [f"x{i}" for i in range(N_NUMERIC)], ["c0", "c1"], "prediction", "label"
    )
    return model, time.perf_counter() - started


def child_stream(path: str) -> dict[str, float]:
    from watchkeeper.store import Store
    from watchkeeper.tasks.regression import loss_sums

    model, fit_seconds = fitted_model()
    store = Store.open(f"duckdb://{path}", memory_limit="256MB")  # as a store opens by default
    started = time.perf_counter()
    sums = loss_sums(
        store,
        store.table("events"),
        "ts",
        "1",
        timedelta(hours=1),
        {},
        model,  # type: ignore[arg-type]
    )
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "fit_seconds": fit_seconds, "windows": len(sums)}


def child_whole(path: str) -> dict[str, float]:
    import duckdb

    model, fit_seconds = fitted_model()
    started = time.perf_counter()
    con = duckdb.connect(path, read_only=True)
    data = con.sql(
        "SELECT epoch_us(ts) // 3600000000 AS w, * EXCLUDE (ts, label) FROM events"
    ).to_arrow_table()
    absolute, squared = model.predict(data)  # type: ignore[attr-defined]
    windows = data["w"].to_numpy()
    keys, index = np.unique(windows, return_inverse=True)
    np.bincount(index, weights=absolute)
    np.bincount(index, weights=squared)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "fit_seconds": fit_seconds, "windows": len(keys)}


def measure(*args: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args], check=True, capture_output=True, text=True
    )
    figures: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


def bench(folder: Path, rows: int, repeat: int) -> None:
    import duckdb

    path = folder / "events.duckdb"
    con = duckdb.connect(str(path))
    chunk = 1_000_000
    for i in range(0, rows, chunk):
        part = table(min(chunk, rows - i), 100 + i)  # noqa: F841 (read by DuckDB by name)
        if i == 0:
            con.sql("CREATE TABLE events AS SELECT * FROM part")
        else:
            con.sql("INSERT INTO events SELECT * FROM part")
    con.close()
    best: dict[str, dict[str, float]] = {}
    for _ in range(repeat):
        for kind in ("whole", "stream"):
            found = measure(kind, str(path))
            if kind not in best or found["seconds"] < best[kind]["seconds"]:
                best[kind] = found
    stream, whole = best["stream"], best["whole"]
    print(
        f"{rows:,} events: stream {stream['seconds']:.2f} s, peak {stream['peak_mib']:.0f} MiB; "
        f"whole table {whole['seconds']:.2f} s, peak {whole['peak_mib']:.0f} MiB; "
        f"ratio {stream['seconds'] / whole['seconds']:.2f}x; "
        f"{rows / stream['seconds']:,.0f} events/s; loss models fitted in "
        f"{stream['fit_seconds']:.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--child", nargs="+")
    args = parser.parse_args()
    if args.child:
        kind, path = args.child
        figures = {"stream": child_stream, "whole": child_whole}[kind](path)
        figures["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(figures))
        return
    with tempfile.TemporaryDirectory() as tmp:
        for rows in args.rows:
            folder = Path(tmp) / f"rows{rows}"
            folder.mkdir()
            bench(folder, rows, args.repeat)


if __name__ == "__main__":
    main()
