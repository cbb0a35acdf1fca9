"""Drift and quality: the notebook comparison and stored-model runs, with their baselines.

    python bench/monitor.py                 # everything at the issue's sizes
    python bench/monitor.py --only compare  # or: run
    python bench/monitor.py --rows 1000000  # the stored-model run at one size
    python bench/monitor.py --only windows --windows 1000 10000  # a backfill's memory

Every measurement is a fresh process, so times are whole-process and memory is its own peak.

compare: reference vs current Parquet files (1M rows each; 20 numeric and 5 categorical
  features with 5 to 1,000 categories), against a hand-written DuckDB script computing the
  same histograms (quantile edges of the reference, then counts per bin and per category of
  both files), in the same run. Targets: <= 2.5 s, <= 500 MB, <= 1.2x the script.
run: a stored model, 24 hourly windows, three segment columns, 1M and 10M events: a full
  quality and drift run (targets: 3 s and 30 s, <= 2 GiB), then one more hour of events and
  a re-run, which should cost about one hour's share of the full run.
windows: one run over many hourly windows of 1M events (a backfill): its seconds and peak
  memory at each window count (target: under 1.5 GB at 10,000, time linear in windows).
multivariate: the run's 1M events (same features) with reconstruction drift on and off, in
  two stores fed the same files, runs interleaved: the ratio of the run's seconds (target:
  at most 1.2x), and the components the fit kept.
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
import pyarrow.compute as pc
import pyarrow.parquet as pq

N_NUMERIC = 20
CATEGORIES = [5, 20, 100, 400, 1000]
START = datetime(2026, 1, 1, tzinfo=UTC)
HOURS = 24


def features(n: int, rng: np.random.Generator, shift: float = 0.0) -> dict[str, pa.Array]:
    cols: dict[str, pa.Array] = {}
    for i in range(N_NUMERIC):
        cols[f"num_{i}"] = pa.array(rng.normal(i + shift * (i % 3 == 0), 1 + i / 10, n))
    for j, k in enumerate(CATEGORIES):
        weights = 1 / np.arange(1, k + 1) ** 0.8
        cols[f"cat_{j}"] = pa.array(
            np.asarray([f"v{v}" for v in range(k)])[rng.choice(k, n, p=weights / weights.sum())]
        )
    return cols


def write_features(path: Path, rows: int, seed: int, shift: float = 0.0) -> None:
    rng = np.random.default_rng(seed)
    writer = None
    for offset in range(0, rows, 500_000):
        n = min(500_000, rows - offset)
        table = pa.table(features(n, rng, shift))
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=122_880)
    assert writer is not None
    writer.close()


def write_events(
    path: Path, rows: int, seed: int, start: datetime, hours: int, first_id: int = 0
) -> None:
    rng = np.random.default_rng(seed)
    writer = None
    step = 500_000
    for offset in range(0, rows, step):
        n = min(step, rows - offset)
        idx = np.arange(first_id + offset, first_id + offset + n)
        secs = (idx - first_id) * (hours * 3600 / rows)
        cols = {
            "event_id": pc.binary_join_element_wise("e", pa.array(idx).cast(pa.string()), ""),
            "timestamp": pa.array(
                np.datetime64(start.replace(tzinfo=None), "us")
                + (secs * 1e6).astype("timedelta64[us]"),
                pa.timestamp("us", tz="UTC"),
            ),
            **features(n, rng),
            "score": pa.array(rng.uniform(size=n)),
            "region": pa.array(rng.choice(["eu", "us", "apac"], n)),
            "device": pa.array(rng.choice(["ios", "android", "web"], n)),
            "new_user": pa.array(rng.choice(["yes", "no"], n)),
            "latency_ms": pa.array(rng.gamma(3, 10, n)),
            "status": pa.array(np.where(rng.uniform(size=n) < 0.01, "error", "ok")),
        }
        table = pa.table(cols)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=122_880)
    assert writer is not None
    writer.close()


CONFIG = """\
engine: {{path: {store}}}
models:
  - name: bench
    task: binary_classification
    columns:
      features:
{features}
      score: score
      segments: [region, device, new_user]
      latency: latency_ms
      status: status
    monitoring: {{multivariate: {multivariate}}}
