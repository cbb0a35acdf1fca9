"""init --from on the demo's own events: the config it writes ingests those very events
(the error and timeout rows included) with nothing quarantined, and runs."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

import watchkeeper
from watchkeeper.demo.scenario import START, fraud_day
from watchkeeper.ingest.infer import infer_config


def test_the_inferred_config_ingests_the_demos_events_with_nothing_quarantined(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(11)
    reference = fraud_day(rng, 0, 3_000)
    days = [fraud_day(rng, day, 1_500) for day in (32, 33, 34)]  # 33, 34: timeouts
    events = pd.concat([d.events for d in days], ignore_index=True)
    assert set(events["status"]) == {"ok", "error", "timeout"}
    sample = events.merge(pd.concat([d.labels for d in days]), on="event_id")
    path = tmp_path / "watchkeeper.yaml"
    path.write_text(infer_config(sample, model="fraud"), encoding="utf-8")

    now = START + timedelta(days=40)
    with watchkeeper.Workspace.open(path, clock=lambda: now) as ws:
        ref = ws.set_reference("fraud", reference.events.merge(reference.labels, on="event_id"))
        assert (ref.accepted, sum(ref.quarantined.values())) == (3_000, 0)
        result = ws.ingest_events("fraud", events)
        assert (result.accepted, dict(result.quarantined)) == (len(events), {})
        labels = ws.ingest_labels("fraud", pd.concat([d.labels for d in days]))
        assert dict(labels.quarantined) == {}
        done = ws.cycle(
            ["fraud"], since=START + timedelta(days=32), until=START + timedelta(days=35)
        )
        assert done.failed == {}
        rows = ws.metrics("fraud", metric="error_rate")
        assert max(rows.column("value").to_pylist()) > 0.05  # the timeouts are counted


def test_init_from_a_parquet_and_a_csv_file(tmp_path: Path) -> None:
    d = fraud_day(np.random.default_rng(5), 3, 800)
    frame = d.events.merge(d.labels, on="event_id")
    frame.to_parquet(tmp_path / "fraud_logs.parquet")
    frame.drop(columns=["label", "label_timestamp"]).to_csv(tmp_path / "logs.csv", index=False)
    env = {k: v for k, v in os.environ.items() if k != "WATCHKEEPER_CONFIG"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "watchkeeper.cli", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )

    first = run("init", "--from", "fraud_logs.parquet")
    assert first.returncode == 0, first.stderr
    assert "score           score: floats within [0, 1]" in first.stdout
    assert "business_kpi_change rule left out" in first.stdout
    models = run("models")
    assert models.returncode == 0, models.stderr
    assert "fraud_logs" in models.stdout and "binary_classification" in models.stdout
    again = run("init", "--from", "logs.csv")
    assert again.returncode == 2 and "exists; use --force" in again.stderr
    csv = run("--config", "csv.yaml", "init", "--from", "logs.csv", "--model", "fraud")
    assert csv.returncode == 0, csv.stderr
    assert "no label column" in csv.stdout
    assert "latency         latency_ms" in csv.stdout
    ingest = run("--config", "csv.yaml", "ingest", "events", "--model", "fraud", "logs.csv")
    assert ingest.returncode == 0, ingest.stderr
    assert "800" in ingest.stdout
    text = (tmp_path / "csv.yaml").read_text(encoding="utf-8")
    assert "is_new_user, kind: boolean" in text and "timestamp: timestamp" in text
    (tmp_path / "no_time.csv").write_text("event_id,score\na,0.1\nb,0.2\n", encoding="utf-8")
    missing = run("--config", "x.yaml", "init", "--from", "no_time.csv")
    assert missing.returncode == 1
    assert "no timestamp column: looked for a datetime column" in missing.stderr
    assert not (tmp_path / "x.yaml").exists()
