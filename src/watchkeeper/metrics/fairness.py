"""Fairness, per sensitive attribute: each group's share of traffic against the
reference's, its rates against the whole traffic's, and the disparities between groups (as
fairlearn defines them) with a test of homogeneity, so a gap measured on a few people reads
as uncertain. Groups with fewer than ``monitoring.min_labels`` labelled events are left out
of the disparities, and named."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from watchkeeper.metrics.family import Aggregates, Context, Family
from watchkeeper.metrics.labels import arriving
from watchkeeper.profiles.base import OTHER_SEGMENT, Key
from watchkeeper.rows import ALL, MetricRow, Where
from watchkeeper.stats.comparisons import homogeneity_p, two_proportions
from watchkeeper.tasks.base import Confusion

# A group's rates: (successes, trials) from its decisions.
RATES: dict[str, Callable[[Confusion], tuple[int, int]]] = {
    "positive_rate": lambda c: (c.tp + c.fp, c.n),  # selection rate
    "recall": lambda c: (c.tp, c.tp + c.fn),  # true positive rate
    "false_positive_rate": lambda c: (c.fp, c.fp + c.tn),
    "precision": lambda c: (c.tp, c.tp + c.fp),
}


def fairness_rows(ctx: Context, agg: Aggregates) -> list[MetricRow]:
    rows: list[MetricRow] = []
    decisions = {
        k: found for k, c in agg.counts.items() if (found := ctx.task.confusion(c)) is not None
    }
    minimum = ctx.model.monitoring.min_labels
    for start, version in sorted({(k[0], k[1]) for k in agg.profiles}):
        total = agg.profiles.get((start, version, ALL, ALL))
        ref = ctx.references[version]
        for column in ctx.model.columns.sensitive:
            groups = sorted(
                k
                for k in agg.profiles
                if k[:3] == (start, version, column) and k[3] != OTHER_SEGMENT
            )
            for key in groups:
                share = agg.profiles[key].rows / total.rows if total and total.rows else None
                ref_profile = ref.segments.get((column, key[3]))
                ref_share = (
                    ref_profile.rows / ref.overall.rows
                    if ref_profile and ref.overall.rows
                    else None
                )
                rows.append(
                    ctx.where(key).row(
                        "traffic_share",
                        "",
                        share,
                        agg.profiles[key].rows,
                        detail="" if ref_share is None else f"{ref_share:.1%} of the reference",
                    )
                )
            enough = [k for k in groups if k in decisions and decisions[k].n >= minimum]
            everyone = decisions.get((start, version, ALL, ALL))
            if everyone is not None:
                early = arriving(ctx, agg, start, version)
                rows += _to_overall(ctx, enough, decisions, everyone, early)
            if len(enough) < 2:
                continue
            small = [k[3] for k in groups if k not in enough]
            rows += _disparities(
                ctx, agg, [decisions[k] for k in enough], small, start, version, column
            )
    return rows


def _disparities(
    ctx: Context,
    agg: Aggregates,
    c: list[Confusion],
    small: list[str],
    start: Any,
    version: str,
    column: str,
) -> list[MetricRow]:
    selection = np.array([[x.tp + x.fp, x.tn + x.fn] for x in c], dtype=float)
    tpr = np.array([[x.tp, x.fn] for x in c], dtype=float)
    fpr = np.array([[x.fp, x.tn] for x in c], dtype=float)
    sel = selection[:, 0] / selection.sum(axis=1)
    tp_rates, fp_rates = _safe_rate(tpr), _safe_rate(fpr)
    p_sel = homogeneity_p(selection)
    p_eo = [p for p in (homogeneity_p(tpr), homogeneity_p(fpr)) if p is not None]
    eo_p = min(1.0, 2 * min(p_eo)) if p_eo else None
    tp_diff = float(np.nanmax(tp_rates) - np.nanmin(tp_rates))
    fp_diff = float(np.nanmax(fp_rates) - np.nanmin(fp_rates))
    values = {
        "demographic_parity_difference": (float(sel.max() - sel.min()), p_sel),
        "demographic_parity_ratio": (_ratio(sel), p_sel),
        "equalized_odds_difference": (max(tp_diff, fp_diff), eo_p),
        "equalized_odds_ratio": (min(_ratio(tp_rates), _ratio(fp_rates)), eo_p),
    }
    n = sum(x.n for x in c)
    final = not arriving(ctx, agg, start, version)  # as the rows against the whole traffic
    note = f"groups with too few labels left out: {', '.join(small)}" if small else ""
    where = Where(start, start + ctx.size, version, column, ALL)
    return [
        where.row(name, "", value, n, p_value=p, detail=note, provisional=not final)
        for name, (value, p) in values.items()
    ]


def _to_overall(
    ctx: Context,
    groups: list[Key],
    decisions: dict[Key, Confusion],
    everyone: Confusion,
    early: bool,
) -> list[MetricRow]:
    """Each group's rates against the whole traffic's: ``difference_to_overall`` (with the
    p-value of the group against the rest) and ``ratio_to_overall``; column: the rate.
    Measured on labelled decisions, so provisional (``early``) while labels arrive."""
    out = []
    for key in groups:
        c = decisions[key]
        where = ctx.where(key)
        for name, parts in RATES.items():
            k, n = parts(c)
            k_all, n_all = parts(everyone)
            if n == 0 or n_all == 0:
                continue
            rate, overall = k / n, k_all / n_all
            _, p = two_proportions(k, n, k_all - k, n_all - n)
            detail = f"{rate:.3g} against {overall:.3g} overall"
            out.append(
                where.row(
                    "difference_to_overall",
                    name,
                    rate - overall,
                    n,
                    p_value=p,
                    detail=detail,
                    provisional=early,
                )
            )
            ratio = rate / overall if overall else None
            out.append(
                where.row(
                    "ratio_to_overall",
                    name,
                    ratio,
                    n,
                    p_value=p,
                    detail=detail,
                    provisional=early,
                )
            )
    return out


def _safe_rate(table: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    totals = table.sum(axis=1)
    return np.where(totals > 0, table[:, 0] / np.maximum(totals, 1), np.nan)


def _ratio(values: np.ndarray[Any, Any]) -> float:
    values = values[np.isfinite(values)]
    if len(values) == 0 or values.max() == 0:
        return 1.0
    return float(values.min() / values.max())


FAIRNESS = Family(
    "fairness",
    "Protected groups' traffic shares, rates against the whole, and disparities between them.",
    (
        "traffic_share",
        "difference_to_overall",
        "ratio_to_overall",
        "demographic_parity_*",
        "equalized_odds_*",
    ),
    fairness_rows,
    needs=("labels", "segments"),
)

__all__ = ["FAIRNESS", "RATES"]