"""


def write_config(folder: Path, multivariate: bool = True) -> Path:
    lines = [f"        - {{name: num_{i}, kind: numeric}}" for i in range(N_NUMERIC)]
    lines += [f"        - {{name: cat_{j}, kind: categorical}}" for j in range(len(CATEGORIES))]
    path = folder / "watchkeeper.yaml"
    path.write_text(
        CONFIG.format(
            store=folder / "store.duckdb",
            features="\n".join(lines),
            multivariate=str(multivariate).lower(),
        )
    )
    return path


# -- children: each prints one JSON line --------------------------------------------------


def child_compare(ref: str, cur: str) -> dict[str, float]:
    import watchkeeper

    report = watchkeeper.compare(ref, cur)
    return {"drifted": len(report.drifted)}


def child_sql(ref: str, cur: str) -> dict[str, float]:
    """The hand-written baseline: the same histograms in plain DuckDB SQL, with the bin
    found by a binary search written out as nested CASEs (the fastest form found)."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET memory_limit = '256MB'")
    numeric = [f"num_{i}" for i in range(N_NUMERIC)]
    qs = ", ".join(str(i / 100) for i in range(101))
    edges_row = con.execute(
        "SELECT "
        + ", ".join(f"approx_quantile({c}, [{qs}])" for c in numeric)
        + f" FROM read_parquet('{ref}')"
    ).fetchone()
    assert edges_row is not None

    def search(col: str, edges: list[float], lo: int, hi: int) -> str:
        if lo > hi:
            return str(lo)
        mid = (lo + hi) // 2
        return (
            f"CASE WHEN {col} < {edges[mid]!r} THEN {search(col, edges, lo, mid - 1)} "
            f"ELSE {search(col, edges, mid + 1, hi)} END"
        )

    cells = 0
    for path in (ref, cur):
        for c, found in zip(numeric, edges_row, strict=True):
            edges = sorted(set(found))
            k = len(edges) - 1
            bin_sql = (
                f"CASE WHEN {c} < {edges[0]!r} THEN 0 WHEN {c} > {edges[-1]!r} THEN {k + 1} "
                f"ELSE {search(c, edges, 1, k - 1)} END"
            )
            cells += len(
                con.execute(
                    f"SELECT {bin_sql} AS b, count(*) FROM read_parquet('{path}') "
                    f"WHERE {c} IS NOT NULL GROUP BY b"
                ).fetchall()
            )
        for j in range(len(CATEGORIES)):
            cells += len(
                con.execute(
                    f"SELECT cat_{j}, count(*) FROM read_parquet('{path}') GROUP BY 1"
                ).fetchall()
            )
    return {"cells": cells}


def child_run(config: str, now: str, full: str = "") -> dict[str, float]:
    import watchkeeper

    clock = datetime.fromisoformat(now)
    with watchkeeper.open(config, clock=lambda: clock) as ws:
        started = time.perf_counter()
        result = ws.run("bench", full=bool(full))
        seconds = time.perf_counter() - started
    return {
        "run_seconds": seconds,
        "windows": len(result.windows),
        "metrics": result.metric_count,
    }


def child_ingest(
    config: str, file: str, now: str, reference: str, kind: str = "events"
) -> dict[str, float]:
    import watchkeeper

    clock = datetime.fromisoformat(now)
    with watchkeeper.open(config, clock=lambda: clock) as ws:
        if reference:
            ws.set_reference("bench", reference, labels=False)  # events carry no label
        result = ws.ingest(kind, "bench", file)  # type: ignore[arg-type]
    return {"accepted": result.accepted}


