"""Performance estimated without labels, with its band, for every window and segment; where
labels exist, the realized value beside it and whether the band covered it (the backtest).

The estimate assumes the relation of inputs to label has not changed: concept shift makes
it wrong, and the backtest is what shows it. An estimate named ``metric:column`` is stored
as that metric of that column (a class's recall)."""

from __future__ import annotations

from watchkeeper.catalogue import lower_is_better
from watchkeeper.metrics.family import Aggregates, Context, Family
from watchkeeper.rows import ALL, MetricRow
from watchkeeper.stats.performance import Z95, Estimate

ASSUMPTION = "assuming no concept shift"


def estimation_rows(ctx: Context, agg: Aggregates) -> list[MetricRow]:
    rows: list[MetricRow] = []
    for key, found in sorted(agg.estimated.items()):
        where = ctx.where(key)
        how = "; ".join(n for n in (agg.estimate_notes.get(key[1]), found.note) if n)
        for full_name, e in found.estimates.items():
            name, _, column = full_name.partition(":")
            trust = agg.trust.get(full_name)
            reference = None
            if not column and key[2] == ALL:  # a segment is not held to the whole's level
                reference = agg.reference_values.get(key[1], {}).get(name)
            alike = agg.at_reference.get(key)
            status, edge, band = judged(
                name, e, reference, alike.estimates.get(full_name) if alike else None
            )
            rows.append(
                where.row(
                    f"estimated_{name}",
                    column,
                    e.value,
                    e.sample_size,
                    lower=e.lower,
                    upper=e.upper,
                    status=status,
                    threshold=edge,
                    detail=f"without labels, {ASSUMPTION}"
                    + (f"; {band}" if band else "")
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


BAND_SIGMAS = 3.0  # the reference's band: its value ± 3 sampling sds of a window this size


def judged(
    name: str, e: Estimate, reference: float | None, alike: Estimate | None = None
) -> tuple[str, float | None, str]:
    """An estimate against the band the reference's own windows show: the metric on the
    reference ± 3 standard deviations of an estimate of a window this size (as NannyML's
    CBPE flags an estimate beyond its reference chunks' spread). The deviation is that of
    ``alike``, the estimate of a window of this size drawn like the reference, where there
    is one (the window's own band widens as its inputs drift, which would move the edge away
    exactly when it matters); else the window's own. It is read on the side that matters,
    as the band is clipped at the metric's bounds. Status ``degraded`` when the estimate is
    beyond the band on the side that is worse; the threshold is that edge."""
    if reference is None or e.value is None:
        return "ok", None, ""
    spread = alike if alike is not None and alike.value is not None else e
    worse_up = lower_is_better(name)
    if spread.value is None or (spread.upper if worse_up else spread.lower) is None:
        return "ok", None, ""
    assert spread.lower is not None and spread.upper is not None
    sd = (spread.upper - spread.value if worse_up else spread.value - spread.lower) / Z95
    if sd <= 0:
        return "ok", None, ""
    low, high = reference - BAND_SIGMAS * sd, reference + BAND_SIGMAS * sd
    band = f"the reference's {reference:.3g}, band [{low:.3g}, {high:.3g}]"
    if worse_up:
        return ("degraded" if e.value > high else "ok"), high, band
    return ("degraded" if e.value < low else "ok"), low, band


ESTIMATION = Family(
    "estimation",
    "Performance estimated without labels, and its error against the labels once they come.",
    ("estimated_*", "estimation_error"),
    estimation_rows,
    needs=("estimates", "labels"),
)

__all__ = ["ASSUMPTION", "ESTIMATION"]
