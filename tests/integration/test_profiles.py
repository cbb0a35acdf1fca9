"""Profiles computed by the engine: equal to numpy on the same rows, and mergeable
(hourly profiles merged into a day equal the day computed directly)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import (
    categorical_binning,
    categorical_profile,
    numeric_binning,
    numeric_profile,
)
from watchkeeper.profiles import ALL, Segment, Source, Windowing, compute_profiles, merge_all
from watchkeeper.profiles.binning import Binning
from watchkeeper.store import Store

DAY = datetime(2026, 4, 1, tzinfo=UTC)
STORE = Store.open("duckdb://")


def table_of(seed: int, n: int, nulls: float) -> pa.Table:
    rng = np.random.default_rng(seed)
    x = rng.gamma(2.0, 3.0, n).round(rng.integers(0, 3))
    x[rng.uniform(size=n) < nulls] = np.nan
    c = rng.choice(["a", "b", "c", "d", "zz"], n, p=[0.4, 0.3, 0.2, 0.08, 0.02])
    return pa.table(
        {
            "ts": pa.array(
                [DAY + timedelta(seconds=float(s)) for s in rng.uniform(0, 86400, n)],
                pa.timestamp("us", tz="UTC"),
            ),
            "x": pa.array(x, from_pandas=True),
            "c": c,
            "seg": rng.choice(["north", "south"], n),
            "v": ["1"] * n,
        }
    )


def binnings_for(ref_seed: int) -> list[Binning]:
    ref = table_of(ref_seed, 3000, 0.0)
    nb = numeric_binning(ref["x"].to_numpy(zero_copy_only=False))
    cb = categorical_binning([v for v in ref["c"].to_pylist() if v != "zz"], vocabulary=3)
    return [nb, Binning("c", "categorical", "feature", categories=cb.categories, known=cb.known)]


def profiles(data: pa.Table, binnings: list[Binning], size: timedelta) -> dict[Any, Any]:
    with STORE.arrow(data) as t:
        source = Source(t, "ts", "v", segments={"seg": Segment(("north", "south"))})
        return compute_profiles(source, binnings, Windowing(size), STORE)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(1, 2000),
    nulls=st.sampled_from([0.0, 0.1, 0.9]),
)
def test_hourly_merged_equals_daily_equals_numpy(seed: int, n: int, nulls: float) -> None:
    data = table_of(seed, n, nulls)
    binnings = binnings_for(seed + 1)
    hourly = profiles(data, binnings, timedelta(hours=1))
    daily = profiles(data, binnings, timedelta(days=1))
    for seg in [(ALL, ALL), ("seg", "north"), ("seg", "south")]:
        parts = [p for (start, _, c, v), p in hourly.items() if (c, v) == seg]
        direct = daily.get((DAY, "1", *seg))
        if direct is None:
            assert parts == []
            continue
        assert merge_all(parts) == direct
    day = daily[(DAY, "1", ALL, ALL)]
    x = data["x"].to_numpy(zero_copy_only=False)
    assert day.columns["x"] == numeric_profile(x, binnings[0])
    assert day.columns["c"] == categorical_profile(data["c"].to_pylist(), binnings[1])
    assert day.rows == n


def test_merge_is_associative_and_zero_is_neutral() -> None:
    data = table_of(5, 1500, 0.1)
    binnings = binnings_for(6)
    hourly = sorted(
        (k, p) for k, p in profiles(data, binnings, timedelta(hours=1)).items() if k[2] == ALL
    )
    ps = [p for _, p in hourly]
    a, b, c = ps[0], ps[1], ps[2]
    assert a.merge(b).merge(c) == a.merge(b.merge(c))
    from watchkeeper.profiles.types import ColumnProfile, Profile

    zero = Profile(0, 0, {b_.name: ColumnProfile.zero(b_.kind, b_.n_bins) for b_ in binnings})
    assert zero.merge(a) == a


def test_every_grouping_strategy_gives_the_same_profiles(monkeypatch: Any) -> None:
    import watchkeeper.profiles.base as compute

    data = table_of(11, 3000, 0.05)
    binnings = binnings_for(12)
    results = []
    for cap, segment in [
        (512, Segment(("north", "south"), complete=True)),  # all at once, raw values
        (512, Segment(("north",))),  # all at once, south mapped to (other)
        (0, Segment(("north", "south"), complete=True)),  # one query part per segment set
        (0, Segment(("north",))),
    ]:
        monkeypatch.setattr(compute, "COMBINATIONS_CAP", cap)
        with STORE.arrow(data) as t:
            source = Source(t, "ts", "v", segments={"seg": segment})
            found = compute_profiles(source, binnings, Windowing(timedelta(hours=6)), STORE)
        results.append(found)
    renamed = {k if k[3] != "(other)" else (*k[:3], "south"): p for k, p in results[1].items()}
    assert results[0].keys() == results[2].keys() == renamed.keys()
    for key, profile in results[0].items():
        assert results[2][key] == profile
        assert renamed[key] == profile
    assert results[3].keys() == results[1].keys()
    assert all(results[3][k] == p for k, p in results[1].items())


def test_binary_counts_pushed_down_equal_numpy() -> None:
    from watchkeeper.profiles.labelled import compute_binary_counts
    from watchkeeper.stats import performance as perf

    rng = np.random.default_rng(8)
    n = 4000
    y = (rng.uniform(size=n) < 0.3).astype(np.int64)
    score = np.clip(rng.beta(2, 5, n) + 0.3 * y, 0, 1)
    score[:3] = [0.0, 1.0, 0.5]  # the edges of the score range and the threshold
    seg = rng.choice(["north", "south"], n)
    ts = [DAY + timedelta(seconds=float(s)) for s in rng.uniform(0, 86400, n)]
    data = pa.table(
        {
            "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "score": score,
            "label": y,
            "seg": seg,
            "v": ["1"] * n,
        }
    )
    with STORE.arrow(data) as t:
        source = Source(t, "ts", "v", segments={"seg": Segment(("north", "south"), complete=True)})
        found = compute_binary_counts(
            source, "score", "label", None, 0.5, Windowing(timedelta(hours=12)), STORE
        )
    hours = np.array([(x - DAY).total_seconds() // 43200 for x in ts])
    for (start, _, col, val), counts in found.items():
        mask = hours == (start - DAY).total_seconds() // 43200
        if col == "seg":
            mask &= seg == val
        expected = perf.counts_from_rows(score[mask], y[mask], (score[mask] >= 0.5).astype(int))
        assert np.array_equal(counts.positives, expected.positives)
        assert np.array_equal(counts.negatives, expected.negatives)
        assert np.allclose(counts.score_sums, expected.score_sums)
        assert (counts.tp, counts.fp, counts.tn, counts.fn) == (
            expected.tp,
            expected.fp,
            expected.tn,
            expected.fn,
        )
        assert counts.log_loss_sum == pytest.approx(expected.log_loss_sum)
        assert counts.brier_sum == pytest.approx(expected.brier_sum)
    assert len(found) == 2 * 3


def edge_scores(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores on every bin edge k/100 (0.29, 0.57 and 0.58 among them: x * 100 falls below
    k in float64), many tied, and others drawn at random; labels depend on them."""
    rng = np.random.default_rng(seed)
    edges = np.arange(101) / 100
    score = np.where(rng.uniform(size=n) < 0.5, rng.choice(edges, n), rng.beta(2, 3, n).round(3))
    score[:3] = [0.29, 0.57, 0.58]
    y = (rng.uniform(size=n) < score).astype(np.int64)
    return score, y


