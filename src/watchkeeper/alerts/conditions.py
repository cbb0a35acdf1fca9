"""Alert conditions: which metric series a condition selects, and whether it holds at a
window (beyond a threshold, changed from the reference, outside a rolling baseline, a status,
significant), with the evidence in plain words."""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from watchkeeper.catalogue import CATALOGUE
from watchkeeper.config import ConditionConfig
from watchkeeper.rows import MetricRow
from watchkeeper.stats import baseline
from watchkeeper.windows import format_duration

ALL = "*"


@dataclass(frozen=True)
class SeriesKey:
    model: str
    metric: str
    column: str
    segment_column: str
    segment_value: str
    version: str = "*"  # the model version the series measures ("*": all of them)

    @property
    def segment(self) -> str:
        return ALL if self.segment_column == ALL else f"{self.segment_column}={self.segment_value}"


# One window's value of a series: a row of the metrics table.
Point = MetricRow


Series = Mapping[SeriesKey, Sequence[Point]]  # each sorted by window_start


@dataclass(frozen=True)
class Evidence:
    """Why a condition held (or did not) at a window: the value and what it was held to."""

    series: SeriesKey
    value: float | None
    lower: float | None
    upper: float | None
    sample_size: int
    compared_with: float | None  # the threshold, the reference value, or the baseline
    spread: float | None  # the baseline's spread (std or scaled MAD)
    holds: bool
    text: str  # in plain words

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.series.metric,
            "column": self.series.column,
            "segment": self.series.segment,
            "value": self.value,
            "lower": self.lower,
            "upper": self.upper,
            "sample_size": self.sample_size,
            "compared_with": self.compared_with,
            "baseline_spread": self.spread,
            "holds": self.holds,
            "text": self.text,
        }


def matches(c: ConditionConfig, key: SeriesKey) -> bool:
    if not fnmatch.fnmatchcase(key.metric, c.metric):
        return False
    columns = (c.column,) if isinstance(c.column, str) else c.column
    if not any(fnmatch.fnmatchcase(key.column, pattern) for pattern in columns):
        return False
    if c.segment == "any":
        return True
    if c.segment == ALL:
        return key.segment_column == ALL
    column, _, value = c.segment.partition("=")
    return fnmatch.fnmatchcase(key.segment_column, column) and fnmatch.fnmatchcase(
        key.segment_value, value
    )


def strength(e: Evidence) -> float:
    if e.value is None or e.compared_with is None:
        return 0.0
    return abs(e.value - e.compared_with) / (e.spread or abs(e.compared_with) or 1.0)


def check(
    c: ConditionConfig,
    key: SeriesKey,
    points: Sequence[Point],
    start: datetime,
    reference: Mapping[tuple[str, str, str], float],
    firing: bool,
    versioned: bool = False,
) -> Evidence | None:
    """Whether condition ``c`` holds for the series at window ``start`` (None: no value)."""
    index = index_of(points, start)
    if index is None:
        return None
    p = points[index]
    if p.value is None or (isinstance(p.value, float) and math.isnan(p.value)):
        return None

    def evidence(holds: bool, compared: float | None, spread: float | None, text: str) -> Evidence:
        return Evidence(
            key, p.value, p.lower, p.upper, p.sample_size, compared, spread, holds, text
        )

    if c.mature_only and p.provisional:
        return None  # still arriving: neither for nor against
    name = _name(key, versioned)
    if p.sample_size < c.min_sample_size:
        return None  # too few to judge: neither for nor against (labels may still come)
    if c.max_p_value is not None and (p.p_value is None or p.p_value >= c.max_p_value):
        shown = "untested" if p.p_value is None else f"p {p.p_value:.2g}"
        return evidence(False, None, None, f"{name}: not significant ({shown})")
    if c.status:
        holds = p.status in c.status
        said = f"{name} is {p.status}" + (f" ({p.detail})" if p.detail else "")
        return evidence(holds, None, None, said)
    if c.against == "baseline":
        return _baseline(c, key, points, index, evidence, name)
    value = p.value
    compared: float | None = None
    if c.against == "reference":
        ref = reference.get((key.model, unestimated(key.metric), key.column))
        if ref is None:
            return evidence(False, None, None, f"{name}: no reference value to compare with")
        compared = ref
        value = p.value - ref if c.change == "absolute" else (p.value - ref) / (abs(ref) or 1.0)
    above, below = c.above, c.below
    if firing and c.resolve_at is not None:  # hysteresis: hold until the value crosses back
        above = c.resolve_at if above is not None else None
        below = c.resolve_at if below is not None else None
    holds = (above is not None and value > above) or (below is not None and value < below)
    if holds and c.interval_excludes:
        if c.against == "reference":
            assert compared is not None
            holds = _excludes(p, compared, p.value > compared)
        elif above is not None and value > above:
            holds = _excludes(p, above, True)
        else:
            assert below is not None
            holds = _excludes(p, below, False)
    if c.against == "reference":
        assert compared is not None
        change = f"{value:+.1%}" if c.change == "relative" else f"{value:+.3g}"
        text = f"{name} is {p.value:.3g}, {change} from the reference's {compared:.3g}"
    else:
        limit = above if above is not None and p.value > above else below
        side = "above" if limit == above else "below"
        text = f"{name} is {p.value:.3g}" + (
            f", {side} {limit:.3g}" if holds and limit is not None else ""
        )
        compared = limit
    return evidence(holds, compared, None, text)


