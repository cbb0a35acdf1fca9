"""`watchkeeper demo`: a sample fraud model's data, ingested end to end on the embedded store."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from watchkeeper.config import CONFIG_FILENAME, EXAMPLE_CONFIG
from watchkeeper.demo.sample import fraud_rows, labels_for
from watchkeeper.schema import KINDS
from watchkeeper.workspace import Workspace

START = datetime(2026, 3, 1, tzinfo=UTC)


def run_demo(directory: Path, seed: int = 7, console: Console | None = None) -> Workspace:
    """Write a config and sample files into ``directory``, ingest them, print what happened."""
    say = console or Console()
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("watchkeeper.duckdb*"):
        stale.unlink()
    config_path = directory / CONFIG_FILENAME
    config_path.write_text(EXAMPLE_CONFIG, encoding="utf-8")
    files = _write_files(directory, seed)
    clock = _StepClock(START + timedelta(days=20))

    ws = Workspace.open(config_path, clock=clock)
    say.print(f"[bold]watchkeeper demo[/] in {directory}/ (config: {config_path.name})")
    steps = [
        ("reference", files["reference"], "the training data of model version 1"),
        ("labels", files["early_labels"], "labels that arrive before their events"),
        ("events", files["events"], "two weeks of logged predictions"),
        ("events", files["late_events"], "a late batch with bad rows and a re-sent event"),
        ("labels", files["labels"], "ground truth, days after the events"),
        ("labels", files["corrections"], "corrected labels from investigators"),
        ("outcomes", files["outcomes"], "business outcomes"),
        ("events", files["events"], "the same file again: nothing changes"),
    ]
    for kind, path, what in steps:
        clock.tick()
        result = ws.ingest(kind, "fraud", path)  # type: ignore[arg-type]
        say.print(f"\n[cyan]{kind}[/] {path.name} — {what}")
        say.print(result.summary(), highlight=False)

    clock.tick()
    say.print("\n[bold]monitoring[/]: daily windows against the training reference")
    monitored = ws.run("fraud", window="1d", full=True)
    say.print(monitored.summary(), highlight=False)
    drifted: dict[tuple[str, str], list[str]] = {}
    for row in monitored.drifted():
        segment = (
            "all traffic"
            if row["segment_column"] == "*"
            else (f"{row['segment_column']}={row['segment_value']}")
        )
        drifted.setdefault((row["column"], segment), []).append(f"{row['window_start']:%m-%d}")
    for (column, segment), days in sorted(drifted.items(), key=lambda kv: -len(kv[1]))[:6]:
        say.print(f"  drift in {column:<18} {segment:<22} on {len(days)} days from {days[0]}")
    _print_quality(say, monitored.metrics)

    table = Table("stored", *KINDS, box=None)
    table.add_row("fraud", *(f"{ws.count('fraud', k):,}" for k in KINDS))
    say.print()
    say.print(table)
    bad = ws.quarantine("fraud", limit=5).to_pylist()
    if bad:
        say.print("\n[bold]quarantine[/] (newest first; `watchkeeper quarantine --model fraud`):")
        for row in bad:
            say.print(f"  {row['reason']:<22} {row['detail']}", highlight=False)
    command = f"{_executable()} --config {config_path}"
    say.print(f"\nTry: [bold]{command} models[/]")
    say.print(f"     [bold]{command} quarantine --model fraud --reason bad_type[/]")
    return ws


def _executable() -> str:
    """How the user can call watchkeeper: the script beside this Python, else by name."""
    script = Path(sys.executable).parent / "watchkeeper"
    if not script.exists():
        return "watchkeeper"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def _print_quality(say: Console, metrics: pa.Table) -> None:
    """The model's quality on the last day with labels, as a monitoring engineer reads it."""
    rows = [r for r in metrics.to_pylist() if r["segment_column"] == "*" and r["value"] is not None]
    days = sorted({r["window_start"] for r in rows if r["metric"] == "roc_auc"})
    if not days:
        return
    day = days[-1]
    at = {r["metric"]: r for r in rows if r["window_start"] == day and not r["column"]}
    say.print(f"\n[bold]model quality[/] on {day:%m-%d} (labels as of now):")
    for name in ("roc_auc", "precision", "recall", "expected_calibration_error", "net_value"):
        r = at.get(name)
        if r is None:
            continue
        interval = f" [{r['lower']:.3f}, {r['upper']:.3f}]" if r["lower"] is not None else ""
        flag = " (provisional)" if r["provisional"] else ""
        say.print(f"  {name:<28} {r['value']:.3f}{interval}{flag}", highlight=False)
    for r in metrics.to_pylist():
        if r["window_start"] == day and r["metric"] == "demographic_parity_difference":
            name = f"demographic parity ({r['segment_column']})"
            p = "" if r["p_value"] is None else f" (p = {r['p_value']:.2g})"
            say.print(f"  {name:<28} {r['value']:.3f}{p}", highlight=False)


