"""What a run did: its windows, the metrics it wrote, and notes worth reading."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from watchkeeper.alerts.notify import Delivery
from watchkeeper.alerts.service import Evaluated
from watchkeeper.rows import ALL, DRIFTED
from watchkeeper.windows import format_duration


@dataclass
class RunResult:
    run_id: str
    model: str
    window: timedelta
    windows: list[datetime]
    metrics: pa.Table
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # family → why it failed

    def to_pandas(self) -> Any:
        return self.metrics.to_pandas()

    def drifted(self) -> list[dict[str, Any]]:
        rows = self.metrics.filter(
            pc.and_(
                pc.equal(self.metrics["metric"], "drift"),
                pc.equal(self.metrics["status"], DRIFTED),
            )
        )
        columns = ["window_start", "model_version", "segment_column", "segment_value", "column"]
        found: list[dict[str, Any]] = rows.select([*columns, "detail"]).to_pylist()
        return found

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
            f"{self.seconds:.1f}s: {self.metrics.num_rows:,} metrics"
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


__all__ = ["Cycle", "RunResult"]
