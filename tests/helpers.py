"""What the tests share: the one module a test imports from besides pytest fixtures (which
live in the conftest files), so moving or deleting a test module never breaks another.

Plain numpy versions of what the engine computes, to test against; configs and rows of the
scenarios several tests run (each test module's own name for them is an import alias); and
small tools (a stopped clock, a free port, a server in a thread, a place for artifacts)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import watchkeeper
from watchkeeper.config import Config, parse_config
from watchkeeper.profiles.binning import Binning, coarse_grid, numeric_edges
from watchkeeper.profiles.counts import RankingSums
from watchkeeper.profiles.types import ColumnProfile
from watchkeeper.store.engine import arrow_schema
from watchkeeper.store.tables import METRICS, SHARED

# -- the engine's numbers in plain numpy ----------------------------------------------------------


def correlated(rng: np.random.Generator, n: int, rho: float) -> dict[str, list[Any]]:
    """Six standard normal features in three pairs correlated by ``rho``: each feature's
    marginal is N(0, 1) whatever ``rho`` is."""
    x = rng.normal(size=(n, 6))
    for a in (0, 2, 4):
        x[:, a + 1] = rho * x[:, a] + np.sqrt(1 - rho**2) * x[:, a + 1]
    return {f"x{j}": x[:, j].tolist() for j in range(6)}


def numeric_binning(reference: np.ndarray[Any, Any], name: str = "x") -> Binning:
    ref = reference[~np.isnan(reference)]
    distinct = np.unique(ref)
    edges = numeric_edges(
        np.quantile(ref, np.linspace(0, 1, 101)), distinct if len(distinct) <= 100 else None
    )
    b = Binning(name, "numeric", "feature", edges=edges)
    counts = numeric_profile(reference, b).bins
    return Binning(name, "numeric", "feature", edges=edges, coarse=coarse_grid(edges, counts))


def bin_index(values: np.ndarray[Any, Any], edges: tuple[float, ...]) -> np.ndarray[Any, Any]:
    e = np.asarray(edges)
    idx = np.searchsorted(e[1:-1], values, side="right") + 1
    idx[values < e[0]] = 0
    idx[values > e[-1]] = len(e)
    return idx


def numeric_profile(values: np.ndarray[Any, Any], b: Binning) -> ColumnProfile:
    v = np.asarray(values, dtype=float)
    present = v[~np.isnan(v)]
    bins = np.bincount(bin_index(present, b.edges), minlength=len(b.edges) + 1).astype(np.int64)
    return ColumnProfile(
        "numeric",
        len(v),
        int(np.isnan(v).sum()),
        bins,
        float(present.sum()),
        float((present**2).sum()),
        float(present.min()) if len(present) else float("nan"),
        float(present.max()) if len(present) else float("nan"),
    )


def categorical_binning(reference: list[Any], vocabulary: int = 50) -> Binning:
    values, counts = np.unique([v for v in reference if v is not None], return_counts=True)
    order = sorted(zip(values, counts, strict=True), key=lambda vc: (-vc[1], vc[0]))
    cats = tuple(str(v) for v, _ in order)
    return Binning(
        "c", "categorical", "feature", categories=cats[:vocabulary], known=tuple(sorted(cats))
    )


def categorical_profile(values: list[Any], b: Binning) -> ColumnProfile:
    k = len(b.categories)
    bins = np.zeros(k + 2, dtype=np.int64)
    index = {c: i for i, c in enumerate(b.categories)}
    known = set(b.known)
    missing = 0
    for v in values:
        if v is None:
            missing += 1
        elif str(v) in index:
            bins[index[str(v)]] += 1
        elif str(v) in known:
            bins[k] += 1
        else:
            bins[k + 1] += 1
    return ColumnProfile("categorical", len(values), missing, bins)


def ranking_sums_from_rows(
    queries: np.ndarray[Any, Any],
    labels: np.ndarray[Any, Any],
    scores: np.ndarray[Any, Any],
    k: int,
) -> RankingSums:
    """What the engine's ranking query sums, per query in numpy (``stats.ranking`` has no
    ``sums_from_rows`` of its own): ranks by score within the query (1 at the top), hits in
    the top ``k`` over ``k``, DCG@k over the ideal DCG@k (linear gains) where the query has
    a relevant item, and the reciprocal rank of the first relevant item (0 when none)."""
    q, y, s = np.asarray(queries), np.asarray(labels, float), np.asarray(scores, float)
    out = RankingSums()
    for query in np.unique(q):
        mine = q == query
        ranked = y[mine][np.argsort(-s[mine], kind="stable")]
        ideal = np.sort(y[mine])[::-1]
        discount = 1 / np.log2(np.arange(2, len(ranked) + 2))
        hits = int((ranked[:k] > 0).sum())
        dcg = float((ranked[:k] * discount[:k]).sum())
        idcg = float((ideal[:k] * discount[:k]).sum())
        relevant = np.flatnonzero(ranked > 0)
        rr = 1.0 / (relevant[0] + 1) if len(relevant) else 0.0
        ndcg = dcg / idcg if idcg > 0 else 0.0
        out = out.merge(
            RankingSums(
                queries=1,
                impressions=len(ranked),
                clicks=int((ranked > 0).sum()),
                precision_at_k=hits / k,
                precision_sq=(hits / k) ** 2,
                ndcg=ndcg,
                ndcg_sq=ndcg**2,
                ndcg_queries=int(idcg > 0),
                reciprocal_rank=rr,
                reciprocal_rank_sq=rr**2,
            )
        )
    return out


# -- the shared config and events (the fraud and prices models) -----------------------------------

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
    """Skip (by hand) or fail (in CI: WATCHKEEPER_REQUIRE_INTEGRATION=1) when an outside
    program is missing."""
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


# -- loopback servers -----------------------------------------------------------------------------


def corrupt_parquet_pages(body: bytes) -> bytes:
    """A Parquet file whose footer is intact and whose pages are garbage."""
    raw = bytearray(body)
    footer = int.from_bytes(raw[-8:-4], "little") + 8
    for i in range(4, len(raw) - footer, 3):
        raw[i] ^= 0xA5
    return bytes(raw)


def texts(locator: Any) -> list[str]:
    """The text of each element found (SVG elements have no innerText)."""
    found: list[str] = locator.evaluate_all("els => els.map(e => e.textContent.trim())")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SERVER = """
