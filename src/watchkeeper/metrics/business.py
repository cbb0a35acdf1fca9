"""Business: what the model's decisions cost and earn (the cost matrix over each window's
labelled decisions), and the business outcomes the model exists for, per window: per-event
outcomes by their event's time with their rate per event, outcomes logged as a time series
by their own time, and each rate against its recent usual level. Per-event outcomes arrive
late, so a window's are provisional until they have had time to arrive: the outcome's own
delay as its complete windows showed it (``outcome_delay``, the 99th percentile of the time
from an event to its outcome, with a fifth more for margin), or the labels' maximum delay
until a complete window has shown it. A conversion known within the hour is judged hours
after its window closes, a chargeback known with the fraud label when the labels are."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime, timedelta

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


MARGIN = 1.2  # an outcome's window is complete this many times its observed delay after it


def settle_time(
    ctx: Context, history: Mapping[tuple[str, str, str], Mapping[datetime, float]], outcome: str
) -> timedelta:
    """How long after its window a per-event outcome is complete: its delay as the recent
    complete windows showed it (seconds, stored as ``outcome_delay``), at most the labels'
    maximum delay (which it is until a complete window has shown it)."""
    longest = ctx.model.labels.max_delay
    seen = history.get((ALL, ALL, outcome), {})
    if not seen:
        return longest
    return min(longest, timedelta(seconds=max(seen.values()) * MARGIN))


def outcome_rows(ctx: Context, agg: Aggregates) -> list[MetricRow]:
    events: dict[datetime, int] = defaultdict(int)
    for (start, _, col, _val), p in agg.profiles.items():
        if col == ALL:
            events[start] += p.rows
    out: list[MetricRow] = []
    rates: dict[tuple[str, str, str], dict[datetime, float]] = defaultdict(dict)
    longest = ctx.model.labels.max_delay
    delays = agg.history.get("outcome_delay", {})
    for o in agg.outcomes:
        end = o.window_start + ctx.size
        where = Where(o.window_start, end, ALL, ALL, ALL)
        early = o.kind == "event" and ctx.now < end + settle_time(ctx, delays, o.outcome)
        if o.kind == "event" and o.delay is not None and ctx.now >= end + longest:
            # Only a complete window shows how late an outcome comes.
            detail = f"{o.delay / 3600:.3g} h after the event"
            out.append(where.row("outcome_delay", o.outcome, o.delay, o.n, detail=detail))
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
    ("outcome_total", "outcome_rate", "outcome_change", "outcome_delay"),
    outcome_rows,
    history=("outcome_rate", "outcome_delay"),
    needs=("outcomes",),
)

__all__ = ["COSTS", "OUTCOMES"]