def _baseline(
    c: ConditionConfig,
    key: SeriesKey,
    points: Sequence[Point],
    index: int,
    evidence: Any,
    name: str,
) -> Evidence:
    p = points[index]
    b = c.baseline
    history = baseline.past(
        [(q.window_start, q.value) for q in points[:index]], p.window_start, b.windows, b.seasonal
    )
    found = baseline.level(history, b.method)
    if found is None or found.n < b.min_history:
        n = 0 if found is None else found.n
        return evidence(  # type: ignore[no-any-return]
            False, None, None, f"{name}: {n} past values, too few for a baseline"
        )
    centre, spread = found.centre, found.spread
    assert p.value is not None
    z = (p.value - centre) / spread
    holds = (c.direction in ("above", "both") and z > b.k) or (
        c.direction in ("below", "both") and z < -b.k
    )
    if holds and b.min_change is not None:
        holds = abs(p.value - centre) >= b.min_change * abs(centre)
    if holds and c.interval_excludes:
        # Beyond doubt: the interval clears the usual level (and the change asked for).
        margin = (b.min_change or 0.0) * abs(centre)
        up = p.value > centre
        holds = _excludes(p, centre + margin if up else centre - margin, up)
    usual = f"usually {centre:.3g} ± {b.k:g}×{spread:.2g}"
    if b.seasonal is not None:
        usual += f" at this time of the {format_duration(b.seasonal)} cycle"
    return evidence(holds, centre, spread, f"{name} is {p.value:.3g}, {usual}")  # type: ignore[no-any-return]


def _excludes(p: Point, target: float, above: bool) -> bool:
    """Whether the point's interval lies wholly beyond ``target`` on its side. A metric
    without an interval is not held back; a missing bound on the side that matters (a p99
    of 50 values has no upper bound, a lower one only) cannot clear it."""
    if p.lower is None and p.upper is None:
        return True
    if above:
        return p.lower is not None and p.lower > target
    return p.upper is not None and p.upper < target


def index_of(points: Sequence[Point], start: datetime) -> int | None:
    lo, hi = 0, len(points)
    while lo < hi:
        mid = (lo + hi) // 2
        if points[mid].window_start < start:
            lo = mid + 1
        else:
            hi = mid
    return lo if lo < len(points) and points[lo].window_start == start else None


def unestimated(metric: str) -> str:
    """An estimated metric is compared with the realized value on the reference."""
    entry = CATALOGUE.get(metric)
    return entry.estimates if entry is not None and entry.estimates else metric


def _name(key: SeriesKey, versioned: bool = False) -> str:
    text = key.metric.replace("_", " ")
    if key.column:
        text += f" of {key.column}"
    if key.segment_column != ALL:
        text += f" in {key.segment}"
    if versioned and key.version != "*":
        text += f" (version {key.version})"
    return text


__all__ = [
    "ALL",
    "Evidence",
    "Point",
    "Series",
    "SeriesKey",
    "check",
    "matches",
    "strength",
    "unestimated",
]