server:
  schedule_every: null
"""


def with_reference(config: Config) -> Config:
    """Store a reference for the fraud model (a run needs one)."""
    rows = [
        {
            k: v
            for k, v in event(i, score=(i % 10) / 10, is_fraud=i % 3 == 0).items()
            if k not in ("id", "ts")
        }
        for i in range(500)
    ]
    with watchkeeper.open(config) as ws:
        ws.set_reference("fraud", rows)
    return config


@contextmanager
def serving(config: Config, port: int) -> Iterator[None]:
    """`watchkeeper serve` in a thread on ``port`` (its clock stopped at NOW)."""
    import uvicorn

    from watchkeeper.server import create_app

    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config, clock=Clock(NOW)), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=30)


# -- alert series (tests/integration/test_alerts.py and its users) --------------------------------

ALERTS_T0 = datetime(2026, 3, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)

ALERTS_YAML = """\
engine: {path: store.duckdb}
models:
  - name: fraud
    task: binary_classification
    columns:
      features: [{name: amount, kind: numeric}]
      score: score
  - name: churn
    task: binary_classification
    columns:
      features: [{name: amount, kind: numeric}]
      score: score
alerting:
  rules:
    - name: volume_drop
      severity: page
      owner: infrastructure
      description: traffic fell
      conditions:
        - {metric: row_count, below: 500}
      for: 2
    - name: missing_amount
      severity: ticket
      owner: data
      conditions:
        - {metric: missing_rate, column: amount, above: 0.1}
    - name: error_spike
      severity: page
      owner: infrastructure
      conditions:
        - {metric: error_rate, above: 0.2}
  inhibit:
    - source: {owner: infrastructure, severity: page}
      target: {owner: data}
      equal: [model]
  receivers:
    - {name: hook, type: webhook, url: "http://127.0.0.1:9/hook"}
    - {name: pager, type: alertmanager, url: "http://127.0.0.1:9", match: {severity: page}}
"""


def write_series(
    ws: watchkeeper.Workspace,
    model: str,
    metric: str,
    column: str,
    values: Any,
    status: Any = None,
    start: int = 0,
) -> None:
    """Metric rows of one series, hourly from ALERTS_T0 (+ ``start`` hours)."""
    rows = [
        {
            "model": model,
            "model_version": "1",
            "window_start": ALERTS_T0 + (start + i) * HOUR,
            "window_end": ALERTS_T0 + (start + i + 1) * HOUR,
            "segment_column": "*",
            "segment_value": "*",
            "metric": metric,
            "column": column,
            "value": float(v),
            "sample_size": 1000,
            "status": "drifted" if status is not None and status[i] else "ok",
            "provisional": False,
            "detail": "",
            "run_id": "test",
            "computed_at": ALERTS_T0,
        }
        for i, v in enumerate(values)
    ]
    schema = arrow_schema(SHARED[METRICS])
    ws.store.insert(METRICS, pa.Table.from_pylist(rows, schema=schema))


# -- a monitored model's rows (tests/integration/test_monitor.py and its users) -------------------

MONITOR_YAML = """\
engine: {path: store.duckdb}
models:
  - name: m
    task: binary_classification
    columns:
      event_id: id
      timestamp: ts
      features:
        - {name: x, kind: numeric}
        - {name: c, kind: categorical}
      score: score
      segments: [region]
      status: status
    monitoring:
      window: 6h
      min_rows: 50
