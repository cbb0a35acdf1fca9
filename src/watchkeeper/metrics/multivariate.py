"""Multivariate drift: a change in how the features move together, judged per window on the
whole traffic of each version.

``reconstruction_error`` is the window's mean error of the rows reconstructed from the
reference's principal components: its value is that mean, ``lower``/``upper`` its 95%
interval, the threshold the top of the band (the reference's mean plus three standard
errors at the window's size, the reference's own window-to-window spread included), and
the status drifted when the mean is outside the band and moved at least ``min_change`` of
the reference's level (a change of correlation with unchanged marginals shows here and in
no column's drift).
"""

from __future__ import annotations

from watchkeeper.metrics.family import Aggregates, Context, Family
from watchkeeper.rows import DRIFTED, INSUFFICIENT, OK, MetricRow
from watchkeeper.stats.reconstruction import judge


def multivariate_rows(ctx: Context, agg: Aggregates) -> list[MetricRow]:
    wanted = ctx.model.monitoring.multivariate
    min_rows = ctx.model.monitoring.min_rows
    rows: list[MetricRow] = []
    for key in sorted(agg.reconstruction):
        fitted = ctx.references[key[1]].reconstruction
        sums = agg.reconstruction[key]
        if fitted is None:
            continue
        where = ctx.where(key)
        features = ", ".join(fitted.features)
        if sums.rows < min_rows:
            rows.append(
                where.row(
                    "reconstruction_error",
                    "",
                    sums.mean if sums.rows else None,
                    sums.rows,
                    status=INSUFFICIENT,
                    detail=f"needs {min_rows} rows",
                )
            )
            continue
        verdict = judge(fitted, sums.rows, sums.mean, sums.std, wanted.min_change)
        detail = (
            f"{verdict.describe(fitted.mean)}; {fitted.kept} of {len(fitted.columns)} "
            f"standardised columns' components ({fitted.explained:.0%} of the variance) of "
            f"{features}"
        )
        rows.append(
            where.row(
                "reconstruction_error",
                "",
                verdict.mean,
                sums.rows,
                lower=verdict.lower,
                upper=verdict.upper,
                threshold=verdict.high,
                status=DRIFTED if verdict.drifted else OK,
                detail=detail,
            )
        )
    return rows


MULTIVARIATE = Family(
    "multivariate",
    "Drift of how the features move together: the reference's PCA reconstruction error.",
    ("reconstruction_error",),
    multivariate_rows,
    needs=("multivariate",),
)

__all__ = ["MULTIVARIATE"]
