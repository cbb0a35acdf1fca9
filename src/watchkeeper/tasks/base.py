"""What a model task is: the one place that binds a task's labelled counts (the engine query),
its metrics (functions of those counts), its estimator (performance without labels), the
loss its weak slices are searched on, and how a segment is compared with the rest.

A task module (``binary``, ``multiclass``, ``regression``, ``ranking``) builds one ``Task``;
``tasks.registry`` maps the config's task names to them. Families and the run ask the task
and never branch on the task's name or on the type of its counts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

import ibis.expr.types as ir

from watchkeeper.config import ModelConfig
from watchkeeper.profiles.base import Engine, Key, Segment, Source, Windowing
from watchkeeper.stats.performance import Estimate

Counts = Any  # the task's labelled counts: BinaryCounts, MulticlassCounts, RegressionSums, ...


@dataclass(frozen=True)
class Gap:
    """A segment against the rest of the traffic on one metric."""

    metric: str
    difference: float | None  # segment minus rest
    p_value: float | None  # two-sided
    higher_is_better: bool

    @property
    def worse(self) -> bool:
        d = self.difference
        return d is not None and (d < 0 if self.higher_is_better else d > 0)


@dataclass(frozen=True)
class Extra:
    """A metric of a window's counts stored per column (a class's recall, a score bin's
    positive rate)."""

    metric: str
    column: str
    estimate: Estimate
    detail: str = ""
    judged: bool = True  # held to the minimum of labelled events like the metrics


@dataclass(frozen=True)
class Confusion:
    """The decisions of a binary classifier's window, for fairness and business metrics."""

    tp: int
    fp: int
    tn: int
    fn: int

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.tn + self.fn


@dataclass(frozen=True)
class EstimationInputs:
    """What an estimator's window aggregate is computed from."""

    model: ModelConfig
    version: str
    source: Source  # the version's events (unlabelled included), with the run's segments
    scoped: ir.Table  # the same events limited to the run's windows
    windowing: Windowing | None  # None: the table is one window (the reference)
    size: timedelta
    segments: Mapping[str, Segment]
    engine: Engine
    histograms: Mapping[Key, Any] | None = None  # score histograms already counted


class Estimator(Protocol):
    """Performance without labels: fitted once per reference version (stored as data), then
    applied to each window's aggregate."""

    kind: str  # its key in the store's estimators table

    def fit(self, model: ModelConfig, reference: ir.Table, version: str, engine: Engine) -> Any:
        """The fitted artefact from the reference's rows (None when it cannot be fitted)."""

    def dumps(self, fitted: Any) -> str: ...

    def loads(self, text: str) -> Any: ...

    def note(self, fitted: Any) -> str:
        """How the estimates are made, in a few words (shown in each row's detail)."""

    def aggregate(self, fitted: Any, inputs: EstimationInputs) -> dict[Key, Any]:
        """Each window × segment's aggregate (a score histogram, summed predicted losses)."""

    def estimate(self, model: ModelConfig, fitted: Any, aggregate: Any) -> Estimated:
        """The estimated metrics of one aggregate."""

    # Whether ``aggregate`` can count the reference as one window (a score histogram can;
    # summed predicted losses need the events' times).
    scales: bool

    def scaled(self, aggregate: Any, events: float) -> Any:
        """The aggregate as a window of ``events`` events drawn alike would show it: the
        reference's, to judge a window's estimate against what its own windows vary by."""


@dataclass(frozen=True)
class Estimated:
    estimates: Mapping[str, Estimate]  # ``metric`` or ``metric:column`` (a class's recall)
    note: str = ""  # a caveat for this window and segment


def _no_gaps(c: Counts, whole: Counts) -> list[Gap]:
    return []


def _no_extras(model: ModelConfig, c: Counts) -> list[Extra]:
    return []


def _no_confusion(c: Counts) -> Confusion | None:
    return None


def _no_loss(model: ModelConfig, labelled: ir.Table) -> tuple[ir.Value, bool] | None:
    return None


@dataclass(frozen=True)
class Task:
    key: str  # the config's task name
    headline: str  # the metric triage and the report lead with
    metrics: Mapping[str, Callable[[Counts], Estimate]]  # realized, from the labelled counts
    # The labelled counts per window × version × segment (None: the model lacks the columns).
    counts: Callable[[ModelConfig, Source, Windowing | None, Engine], dict[Key, Counts] | None]
    extras: Callable[[ModelConfig, Counts], list[Extra]] = _no_extras
    gaps: Callable[[Counts, Counts], list[Gap]] = _no_gaps
    confusion: Callable[[Counts], Confusion | None] = _no_confusion
    # Each labelled event's loss for the weak-slice search, and whether it is a 0/1 rate.
    loss: Callable[[ModelConfig, ir.Table], tuple[ir.Value, bool] | None] = _no_loss
    estimator: Estimator | None = None
    # A labelled event's residual, whose quantiles per window are stored (regression).
    residual: Callable[[ModelConfig, ir.Table], ir.Value | None] | None = None
    # The item column whose distinct values shown per window are the catalogue coverage.
    items: Callable[[ModelConfig], str | None] | None = None
    # Events per score bin, labelled or not (the proxies of performance read them).
    histograms: Callable[[EstimationInputs], dict[Key, Any]] | None = None
    # The realized value of an estimated metric (``metric`` or ``metric:column``).
    realized: Callable[[Counts, str], float | None] = field(default=lambda c, name: None)

    def labelled(self, c: Counts) -> int:
        """Labelled events behind the counts."""
        return int(getattr(c, "n", 0))


__all__ = [
    "Confusion",
    "Counts",
    "Estimated",
    "EstimationInputs",
    "Estimator",
    "Extra",
    "Gap",
    "Task",
]
