"""Service: traffic, failed requests and latency per window, and traffic against what the
recent windows lead one to expect."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime

from watchkeeper.metrics.family import Aggregates, Context, Family, History
from watchkeeper.reference.profile import latency_binning
from watchkeeper.rows import ALL, MetricRow, Where
from watchkeeper.stats import baseline
from watchkeeper.stats.performance import wilson
from watchkeeper.stats.quality import histogram_quantile, histogram_quantile_interval

LATENCY_QUANTILES = (("latency_p50", 0.5), ("latency_p90", 0.9), ("latency_p99", 0.99))


def finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def service_rows(ctx: Context, agg: Aggregates) -> list[MetricRow]:
    rows = []
    latency = ctx.model.columns.latency
    for key in sorted(agg.profiles):
        p = agg.profiles[key]
        where = ctx.where(key)
        rows.append(where.row("row_count", "", p.rows, p.rows))
        if ctx.model.columns.status:
            e = wilson(p.errors, p.rows)
            rows.append(where.row("error_rate", "", e.value, p.rows, lower=e.lower, upper=e.upper))
        if latency and latency in p.columns:
            cur, edges = p.columns[latency], latency_binning(latency).edges
            for name, q in LATENCY_QUANTILES:
                value = finite(histogram_quantile(cur, edges, q))
                lower, upper = histogram_quantile_interval(cur, edges, q)
                rows.append(
                    where.row(
                        name, latency, value, cur.present, lower=finite(lower), upper=finite(upper)
                    )
                )
    return rows


def against_recent(
    ctx: Context,
    history: History,
    metric: str,
    ratio: str,
    unit: str,
    current: dict[tuple[str, str, str], dict[datetime, float]],
) -> list[MetricRow]:
    """``ratio``: each window's value over the usual level of the recent windows' (the
    run's own and the stored ones, windows without any left out), per segment and column;
    version ``*``."""
    n = ctx.model.monitoring.baseline_windows
    size = ctx.size
    out = []
    for key, values in current.items():
        known = {**history.get(metric, {}).get(key, {}), **values}
        for start in sorted(values):
            previous = [x for i in range(1, n + 1) if (x := known.get(start - i * size, 0.0))]
            if len(previous) < max(3, n // 4):
                continue
            expected = baseline.usual(previous)
            assert expected is not None
            where = Where(start, start + size, ALL, key[0], key[1])
            out.append(
                where.row(
                    ratio,
                    key[2],
                    values[start] / expected if expected else None,
                    len(previous),
                    detail=f"expected {expected:,.4g} {unit} "
                    f"(median of the last {len(previous)} windows)",
                )
            )
    return out


def volume_rows(ctx: Context, agg: Aggregates) -> list[MetricRow]:
    current: dict[tuple[str, str, str], dict[datetime, float]] = defaultdict(
        lambda: defaultdict(float)
    )
    for (start, _, col, val), p in agg.profiles.items():
        current[(col, val, "")][start] += p.rows
    return against_recent(ctx, agg.history, "row_count", "volume_ratio", "rows", current)


SERVICE = Family(
    "service",
    "Traffic, failed requests and latency quantiles per window and segment.",
    ("row_count", "error_rate", "latency_p*"),
    service_rows,
    needs=("latency",),
)
VOLUME = Family(
    "volume",
    "Traffic over the median of the recent windows', per segment.",
    ("volume_ratio",),
    volume_rows,
    history=("row_count",),
    needs=(),
)

__all__ = ["LATENCY_QUANTILES", "SERVICE", "VOLUME", "against_recent", "finite"]
