"""What a run did: its windows, the metrics it wrote, and notes worth reading."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from watchkeeper.alerts.notify import Delivery
from watchkeeper.alerts.service import Evaluated
from watchkeeper.rows import ALL, DRIFTED
from watchkeeper.windows import format_duration

# Reads a run's stored rows back (all, or only those of the named metrics).
Stored = Callable[[Sequence[str] | None], pa.Table]


@dataclass
class RunResult:
    """A run's windows and rows. A run over many windows writes them a batch at a time and
    keeps none in memory: ``stored`` reads them back from the store when they are asked for,
    and ``count`` says how many there are."""

    run_id: str
    model: str
    window: timedelta
    windows: list[datetime]
    rows: pa.Table
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # family → why it failed
    stored: Stored | None = None
    count: int | None = None

    @property
    def metrics(self) -> pa.Table:
        """The run's metric rows."""
        return self.rows if self.stored is None else self.stored(None)

    @property
    def metric_count(self) -> int:
        return self.rows.num_rows if self.count is None else self.count

    def to_pandas(self) -> Any:
        return self.metrics.to_pandas()

    def drifted(self) -> list[dict[str, Any]]:
        table = self.rows if self.stored is None else self.stored(["drift"])
        rows = table.filter(
            pc.and_(
                pc.equal(table["metric"], "drift"),
                pc.equal(table["status"], DRIFTED),
            )
        )
        columns = ["window_start", "model_version", "segment_column", "segment_value", "column"]
        found: list[dict[str, Any]] = rows.select([*columns, "detail"]).to_pylist()
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "model": self.model,
            "window": format_duration(self.window),
            "windows": [w.isoformat() for w in sorted(self.windows)],
            "metrics": self.metric_count,
            "seconds": round(self.seconds, 3),
            "drifted": [
                {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in r.items()}
                for r in self.drifted()
            ],
            "notes": list(self.notes),
            "errors": dict(self.errors),
        }

    def summary(self) -> str:
        if not self.windows:
            return f"{self.model}: nothing to compute (no new or late data in closed windows)"
        first, last = min(self.windows), max(self.windows)
        span = (
            f"{first:%Y-%m-%d %H:%M}"
            if first == last
            else f"{first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M}"
        )
        drifted = self.drifted()
        by_column: dict[str, int] = defaultdict(int)
        for row in drifted:
            if row["segment_column"] == ALL:
                by_column[row["column"]] += 1
        size = format_duration(self.window)
        head = (
            f"{self.model}: {len(self.windows)} window(s) of {size} ({span}) in "
            f"{self.seconds:.1f}s: {self.metric_count:,} metrics"
        )
        if by_column:
            listed = ", ".join(
                f"{c} ({n} window{'s' if n > 1 else ''})" for c, n in sorted(by_column.items())
            )
            head += f"; drift in {listed}"
        else:
            head += "; no drift over the whole traffic"
        segs = len(
            {
                (r["segment_column"], r["segment_value"])
                for r in drifted
                if r["segment_column"] != ALL
            }
        )
        if segs:
            head += f"; drift in {segs} segment(s)"
        return "\n".join([head, *self.notes])


@dataclass
class Cycle:
    """What one monitoring cycle did: each model's run (or why it failed), the alert
    evaluation and the delivery of notifications."""

    runs: dict[str, RunResult] = field(default_factory=dict)  # each model's main run
    lean: dict[str, list[RunResult]] = field(default_factory=dict)  # its short windows' runs
    failed: dict[str, str] = field(default_factory=dict)  # model → the error
    evaluated: Evaluated | None = None
    delivery: Delivery | None = None

    def to_dict(self) -> dict[str, Any]:
        """The cycle as JSON-ready values (`--format json` on `run` and `alerts evaluate`)."""
        found = self.evaluated
        sent = self.delivery
        return {
            "runs": {m: r.to_dict() for m, r in self.runs.items()},
            "short_window_runs": {m: [r.to_dict() for r in rs] for m, rs in self.lean.items()},
            "failed": dict(self.failed),
            "alerts": [
                {
                    "kind": e.kind,
                    "alert_id": e.alert_id,
                    "rule": e.rule,
                    "severity": e.severity,
                    "labels": dict(e.labels),
                    "window_start": e.window_start.isoformat(),
                    "summary": e.summary,
                    "muted": (found.muted.get(e.alert_id) if found else None) or None,
                }
                for e in (found.events if found else [])
            ],
            "unjudged": dict(found.unjudged) if found else {},
            "notifications_queued": found.notifications if found else 0,
            "delivery": (
                {"delivered": sent.delivered, "failed": sent.failed, "gave_up": sent.gave_up}
                if sent
                else None
            ),
        }


__all__ = ["Cycle", "RunResult"]
