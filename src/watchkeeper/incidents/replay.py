"""Honest replay: a history is lived through hour by hour, as a deployment would live it.

Each step ingests the events of the hour that just ended and the labels and outcomes whose
arrival time has passed, then runs the scheduler's cycle (run, evaluate, deliver) with the
clock at that moment. Every alert is recorded with the time it was raised; when an alert
about the incident is first raised, triage is run then, on what was known then. Nothing
is read from the future, and the config is the one ``watchkeeper init --from`` writes for
the history's schema.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from watchkeeper.errors import TriageError
from watchkeeper.incidents.classes import History, Truth
from watchkeeper.ingest.infer import infer_config
from watchkeeper.workspace import Workspace

STEP = timedelta(hours=1)


@dataclass(frozen=True)
class Raised:
    """An alert as the on-call engineer saw it arrive."""

    at: datetime  # when the cycle that raised it ran
    kind: str  # firing or escalated
    alert_id: str
    rule: str
    severity: str
    labels: dict[str, str]
    window_start: datetime
    summary: str


@dataclass
class Replayed:
    """What the monitor did over one history, and how that grades against its truth."""

    history: str
    truth: Truth
    raised: list[Raised] = field(default_factory=list)
    triage: dict[str, Any] | None = None  # of the first alert about the incident
    seconds: float = 0.0

    def count(self, severity: str, *, before: bool = False) -> int:
        """Distinct alerts of a severity raised (before the incident's start, with
        ``before``: false alarms in an incident's history)."""
        start = self.truth.start
        found = {
            r.alert_id for r in self.raised
            if r.severity == severity and (start is not None and r.at < start) == before
        }  # fmt: skip
        return len(found)

    @property
    def first_page(self) -> Raised | None:
        return self.first("page")

    def first(self, severity: str | None) -> Raised | None:
        """The first alert at least that severe raised since the incident began."""
        wanted = {"page"} if severity == "page" else {"page", "ticket"}
        start = self.truth.start
        for r in self.raised:
            if r.severity in wanted and (start is None or r.at >= start):
                return r
        return None

    @property
    def hours_to_page(self) -> float | None:
        first, start = self.first_page, self.truth.start
        if first is None or start is None:
            return None
        return (first.at - start).total_seconds() / 3600

    def names(self, what: str) -> bool:
        """Whether the alerts after the start (or their triage) name the incident's
        segment, version or features."""
        t = self.truth
        after = [r for r in self.raised if t.start is None or r.at >= t.start]
        text = " ".join(r.summary + " " + " ".join(r.labels.values()) for r in after)
        if self.triage:
            text += " " + str(self.triage.get("segment")) + " " + str(self.triage.get("feature"))
            text += " " + " ".join(self.triage.get("evidence", []))
        if what == "segment" and t.segment:
            return all(part.split("=")[1] in text for part in t.segment.split(", "))
        if what == "version" and t.version:
            return any(r.labels.get("version") == t.version for r in after) or (
                f"version {t.version}" in text
            )
        if what == "feature" and t.features:
            return any(f in text for f in t.features)
        return False

    @property
    def caught(self) -> bool | None:
        """Whether the monitor did what the truth asks (None: nothing was asked)."""
        t = self.truth
        if t.severity is None:
            return self.count("page") == 0
        first = self.first(t.severity)
        if first is None or (t.deadline is not None and first.at > t.deadline):
            return False
        if t.severity == "ticket" and t.segment:
            return self.names("segment")
        return True

    @property
    def top_layer(self) -> str | None:
        return self.triage.get("cause") if self.triage else None

    def to_dict(self) -> dict[str, Any]:
        t = self.truth
        first = self.first(t.severity) if t.severity else None
        return {
            "history": self.history,
            "class": t.kind,
            "want": t.severity or "quiet",
            "pages": self.count("page"),
            "tickets": self.count("ticket"),
            "false_pages": self.count("page", before=True) if t.start else self.count("page"),
            "false_tickets": self.count("ticket", before=True) if t.start else self.count("ticket"),
            "hours_to_page": self.hours_to_page,
            "hours_to_first": (first.at - t.start).total_seconds() / 3600
            if first and t.start
            else None,
            "first_rule": first.rule if first else None,
            "caught": self.caught,
            "want_layer": t.layer,
            "top_layer": self.top_layer,
            "names_segment": self.names("segment") if t.segment else None,
            "names_version": self.names("version") if t.version else None,
            "names_feature": self.names("feature") if t.features else None,
            "seconds": round(self.seconds, 1),
        }


class _Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def config_for(history: History) -> str:
    """The config ``watchkeeper init --from`` writes for a sample of the history's events
    joined with their labels (as a new user would hand it a day of logs), with the
    outcomes the history records."""
    labels = history.labels.drop_duplicates("event_id")
    sample = history.events.head(3_000).merge(labels, on="event_id", how="left")
    outcomes = sorted(history.outcomes["outcome"].unique())
    return infer_config(sample, model=history.model, label=history.label, outcomes=outcomes)


def replay(
    history: History,
    *,
    directory: Path | None = None,
    config: str | None = None,
    step: timedelta = STEP,
    progress: Callable[[datetime], None] | None = None,
) -> Replayed:
    """Live through ``history`` step by step and record what the monitor raised."""
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="wk-replay-") as tmp:
        where = directory or Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        path = where / "watchkeeper.yaml"
        path.write_text(config or config_for(history), encoding="utf-8")
        clock = _Clock(history.start)
        found = Replayed(history.name, history.truth)
        logging.getLogger("watchkeeper.alerts").setLevel(logging.ERROR)
        ws = Workspace.open(path, clock=clock)
        try:
            ws.set_reference(history.model, history.reference)
            _live(ws, history, clock, step, found, progress)
        finally:
            ws.close()
    found.seconds = time.perf_counter() - began
    return found


