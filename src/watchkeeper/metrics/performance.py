"""Performance from labels: the task's metrics of each window × segment's labelled counts,
with their intervals, provisional until the window's labels are final; the task's
per-column metrics (a class's recall, the reliability table), residual quantiles and the
catalogue coverage of a ranker."""

from __future__ import annotations

from watchkeeper.catalogue import CATALOGUE
from watchkeeper.metrics.family import Aggregates, Context, Family
from watchkeeper.metrics.labels import coverage
from watchkeeper.rows import ALL, INSUFFICIENT, MetricRow, Where
from watchkeeper.stats.performance import Estimate


def performance_rows(ctx: Context, agg: Aggregates) -> list[MetricRow]:
    rows: list[MetricRow] = []
    minimum = ctx.model.monitoring.min_labels
    task = ctx.task
    for key in sorted(agg.profiles):
        c = agg.counts.get(key)
        if c is None:
            continue
        share, _ = coverage(ctx, agg, key)
        final = ctx.final(key[0], share)
        maturity = ctx.maturity(key[0], share)
        where = ctx.where(key)
        n = task.labelled(c)
        judged: list[tuple[str, str, Estimate]] = [
            (name, "", metric(c)) for name, metric in task.metrics.items()
        ]
        for extra in task.extras(ctx.model, c):
            if not extra.judged:  # stated as it is (a score bin's rate), not judged on size
                e = extra.estimate
                rows.append(
                    where.row(
                        extra.metric,
                        extra.column,
                        e.value,
                        e.sample_size,
                        lower=e.lower,
                        upper=e.upper,
                        provisional=not final,
                        detail=extra.detail,
                    )
                )
            else:
                judged.append((extra.metric, extra.column, extra.estimate))
        for name, column, e in judged:
            notes = [] if final else [maturity]
            if e.bound:
                notes.append(f"within {e.bound:.2g} of the unbinned value")
            value, lower, upper, status = e.value, e.lower, e.upper, "ok"
            if n < minimum or e.value is None:
                value, lower, upper, status = None, None, None, INSUFFICIENT
                notes.insert(0, f"{n} labelled events; needs {minimum}")
            rows.append(
                where.row(
                    name,
                    column,
                    value,
                    e.sample_size,
                    lower=lower,
                    upper=upper,
                    status=status,
                    provisional=not final,
                    detail="; ".join(notes),
                )
            )
    for (start, version), q in sorted(agg.residuals.items()):
        where = Where(start, start + ctx.size, version, ALL, ALL)
        names = ("residual_p10", "residual_p50", "residual_p90")
        for name, value in zip(names, q.values, strict=False):
            rows.append(where.row(name, "", value, q.n))
    item = ctx.task.items(ctx.model) if ctx.task.items else None
    for (start, version), shown in sorted(agg.items.items()):
        where = Where(start, start + ctx.size, version, ALL, ALL)
        catalogue = agg.catalogue_sizes.get(version, 0)
        rows.append(
            where.row(
                "catalogue_coverage",
                item or "",
                shown / catalogue if catalogue else None,
                shown,
                detail=f"{shown:,} of the reference's {catalogue:,} items shown",
            )
        )
    return rows


PERFORMANCE = Family(
    "performance",
    "The model task's metrics from labels, with intervals, provisional until labels are final.",
    tuple(m.key for m in CATALOGUE.values() if m.family == "performance"),
    performance_rows,
    needs=("labels", "columns"),
)

__all__ = ["PERFORMANCE"]
