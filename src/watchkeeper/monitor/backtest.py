"""How far to trust performance estimated without labels: the backtest summary.

Every run that has both an estimate and labels for a window stores an
``estimation_error`` row (estimated minus realized, and whether the band covered the
realized value). Over a model's last N windows those rows say how often the band held and
how far off the estimate was; that is the caveat shown wherever an estimate is.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from watchkeeper.rows import ALL
from watchkeeper.store import Store
from watchkeeper.store.metrics import MetricsTable

MIN_WINDOWS = 5  # fewer backtested windows say nothing yet
HOLDS = 0.8  # bands are 95%: at least this share covered means the estimate holds
FAILS = 0.5  # below this share, the estimate is failing (concept shift is the usual cause)


@dataclass(frozen=True)
class Backtest:
    """One estimated metric's record against the labels, over the last windows."""

    metric: str  # as estimated: accuracy, f1, recall:<class>, mae, ...
    windows: int
    covered: int
    mean_error: float | None  # estimated - realized, on average (the bias)
    mean_absolute_error: float | None

    @property
    def coverage(self) -> float | None:
        return self.covered / self.windows if self.windows else None

    @property
    def trust(self) -> str:
        """``unknown`` (too few windows), ``holds``, ``rough`` or ``failing``."""
        coverage = self.coverage
        if coverage is None or self.windows < MIN_WINDOWS:
            return "unknown"
        if coverage >= HOLDS:
            return "holds"
        return "rough" if coverage >= FAILS else "failing"

    @property
    def caveat(self) -> str:
        """The sentence shown beside the estimate."""
        name = self.metric.replace(":", " of ")
        if self.windows == 0:
            return f"estimated {name} not yet checked against labels"
        record = (
            f"its band held in {self.covered} of the last {self.windows} windows with labels"
            f" (mean error {self.mean_error:+.3g})"
        )
        if self.trust == "unknown":
            return f"estimated {name}: {record}; too few to judge yet"
        if self.trust == "holds":
            return f"estimated {name}: {record}; the estimate has held"
        if self.trust == "rough":
            return f"estimated {name}: {record}; read it as a rough guide"
        return (
            f"estimated {name}: {record}; the estimate is failing: the relation between inputs "
            "and labels has likely changed (concept shift), so trust labels over it"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "windows": self.windows,
            "covered": self.covered,
            "coverage": self.coverage,
            "mean_error": self.mean_error,
            "mean_absolute_error": self.mean_absolute_error,
            "trust": self.trust,
            "caveat": self.caveat,
        }


def summarize(rows: Iterable[Mapping[str, Any]], last: int = 30) -> dict[str, Backtest]:
    """Per estimated metric, the record of its last ``last`` backtested windows, from
    ``estimation_error`` rows of the whole traffic (``column`` names the metric; ``status``
    is ``ok`` when the band covered the realized value)."""
    by_metric: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for r in rows:
        if r["value"] is not None:
            by_metric[r["column"]].append(r)
    out = {}
    for name, found in sorted(by_metric.items()):
        recent = sorted(found, key=lambda r: (r["window_start"], r["model_version"]))[-last:]
        errors = [float(r["value"]) for r in recent]
        out[name] = Backtest(
            name,
            len(recent),
            sum(r["status"] == "ok" for r in recent),
            sum(errors) / len(errors) if errors else None,
            sum(abs(e) for e in errors) / len(errors) if errors else None,
        )
    return out


def load(store: Store, model: str, size: timedelta | None, last: int = 30) -> dict[str, Backtest]:
    """The backtest summary of ``model``'s stored windows of ``size`` (of any size when
    None)."""
    found = MetricsTable(store).select(model, metrics=["estimation_error"], segment=ALL, size=size)
    return summarize([r.to_dict() for r in found], last)
