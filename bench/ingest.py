"""Parquet ingestion: rows/s and peak memory, against a plain DuckDB insert of the same file.

    python bench/ingest.py [--rows 1000000 5000000] [--keep]

Each measurement runs in a fresh process (so its peak RSS is its own) on a fresh store;
the two are interleaved and the best time of ``--repeat`` runs of each is kept (the
machine is shared and noisy), with the highest peak memory.
The baseline, measured in the same run, is DuckDB's
``INSERT INTO t SELECT * FROM read_parquet(file)`` into a table of the same types.
Targets (2-core machine): >= 1M rows/s, within 3x of the baseline, < 1 GiB peak for 5M rows.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

N_NUMERIC = 20
CATEGORICAL = {
    f"cat_{i}": [f"v{j}" for j in range(n)] for i, n in enumerate([5, 20, 100, 400, 1000])
}

CONFIG = """\
engine: {{path: {store}}}
models:
  - name: bench
    task: binary_classification
    columns:
      event_id: event_id
      timestamp: timestamp
      features:
{features}
      score: score
      prediction: prediction
      latency: latency_ms
      status: status
"""


def make_file(path: Path, rows: int, seed: int = 0) -> None:
    """30 columns: id, time, 20 numeric, 5 categorical, score, prediction, latency, status."""
    rng = np.random.default_rng(seed)
    writer = None
    chunk = 1_000_000
    start = np.datetime64("2026-01-01T00:00:00", "us")
    for offset in range(0, rows, chunk):
        n = min(chunk, rows - offset)
        idx = np.arange(offset, offset + n)
        cols: dict[str, pa.Array] = {
            "event_id": pc.binary_join_element_wise("ev-", pa.array(idx).cast(pa.string()), ""),
            "timestamp": pa.array(
                start + (idx * 17_280).astype("timedelta64[us]"), pa.timestamp("us", tz="UTC")
            ),
        }
        for i in range(N_NUMERIC):
            values = rng.normal(i, 1 + i / 10, n)
            values[rng.uniform(size=n) < 0.01] = np.nan
            cols[f"num_{i}"] = pa.array(values, from_pandas=True)
        for name, vocab in CATEGORICAL.items():
            cols[name] = pa.array(np.asarray(vocab)[rng.integers(0, len(vocab), n)])
        score = rng.uniform(size=n)
        cols["score"] = pa.array(score)
        cols["prediction"] = pa.array((score > 0.5).astype(np.int64))
        cols["latency_ms"] = pa.array(rng.gamma(3, 10, n))
        cols["status"] = pa.array(np.where(rng.uniform(size=n) < 0.01, "error", "ok"))
        table = pa.table(cols)
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=256_000)
    assert writer is not None
    writer.close()


def write_config(folder: Path) -> Path:
    features = [f"        - {{name: num_{i}, kind: numeric}}" for i in range(N_NUMERIC)]
    features += [f"        - {{name: {name}, kind: categorical}}" for name in CATEGORICAL]
    path = folder / "watchkeeper.yaml"
    path.write_text(CONFIG.format(store=folder / "store.duckdb", features="\n".join(features)))
    return path


def child_watchkeeper(file: Path, folder: Path) -> dict[str, float]:
    import watchkeeper

    config = write_config(folder)
    with watchkeeper.open(config) as ws:
        started = time.perf_counter()
        result = ws.ingest_events("bench", file)
        seconds = time.perf_counter() - started
        assert result.accepted == result.rows, result.summary()
    return {"seconds": seconds, "rows": result.rows}


def child_duckdb(file: Path, folder: Path) -> dict[str, float]:
    import duckdb

    con = duckdb.connect(str(folder / "plain.duckdb"))
    con.execute(f"CREATE TABLE t AS SELECT * FROM read_parquet('{file}') LIMIT 0")
    started = time.perf_counter()
    con.execute(f"INSERT INTO t SELECT * FROM read_parquet('{file}')")
    seconds = time.perf_counter() - started
    rows = con.execute("SELECT count(*) FROM t").fetchone()
    con.close()
    return {"seconds": seconds, "rows": float(rows[0]) if rows else 0.0}


def measure(kind: str, file: Path) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        out = subprocess.run(
            [sys.executable, __file__, "--child", kind, str(file), folder],
            check=True,
            capture_output=True,
            text=True,
        )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--repeat", type=int, default=2, help="best of N runs of each")
    parser.add_argument("--child", nargs=3)
    args = parser.parse_args()
    if args.child:
        kind, file, folder = args.child
        run = child_watchkeeper if kind == "watchkeeper" else child_duckdb
        figures = run(Path(file), Path(folder))
        figures["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(figures))
        return

    print(
        f"{'rows':>10} {'watchkeeper rows/s':>19} {'peak MiB':>9} {'duckdb rows/s':>14} "
        f"{'peak MiB':>9} {'ratio':>6}"
    )
    with tempfile.TemporaryDirectory() as data:
        for rows in args.rows:
            file = Path(data) / f"events_{rows}.parquet"
            make_file(file, rows)
            runs = [
                (measure("duckdb", file), measure("watchkeeper", file)) for _ in range(args.repeat)
            ]
            base = min((b for b, _ in runs), key=lambda f: f["seconds"])
            ours = min((o for _, o in runs), key=lambda f: f["seconds"])
            base["peak_mib"] = max(b["peak_mib"] for b, _ in runs)
            ours["peak_mib"] = max(o["peak_mib"] for _, o in runs)
            ratio = ours["seconds"] / base["seconds"]
            print(
                f"{rows:>10,} {rows / ours['seconds']:>19,.0f} {ours['peak_mib']:>9,.0f} "
                f"{rows / base['seconds']:>14,.0f} {base['peak_mib']:>9,.0f} {ratio:>5.2f}x",
                flush=True,
            )
            file.unlink()


if __name__ == "__main__":
    main()