def write_labels(path: Path, rows: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    ids = pc.binary_join_element_wise("e", pa.array(np.arange(rows)).cast(pa.string()), "")
    pq.write_table(
        pa.table({"event_id": ids, "label": (rng.uniform(size=rows) < 0.2).astype(np.int64)}), path
    )


def measure(*args: str) -> dict[str, float]:
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args], check=True, capture_output=True, text=True
    )
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    figures["seconds"] = time.perf_counter() - started
    return figures


def bench_compare(folder: Path, repeat: int) -> None:
    ref, cur = folder / "reference.parquet", folder / "current.parquet"
    write_features(ref, 1_000_000, seed=1)
    write_features(cur, 1_000_000, seed=2, shift=0.3)
    runs = [
        (measure("sql", str(ref), str(cur)), measure("compare", str(ref), str(cur)))
        for _ in range(repeat)
    ]
    sql = min((s for s, _ in runs), key=lambda f: f["seconds"])
    ours = min((o for _, o in runs), key=lambda f: f["seconds"])
    print("compare: 1M reference vs 1M current rows, 20 numeric + 5 categorical features")
    print(
        f"  watchkeeper.compare  {ours['seconds']:6.2f} s  peak {max(o['peak_mib'] for _, o in runs):6.0f} MiB"
        f"  ({ours['drifted']:.0f} features drifted)"
    )
    print(
        f"  hand-written DuckDB  {sql['seconds']:6.2f} s  peak {max(s['peak_mib'] for s, _ in runs):6.0f} MiB"
    )
    print(
        f"  ratio                {ours['seconds'] / sql['seconds']:6.2f}x   (targets: <= 2.5 s, <= 500 MB, <= 1.2x)"
    )


def bench_run(folder: Path, rows: int) -> None:
    config = write_config(folder)
    ref = folder / "reference.parquet"
    events = folder / "events.parquet"
    more = folder / "more.parquet"
    write_events(
        ref, 200_000, seed=5, start=START - timedelta(days=30), hours=HOURS, first_id=10**9
    )
    write_events(events, rows, seed=6, start=START, hours=HOURS)
    per_hour = rows // HOURS
    write_events(
        more, per_hour, seed=7, start=START + timedelta(hours=HOURS), hours=1, first_id=rows
    )
    t0 = START + timedelta(hours=HOURS, minutes=30)
    started = time.perf_counter()
    measure("ingest", str(config), str(events), t0.isoformat(), str(ref))
    ingest_s = time.perf_counter() - started
    full = measure("run", str(config), t0.isoformat())
    t1 = START + timedelta(hours=HOURS + 1, minutes=30)
    measure("ingest", str(config), str(more), t1.isoformat(), "")
    again = measure("run", str(config), t1.isoformat())
    labels = folder / "labels.parquet"
    write_labels(labels, rows, seed=8)
    t2 = START + timedelta(hours=HOURS + 2, minutes=30)
    measure("ingest", str(config), str(labels), t2.isoformat(), "", "labels")
    labelled = measure("run", str(config), t2.isoformat())  # every window is dirty again
    print(
        f"run: {rows:,} events, {HOURS} hourly windows, 3 segment columns (ingested in {ingest_s:.0f} s)"
    )
    print(
        f"  full run     {full['run_seconds']:6.2f} s in run, {full['seconds']:6.2f} s whole process, "
        f"peak {full['peak_mib']:6.0f} MiB, {full['windows']:.0f} windows, {full['metrics']:,.0f} metrics"
    )
    share = full["run_seconds"] / full["windows"]
    print(
        f"  +1 hour      {again['run_seconds']:6.2f} s in run ({again['windows']:.0f} window), "
        f"{again['run_seconds'] / share:5.1f}x one window's share of the full run"
    )
    per_window = labelled["run_seconds"] / labelled["windows"]
    print(
        f"  with labels  {labelled['run_seconds']:6.2f} s in run ({labelled['windows']:.0f} windows, "
        f"performance included): {per_window / share:5.2f}x the run without labels per window "
        "(target: at most 1.5x)"
    )