class _StepClock:
    """A deterministic clock for the demo: each step happens an hour after the last."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def tick(self) -> None:
        self.now += timedelta(hours=1)

    def __call__(self) -> datetime:
        return self.now


def _write_files(directory: Path, seed: int) -> dict[str, Path]:
    span = timedelta(days=14)
    reference = fraud_rows(20_000, START - timedelta(days=60), timedelta(days=30), seed + 1, "r")
    events = fraud_rows(50_000, START, span, seed, android_change=START + timedelta(days=7))
    files: dict[str, Path] = {}
    files["reference"] = directory / "reference.parquet"
    pq.write_table(reference.drop(["event_id", "timestamp"]), files["reference"])
    files["events"] = directory / "events.parquet"
    pq.write_table(events.drop(["label"]), files["events"])

    # A late batch as JSON Lines: good rows, a re-sent event and a few broken ones.
    late = fraud_rows(300, START + span, timedelta(days=1), seed + 2, "late")
    rows = late.drop(["label"]).to_pylist()
    for row in rows:
        row["timestamp"] = row["timestamp"].isoformat()
    rows[1]["amount"] = -20.0  # out_of_range
    rows[2]["country"] = "XX"  # unknown_category
    rows[3]["timestamp"] = "last tuesday"  # unparseable_timestamp
    rows[4]["amount"] = "12,50"  # bad_type
    rows[5]["event_id"] = None  # null_in_required
    rows.append(dict(rows[10]))  # duplicate_id within the batch
    resent = events.slice(0, 1).drop(["label"]).to_pylist()[0]
    resent["timestamp"] = resent["timestamp"].isoformat()
    rows.append(resent)  # already stored: a duplicate, not an error
    files["late_events"] = directory / "late_events.jsonl"
    with open(files["late_events"], "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
        fh.write("{this line is not json\n")

    labels = labels_for(events, seed)
    late_labels = labels_for(late, seed + 3)
    files["early_labels"] = directory / "labels_early.csv"
    _write_csv(late_labels.slice(0, 100), files["early_labels"])
    files["labels"] = directory / "labels.parquet"
    pq.write_table(labels, files["labels"])
    flipped = labels.slice(0, 25)
    flipped = flipped.set_column(1, "label", pc.subtract(1, flipped["label"]))
    files["corrections"] = directory / "label_corrections.parquet"
    pq.write_table(flipped, files["corrections"])

    fraud = pc.equal(events["label"], 1)
    confirmed = events.filter(fraud).slice(0, 200)
    files["outcomes"] = directory / "outcomes.parquet"
    pq.write_table(
        pa.table(
            {
                "event_id": confirmed["event_id"],
                "outcome": ["confirmed_fraud"] * confirmed.num_rows,
                "value": [1.0] * confirmed.num_rows,
                "timestamp": confirmed["timestamp"],
            }
        ),
        files["outcomes"],
    )
    return files


def _write_csv(table: pa.Table, path: Path) -> None:
    import pyarrow.csv as pacsv

    pacsv.write_csv(table, path)
