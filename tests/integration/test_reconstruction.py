"""Reconstruction drift's row error as the engine computes it: the SQL equals numpy's."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pytest

import watchkeeper
from tests.helpers import Clock, correlated
from watchkeeper.config import parse_config
from watchkeeper.stats.reconstruction import Reconstruction, fit

pytestmark = pytest.mark.integration


def engine_errors(fitted: Reconstruction, data: dict[str, list[Any]]) -> np.ndarray[Any, Any]:
    con = duckdb.connect()
    con.register("t", pa.table(data))
    z = fitted.standardised_sql(lambda c: f'"{c}"', lambda v: v.replace("'", "''"))
    inner = ", ".join(f"{v} AS z{j}" for j, v in enumerate(z))
    error = fitted.error_sql([f"z{j}" for j in range(len(z))])
    rows = con.execute(f"SELECT {error} AS e FROM (SELECT {inner} FROM t)").fetchnumpy()
    return np.asarray(rows["e"], dtype=float)


@pytest.mark.parametrize("share", [0.65, 0.95])
def test_the_engines_sql_computes_the_same_error_with_nulls_and_categories(share: float) -> None:
    rng = np.random.default_rng(5)
    n = 3_000
    data: dict[str, list[Any]] = correlated(rng, n, 0.7)
    data["x1"] = [None if i % 17 == 0 else v for i, v in enumerate(data["x1"])]
    plan = rng.choice(["basic", "plus", "pro", "it's"], size=n, p=[0.5, 0.3, 0.195, 0.005])
    data["plan"] = [None if i % 23 == 0 else str(v) for i, v in enumerate(plan)]
    data["new"] = [bool(v) for v in rng.random(n) < 0.3]
    kinds = {**dict.fromkeys(correlated(rng, 1, 0.0), "numeric"), "plan": "categorical"}
    kinds["new"] = "categorical"
    fitted = fit(data, kinds, share)
    assert fitted is not None
    assert fitted.complement == (share == 0.95)  # most components kept: those left out stored
    kept = {c.value for c in fitted.columns if c.feature == "plan"}
    assert kept == {"basic", "plus", "pro", None}  # "it's" is rarer than 1%: the rest
    np.testing.assert_allclose(engine_errors(fitted, data), fitted.errors(data), rtol=1e-9)
    again = Reconstruction.from_json(fitted.to_json())
    np.testing.assert_allclose(again.errors(data), fitted.errors(data), rtol=0, atol=0)


YAML = """\
engine: {path: store.duckdb}
models:
  - name: m
    task: binary_classification
    columns:
      event_id: id
      timestamp: ts
      features:
        - {name: x0, kind: numeric}
        - {name: x1, kind: numeric}
        - {name: x2, kind: numeric}
        - {name: x3, kind: numeric}
        - {name: x4, kind: numeric}
        - {name: x5, kind: numeric}
        - {name: country, kind: categorical}
        - {name: currency, kind: categorical}
      score: score
    monitoring: {window: 1h, min_rows: 100}
"""
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def events(
    n: int, start: datetime, hours: int, seed: int, rho: float = 0.8, mixed: float = 0.0
) -> pa.Table:
    """Hours of events: three correlated pairs (``rho``), and a currency that follows the
    country except for a share ``mixed`` of rows (each column's shares stay the same)."""
    rng = np.random.default_rng(seed)
    data: dict[str, Any] = correlated(rng, n, rho)
    country = rng.choice(["fr", "de"], size=n)
    currency = np.where(country == "fr", "eur", "chf")
    swap = rng.random(n) < mixed
    data["country"] = country.tolist()
    data["currency"] = np.where(swap, np.where(currency == "eur", "chf", "eur"), currency).tolist()
    data["score"] = rng.uniform(size=n).tolist()
    secs = np.sort(rng.uniform(0, hours * 3600, n))
    data["ts"] = pa.array(
        [start + timedelta(seconds=float(s)) for s in secs], pa.timestamp("us", tz="UTC")
    )
    data["id"] = [f"{seed}-{i}" for i in range(n)]
    return pa.table(data)


def flagged(table: pa.Table, metric: str) -> set[tuple[datetime, str]]:
    return {
        (r["window_start"], r["column"])
        for r in table.to_pylist()
        if r["metric"] == metric and r["status"] == "drifted" and r["segment_column"] == "*"
    }


@pytest.fixture
def workspace(tmp_path: Path, clock: Clock) -> Iterator[watchkeeper.Workspace]:
    clock.now = T0 + timedelta(days=5)
    with watchkeeper.open(parse_config(YAML, base_dir=tmp_path), clock=clock) as ws:
        ws.set_reference("m", events(40_000, T0 - timedelta(days=20), 240, seed=1), labels=False)
        yield ws


def test_a_run_flags_a_change_of_correlation_that_no_column_shows(
    workspace: watchkeeper.Workspace,
) -> None:
    calm_hours, broken_hours = 50, 4
    workspace.ingest_events("m", events(50_000, T0, calm_hours, seed=2))
    broken_start = T0 + timedelta(hours=calm_hours)
    workspace.ingest_events("m", events(4_000, broken_start, broken_hours, seed=3, rho=0.2))
    metrics = workspace.run("m").metrics
    rows = [r for r in metrics.to_pylist() if r["metric"] == "reconstruction_error"]
    assert len(rows) == calm_hours + broken_hours
    found = flagged(metrics, "reconstruction_error")
    broken = {(broken_start + timedelta(hours=h), "") for h in range(broken_hours)}
    assert broken <= found
    assert len(found - broken) <= 2  # 50 calm windows: at most two false flags
    univariate = {c for start, c in flagged(metrics, "drift") if start >= broken_start}
    assert not univariate & {f"x{j}" for j in range(6)}
    first = next(r for r in rows if r["window_start"] == broken_start)
    assert first["lower"] < first["value"] < first["upper"]
    assert first["value"] > first["threshold"]
    assert "above the band" in first["detail"]


def test_a_run_flags_a_combination_of_values_the_reference_never_had(
    workspace: watchkeeper.Workspace,
) -> None:
    workspace.ingest_events("m", events(6_000, T0, 6, seed=4))
    workspace.ingest_events("m", events(3_000, T0 + timedelta(hours=6), 3, seed=5, mixed=0.5))
    metrics = workspace.run("m").metrics
    found = {start for start, _ in flagged(metrics, "reconstruction_error")}
    assert found == {T0 + timedelta(hours=h) for h in (6, 7, 8)}


def test_multivariate_false_turns_it_off(tmp_path: Path, clock: Clock) -> None:
    clock.now = T0 + timedelta(days=1)
    text = YAML.replace("{window: 1h, min_rows: 100}", "{window: 1h, multivariate: false}")
    with watchkeeper.open(parse_config(text, base_dir=tmp_path), clock=clock) as ws:
        ws.set_reference("m", events(5_000, T0 - timedelta(days=5), 48, seed=1), labels=False)
        ws.ingest_events("m", events(2_000, T0, 4, seed=2))
        metrics = ws.run("m").metrics
    assert "reconstruction_error" not in set(metrics["metric"].to_pylist())