def child_fit(config: str, now: str) -> dict[str, float]:
    import watchkeeper

    clock = datetime.fromisoformat(now)
    with watchkeeper.open(config, clock=lambda: clock) as ws:
        profile = ws.reference_profile("bench")
    fitted = profile.reconstruction if profile is not None else None
    if fitted is None:
        return {"kept": 0, "columns": 0, "stored": 0}
    return {
        "kept": fitted.kept,
        "columns": len(fitted.columns),
        "stored": len(fitted.components),
    }


def bench_multivariate(folder: Path, rows: int, repeat: int) -> None:
    ref, events = folder / "reference.parquet", folder / "events.parquet"
    write_events(
        ref, 200_000, seed=5, start=START - timedelta(days=30), hours=HOURS, first_id=10**9
    )
    write_events(events, rows, seed=6, start=START, hours=HOURS)
    now = (START + timedelta(hours=HOURS, minutes=30)).isoformat()
    configs = {}
    for on in (True, False):
        sub = folder / ("on" if on else "off")
        sub.mkdir()
        configs[on] = write_config(sub, multivariate=on)
        measure("ingest", str(configs[on]), str(events), now, str(ref))
    times: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(repeat):
        for on in (False, True):
            times[on].append(measure("run", str(configs[on]), now, "full")["run_seconds"])
    fit = measure("fit", str(configs[True]), now)
    on_s, off_s = min(times[True]), min(times[False])
    print(f"multivariate: {rows:,} events, 20 numeric + 5 categorical features, {HOURS} windows")
    print(
        f"  reconstruction: {fit['kept']:.0f} components kept of {fit['columns']:.0f} "
        f"standardised columns, {fit['stored']:.0f} projections per row in the engine"
    )
    print(f"  run without    {off_s:6.2f} s in run")
    print(f"  run with       {on_s:6.2f} s in run")
    print(f"  ratio          {on_s / off_s:6.2f}x   (target: <= 1.2x)")


def bench_windows(folder: Path, rows: int, counts: list[int]) -> list[dict[str, float]]:
    """One run over many hourly windows (a backfill): its peak memory and seconds, at each
    window count, to show that memory stays bounded and time grows with the windows."""
    out = []
    for windows in counts:
        here = folder / f"w{windows}"
        here.mkdir()
        config = write_config(here)
        ref, events = here / "reference.parquet", here / "events.parquet"
        write_events(
            ref, 200_000, seed=5, start=START - timedelta(days=30), hours=HOURS, first_id=10**9
        )
        write_events(events, rows, seed=6, start=START, hours=windows)
        now = START + timedelta(hours=windows, minutes=30)
        measure("ingest", str(config), str(events), now.isoformat(), str(ref))
        figures = measure("run", str(config), now.isoformat())
        out.append(figures)
        print(
            f"run over {windows:,} hourly windows, {rows:,} events: "
            f"{figures['run_seconds']:7.1f} s in run, peak {figures['peak_mib']:6.0f} MiB, "
            f"{figures['metrics']:,.0f} metrics, "
            f"{figures['run_seconds'] / figures['windows'] * 1000:.1f} ms per window",
            flush=True,
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=["compare", "run", "windows", "multivariate"])
    parser.add_argument("--windows", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--child", nargs="+")
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        fn = {
            "compare": child_compare,
            "sql": child_sql,
            "run": child_run,
            "ingest": child_ingest,
            "fit": child_fit,
        }[kind]
        figures = fn(*rest)
        figures["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(figures))
        return
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "compare"):
            folder = Path(tmp) / "compare"
            folder.mkdir()
            bench_compare(folder, args.repeat)
        if args.only in (None, "run"):
            for rows in args.rows:
                folder = Path(tmp) / f"run{rows}"
                folder.mkdir()
                bench_run(folder, rows)
        if args.only == "windows":
            bench_windows(Path(tmp), 1_000_000, args.windows)
        if args.only in (None, "multivariate"):
            folder = Path(tmp) / "multivariate"
            folder.mkdir()
            bench_multivariate(folder, 1_000_000, args.repeat)


if __name__ == "__main__":
    main()
