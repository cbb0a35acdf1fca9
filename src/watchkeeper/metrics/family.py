"""A metric family: a pure function from a run's aggregates to typed metric rows.

The run gathers every aggregate first (window profiles, the task's labelled counts and
estimates, label delays, slices, outcomes, arrivals, the recent history a ratio needs), then
hands them to each registered family. A family never reads the engine; it declares the keys
it emits (each one is in the catalogue), and a family that raises costs only its own rows.
"""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from watchkeeper.catalogue import CATALOGUE
from watchkeeper.config import ModelConfig
from watchkeeper.profiles.base import Key
from watchkeeper.profiles.multivariate import ErrorSums
from watchkeeper.profiles.queries import Arrivals, OutcomeSum, Quantiles, WindowKey
from watchkeeper.profiles.slices import SliceSums
from watchkeeper.profiles.types import Profile
from watchkeeper.reference.profile import ReferenceProfile
from watchkeeper.rows import MetricRow, Where
from watchkeeper.tasks.base import Estimated, Task

# metric → (segment column, segment value, column) → window start → the stored value
History = Mapping[str, Mapping[tuple[str, str, str], Mapping[datetime, float]]]


@dataclass
class Aggregates:
    """Everything a run computed in the engine, keyed by window × version × segment."""

    profiles: dict[Key, Profile] = field(default_factory=dict)
    labelled: dict[Key, int] = field(default_factory=dict)  # labelled events (label profile)
    counts: dict[Key, Any] = field(default_factory=dict)  # the task's labelled counts
    histograms: dict[Key, np.ndarray[Any, Any]] = field(default_factory=dict)  # score bins
    estimated: dict[Key, Estimated] = field(default_factory=dict)
    # whole-traffic windows: the estimates a window of that size drawn like the reference shows
    at_reference: dict[Key, Estimated] = field(default_factory=dict)
    estimate_notes: dict[str, str] = field(default_factory=dict)  # per version: how
    label_lags: dict[WindowKey, Quantiles] = field(default_factory=dict)
    residuals: dict[WindowKey, Quantiles] = field(default_factory=dict)
    items: dict[WindowKey, int] = field(default_factory=dict)  # distinct items shown
    catalogue_sizes: dict[str, int] = field(default_factory=dict)  # per version
    slices: dict[str, list[SliceSums]] = field(default_factory=dict)  # per version
    slices_are_rates: bool = True  # the slices' loss is a 0/1 error (else an absolute error)
    reference_slices: dict[str, SliceSums] = field(default_factory=dict)  # per version
    # per version: (segment column, value) → the task's counts on the reference
    reference_counts: dict[str, dict[tuple[str, str], Any]] = field(default_factory=dict)
    outcomes: list[OutcomeSum] = field(default_factory=list)
    arrivals: Arrivals = field(default_factory=lambda: Arrivals({}, {}, {}, ()))
    history: History = field(default_factory=dict)  # stored values before the run
    trust: Mapping[str, Any] = field(default_factory=dict)  # backtests by estimated metric
    # per version: the realized metrics measured on its reference (what estimates are held to)
    reference_values: dict[str, dict[str, float]] = field(default_factory=dict)
    # whole-traffic windows: the sums of the rows' reconstruction errors
    reconstruction: dict[Key, ErrorSums] = field(default_factory=dict)

    @property
    def starts(self) -> list[datetime]:
        """The windows computed (those with events)."""
        return sorted({k[0] for k in self.profiles})


@dataclass(frozen=True)
class Context:
    """What every family may read besides the aggregates."""

    model: ModelConfig
    task: Task
    size: timedelta
    now: datetime
    references: Mapping[str, ReferenceProfile]  # per model version

    def where(self, key: Key) -> Where:
        start, version, seg_col, seg_val = key
        return Where(start, start + self.size, version, seg_col, seg_val)

    def final(self, start: datetime, coverage: float) -> bool:
        """Whether a window's labels are as complete as they will be: the expected share
        has arrived, or the labels' maximum delay has passed."""
        labels = self.model.labels
        return coverage >= labels.expected_coverage or (
            self.now - (start + self.size) >= labels.max_delay
        )

    def maturity(self, start: datetime, coverage: float) -> str:
        labels = self.model.labels
        return (
            f"labels for {coverage:.0%} of events ({labels.expected_coverage:.0%} expected); "
            f"final by {start + self.size + labels.max_delay:%Y-%m-%d %H:%M}"
        )


Compute = Callable[[Context, Aggregates], list[MetricRow]]


@dataclass(frozen=True)
class Family:
    key: str
    description: str
    emits: tuple[str, ...]  # the metric keys (patterns with * allowed) its rows carry
    compute: Compute
    history: tuple[str, ...] = ()  # stored metrics whose recent values it needs
    # The aggregates it reads, so a run that computes only some families (a short window's
    # service metrics) gathers only those: columns (every column's profile), latency,
    # segments, labels (the join of events and labels), scores (score histograms),
    # estimates, slices, outcomes, arrivals, multivariate (the reconstruction errors).
    needs: tuple[str, ...] = ()

    def check(self, rows: Sequence[MetricRow]) -> None:
        """Every row's metric is one this family declares (a programming error if not)."""
        for r in rows:
            if not any(fnmatch.fnmatchcase(r.metric, p) for p in self.emits):
                raise ValueError(
                    f"family {self.key!r} emitted {r.metric!r}, which it does not declare"
                )


@functools.cache
def _declared(emits: tuple[str, ...]) -> frozenset[str]:
    return frozenset(k for k in CATALOGUE if any(fnmatch.fnmatchcase(k, p) for p in emits))


def declared(family: Family) -> list[str]:
    """The catalogue keys a family's patterns cover (for the conformance suite)."""
    return sorted(_declared(family.emits))


__all__ = ["Aggregates", "Compute", "Context", "Family", "History", "declared"]
