"""Latency quantiles with distribution-free intervals: the ranks cover the true quantile
as often as they claim (exact, from the binomial), the histogram's bounds are the sample's
order statistics, and a p99 of a few dozen requests is not a page on one slow request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from scipy import stats

from watchkeeper.alerts import Point, SeriesKey, evaluate
from watchkeeper.config import RuleConfig
from watchkeeper.profiles.types import ColumnProfile
from watchkeeper.stats.quality import histogram_quantile_interval, quantile_ranks


@pytest.mark.parametrize("n", [1, 7, 20, 50, 100, 300, 1_000, 4_321, 10_000, 100_000, 10**6])
@pytest.mark.parametrize("q", [0.5, 0.9, 0.95, 0.99, 0.999])
def test_the_ranks_cover_the_quantile_at_least_95_percent_of_the_time(n: int, q: float) -> None:
    lower, upper = quantile_ranks(n, q)
    # Values below the true quantile ~ binomial(n, q): X(l) <= xi iff at least l are below,
    # X(u) >= xi iff fewer than u are; a missing bound is open.
    below_lower = 0.0 if lower is None else stats.binom.cdf(lower - 1, n, q)
    above_upper = 0.0 if upper is None else stats.binom.sf(upper - 1, n, q)
    assert below_lower <= 0.025 and above_upper <= 0.025
    # and not wastefully wide: each tail holds most of its 2.5%
    if n >= 300 and lower is not None and upper is not None:
        assert below_lower > 0.004 and above_upper > 0.004


def test_a_rank_beyond_the_sample_is_no_bound() -> None:
    lower, upper = quantile_ranks(50, 0.99)
    assert upper is None and lower is not None and lower < 50
    assert quantile_ranks(0, 0.5) == (None, None)


def test_the_histogram_bounds_are_the_samples_order_statistics() -> None:
    rng = np.random.default_rng(3)
    x = rng.lognormal(np.log(35), 0.35, 5_000)
    edges = tuple(np.linspace(0, 200, 4001))
    bins = np.histogram(np.clip(x, 0, 200), bins=[-np.inf, *edges, np.inf])[0]
    profile = ColumnProfile("numeric", len(x), 0, bins.astype(np.int64), low=x.min(), high=x.max())
    lo, hi = histogram_quantile_interval(profile, edges, 0.99)
    ranks = quantile_ranks(len(x), 0.99)
    ordered = np.sort(x)
    assert ranks[0] is not None and ranks[1] is not None
    assert lo == pytest.approx(ordered[ranks[0] - 1], abs=0.1)
    assert hi == pytest.approx(ordered[ranks[1] - 1], abs=0.1)
    assert lo < np.quantile(x, 0.99) < hi


T0 = datetime(2026, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def p99_points(samples: list[np.ndarray]) -> list[Point]:
    out = []
    for i, x in enumerate(samples):
        lower, upper = quantile_ranks(len(x), 0.99)
        ordered = np.sort(x)
        out.append(
            Point(
                T0 + i * HOUR,
                T0 + (i + 1) * HOUR,
                float(np.quantile(x, 0.99)),
                None if lower is None else float(ordered[lower - 1]),
                None if upper is None else float(ordered[upper - 1]),
                sample_size=len(x),
            )
        )
    return out


LATENCY = RuleConfig.model_validate(
    {
        "name": "latency",
        "severity": "page",
        "conditions": [
            {
                "metric": "latency_p99",
                "against": "baseline",
                "direction": "above",
                "baseline": {"windows": 24, "k": 4, "min_change": 1.0},
                "interval_excludes": True,
            }
        ],
    }
)


def test_one_slow_request_among_fifty_does_not_page_but_a_slow_service_does() -> None:
    rng = np.random.default_rng(4)
    hours = [rng.lognormal(np.log(35), 0.35, 50) for _ in range(24 * 7)]
    hours[100] = np.append(hours[100][:-1], 400.0)  # one request stuck behind a retry
    for h in range(150, 152):
        hours[h] = hours[h] * 8  # the serving path slows down eight-fold
    key = SeriesKey("m", "latency_p99", "latency_ms", "*", "*")
    _, events = evaluate(LATENCY, {key: p99_points(hours)}, {}, T0 + len(hours) * HOUR, HOUR)
    firing = [e.window_start for e in events if e.kind == "firing"]
    assert firing == [T0 + 150 * HOUR]
