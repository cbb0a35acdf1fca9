"""Shared fixtures. Tests that need an outside program call ``need()``: it skips with the
reason when run by hand, and fails under WATCHKEEPER_REQUIRE_INTEGRATION=1 (as in CI)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

import watchkeeper
from watchkeeper.config import Config, parse_config

MODEL_YAML = """\
engine:
  path: store.duckdb
models:
  - name: fraud
    task: binary_classification
    owner: risk
    threshold: 0.5
    columns:
      event_id: id
      timestamp: ts
      features:
        - {name: amount, kind: numeric, range: [0, 1000], nullable: false}
        - {name: country, kind: categorical, values: [US, DE, FR]}
        - {name: channel, kind: categorical}
        - {name: is_new, kind: boolean}
      score: score
      prediction: pred
      segments: [region]
      latency: latency_ms
      status: status
      model_version: version
      metadata: [feature_version]
    labels:
      column: is_fraud
      timestamp: labelled_at
    outcomes:
      - name: chargeback
  - name: prices
    task: regression
    columns:
      features:
        - {name: rooms, kind: numeric}
      prediction: price
"""

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def need(available: bool, reason: str) -> None:
    """Skip (by hand) or fail (in CI) when an outside program is missing."""
    if available:
        return
    if os.environ.get("WATCHKEEPER_REQUIRE_INTEGRATION") == "1":
        pytest.fail(f"required for integration tests: {reason}")
    pytest.skip(reason)


class Clock:
    """An injectable clock that moves only when told."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return parse_config(MODEL_YAML, base_dir=tmp_path)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ws(config: Config, clock: Clock) -> Iterator[watchkeeper.Workspace]:
    with watchkeeper.Workspace.open(config, clock=clock) as workspace:
        yield workspace


def event(i: int, **overrides: object) -> dict[str, object]:
    """One valid event of the ``fraud`` model, with overrides."""
    row: dict[str, object] = {
        "id": f"e{i}",
        "ts": f"2026-04-30T{i % 24:02d}:15:00Z",
        "amount": 10.0 + i,
        "country": "US",
        "channel": "web",
        "is_new": i % 2 == 0,
        "score": 0.25,
        "pred": 0,
        "region": "north",
        "latency_ms": 12.5,
        "status": "ok",
        "version": "3",
        "feature_version": "fv1",
    }
    row.update(overrides)
    return row


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, watchkeeper.Workspace]]:
    """The demo's sixty days, run once for the tests that read them."""
    from rich.console import Console

    from watchkeeper.demo import run_demo

    folder = tmp_path_factory.mktemp("demo")
    with open(folder / "output.txt", "w") as out:
        ws = run_demo(folder, console=Console(file=out, width=200))
    try:
        yield folder, ws
    finally:
        ws.close()
