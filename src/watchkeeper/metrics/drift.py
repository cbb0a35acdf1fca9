"""Drift: every configured method's distance or test for each column against the
reference, and the decision that an alert rule reads.

The decision of a column is its effect size (the configured distance) against its
threshold AND its test, Benjamini-Hochberg adjusted across the window's columns and
segments, against alpha: a billion-row window does not flag a trivial shift, a hundred-row
one does not flag noise. The decision row's value is the effect size (what the threshold is
compared with) and its status says drifted or ok.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from watchkeeper.config import DriftConfig, ModelConfig
from watchkeeper.metrics.family import Aggregates, Context, Family
from watchkeeper.profiles.binning import Binning
from watchkeeper.reference.profile import latency_binning
from watchkeeper.rows import DRIFTED, INSUFFICIENT, OK, MetricRow
from watchkeeper.stats import drift as drift_methods
from watchkeeper.stats.drift import Comparison
from watchkeeper.stats.multiple import benjamini_hochberg

WHOLE_REFERENCE = "compared with the whole reference (no reference rows for this segment)"


def drift_rule(model: ModelConfig, b: Binning) -> DriftConfig:
    """The rule that decides a column's drift: the feature's own, else its kind's."""
    feature = model.feature(b.name)
    if feature is not None and feature.drift is not None:
        return feature.drift
    mon = model.monitoring
    return mon.numeric_drift if b.kind == "numeric" else mon.categorical_drift


def methods_for(model: ModelConfig, b: Binning, rule: DriftConfig) -> list[drift_methods.Method]:
    """The drift methods stored for a column: those that decide, and the configured extras."""
    wanted = model.monitoring.drift_methods
    keys = {rule.effect, rule.test}
    return [
        m
        for m in drift_methods.methods_for(b.kind)
        if m.key in keys or wanted == "all" or m.key in wanted
    ]


@dataclass(frozen=True)
class _Pending:
    row: MetricRow
    effect: float | None  # the effect size (None: the rule has no distance)
    shown: float | None  # the value the row shows: the effect, else the test statistic
    threshold: float | None
    p_value: float | None
    rule: DriftConfig


def drift_rows(ctx: Context, agg: Aggregates) -> list[MetricRow]:
    model = ctx.model
    rows: list[MetricRow] = []
    pending: dict[datetime, list[_Pending]] = defaultdict(list)
    min_rows = model.monitoring.min_rows
    for key in sorted(agg.profiles):
        ref = ctx.references[key[1]]
        ref_profile, own = ref.for_segment(key[2], key[3])
        where = ctx.where(key)
        note = "" if own else WHOLE_REFERENCE
        for name, cur in agg.profiles[key].columns.items():
            b = ref.binning(name) or latency_binning(name)
            reference = ref_profile.columns.get(name)
            if b.role == "latency" or reference is None:
                continue
            comparison = Comparison(b, reference, cur)
            enough = cur.present >= min_rows and reference.present >= min_rows
            rule = drift_rule(model, b)
            results: dict[str, drift_methods.Result | None] = {}
            for method in methods_for(model, b, rule):
                result = drift_methods.compare(method.key, comparison) if enough else None
                results[method.key] = result
                metric = f"drift_{method.key}"
                if result is None:
                    rows.append(
                        where.row(
                            metric,
                            name,
                            None,
                            cur.present,
                            status=INSUFFICIENT,
                            threshold=method.threshold,
                            detail=f"needs {min_rows} values on each side",
                        )
                    )
                    continue
                flagged = (
                    (result.p_value is not None and result.p_value < method.threshold)
                    if method.is_test
                    else result.statistic >= method.threshold
                )
                rows.append(
                    where.row(
                        metric,
                        name,
                        result.statistic,
                        cur.present,
                        status=DRIFTED if flagged else OK,
                        p_value=result.p_value,
                        threshold=method.threshold,
                        detail=note,
                    )
                )
            effect = results.get(rule.effect) if rule.effect else None
            test = results.get(rule.test) if rule.test else None
            if (rule.effect and effect is None) or (rule.test and test is None):
                rows.append(
                    where.row(
                        "drift",
                        name,
                        None,
                        cur.present,
                        status=INSUFFICIENT,
                        detail=f"needs {min_rows} values on each side",
                    )
                )
                continue
            threshold = None
            if rule.effect:
                threshold = (
                    rule.threshold
                    if rule.threshold is not None
                    else drift_methods.get(rule.effect).threshold
                )
            decision = where.row("drift", name, None, cur.present, detail=note)
            shown = effect.statistic if effect else (test.statistic if test else None)
            pending[key[0]].append(
                _Pending(
                    decision,
                    effect.statistic if effect else None,
                    shown,
                    threshold,
                    test.p_value if test else None,
                    rule,
                )
            )
    for items in pending.values():
        rows += _decide(items)
    return rows


def _decide(items: list[_Pending]) -> list[MetricRow]:
    """Benjamini-Hochberg across the features, outputs and segments of one window."""
    tested = [(i, d.p_value) for i, d in enumerate(items) if d.p_value is not None]
    q_values = benjamini_hochberg([p for _, p in tested if p is not None])
    adjusted = {i: q for (i, _), q in zip(tested, q_values, strict=True)}
    out = []
    for i, d in enumerate(items):
        q = adjusted.get(i)
        big = d.effect is None or d.threshold is None or d.effect >= d.threshold
        significant = q is None or q < d.rule.alpha
        drifted = big and significant
        parts = []
        if d.rule.effect and d.effect is not None and d.threshold is not None:
            parts.append(f"{d.rule.effect} {d.effect:.3g} {'>=' if big else '<'} {d.threshold:g}")
        if q is not None:
            parts.append(f"{d.rule.test} q {q:.2g} {'<' if significant else '>='} {d.rule.alpha:g}")
        if d.row.detail:
            parts.append(d.row.detail)
        shown = d.shown if d.shown is not None and math.isfinite(d.shown) else None
        out.append(
            d.row.with_(
                value=shown,
                p_value=q,
                threshold=d.threshold,
                status=DRIFTED if drifted else OK,
                detail="; ".join(parts),
            )
        )
    return out


DRIFT = Family(
    "drift",
    "Each column's drift from the reference by every configured method, and the decision.",
    ("drift", "drift_*"),
    drift_rows,
    needs=("columns",),
)

__all__ = ["DRIFT", "drift_rule", "methods_for"]
