"""What one ingestion call did with its rows."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from watchkeeper.schema import Kind


@dataclass
class IngestResult:
    """What became of one ingestion call."""

    model: str
    kind: Kind
    batch: str
    source: str
    rows: int = 0
    accepted: int = 0
    duplicates: int = 0
    corrected: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    missing_columns: list[str] = field(default_factory=list)
    unexpected_columns: list[str] = field(default_factory=list)
    absent_required: list[str] = field(default_factory=list)  # every row quarantined for them
    examples: dict[str, str] = field(default_factory=dict)  # reason -> its first row's detail

    @property
    def quarantined_total(self) -> int:
        return sum(self.quarantined.values())

    def summary(self) -> str:
        parts = [f"{self.accepted:,} accepted"]
        if self.kind in ("labels", "outcomes"):
            parts.append(f"{self.corrected:,} corrected")
        parts.append(f"{self.duplicates:,} duplicates")
        quarantined = f"{self.quarantined_total:,} quarantined"
        if self.quarantined:
            reasons = ", ".join(f"{r}: {n:,}" for r, n in sorted(self.quarantined.items()))
            quarantined += f" ({reasons})"
        parts.append(quarantined)
        line = f"{self.kind} for {self.model}: {self.rows:,} rows read; " + ", ".join(parts)
        notes = []
        if self.absent_required:
            notes.append(
                "required columns missing, so every row was quarantined: "
                + ", ".join(self.absent_required)
            )
        for reason, detail in sorted(self.examples.items()):
            notes.append(f"  {reason}, for example: {detail}")
        if self.missing_columns:
            notes.append(f"columns missing, stored as null: {', '.join(self.missing_columns)}")
        if self.unexpected_columns:
            notes.append(
                f"columns not in the schema, ignored: {', '.join(self.unexpected_columns)}"
            )
        return "\n".join([line, *notes])

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "kind": self.kind,
            "batch": self.batch,
            "source": self.source,
            "rows": self.rows,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "corrected": self.corrected,
            "quarantined": dict(self.quarantined),
            "missing_columns": list(self.missing_columns),
            "unexpected_columns": list(self.unexpected_columns),
            "absent_required": list(self.absent_required),
            "examples": dict(self.examples),
        }


def new_batch_id(now: datetime) -> str:
    """Sortable by time, unique across processes."""
    micros = int(now.timestamp() * 1e6)
    return f"{micros:017d}-{time.perf_counter_ns() % 10**6:06d}-{uuid.uuid4().hex[:8]}"


__all__ = ["IngestResult", "new_batch_id"]
