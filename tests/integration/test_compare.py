"""watchkeeper.compare: two tables in, one row per feature out, on the engine path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import watchkeeper
from watchkeeper.config import DriftConfig

RNG = np.random.default_rng(42)
N = 20_000
REF = pd.DataFrame(
    {
        "stable": RNG.normal(0, 1, N),
        "moved": RNG.normal(0, 1, N),
        "tiny": RNG.normal(0, 1, N),
        "city": RNG.choice(["a", "b", "c"], N, p=[0.5, 0.3, 0.2]),
        "flag": RNG.uniform(size=N) < 0.3,
        "when": pd.Timestamp("2026-01-01"),
    }
)


def current(n: int = 8000, tiny_shift: float = 0.02) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "stable": RNG.normal(0, 1, n),
            "moved": RNG.normal(0.6, 1, n),
            "tiny": RNG.normal(tiny_shift, 1, n),
            "city": RNG.choice(["a", "b", "c", "new"], n, p=[0.3, 0.3, 0.2, 0.2]),
            "flag": RNG.uniform(size=n) < 0.3,
            "when": pd.Timestamp("2026-02-01"),
        }
    )


def test_finds_what_moved_and_infers_kinds() -> None:
    report = watchkeeper.compare(REF, current())
    frame = report.to_pandas().set_index("column")
    assert list(frame.index) == ["stable", "moved", "tiny", "city", "flag"]  # timestamps skipped
    assert frame.loc["moved", "kind"] == "numeric" and frame.loc["city", "kind"] == "categorical"
    assert frame.loc["flag", "kind"] == "categorical"
    assert set(report.drifted) == {"moved", "city"}
    assert frame.loc["moved", "method"] == "wasserstein"
    assert frame.loc["moved", "statistic"] == pytest.approx(0.6, abs=0.06)
    assert report.summary().startswith("2 of 5 features drifted: ")
    methods = report.methods()
    assert set(methods[methods.column == "moved"].method) == {
        "psi",
        "jensen_shannon",
        "hellinger",
        "total_variation",
        "wasserstein",
        "ks",
        "chi2",
    }


def test_a_trivial_shift_in_a_huge_sample_is_not_drift() -> None:
    # Significant (the test alone would flag it) but below the effect threshold.
    report = watchkeeper.compare(REF, current(200_000, tiny_shift=0.03))
    frame = report.to_pandas().set_index("column")
    assert frame.loc["tiny", "p_value"] < 0.05
    assert not frame.loc["tiny", "drifted"]


def test_parquet_paths_polars_and_arrow_agree(tmp_path: Path) -> None:
    cur = current()
    pq.write_table(pa.Table.from_pandas(REF), tmp_path / "ref.parquet")
    pq.write_table(pa.Table.from_pandas(cur), tmp_path / "cur.parquet")
    a = watchkeeper.compare(tmp_path / "ref.parquet", str(tmp_path / "cur.parquet")).to_pandas()
    b = watchkeeper.compare(pl.from_pandas(REF), pa.Table.from_pandas(cur)).to_pandas()
    pd.testing.assert_frame_equal(a, b)


def test_kinds_columns_and_rules_can_be_given() -> None:
    report = watchkeeper.compare(
        REF,
        current(),
        columns=["moved", "city"],
        kinds={"moved": "categorical"},
        categorical_drift=DriftConfig(effect="psi", threshold=0.05, test=None),
    )
    frame = report.to_pandas().set_index("column")
    assert list(frame.index) == ["moved", "city"]
    assert frame.loc["city", "method"] == "psi" and frame.loc["city", "test"] is None


def test_bad_input_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(watchkeeper.InputError, match="columns not in both tables: nope"):
        watchkeeper.compare(REF, current(), columns=["nope"])
    with pytest.raises(watchkeeper.InputError, match="no such file"):
        watchkeeper.compare(tmp_path / "missing.parquet", current())
    with pytest.raises(watchkeeper.InputError, match="cannot compare a int"):
        watchkeeper.compare(1, current())


def test_identifiers_and_event_times_are_not_features_unless_asked_for() -> None:
    """An id column (every value new) would always drift, and a time column always moves:
    they are left out and said so; a `*_id` column that repeats is a feature (a merchant),
    and any of them is compared when named."""
    n = 4000
    rng = np.random.default_rng(7)

    def frame(first: int, shift: float) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "event_id": [f"e{first + i}" for i in range(n)],
                "request_id": np.arange(first, first + n),
                "timestamp": [f"2026-01-{1 + i % 28:02d}T00:00:00Z" for i in range(n)],
                "merchant_id": rng.choice(["m1", "m2", "m3"], n),
                "user_id": [f"u{first + i}" for i in range(n)],  # unique: an identifier
                "label_delay": rng.exponential(3.0, n),  # a float: a measurement
                "Time": rng.uniform(0, 1, n),  # a float named like a time: a feature
                "amount": rng.normal(shift, 1, n),
            }
        )

    ref, cur = frame(0, 0.0), frame(10**6, 0.0)
    report = watchkeeper.compare(ref, cur)
    kept = ["merchant_id", "label_delay", "Time", "amount"]
    assert [f.column for f in report.features] == kept
    assert report.left_out == ("event_id", "request_id", "timestamp", "user_id")
    assert report.drifted == []
    assert "left out: event_id, request_id, timestamp, user_id" in report.summary()
    with pytest.raises(watchkeeper.InputError, match="event_id, user_id were left out"):
        watchkeeper.compare(ref[["event_id", "user_id"]], cur[["event_id", "user_id"]])
    asked = watchkeeper.compare(ref, cur, columns=["request_id", "amount"])
    assert [f.column for f in asked.features] == ["request_id", "amount"]
    assert asked.left_out == ()
