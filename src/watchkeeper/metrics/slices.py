"""Weak slices: where does the model do significantly worse than on the rest?

Every value of a candidate column (segment columns, sensitive attributes, categorical and
boolean features, numeric features cut at the reference's coarse edges) and every pair of
such values is a slice. Each slice with enough labelled events is compared with the rest of
its window on the model's loss (one-sided: is it worse?); Benjamini-Hochberg controls the
false discovery rate across the slices tested in the window; the significant ones are
ranked by the gap they are sure of (its one-sided 95% lower bound) and the top ones reported
with their evidence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from watchkeeper.metrics.family import Aggregates, Context, Family
from watchkeeper.metrics.labels import arriving
from watchkeeper.profiles.slices import SliceLoss
from watchkeeper.rows import ALL, OK, MetricRow, Where
from watchkeeper.stats.comparisons import two_proportions, welch
from watchkeeper.stats.multiple import benjamini_hochberg

MIN_SHARE = 0.01  # a slice must hold at least this share of the window's labelled events
# and this many labelled events (or ``min_labels`` if lower): a window's metrics want
# ``min_labels`` to be worth stating, but a slice is tested, and Benjamini-Hochberg pays for
# every slice tested; a slice of 5% of the traffic holds under 100 labels of a day's 2,000.
MIN_SLICE_LABELS = 50
TOP = 5  # slices reported per window
Z_RANK = 1.645  # the one-sided 95% normal quantile: slices are ranked by the gap's lower bound


@dataclass(frozen=True)
class Slice:
    window_start: datetime
    description: str
    events: int
    loss: float  # the slice's mean loss (error rate, or mean absolute error)
    rest_loss: float
    q_value: float
    share: float
    sure: float = 0.0  # the one-sided 95% lower bound of the gap

    @property
    def impact(self) -> float:
        return self.events * (self.loss - self.rest_loss)


def _sure_gap(part: SliceLoss, rest: SliceLoss) -> float:
    """The gap between the part's mean loss and the rest's that the data are sure of: its
    one-sided 95% lower bound (unpooled standard error). Ranking by it, rather than by
    events × gap, puts the slice where the model fails ahead of the larger slices that merely
    contain it: their excess is the same, their gap diluted, and noise would decide."""
    gap = _mean(part) - _mean(rest)
    var = sum(max(s.squares / s.n - _mean(s) ** 2, 0.0) / s.n for s in (part, rest) if s.n > 0)
    return gap - Z_RANK * math.sqrt(var)


def worse_p(part: SliceLoss, rest: SliceLoss, is_rate: bool) -> float:
    """One-sided: is the part's mean loss higher than the rest's? (the pooled
    two-proportion z-test for rates, Welch's test with a normal approximation otherwise)."""
    if is_rate:
        _, p = two_proportions(part.total, part.n, rest.total, rest.n, side="greater")
    else:
        args = (part.total, part.squares, part.n, rest.total, rest.squares, rest.n)
        _, p = welch(*args, side="greater")
    return 1.0 if p is None else p


def weak_slices(
    window: datetime,
    whole: SliceLoss,
    slices: dict[str, SliceLoss],
    is_rate: bool,
    minimum: int,
    alpha: float,
    reference: dict[str, SliceLoss] | None = None,
) -> list[Slice]:
    """The top significant weak slices of one window. With the same slices measured on the
    reference, a slice must also be worse than it was there (both one-sided tests, the
    larger p-value kept: an intersection-union test), so a slice that is merely harder by
    nature is not reported again and again."""
    tested = []
    for text, s in slices.items():
        rest = whole.minus(s)
        if s.n < max(minimum, MIN_SHARE * whole.n) or rest.n < minimum:
            continue
        # Every slice is tested, better ones too (their one-sided p is large): leaving
        # them out would make the family look more significant than it is.
        p = worse_p(s, rest, is_rate)
        before = (reference or {}).get(text)
        if reference is not None:
            if before is None or before.n < minimum:
                continue  # no reference to tell a change from a hard slice
            p = max(p, worse_p(s, before, is_rate))
        tested.append((text, s, rest, p))
    if not tested:
        return []
    q_values = benjamini_hochberg([t[3] for t in tested])
    significant = [
        Slice(window, text, s.n, _mean(s), _mean(rest), qv, s.n / whole.n, _sure_gap(s, rest))
        for (text, s, rest, _), qv in zip(tested, q_values, strict=True)
        if qv < alpha
        and s.total / s.n > rest.total / rest.n
        and (reference is None or s.total / s.n > _mean((reference or {})[text]))
    ]
    kept = [s for s in significant if not _explained(s, significant, slices, whole, is_rate, alpha)]
    return sorted(kept, key=lambda s: -s.sure)[:TOP]


def _explained(
    single: Slice,
    significant: list[Slice],
    sums: dict[str, SliceLoss],
    whole: SliceLoss,
    is_rate: bool,
    alpha: float,
) -> bool:
    """A one-column slice is explained by a significant pair inside it when, without that
    pair, it is no longer worse than the rest: the pair is the more specific answer."""
    if " & " in single.description:
        return False
    mine = sums[single.description]
    rest = whole.minus(mine)
    for pair in significant:
        parts = pair.description.split(" & ")
        if len(parts) != 2 or single.description not in parts:
            continue
        left = mine.minus(sums[pair.description])
        if left.n <= 1 or rest.n <= 1:
            return True
        if left.total / left.n <= rest.total / rest.n:
            return True
        if worse_p(left, rest, is_rate) >= alpha:
            return True
    return False


def _mean(s: SliceLoss) -> float:
    return s.total / s.n if s.n else 0.0


def slice_rows(ctx: Context, agg: Aggregates) -> list[MetricRow]:
    mon = ctx.model.monitoring
    what = "error rate" if agg.slices_are_rates else "mean absolute error"
    out = []
    for version, windows in sorted(agg.slices.items()):
        for w in windows:
            found = weak_slices(
                w.window_start,
                w.whole,
                w.slices,
                agg.slices_are_rates,
                min(mon.min_labels, MIN_SLICE_LABELS),
                mon.numeric_drift.alpha,
                reference.slices if (reference := agg.reference_slices.get(version)) else None,
            )
            where = Where(w.window_start, w.window_start + ctx.size, version, ALL, ALL)
            # Provisional while the window's labels are still arriving, so that a rule
            # judges it again as they mature (a slice's gap shows once its labels have).
            early = arriving(ctx, agg, w.window_start, version)
            # One row per searched window, found or not: a rule sees the search came up
            # empty (a window without rows would leave an alert as it was).
            out.append(
                where.row(
                    "weak_slice",
                    "",
                    max(s.loss - s.rest_loss for s in found) if found else 0.0,
                    w.whole.n,
                    status="worse" if found else OK,
                    provisional=early,
                    detail=f"{len(found)} weak slice(s); the clearest: {found[0].description}"
                    if found
                    else "no slice is significantly worse than the rest",
                )
            )
            for s in found:
                out.append(
                    where.row(
                        "weak_slice",
                        s.description,
                        s.loss - s.rest_loss,
                        s.events,
                        status="worse",
                        p_value=s.q_value,
                        provisional=early,
                        detail=f"{what} {s.loss:.3g} against {s.rest_loss:.3g} elsewhere"
                        + (
                            f" and {before:.3g} on the reference"
                            if (before := _before(agg, version, s)) is not None
                            else ""
                        )
                        + f"; {s.share:.1%} of labelled events; the gap is at least "
                        f"{max(s.sure, 0.0):.3g} (95%); impact {s.impact:.3g}",
                    )
                )
    return out


def _before(agg: Aggregates, version: str, s: Slice) -> float | None:
    found = agg.reference_slices.get(version)
    if found is None or s.description not in found.slices:
        return None
    return _mean(found.slices[s.description])


WEAK_SLICES = Family(
    "weak_slices",
    "Single columns and pairs where the model does significantly worse than elsewhere.",
    ("weak_slice",),
    slice_rows,
    needs=("labels", "slices"),
)

__all__ = ["MIN_SHARE", "MIN_SLICE_LABELS", "TOP", "WEAK_SLICES", "Slice", "weak_slices", "worse_p"]
