"""The drift page reads only the windows it draws: the heat map's newest and the one
picked, however old."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa

import watchkeeper
from watchkeeper.config import parse_config
from watchkeeper.server.dashboard import Pages
from watchkeeper.server.pages.drift import HEAT_WINDOWS
from watchkeeper.store.engine import arrow_schema
from watchkeeper.store.tables import METRICS, SHARED

YAML = """\
engine: {path: store.duckdb}
models:
  - name: m
    task: binary_classification
    columns:
      features: [{name: amount, kind: numeric}, {name: country, kind: categorical}]
      score: score
    monitoring: {window: 1h}
"""
T0 = datetime(2026, 1, 1, tzinfo=UTC)
HOURS = 100


def _rows() -> pa.Table:
    schema = arrow_schema(SHARED[METRICS])
    found = []
    for h in range(HOURS):
        for column in ("amount", "country"):
            first = h == 0 and column == "amount"
            found.append(
                {
                    "model": "m", "model_version": "1", "window_start": T0 + timedelta(hours=h),
                    "window_end": T0 + timedelta(hours=h + 1), "segment_column": "*",
                    "segment_value": "*", "metric": "drift", "column": column,
                    "value": 0.987 if first else 0.01 * (h % 7), "threshold": 0.1,
                    "p_value": None, "sample_size": 500,
                    "status": "drifted" if first else "ok", "provisional": False,
                    "detail": "", "run_id": "t", "computed_at": T0,
                }
            )  # fmt: skip
    return pa.Table.from_pylist([{c: r.get(c) for c in schema.names} for r in found], schema=schema)


def _heat_windows(html: str) -> set[str]:
    found = re.search(r'<script type="application/json" id="heat">(.*?)</script>', html)
    assert found is not None
    spec = json.loads(found.group(1))
    return {cell["t"] for cell in spec["data"]["values"]}


def test_an_old_window_picked_is_shown_beside_the_newest_heat_map(tmp_path: Path) -> None:
    config = parse_config(YAML, base_dir=tmp_path)
    with watchkeeper.open(config) as ws:
        ws.store.insert(METRICS, _rows())
        pages = Pages(ws)
        newest = pages.drift_page("m", None, None)
        assert "0.987" not in newest  # the oldest window is neither in the table nor the map
        assert len(_heat_windows(newest)) == HEAT_WINDOWS
        oldest = pages.drift_page("m", T0.isoformat(), None)
        table = oldest.split('id="heat"')[0]
        assert "0.987" in table and "drifted" in table
        assert f'value="{T0.isoformat()}" selected' in oldest
        assert len(_heat_windows(oldest)) == HEAT_WINDOWS  # still the newest windows
        assert T0.isoformat() not in " ".join(_heat_windows(oldest))
