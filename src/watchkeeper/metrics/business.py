"""Business: what the model's decisions cost and earn (the cost matrix over each window's
labelled decisions), and the business outcomes the model exists for, per window: per-event
outcomes by their event's time with their rate per event, outcomes logged as a time series
by their own time, and each rate against its recent usual level. Per-event outcomes arrive
like labels do, so a window's are provisional until the labels' maximum delay has passed."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from watchkeeper.metrics.family import Aggregates, Context, Family
from watchkeeper.metrics.labels import coverage
from watchkeeper.metrics.service import against_recent
from watchkeeper.rows import ALL, MetricRow, Where


def cost_rows(ctx: Context, agg: Aggregates) -> list[MetricRow]:
    costs = ctx.model.costs
    if costs is None:
        return []
    rows = []
    for key in sorted(agg.counts):
        c = ctx.task.confusion(agg.counts[key])
        if c is None or key not in agg.profiles:
            continue
        share, _ = coverage(ctx, agg, key)
        final = ctx.final(key[0], share)
        cost = c.fp * costs.false_positive + c.fn * costs.false_negative
        value = c.tp * costs.true_positive_value
        detail = f"{c.tp} TP, {c.fp} FP, {c.fn} FN" + (
            "" if final else f"; {ctx.maturity(key[0], share)}"
        )
        where = ctx.where(key)
        for name, amount in (("cost", cost), ("value", value), ("net_value", value - cost)):
            rows.append(
                where.row(name, "", float(amount), c.n, provisional=not final, detail=detail)
            )
    return rows


def outcome_rows(ctx: Context, agg: Aggregates) -> list[MetricRow]:
    events: dict[datetime, int] = defaultdict(int)
    for (start, _, col, _val), p in agg.profiles.items():
        if col == ALL:
            events[start] += p.rows
    out: list[MetricRow] = []
    rates: dict[tuple[str, str, str], dict[datetime, float]] = defaultdict(dict)
    delay = ctx.model.labels.max_delay
    for o in agg.outcomes:
        where = Where(o.window_start, o.window_start + ctx.size, ALL, ALL, ALL)
        early = o.kind == "event" and ctx.now < o.window_start + ctx.size + delay
        out.append(where.row("outcome_total", o.outcome, o.total, o.n, provisional=early))
        n = events.get(o.window_start, 0)
        if o.kind == "event" and n:
            rate = o.total / n
            out.append(
                where.row(
                    "outcome_rate",
                    o.outcome,
                    rate,
                    n,
                    provisional=early,
                    detail=f"{o.total:g} over {n:,} events"
                    + ("; outcomes still arriving" if early else ""),
                )
            )
            rates[(ALL, ALL, o.outcome)][o.window_start] = rate
    out += against_recent(ctx, agg.history, "outcome_rate", "outcome_change", "per event", rates)
    return out


COSTS = Family(
    "costs",
    "The cost and value of the decisions, from the cost matrix.",
    ("cost", "value", "net_value"),
    cost_rows,
    needs=("labels",),
)
OUTCOMES = Family(
    "outcomes",
    "Business outcomes per window, their rate per event, and the rate against its usual level.",
    ("outcome_total", "outcome_rate", "outcome_change"),
    outcome_rows,
    history=("outcome_rate",),
    needs=("outcomes",),
)

__all__ = ["COSTS", "OUTCOMES"]
