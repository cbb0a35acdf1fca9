"""Versions side by side: while a rollout has two model versions serving the same window,
each newer version's outputs against the established version's in that window. The
traffic is split between them, so the inputs are alike: a difference in the scores is the
model's own doing, whatever drift the inputs show against the reference."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from watchkeeper.metrics.drift import drift_rule
from watchkeeper.metrics.family import Aggregates, Context, Family
from watchkeeper.rows import ALL, DRIFTED, OK, MetricRow
from watchkeeper.stats import drift as drift_methods
from watchkeeper.stats.drift import Comparison

OUTPUT_ROLES = ("score", "prediction")


def version_rows(ctx: Context, agg: Aggregates) -> list[MetricRow]:
    model = ctx.model
    serving: dict[datetime, list[str]] = defaultdict(list)
    for start, version, seg_col, _ in agg.profiles:
        if seg_col == ALL:
            serving[start].append(version)
    out = []
    min_rows = model.monitoring.min_rows
    for start, versions in sorted(serving.items()):
        if len(versions) < 2:
            continue
        rows = {v: agg.profiles[(start, v, ALL, ALL)].rows for v in versions}
        base = model.version if model.version in rows else max(rows, key=lambda v: (rows[v], v))
        for version in sorted(v for v in versions if v != base):
            mine = agg.profiles[(start, version, ALL, ALL)]
            theirs = agg.profiles[(start, base, ALL, ALL)]
            for column, current in mine.columns.items():
                b = ctx.references[version].binning(column)
                if b is None or b.role not in OUTPUT_ROLES or column not in theirs.columns:
                    continue
                if b != ctx.references[base].binning(column):
                    continue  # the versions count this column over different bins
                established = theirs.columns[column]
                if current.present < min_rows or established.present < min_rows:
                    continue
                rule = drift_rule(model, b)
                comparison = Comparison(b, established, current)
                effect = drift_methods.compare(rule.effect, comparison) if rule.effect else None
                test = drift_methods.compare(rule.test, comparison) if rule.test else None
                threshold = (
                    rule.threshold
                    if rule.threshold is not None
                    else (drift_methods.get(rule.effect).threshold if rule.effect else None)
                )
                big = effect is None or threshold is None or effect.statistic >= threshold
                significant = test is None or (
                    test.p_value is not None and test.p_value < rule.alpha
                )
                value = effect.statistic if effect else (test.statistic if test else None)
                where = ctx.where((start, version, ALL, ALL))
                out.append(
                    where.row(
                        "version_shift",
                        column,
                        value,
                        current.present,
                        status=DRIFTED if big and significant else OK,
                        p_value=test.p_value if test else None,
                        threshold=threshold,
                        detail=f"against version {base} in the same window "
                        f"({established.present:,} events)",
                    )
                )
    return out


VERSIONS = Family(
    "versions",
    "A newer version's outputs against the established version's, in the same windows.",
    ("version_shift",),
    version_rows,
    needs=("outputs",),
)

__all__ = ["VERSIONS"]