"""
MONITOR_T0 = datetime(2026, 4, 1, tzinfo=UTC)


def monitor_rows(
    n: int,
    start: datetime,
    hours: float,
    seed: int,
    shift_b: float = 0.0,
    prefix: str = "e",
) -> pa.Table:
    rng = np.random.default_rng(seed)
    region = rng.choice(["a", "b"], n)
    x = rng.normal(0, 1, n) + np.where(region == "b", shift_b, 0.0)
    secs = np.sort(rng.uniform(0, hours * 3600, n))
    ts = [start + timedelta(seconds=float(s)) for s in secs]
    return pa.table(
        {
            "id": [f"{prefix}{seed}-{i}" for i in range(n)],
            "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "x": x,
            "c": rng.choice(["p", "q", "r"], n, p=[0.5, 0.3, 0.2]),
            "score": rng.uniform(0, 1, n),
            "region": region,
            "status": np.where(rng.uniform(size=n) < 0.02, "error", "ok"),
            "label": (rng.uniform(size=n) < 0.3).astype(int),
        }
    )


# -- simulated incidents with known causes (tests/integration/test_triage.py) ---------------------

TRIAGE_T0 = datetime(2026, 2, 1, tzinfo=UTC)
TRIAGE_DAYS = 14
TRIAGE_START = 10  # the incident starts on this day

TRIAGE_YAML = """\
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
    costs: {false_positive: 5, false_negative: 120, currency: EUR}
    monitoring: {window: 1d, min_rows: 100, min_labels: 100, weak_slices: false}
"""


def triage_truth(x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    """The world: fraud grows with x1, and with x2 only up to 1 (beyond, it falls)."""
    g = np.where(x2 < 1, x2, 1 - 2 * (x2 - 1))
    return 1 / (1 + np.exp(-(1.5 * x1 + g - 2)))


def triage_model_score(x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    """The model learnt the world where x2 is mostly below 1: linear in x2."""
    return 1 / (1 + np.exp(-(1.5 * x1 + x2 - 2)))


def triage_day(
    rng: np.random.Generator, d: int, n: int, incident: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    on = d >= TRIAGE_START
    device = rng.choice(["android", "ios", "web"], n, p=[0.3, 0.3, 0.4])
    x1 = rng.normal(0, 1, n)
    x2 = rng.normal(0, 1, n)
    if incident == "segment_shift" and on:
        x2 = np.where(device == "android", x2 + 2.5, x2)
    p = triage_truth(x1, x2)
    if incident == "behaviour" and on:
        p = 1 / (1 + np.exp(-(-0.8 * x1 + 0.2 * x2 - 1.5)))  # fraudsters changed tactics
    score = triage_model_score(x1, x2)
    version = np.full(n, "1")
    if incident == "version" and on:
        version = np.where(rng.uniform(size=n) < 0.5, "2", "1")
        bad = 1 / (1 + np.exp(-(0.3 * x1 + rng.normal(0, 1.5, n) - 2)))
        score = np.where(version == "2", bad, score)
    logged_x1 = x1.copy()
    if incident == "pipeline" and on:
        broken = rng.uniform(size=n) < 0.5
        logged_x1 = np.where(broken, np.nan, x1)
        score = np.where(broken, triage_model_score(np.zeros(n), x2), score)  # imputed as 0
    latency = rng.lognormal(np.log(40), 0.3, n)
    status = np.where(rng.uniform(size=n) < 0.005, "error", "ok")
    if incident == "latency" and on:
        latency = latency * 6
        status = np.where(rng.uniform(size=n) < 0.1, "timeout", status)
    y = (rng.uniform(size=n) < p).astype(int)
    ts = [TRIAGE_T0 + timedelta(days=d, seconds=int(s)) for s in rng.uniform(0, 86_000, n)]
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
    if incident == "label_delay" and d == TRIAGE_DAYS - 1:
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
    clock = Clock(TRIAGE_T0)
    ws = watchkeeper.open(parse_config(TRIAGE_YAML, base_dir=tmp_path), clock=clock)
    reference, ref_labels = triage_day(rng, -30, 8000, "none")
    ws.set_reference(
        "fraud", reference.drop(columns=["id", "ts"]).assign(label=ref_labels["label"].to_numpy())
    )
    for d in range(TRIAGE_DAYS):
        events, labels = triage_day(rng, d, 2000, incident)
        ws.ingest_events("fraud", events)
        ws.ingest_labels("fraud", labels)
        outcomes = labels[labels["label"] == 1][["id"]].assign(outcome="chargeback", value=1.0)
        ws.ingest_outcomes("fraud", outcomes)
    # Labels of the last day are still arriving in the label-delay incident.
    clock.now = (
        TRIAGE_T0 + timedelta(days=TRIAGE_DAYS, hours=6)
        if incident == "label_delay"
        else TRIAGE_T0 + timedelta(days=TRIAGE_DAYS + 4)
    )
    ws.run("fraud", full=True, window="1d")
    return ws, clock


# -- browser artifacts ----------------------------------------------------------------------------

ARTIFACTS = Path(os.environ.get("WATCHKEEPER_ARTIFACTS", "test-artifacts"))


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name
