"""The CLI as a user runs it: a real process, real files, exit codes and messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from tests.helpers import MODEL_YAML, event
from watchkeeper.ingest.readers import rows_to_table


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "WATCHKEEPER_CONFIG"}
    return subprocess.run(
        [sys.executable, "-m", "watchkeeper.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_init_writes_a_valid_config_and_refuses_to_overwrite(tmp_path: Path) -> None:
    first = run(tmp_path, "init")
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "watchkeeper.yaml").exists()
    again = run(tmp_path, "init")
    assert again.returncode == 2
    assert "exists; use --force" in again.stderr
    models = run(tmp_path, "models")
    assert models.returncode == 0, models.stderr
    assert "fraud" in models.stdout and "binary_classification" in models.stdout


def test_ingest_prints_a_summary_and_json(tmp_path: Path) -> None:
    (tmp_path / "watchkeeper.yaml").write_text(MODEL_YAML)
    rows = [event(i) for i in range(6)]
    rows[2]["amount"] = -4.0
    pq.write_table(rows_to_table(rows), tmp_path / "events.parquet")
    done = run(tmp_path, "ingest", "events", "--model", "fraud", "events.parquet")
    assert done.returncode == 3, done.stderr  # rows were quarantined: scripts are told
    assert "6 rows read; 5 accepted, 0 duplicates, 1 quarantined (out_of_range: 1)" in done.stdout
    assert "out_of_range, for example: amount: outside [0, 1000]" in done.stdout
    again = run(
        tmp_path, "ingest", "events", "-m", "fraud", "events.parquet", "--json", "--partial-ok"
    )
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert (summary["accepted"], summary["duplicates"]) == (0, 5)
    shown = run(tmp_path, "quarantine", "--model", "fraud")
    assert "out_of_range" in shown.stdout and "amount: outside [0, 1000]" in shown.stdout


def test_reference_set(tmp_path: Path) -> None:
    (tmp_path / "watchkeeper.yaml").write_text(MODEL_YAML)
    rows = [{k: v for k, v in event(i).items() if k not in ("id", "ts")} for i in range(3)]
    pq.write_table(rows_to_table(rows), tmp_path / "train.parquet")
    # Without its label column a reference is refused, naming the setting, unless told.
    refused = run(tmp_path, "reference", "set", "-m", "fraud", "--version", "3", "train.parquet")
    assert refused.returncode == 1 and "models.fraud.labels.column" in refused.stderr
    done = run(
        tmp_path,
        "reference",
        "set",
        "-m",
        "fraud",
        "--version",
        "3",
        "--no-labels",
        "train.parquet",
    )
    assert done.returncode == 0, done.stderr
    assert "reference for fraud: 3 rows read; 3 accepted" in done.stdout


def test_a_bad_config_exits_non_zero_with_every_problem_and_no_traceback(tmp_path: Path) -> None:
    bad = MODEL_YAML.replace("kind: boolean", "kind: bool").replace("task: regression", "task: reg")
    (tmp_path / "watchkeeper.yaml").write_text(bad)
    done = run(tmp_path, "models")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "models[0].columns.features[3].kind: must be one of numeric, categorical, boolean" in (
        done.stderr
    )
    assert "models[1].task: must be one of" in done.stderr


def test_unknown_model_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "watchkeeper.yaml").write_text(MODEL_YAML)
    (tmp_path / "x.csv").write_text("id\n1\n")
    unknown = run(tmp_path, "ingest", "events", "--model", "nope", "x.csv")
    assert unknown.returncode == 1
    assert "unknown model 'nope'; the config declares: fraud, prices" in unknown.stderr
    missing = run(tmp_path, "ingest", "events", "--model", "fraud", "nope.csv")
    assert missing.returncode == 2
    assert "Traceback" not in missing.stderr


def test_config_option_and_environment(tmp_path: Path) -> None:
    (tmp_path / "elsewhere.yaml").write_text(MODEL_YAML)
    done = run(tmp_path, "--config", "elsewhere.yaml", "models")
    assert done.returncode == 0, done.stderr
    assert "prices" in done.stdout


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    done = run(tmp_path, "demo", "--dir", "out")
    assert done.returncode == 0, done.stderr
    assert "late batch events for fraud: 3 rows read; 0 accepted, 1 duplicates" in done.stdout
    assert (
        "page   fraud/latency" in done.stdout
        and "triage: the serving infrastructure" in done.stdout
    )
    assert "pages during the calm stretch (days 0-19): 0" in done.stdout
    assert (tmp_path / "out" / "report.html").exists()


def test_run_and_metrics_from_the_command_line(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from tests.helpers import monitor_rows as rows

    (tmp_path / "watchkeeper.yaml").write_text(
        MODEL_YAML.replace("      model_version: version\n", "")
    )
    start = datetime(2026, 4, 1, tzinfo=UTC)
    ref = rows(3000, start - timedelta(days=30), 24, seed=1).rename_columns(
        ["id", "ts", "amount", "channel", "score", "region", "status", "is_fraud"]
    )
    pq.write_table(ref.drop(["id", "ts"]), tmp_path / "ref.parquet")
    events = rows(2000, start, 24, seed=2).rename_columns(
        ["id", "ts", "amount", "channel", "score", "region", "status", "is_fraud"]
    )
    events = events.set_column(2, "amount", pc.abs(events["amount"]))
    events = events.append_column("pred", pc.cast(pc.greater(events["score"], 0.5), "int64"))
    pq.write_table(events, tmp_path / "events.parquet")
    ref = ref.set_column(2, "amount", pc.abs(ref["amount"]))
    ref = ref.append_column("pred", pc.cast(pc.greater(ref["score"], 0.5), "int64"))
    pq.write_table(ref.drop(["id", "ts"]), tmp_path / "ref.parquet")
    assert run(tmp_path, "reference", "set", "-m", "fraud", "ref.parquet").returncode == 0
    ingested = run(tmp_path, "ingest", "events", "-m", "fraud", "events.parquet")
    assert "2,000 accepted" in ingested.stdout, ingested.stdout
    done = run(tmp_path, "run", "--model", "fraud", "--window", "6h", "--until", "2026-04-02")
    assert done.returncode == 0, done.stderr
    assert "fraud: 4 window(s) of 6h (2026-04-01 00:00 to 2026-04-01 18:00)" in done.stdout
    shown = run(tmp_path, "metrics", "-m", "fraud", "--metric", "row_count", "--segment", "*")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.count("row_count") == 4
    as_json = json.loads(
        run(tmp_path, "metrics", "-m", "fraud", "--metric", "drift", "--format", "json").stdout
    )
    assert {r["column"] for r in as_json} >= {"amount", "channel", "score", "pred"}
    assert all(r["status"] in ("ok", "drifted", "insufficient_data") for r in as_json)
    csv_text = run(tmp_path, "metrics", "-m", "fraud", "--column", "amount", "--format", "csv")
    assert csv_text.stdout.splitlines()[0].startswith('"model","model_version","window_start"')
    estimated = run(tmp_path, "metrics", "-m", "fraud", "--metric", "estimated_accuracy")
    assert estimated.stdout.count("estimated_accuracy") >= 4
    assert "assume the relation between inputs and labels has not changed" in estimated.stdout
    trust = run(tmp_path, "backtest", "-m", "fraud", "--window", "6h", "--format", "json")
    assert trust.returncode == 0, trust.stderr
    assert all(
        set(b) >= {"metric", "coverage", "trust", "caveat"} for b in json.loads(trust.stdout)
    )
    refit = run(tmp_path, "reference", "fit", "--model", "fraud")
    assert "fitted the reference of fraud version 1: 3,000 rows" in refit.stdout
    bad = run(tmp_path, "run", "--model", "fraud", "--window", "soon")
    assert bad.returncode == 2 and "not a duration" in bad.stderr


def test_alerts_from_the_command_line(tmp_path: Path) -> None:
    from tests.helpers import ALERTS_T0 as T0
    from tests.helpers import ALERTS_YAML as YAML
    from tests.helpers import Clock, write_series
    from watchkeeper import open as open_workspace
    from watchkeeper.config import parse_config

    yaml = YAML[: YAML.index("  receivers:")] + "  receivers:\n    - {name: log, type: log}\n"
    (tmp_path / "watchkeeper.yaml").write_text(yaml)
    with open_workspace(parse_config(yaml, base_dir=tmp_path), clock=Clock(T0)) as ws:
        write_series(ws, "fraud", "row_count", "", [1000] * 10 + [100] * 6)
    done = run(tmp_path, "alerts", "evaluate")
    assert done.returncode == 0, done.stderr
    assert "firing    page   fraud: row count is 100, below 500 (traffic fell)" in done.stdout
    assert "notifications: 1 delivered" in done.stdout
    assert "alert firing: fraud: row count is 100" in done.stderr  # the log receiver
    with open_workspace(parse_config(yaml, base_dir=tmp_path), clock=Clock(T0)) as ws:
        write_series(ws, "fraud", "row_count", "", [1000] * 10, start=16)
    done = run(tmp_path, "alerts", "evaluate")
    assert "resolved  page   fraud: volume drop resolved" in done.stdout
    assert "notifications: 1 delivered" in done.stdout
    again = run(tmp_path, "alerts", "evaluate")
    assert "alerts: no change; 0 firing" in again.stdout
    [alert] = json.loads(run(tmp_path, "alerts", "list", "--format", "json").stdout)
    assert alert["labels"]["alertname"] == "volume_drop" and alert["evidence"][0]["value"] == 100
    closed = run(tmp_path, "alerts", "close", alert["alert_id"], "--verdict", "actionable")
    assert closed.returncode == 0, closed.stderr
    [review] = json.loads(run(tmp_path, "alerts", "review", "--format", "json").stdout)
    assert review["rule"] == "volume_drop" and review["actionable_share"] == 1.0
    replay = run(
        tmp_path, "alerts", "replay", "volume_drop", "--since", "2026-03-01", "--set", "for=7"
    )
    assert "volume_drop: 0 alert(s) would have fired" in replay.stdout, replay.stdout
    silenced = run(tmp_path, "alerts", "silence", "model=fraud", "owner=data", "--for", "1h")
    assert silenced.returncode == 0 and "silence " in silenced.stdout
    assert "owner" in run(tmp_path, "alerts", "silences").stdout
    bad = run(tmp_path, "alerts", "close", "nope", "--verdict", "noise")
    assert bad.returncode != 0 and "no alert 'nope'" in bad.stderr


def test_triage_and_report_from_the_command_line(tmp_path: Path) -> None:
    from tests.helpers import TRIAGE_YAML, simulate

    ws, _ = simulate(tmp_path, "version")
    ws.close()
    (tmp_path / "watchkeeper.yaml").write_text(TRIAGE_YAML)
    done = run(tmp_path, "triage", "--model", "fraud")
    assert done.returncode == 0, done.stderr
    assert (
        "Most likely: the model is at fault" in done.stdout
        and "roll back to version 1" in done.stdout
    )
    as_json = json.loads(run(tmp_path, "triage", "-m", "fraud", "--format", "json").stdout)
    assert as_json["hypotheses"][0]["cause"] == "model" and len(as_json["steps"]) == 6
    written = run(tmp_path, "report", "-m", "fraud", "-o", "out.html")
    assert written.returncode == 0 and "wrote out.html" in written.stdout
    assert "model health report" in (tmp_path / "out.html").read_text()
    bad = run(tmp_path, "triage", "-m", "fraud", "--metric", "nonsense")
    assert bad.returncode != 0 and "no 'nonsense' metric" in bad.stderr


def test_the_cli_beside_a_running_server_names_it(tmp_path: Path) -> None:
    import time
    import urllib.request

    from tests.helpers import free_port

    (tmp_path / "watchkeeper.yaml").write_text(MODEL_YAML)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "WATCHKEEPER_CONFIG"}
    server = subprocess.Popen(
        [sys.executable, "-m", "watchkeeper.cli", "serve", "--port", str(port), "--no-schedule"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "serve did not start"
                time.sleep(0.3)
        listed = run(tmp_path, "alerts", "list")
        assert listed.returncode != 0
        said = listed.stderr.strip()
        assert f"held by `watchkeeper serve` at http://127.0.0.1:{port}" in said, said
        assert "Traceback" not in said and len(said.splitlines()) == 1, said
        second = run(tmp_path, "serve", "--port", str(free_port()), "--no-schedule")
        assert second.returncode != 0 and "held by `watchkeeper serve`" in second.stderr
        assert "Application startup failed" not in second.stderr
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert not (tmp_path / "store.duckdb.server.json").exists()
    assert run(tmp_path, "alerts", "list").returncode == 0  # the store is free again


def test_a_report_after_a_daily_run_reports_the_daily_windows(tmp_path: Path) -> None:
    from tests.helpers import TRIAGE_YAML, simulate

    ws, _ = simulate(tmp_path, "none")  # daily windows only
    ws.close()
    hourly = TRIAGE_YAML.replace("monitoring: {window: 1d,", "monitoring: {window: 1h,")
    assert hourly != TRIAGE_YAML
    (tmp_path / "watchkeeper.yaml").write_text(hourly)
    written = run(tmp_path, "report", "-m", "fraud", "-o", "out.html")
    assert written.returncode == 0, written.stderr
    assert "model health report" in (tmp_path / "out.html").read_text()


def test_every_command_that_prints_results_takes_format_json(tmp_path: Path) -> None:
    from tests.helpers import TRIAGE_YAML, simulate

    ws, _ = simulate(tmp_path, "version")
    ws.close()
    (tmp_path / "watchkeeper.yaml").write_text(TRIAGE_YAML)
    for args in (
        ("models",),
        ("quarantine", "-m", "fraud"),
        ("run", "-m", "fraud", "--window", "1d", "--now", "2026-02-20T00:00:00Z"),
        ("alerts", "evaluate", "--now", "2026-02-20T00:00:00Z"),
        ("alerts", "deliver"),
        ("alerts", "list"),
        ("metrics", "-m", "fraud", "--metric", "row_count"),
        ("triage", "-m", "fraud"),
    ):
        done = run(tmp_path, *args, "--format", "json")
        assert done.returncode == 0, (args, done.stderr)
        json.loads(done.stdout)  # one JSON document, nothing else on stdout
