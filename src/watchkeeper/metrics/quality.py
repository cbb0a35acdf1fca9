"""Data quality: each registered quality metric of each column, per window and segment."""

from __future__ import annotations

from watchkeeper.metrics.family import Aggregates, Context, Family
from watchkeeper.metrics.service import finite
from watchkeeper.reference.profile import latency_binning
from watchkeeper.rows import MetricRow
from watchkeeper.stats import quality


def quality_rows(ctx: Context, agg: Aggregates) -> list[MetricRow]:
    rows = []
    for key in sorted(agg.profiles):
        ref = ctx.references[key[1]]
        where = ctx.where(key)
        for name, cur in agg.profiles[key].columns.items():
            b = ref.binning(name) or latency_binning(name)
            for metric in quality.REGISTRY.values():
                if b.kind in metric.kinds:
                    value, n = metric.compute(cur, b)
                    rows.append(where.row(metric.key, name, finite(value), n))
    return rows


QUALITY = Family(
    "data_quality",
    "Missing, out-of-range and unseen values, and each numeric column's mean and spread.",
    tuple(quality.REGISTRY),
    quality_rows,
    needs=("columns",),
)

__all__ = ["QUALITY"]