def _live(
    ws: Workspace,
    history: History,
    clock: _Clock,
    step: timedelta,
    found: Replayed,
    progress: Callable[[datetime], None] | None,
) -> None:
    events, labels, outcomes = history.events, history.labels, history.outcomes
    ev_ts = events["timestamp"]
    lab_ts = labels["label_timestamp"]
    out_ts = outcomes["timestamp"]
    end = history.start + timedelta(days=history.days)
    then = pd.Timestamp(history.start)
    model = history.model
    truth = history.truth
    while then < pd.Timestamp(end):
        now = then + pd.Timedelta(step)
        clock.now = now.to_pydatetime()
        batch = events[(ev_ts >= then) & (ev_ts < now)]
        if len(batch):
            ws.ingest_events(model, batch)
        arrived = labels[(lab_ts >= then) & (lab_ts < now)]
        if len(arrived):
            ws.ingest_labels(model, arrived)
        known = outcomes[(out_ts >= then) & (out_ts < now)]
        if len(known):
            ws.ingest_outcomes(model, known)
        done = ws.cycle([model], strict=True)
        for e in done.evaluated.events if done.evaluated else []:
            if e.kind not in ("firing", "escalated"):
                continue
            raised = Raised(
                clock.now, e.kind, e.alert_id, e.rule, e.severity, dict(e.labels),
                e.window_start, e.summary,
            )  # fmt: skip
            found.raised.append(raised)
            about = truth.start is not None and raised.at >= truth.start
            wanted = "page" if truth.severity == "page" else None
            if about and found.triage is None and (wanted is None or e.severity == "page"):
                found.triage = _triage(ws, model, e.alert_id)
        if progress is not None:
            progress(clock.now)
        then = now


def _triage(ws: Workspace, model: str, alert_id: str) -> dict[str, Any]:
    try:
        t = ws.triage(model, alert=alert_id)
    except TriageError as exc:
        return {"cause": None, "title": f"no triage: {exc}", "evidence": []}
    top = t.top
    return {
        "cause": top.cause,
        "title": top.title,
        "level": top.level,
        "evidence": list(top.evidence),
        "segment": "=".join(t.segment) if t.segment else None,
        "feature": t.feature,
        "metric": t.metric,
        "alert": alert_id,
    }


__all__ = ["STEP", "Raised", "Replayed", "config_for", "replay"]
