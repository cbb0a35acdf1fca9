"""Alert evaluation: a pure function of (rule, metric series, previous state, now).

A rule's conditions select metric series (by metric, column and segment patterns) and say
when a value is unusual: beyond a fixed threshold, changed from the reference, or outside a
rolling baseline. An alert instance is one series (for a rule of one condition) or one
model (for a combined rule: all, any, or k of its conditions). Each instance steps through
its closed windows in order and moves inactive → pending → firing → resolved, as
Prometheus does with its ``for`` and ``keep_firing_for``; a combined rule escalates when
more of its conditions hold. The state carries everything needed to go on, so evaluating
window by window (live) and over a whole history at once (replay) give the same alerts.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from watchkeeper.alerts.conditions import (
    Evidence,
    Series,
    SeriesKey,
    check,
    index_of,
    matches,
    strength,
)
from watchkeeper.config import SEVERITIES, ConditionConfig, RuleConfig


@dataclass(frozen=True)
class AlertState:
    """Where one alert instance stands after the windows evaluated so far."""

    fingerprint: str
    rule: str
    labels: Mapping[str, str]
    state: str = "inactive"  # inactive, pending, firing
    held: int = 0  # consecutive windows the conditions held
    quiet: int = 0  # consecutive windows they did not, while firing
    severity: str = ""
    since: datetime | None = None  # the first window of the current pending/firing stretch
    last_window: datetime | None = None  # the newest window evaluated
    alert_id: str | None = None  # the firing episode
    fired: datetime | None = None  # the window the firing episode fired at
    # The state as of the newest window before which every window was final (no point
    # still waiting for labels): evaluation goes on from there, so a window is judged
    # again as its labels mature, and live evaluation converges to a replay.
    settled: AlertState | None = None

    def _fields(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "held": self.held,
            "quiet": self.quiet,
            "severity": self.severity,
            "since": self.since.isoformat() if self.since else None,
            "last_window": self.last_window.isoformat() if self.last_window else None,
            "alert_id": self.alert_id,
            "fired": self.fired.isoformat() if self.fired else None,
        }

    def to_json(self) -> str:
        data = self._fields()
        if self.settled is not None:
            data["settled"] = self.settled._fields()
        return json.dumps(data)

    @classmethod
    def from_json(
        cls, fingerprint: str, rule: str, labels: Mapping[str, str], text: str
    ) -> AlertState:
        d = json.loads(text)
        settled = d.get("settled")
        return cls._of(
            fingerprint,
            rule,
            labels,
            d,
            cls._of(fingerprint, rule, labels, settled) if settled else None,
        )

    @classmethod
    def _of(
        cls,
        fingerprint: str,
        rule: str,
        labels: Mapping[str, str],
        d: Mapping[str, Any],
        settled: AlertState | None = None,
    ) -> AlertState:
        def when(key: str) -> datetime | None:
            return datetime.fromisoformat(d[key]) if d.get(key) else None

        return cls(
            fingerprint,
            rule,
            labels,
            d["state"],
            d["held"],
            d["quiet"],
            d["severity"],
            when("since"),
            when("last_window"),
            d["alert_id"],
            when("fired"),
            settled,
        )


@dataclass(frozen=True)
class AlertEvent:
    """A change worth telling someone: an alert fired, escalated or resolved."""

    kind: str  # firing, escalated, resolved
    alert_id: str
    fingerprint: str
    rule: str
    labels: Mapping[str, str]
    severity: str
    window_start: datetime
    window_end: datetime
    at: datetime
    summary: str
    evidence: tuple[Evidence, ...] = field(default=())


def fingerprint(labels: Mapping[str, str]) -> str:
    """A stable key of an alert's labels (the same labels, the same alert)."""
    text = json.dumps(dict(sorted(labels.items())), separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def windows_of(size: timedelta, which: int | timedelta) -> int:
    """A count of windows, from a count or a duration (rounded up)."""
    if isinstance(which, timedelta):
        return max(math.ceil(which / size), 0)
    return which


def instances(
    rule: RuleConfig, series: Series
) -> dict[str, tuple[dict[str, str], list[SeriesKey]]]:
    """The alert instances of a rule over ``series``: fingerprint → (labels, its series).
    A rule of one condition alerts per series; a combined rule per model."""
    out: dict[str, tuple[dict[str, str], list[SeriesKey]]] = {}
    for key in series:
        if not fnmatch.fnmatchcase(key.model, rule.models):
            continue
        if not any(matches(c, key) for c in rule.conditions):
            continue
        labels = {"alertname": rule.name, "model": key.model, "owner": rule.owner}
        values = {
            "metric": key.metric,
            "column": key.column,
            "segment": key.segment,
            "version": key.version,
        }
        if rule.group_by is not None:
            labels |= {k: values[k] for k in rule.group_by}
        elif len(rule.conditions) == 1:
            labels |= {"metric": key.metric, "column": key.column, "segment": key.segment}
            if key.version != "*":
                labels["version"] = key.version
        fp = fingerprint(labels)
        out.setdefault(fp, (labels, []))[1].append(key)
    return out


def evaluate(
    rule: RuleConfig,
    series: Series,
    states: Mapping[str, AlertState],
    now: datetime,
    size: timedelta,
    reference: Mapping[tuple[str, str, str], float] | None = None,
) -> tuple[dict[str, AlertState], list[AlertEvent]]:
    """Step every instance of ``rule`` through its windows that closed by ``now`` and were
    not evaluated yet. ``reference`` maps (model, metric, column) to the metric's value on
    the reference data. Returns the new states (of every instance seen) and the events."""
    reference = reference or {}
    out: dict[str, AlertState] = {}
    events: list[AlertEvent] = []
    need = rule.required
    # Series measured per version where several versions serve: their texts name it.
    same: dict[tuple[str, ...], int] = {}
    for k in series:
        base = (k.model, k.metric, k.column, k.segment_column, k.segment_value)
        same[base] = same.get(base, 0) + 1
    versioned = {
        k
        for k in series
        if same[(k.model, k.metric, k.column, k.segment_column, k.segment_value)] > 1
    }
    hold_for = max(windows_of(size, rule.for_), 1)
    keep_for = windows_of(size, rule.keep_firing_for)
    for fp, (labels, keys) in instances(rule, series).items():
        fresh = AlertState(fp, rule.name, labels, severity=rule.severity)
        before = states.get(fp) or fresh
        # Re-judge from the last settled window (the windows after it may have changed as
        # their labels came in); a state saved before settling existed goes on from itself.
        state = before.settled if before.settled is not None else before
        if before.settled is None and before.last_window is None:
            state = fresh
        seen_until = before.last_window
        starts: dict[datetime, datetime] = {}
        for key in keys:
            for p in series[key]:
                if p.window_end <= now and (
                    state.last_window is None or p.window_start > state.last_window
                ):
                    starts[p.window_start] = p.window_end
        settled = replace(state, settled=None)  # nothing judged again before it
        settling = True
        corrected = seen_until is None
        shown: list[Evidence] = []  # what held at the newest window judged
        for start in sorted(starts):
            end = starts[start]
            if not corrected and start > seen_until:  # type: ignore[operator]
                events += _corrections(rule, before, state, labels, now, size, shown)
                corrected = True
            held, seen, final = _judge(rule, keys, series, start, reference, state, versioned)
            if seen == 0:
                continue  # no data for this window: nothing changes
            if len(held) >= need:
                shown = held  # the evidence of the newest window where the rule held
            state, event = step(rule, state, len(held), need, hold_for, keep_for, start)
            state = replace(state, last_window=start)
            if event == "firing":
                state = replace(state, fired=start)
            if event is not None and (seen_until is None or start > seen_until):
                events.append(
                    AlertEvent(
                        event,
                        state.alert_id or "",
                        fp,
                        rule.name,
                        labels,
                        state.severity,
                        start,
                        end,
                        now,
                        summarize(rule, labels, held, event),
                        tuple(held),
                    )
                )
            if state.state == "inactive" and event == "resolved":
                state = replace(state, alert_id=None, severity=rule.severity, fired=None)
            settling = settling and final
            if settling:
                settled = replace(state, settled=None)
        if not corrected:
            events += _corrections(rule, before, state, labels, now, size, shown)
        out[fp] = replace(state, settled=settled)
    return out, events


def _judge(
    rule: RuleConfig,
    keys: Sequence[SeriesKey],
    series: Series,
    start: datetime,
    reference: Mapping[tuple[str, str, str], float],
    state: AlertState,
    versioned: set[SeriesKey],
) -> tuple[list[Evidence], int, bool]:
    """The evidence that held at one window, how many conditions had data there, and
    whether every point of the window is final (no labels still to come)."""
    held: list[Evidence] = []
    seen = 0
    final = True
    for c in rule.conditions:
        found = []
        for key in keys:
            if not matches(c, key):
                continue
            i = index_of(series[key], start)
            if i is not None and series[key][i].provisional:
                final = False
            e = check(
                c, key, series[key], start, reference, state.state == "firing", key in versioned
            )
            if e is not None:
                found.append(e)
        if not found:
            continue
        seen += 1
        holding = [e for e in found if e.holds]
        if c.absent:
            if not holding:
                held.append(_absence(c, found[0]))
        elif holding:
            held.append(max(holding, key=strength))
    return held, seen, final


def _absence(c: ConditionConfig, example: Evidence) -> Evidence:
    text = f"no {c.metric.replace('_', ' ')} is unusual"
    return replace(example, holds=True, text=text)


def _corrections(
    rule: RuleConfig,
    before: AlertState,
    now_state: AlertState,
    labels: Mapping[str, str],
    now: datetime,
    size: timedelta,
    held: Sequence[Evidence] = (),
) -> list[AlertEvent]:
    """What changed about windows already judged, now that their labels matured: an alert
    that no longer holds is resolved, one that now holds fires, a stronger one escalates
    (saying what holds now: ``held``, the evidence of the newest window judged)."""
    out: list[AlertEvent] = []
    at = before.last_window
    if at is None:
        return out

    def event(kind: str, alert_id: str, severity: str, window: datetime) -> AlertEvent:
        if kind != "resolved" and held:
            summary = summarize(rule, labels, list(held), kind)
            return AlertEvent(
                kind, alert_id, before.fingerprint, rule.name, labels, severity, window,
                window + size, now, f"{summary} (now that the windows' labels matured)",
                tuple(held),
            )  # fmt: skip
        what = (
            "resolved: its windows' matured labels no longer show it"
            if kind == "resolved"
            else ("now that the windows' labels matured")
        )
        return AlertEvent(
            kind,
            alert_id,
            before.fingerprint,
            rule.name,
            labels,
            severity,
            window,
            window + size,
            now,
            f"{labels['model']}: {rule.name.replace('_', ' ')} {what}",
        )

    was = before.alert_id if before.state == "firing" else None
    is_ = now_state.alert_id if now_state.state == "firing" else None
    if was and was != is_:
        out.append(event("resolved", was, before.severity, at))
    if is_ and is_ != was:
        out.append(event("firing", is_, now_state.severity, now_state.fired or at))
    elif is_ and SEVERITIES.index(now_state.severity) > SEVERITIES.index(
        before.severity or rule.severity
    ):
        out.append(event("escalated", is_, now_state.severity, at))
    return out


def step(
    rule: RuleConfig,
    state: AlertState,
    holding: int,
    need: int,
    hold_for: int,
    keep_for: int,
    window: datetime,
) -> tuple[AlertState, str | None]:
    """One window of the state machine."""
    active = holding >= need
    severity = state.severity or rule.severity
    if active:
        held = state.held + 1
        since = state.since if state.state != "inactive" else window
        if state.state == "firing":
            wanted = _severity_for(rule, holding)
            if SEVERITIES.index(wanted) > SEVERITIES.index(severity):
                return replace(state, held=held, quiet=0, severity=wanted), "escalated"
            return replace(state, held=held, quiet=0), None
        if held >= hold_for:
            alert_id = f"{state.fingerprint}-{window:%Y%m%dT%H%M}"
            return (
                replace(
                    state,
                    state="firing",
                    held=held,
                    quiet=0,
                    since=since,
                    alert_id=alert_id,
                    severity=_severity_for(rule, holding),
                ),
                "firing",
            )
        return replace(state, state="pending", held=held, quiet=0, since=since), None
    if state.state == "firing":
        quiet = state.quiet + 1
        if quiet > keep_for:
            return replace(state, state="inactive", held=0, quiet=0, since=None), "resolved"
        return replace(state, held=0, quiet=quiet), None
    return replace(state, state="inactive", held=0, quiet=0, since=None), None


def _severity_for(rule: RuleConfig, holding: int) -> str:
    if rule.escalate is not None and holding >= rule.escalate.require:
        return rule.escalate.severity
    return rule.severity


def summarize(
    rule: RuleConfig, labels: Mapping[str, str], held: Sequence[Evidence], event: str
) -> str:
    """One line in plain language."""
    model = labels["model"]
    if event == "resolved":
        return f"{model}: {rule.name.replace('_', ' ')} resolved"
    what = "; ".join(e.text for e in held) or rule.description or rule.name
    return f"{model}: {what}" + (f" ({rule.description})" if rule.description and held else "")
