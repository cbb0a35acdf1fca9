"""Performance estimated without labels, with its band, for every window and segment; where
labels exist, the realized value beside it and whether the band covered it (the backtest).

The estimate assumes the relation of inputs to label has not changed: concept shift makes
it wrong, and the backtest is what shows it. An estimate named ``metric:column`` is stored
as that metric of that column (a class's recall)."""

from __future__ import annotations

from watchkeeper.metrics.family import Aggregates, Context, Family
from watchkeeper.rows import MetricRow

ASSUMPTION = "assuming no concept shift"


def estimation_rows(ctx: Context, agg: Aggregates) -> list[MetricRow]:
    rows: list[MetricRow] = []
    for key, found in sorted(agg.estimated.items()):
        where = ctx.where(key)
        how = "; ".join(n for n in (agg.estimate_notes.get(key[1]), found.note) if n)
        for full_name, e in found.estimates.items():
            name, _, column = full_name.partition(":")
            trust = agg.trust.get(full_name)
            rows.append(
                where.row(
                    f"estimated_{name}",
                    column,
                    e.value,
                    e.sample_size,
                    lower=e.lower,
                    upper=e.upper,
                    detail=f"without labels, {ASSUMPTION}"
                    + (f"; {how}" if how else "")
                    + (f"; backtest: {trust.caveat}" if trust is not None else ""),
                )
            )
            truth = agg.counts.get(key)
            if truth is None or e.value is None or e.lower is None or e.upper is None:
                continue
            actual = ctx.task.realized(truth, full_name)
            if actual is None:
                continue
            covered = e.lower <= actual <= e.upper
            rows.append(
                where.row(
                    "estimation_error",
                    full_name,
                    e.value - actual,
                    ctx.task.labelled(truth),
                    status="ok" if covered else "missed",
                    detail=f"estimated {e.value:.3g} [{e.lower:.3g}, {e.upper:.3g}], "
                    f"realized {actual:.3g}",
                )
            )
    return rows


ESTIMATION = Family(
    "estimation",
    "Performance estimated without labels, and its error against the labels once they come.",
    ("estimated_*", "estimation_error"),
    estimation_rows,
    needs=("estimates", "labels"),
)

__all__ = ["ASSUMPTION", "ESTIMATION"]
