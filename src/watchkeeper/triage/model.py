"""What a triage is made of: its steps, its ranked hypotheses, and the result."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from watchkeeper.config import ModelConfig
from watchkeeper.tasks.registry import task_of

CAUSES = ("data", "model", "infrastructure", "business", "not_real")
TITLES = {
    "data": "the data changed",
    "model": "the model is at fault",
    "infrastructure": "the serving infrastructure",
    "business": "user behaviour changed",
    "not_real": "not a real drop",
}


def default_metric(model: ModelConfig) -> str:
    """The metric triage and the report lead with: the task's headline."""
    return task_of(model).headline


@dataclass
class Step:
    number: int
    title: str
    question: str
    findings: list[str] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "title": self.title,
            "question": self.question,
            "findings": list(self.findings),
            "evidence": list(self.evidence),
        }


@dataclass
class Hypothesis:
    cause: str
    title: str
    score: float
    confidence: float  # share of the evidence points
    evidence: list[str]
    action: str

    @property
    def level(self) -> str:
        return "high" if self.confidence >= 0.6 else "medium" if self.confidence >= 0.35 else "low"

    def to_dict(self) -> dict[str, Any]:
        return {
            "cause": self.cause,
            "title": self.title,
            "confidence": round(self.confidence, 3),
            "level": self.level,
            "evidence": list(self.evidence),
            "action": self.action,
        }


@dataclass
class Triage:
    model: str
    metric: str
    window_start: datetime
    window_end: datetime
    value: float | None
    usual: float | None
    steps: list[Step]
    hypotheses: list[Hypothesis]
    alert_id: str | None = None
    segment: tuple[str, str] | None = None  # where the change concentrates, if anywhere
    feature: str | None = None  # the input that moved most, if any did
    # A handful of predictions from the window (and segment) to look at, with their ids:
    # the most confidently wrong once labels exist, else those whose inputs moved most.
    examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def top(self) -> Hypothesis:
        return self.hypotheses[0]

    @property
    def headline(self) -> str:
        change = ""
        if self.value is not None and self.usual is not None:
            change = f" ({self.usual:.3g} usually, {self.value:.3g} now)"
        top = self.top
        return (
            f"{self.model}: {self.metric.replace('_', ' ')} in the window of "
            f"{self.window_start:%Y-%m-%d %H:%M}{change}. Most likely: {top.title} "
            f"({top.level} confidence). Next: {top.action}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "metric": self.metric,
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "value": self.value,
            "usual": self.usual,
            "alert_id": self.alert_id,
            "headline": self.headline,
            "steps": [s.to_dict() for s in self.steps],
            "hypotheses": [h.to_dict() for h in self.hypotheses],
            "segment": None if self.segment is None else "=".join(self.segment),
            "feature": self.feature,
            "examples": list(self.examples),
        }

    def to_text(self) -> str:
        lines = [self.headline, ""]
        for s in self.steps:
            lines.append(f"{s.number}. {s.title}: {s.question}")
            lines += [f"   - {f}" for f in s.findings] or ["   - nothing unusual"]
        lines += ["", "Hypotheses, most likely first:"]
        for i, h in enumerate(self.hypotheses, 1):
            lines.append(f"{i}. {h.title} ({h.level}, {h.confidence:.0%}): {h.action}")
            lines += [f"     because {e}" for e in h.evidence[:4]]
        if self.examples:
            lines += ["", "Examples to look at:"]
            lines += [f"   {describe_example(e)}" for e in self.examples]
        return "\n".join(lines)


def describe_example(e: dict[str, Any]) -> str:
    """One example prediction in a line: its id, then what makes it worth a look."""
    shown = ", ".join(f"{k} {v}" for k, v in e.items() if k not in ("event_id", "why"))
    return f"{e.get('event_id')}: {e.get('why', '')} ({shown})"


# -- reading the metrics ----------------------------------------------------------------------


__all__ = [
    "CAUSES",
    "TITLES",
    "Hypothesis",
    "Step",
    "Triage",
    "default_metric",
    "describe_example",
]
