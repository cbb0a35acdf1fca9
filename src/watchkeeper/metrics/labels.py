"""Labels: how many of each window's events have a label yet, and how late labels come."""

from __future__ import annotations

from datetime import datetime

from watchkeeper.metrics.family import Aggregates, Context, Family
from watchkeeper.rows import ALL, MetricRow, Where


def coverage(ctx: Context, agg: Aggregates, key: tuple) -> tuple[float, int]:  # type: ignore[type-arg]
    """A window × segment's label coverage and its events."""
    total = agg.profiles[key].rows if key in agg.profiles else 0
    counts = agg.counts.get(key)
    fallback = ctx.task.labelled(counts) if counts is not None else 0
    n = agg.labelled.get(key, fallback)
    return (n / total if total else 0.0), total


def arriving(ctx: Context, agg: Aggregates, start: datetime, version: str) -> bool:
    """Whether a window's labels are still arriving (its whole traffic's coverage short of
    final): what is measured on them is provisional, to be judged again as they mature."""
    share, _ = coverage(ctx, agg, (start, version, ALL, ALL))
    return not ctx.final(start, share)


def label_rows(ctx: Context, agg: Aggregates) -> list[MetricRow]:
    rows = []
    for key in sorted(agg.profiles):
        share, total = coverage(ctx, agg, key)
        final = ctx.final(key[0], share)
        rows.append(
            ctx.where(key).row(
                "label_coverage",
                "",
                share,
                total,
                provisional=not final,
                detail="" if final else ctx.maturity(key[0], share),
            )
        )
    for (start, version), q in sorted(agg.label_lags.items()):
        where = Where(start, start + ctx.size, version, ALL, ALL)
        for name, value in zip(("label_lag_p50", "label_lag_p90"), q.values, strict=False):
            detail = "" if value is None else f"{value / 3600:.1f} hours"
            rows.append(where.row(name, "", value, q.n, detail=detail))
    return rows


LABELS = Family(
    "labels",
    "Label coverage of every window (provisional until final), and the label delay.",
    ("label_coverage", "label_lag_p50", "label_lag_p90"),
    label_rows,
    needs=("labels",),
)

__all__ = ["LABELS", "coverage"]
