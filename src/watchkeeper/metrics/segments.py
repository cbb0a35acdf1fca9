"""Segment gaps: each segment against the rest of the traffic (whole minus segment, since a
segment column's values partition the traffic), on the task's gap metrics, with
Benjamini-Hochberg across the window's segments and metrics. Status ``worse`` when the
segment is significantly worse than the rest and, where the reference holds the segment,
also significantly worse than the segment was on the reference (an intersection-union
test: the larger p-value is kept), so a segment that is harder by nature (new accounts
against returning ones) is not reported day after day. The value is segment minus rest."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from watchkeeper.metrics.family import Aggregates, Context, Family
from watchkeeper.metrics.labels import arriving
from watchkeeper.rows import ALL, MetricRow
from watchkeeper.stats.multiple import benjamini_hochberg
from watchkeeper.tasks.base import Gap, Task


def _against_reference(task: Task, c: Any, before: Any | None, minimum: int) -> dict[str, Gap]:
    """Each gap metric of the segment now against the segment on the reference (the rest
    of the merged counts is the reference's), when the reference has enough of it."""
    if before is None or task.labelled(before) < minimum:
        return {}
    return {g.metric: g for g in task.gaps(c, c.merge(before))}


def gap_rows(ctx: Context, agg: Aggregates) -> list[MetricRow]:
    pending: dict[datetime, list[tuple[MetricRow, float | None]]] = defaultdict(list)
    minimum = ctx.model.monitoring.min_labels
    task = ctx.task
    for key, c in agg.counts.items():
        start, version, seg_col, _ = key
        whole = agg.counts.get((start, version, ALL, ALL))
        if seg_col == ALL or whole is None:
            continue
        n, n_all = task.labelled(c), task.labelled(whole)
        if n < minimum or n_all - n < minimum:
            continue
        where = ctx.where(key)
        early = arriving(ctx, agg, start, version)  # judged again as the labels mature
        before = agg.reference_counts.get(version, {}).get((seg_col, key[3]))
        then = _against_reference(task, c, before, minimum)
        for gap in task.gaps(c, whole):
            p = gap.p_value if gap.worse else None
            detail = "worse than the rest" if gap.worse else "not worse than the rest"
            if (change := then.get(gap.metric)) is not None and p is not None:
                if change.worse and change.p_value is not None:
                    p = max(p, change.p_value)
                    assert change.difference is not None
                    detail += f", and {abs(change.difference):.3g} worse than on the reference"
                else:
                    p = None
                    detail += ", as on the reference"
            row = where.row(
                "segment_gap", gap.metric, gap.difference, n, p_value=gap.p_value,
                detail=detail, provisional=early,
            )  # fmt: skip
            pending[start].append((row, p))
    out: list[MetricRow] = []
    alpha = ctx.model.monitoring.numeric_drift.alpha
    for items in pending.values():
        tested = [(i, p) for i, (_, p) in enumerate(items) if p is not None]
        q_values = dict(
            zip(
                [i for i, _ in tested],
                benjamini_hochberg([p for _, p in tested if p is not None]),
                strict=True,
            )
        )
        for i, (row, _) in enumerate(items):
            q = q_values.get(i)
            if q is not None:
                row = row.with_(p_value=q, status="worse" if q < alpha else row.status)
            out.append(row)
    return out


SEGMENTS = Family(
    "segments",
    "Each segment against the rest on the task's gap metrics, with a test.",
    ("segment_gap",),
    gap_rows,
    needs=("labels", "segments"),
)

__all__ = ["SEGMENTS"]