@pytest.mark.parametrize("cap", [512, 0], ids=["combined", "per-segment-set"])
def test_score_bins_and_exact_ranks_equal_numpy(monkeypatch: Any, cap: int) -> None:
    """The engine places each score in the bin numpy does (at the edges too) and ranks the
    scores as scikit-learn does (ties at their average rank): the AUC is exact in every
    window and segment, whichever way the segments are grouped."""
    from sklearn.metrics import roc_auc_score

    import watchkeeper.profiles.base as compute
    from watchkeeper.profiles.counts import score_bins
    from watchkeeper.profiles.labelled import compute_binary_counts, compute_score_histogram
    from watchkeeper.stats import performance as perf

    monkeypatch.setattr(compute, "COMBINATIONS_CAP", cap)
    n = 3000
    score, y = edge_scores(9, n)
    assert score_bins(np.array([0.29, 0.57, 0.58, 1.0, 0.0])).tolist() == [29, 57, 58, 99, 0]
    rng = np.random.default_rng(10)
    seg = rng.choice(["north", "south", "east"], n)
    predicted = (score >= 0.3).astype(np.int64)
    ts = [DAY + timedelta(seconds=float(s)) for s in rng.uniform(0, 86400, n)]
    data = pa.table(
        {
            "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "score": score,
            "label": y,
            "pred": predicted,
            "seg": seg,
            "v": ["1"] * n,
        }
    )
    windowing = Windowing(timedelta(hours=8))
    with STORE.arrow(data) as t:
        source = Source(t, "ts", "v", segments={"seg": Segment(("north", "south"))})
        found = compute_binary_counts(source, "score", "label", "pred", 0.5, windowing, STORE)
        split = compute_score_histogram(
            source, "score", windowing, STORE, predicted_positive="pred"
        )
    hours = np.array([(x - DAY).total_seconds() // 28800 for x in ts])
    values = np.where(seg == "east", "(other)", seg)
    assert len(found) == 3 * 4 and split.keys() == found.keys()
    for key, counts in found.items():
        start, _, col, val = key
        mask = hours == (start - DAY).total_seconds() // 28800
        if col == "seg":
            mask &= values == val
        expected = perf.counts_from_rows(score[mask], y[mask], predicted[mask])
        assert counts == expected
        assert counts.positive_rank_sum == expected.positive_rank_sum
        auc = perf.roc_auc(counts)
        assert auc.bound == 0
        assert auc.value == pytest.approx(roc_auc_score(y[mask], score[mask]), abs=1e-12)
        bins = score_bins(score[mask]) + 100 * predicted[mask]
        assert split[key].tolist() == np.bincount(bins, minlength=200).tolist()
