"""Triage on simulated incidents with known causes: the top hypothesis names the planted
cause in each, from the real pipeline (ingest, run, metrics)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import watchkeeper
from tests.conftest import Clock
from watchkeeper.config import parse_config

T0 = datetime(2026, 2, 1, tzinfo=UTC)
DAYS = 14
START = 10  # the incident starts on this day

YAML = """\
engine: {path: store.duckdb}
models:
  - name: fraud
    task: binary_classification
    columns:
      event_id: id
      timestamp: ts
      features:
        - {name: x1, kind: numeric}
        - {name: x2, kind: numeric}
        - {name: device, kind: categorical}
      score: score
      segments: [device]
      latency: latency_ms
      status: status
      model_version: version
    labels: {column: label, timestamp: labelled_at, max_delay: 3d}
    outcomes: [{name: chargeback}]
    costs: {false_positive: 5, false_negative: 120}
    monitoring: {window: 1d, min_rows: 100, min_labels: 100, weak_slices: false}
"""


def truth(x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    """The world: fraud grows with x1, and with x2 only up to 1 (beyond, it falls)."""
    g = np.where(x2 < 1, x2, 1 - 2 * (x2 - 1))
    return 1 / (1 + np.exp(-(1.5 * x1 + g - 2)))


def model_score(x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    """The model learnt the world where x2 is mostly below 1: linear in x2."""
    return 1 / (1 + np.exp(-(1.5 * x1 + x2 - 2)))


def day(
    rng: np.random.Generator, d: int, n: int, incident: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    on = d >= START
    device = rng.choice(["android", "ios", "web"], n, p=[0.3, 0.3, 0.4])
    x1 = rng.normal(0, 1, n)
    x2 = rng.normal(0, 1, n)
    if incident == "segment_shift" and on:
        x2 = np.where(device == "android", x2 + 2.5, x2)
    p = truth(x1, x2)
    if incident == "behaviour" and on:
        p = 1 / (1 + np.exp(-(-0.8 * x1 + 0.2 * x2 - 1.5)))  # fraudsters changed tactics
    score = model_score(x1, x2)
    version = np.full(n, "1")
    if incident == "version" and on:
        version = np.where(rng.uniform(size=n) < 0.5, "2", "1")
        bad = 1 / (1 + np.exp(-(0.3 * x1 + rng.normal(0, 1.5, n) - 2)))
        score = np.where(version == "2", bad, score)
    logged_x1 = x1.copy()
    if incident == "pipeline" and on:
        broken = rng.uniform(size=n) < 0.5
        logged_x1 = np.where(broken, np.nan, x1)
        score = np.where(broken, model_score(np.zeros(n), x2), score)  # imputed as 0
    latency = rng.lognormal(np.log(40), 0.3, n)
    status = np.where(rng.uniform(size=n) < 0.005, "error", "ok")
    if incident == "latency" and on:
        latency = latency * 6
        status = np.where(rng.uniform(size=n) < 0.1, "timeout", status)
    y = (rng.uniform(size=n) < p).astype(int)
    ts = [T0 + timedelta(days=d, seconds=int(s)) for s in rng.uniform(0, 86_000, n)]
    events = pd.DataFrame(
        {
            "id": [f"d{d}-{i}" for i in range(n)],
            "ts": ts,
            "x1": logged_x1,
            "x2": x2,
            "device": device,
            "score": score,
            "latency_ms": latency,
            "status": status,
            "version": version,
        }
    )
    labelled = np.ones(n, dtype=bool)
    if incident == "label_delay" and d == DAYS - 1:
        # Only the reviewed (high-score) cases and a few others are labelled yet.
        labelled = (score > 0.5) | (rng.uniform(size=n) < 0.05)
    labels = pd.DataFrame(
        {
            "id": events["id"][labelled],
            "label": y[labelled],
            "labelled_at": [
                t + timedelta(hours=12) for t, keep in zip(ts, labelled, strict=True) if keep
            ],
        }
    )
    return events, labels


def simulate(tmp_path: Path, incident: str, seed: int = 3) -> tuple[Any, Clock]:
    rng = np.random.default_rng([seed, 11])
    clock = Clock(T0)
    ws = watchkeeper.open(parse_config(YAML, base_dir=tmp_path), clock=clock)
    reference, ref_labels = day(rng, -30, 8000, "none")
    ws.set_reference(
        "fraud", reference.drop(columns=["id", "ts"]).assign(label=ref_labels["label"].to_numpy())
    )
    for d in range(DAYS):
        events, labels = day(rng, d, 2000, incident)
        ws.ingest_events("fraud", events)
        ws.ingest_labels("fraud", labels)
        outcomes = labels[labels["label"] == 1][["id"]].assign(outcome="chargeback", value=1.0)
        ws.ingest_outcomes("fraud", outcomes)
    # Labels of the last day are still arriving in the label-delay incident.
    clock.now = (
        T0 + timedelta(days=DAYS, hours=6)
        if incident == "label_delay"
        else T0 + timedelta(days=DAYS + 4)
    )
    ws.run("fraud", full=True, window="1d")
    return ws, clock


@pytest.mark.parametrize(
    ("incident", "metric", "cause"),
    [
        ("pipeline", None, "data"),
        ("segment_shift", None, "data"),
        ("version", None, "model"),
        ("latency", "latency_p99", "infrastructure"),
        ("label_delay", None, "not_real"),
        ("behaviour", None, "business"),
        ("none", None, "not_real"),  # a calm stretch: nothing to blame
    ],
)
def test_the_top_hypothesis_names_the_planted_cause(
    tmp_path: Path, incident: str, metric: str | None, cause: str
) -> None:
    ws, _ = simulate(tmp_path, incident)
    try:
        found = ws.triage("fraud", metric=metric)
    finally:
        ws.close()
    assert found.top.cause == cause, found.to_text()
