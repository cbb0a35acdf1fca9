"""The usual level of a series: one rule for every reader.

A metric's recent values (its previous windows, or the same time of earlier days or weeks
for seasonal traffic) give a centre and a spread: by default the median and the scaled
median absolute deviation (robust to one bad window), or the mean and standard deviation,
or the mean and standard deviation of the values without the highest and lowest tenth.
Alert rules choose theirs (``baseline:`` in a condition); triage, the report, the dashboard
and the volume and outcome ratios use the default.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np

Method = Literal["median_mad", "mean_std", "trimmed_mean_std"]
MAD_SCALE = 1.4826  # makes the MAD estimate the standard deviation of a normal sample


@dataclass(frozen=True)
class Level:
    centre: float
    spread: float  # a standard deviation, or its robust estimate
    n: int  # the values it is made of


def level(values: Sequence[float | None], method: Method = "median_mad") -> Level | None:
    """The centre and spread of ``values`` (missing and non-finite ones left out), or None
    when there are none. The spread is never below 1e-9 of the centre, so a flat series
    still has a finite z-score."""
    found = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if len(found) == 0:
        return None
    if method == "trimmed_mean_std":
        cut = max(len(found) // 10, 1) if len(found) >= 7 else 0
        kept = np.sort(found)[cut : len(found) - cut]
        centre, spread = float(kept.mean()), _std(kept)
    elif method == "mean_std":
        centre, spread = float(found.mean()), _std(found)
    else:
        centre = float(np.median(found))
        spread = MAD_SCALE * float(np.median(np.abs(found - centre)))
    return Level(centre, max(spread, 1e-9 * max(abs(centre), 1.0)), len(found))


def _std(values: np.ndarray[Any, Any]) -> float:
    return float(values.std(ddof=1)) if len(values) > 1 else 0.0


def usual(values: Sequence[float | None]) -> float | None:
    """The default usual level: the median of the values."""
    found = level(values)
    return None if found is None else found.centre


def past(
    points: Sequence[tuple[datetime, float | None]],
    before: datetime,
    windows: int,
    seasonal: timedelta | None = None,
) -> list[float | None]:
    """The values a window at ``before`` is compared with: the ``windows`` windows before it,
    or with ``seasonal`` the same time of the ``windows`` earlier cycles. ``points`` are
    (window start, value), sorted by start."""
    if seasonal is not None:
        wanted = {before - seasonal * j for j in range(1, windows + 1)}
        return [v for s, v in points if s in wanted]
    earlier = [v for s, v in points if s < before]
    return earlier[-windows:] if windows > 0 else []


def change_start(values: Sequence[float], lower_is_better: bool, history: int = 7) -> int | None:
    """Where a series' current change began: the first of the trailing values that are all
    worse than the level before them (the median of the ``history`` values before the
    candidate start) by more than three robust spreads. None when the newest value is not
    such a change. The level before the change is then ``usual(values[start - history :
    start])``: one that the change itself has not moved."""
    n = len(values)
    if n < 4:
        return None
    start = None
    for i in range(n - 1, 0, -1):
        before = level(values[max(0, i - history) : i])
        if before is None or before.n < 3:
            break
        worse = (values[i] - before.centre) if lower_is_better else (before.centre - values[i])
        tolerance = max(3 * before.spread, 0.02 * abs(before.centre), 1e-9)
        if worse > tolerance:
            start = i
        else:
            break
    return start


__all__ = ["MAD_SCALE", "Level", "Method", "change_start", "level", "past", "usual"]
