"""Triage on simulated incidents with known causes: the top hypothesis names the planted
cause in each, from the real pipeline (ingest, run, metrics)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import simulate


@pytest.mark.parametrize(
    ("incident", "metric", "cause"),
    [
        ("pipeline", None, "data"),
        ("segment_shift", None, "data"),
        ("version", None, "model"),
        ("latency", "latency_p99", "infrastructure"),
        ("label_delay", None, "not_real"),
        ("behaviour", None, "model"),  # a concept shift: the model learnt another world
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
