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

from watchkeeper.catalogue import CATALOGUE
from watchkeeper.config import SEVERITIES, ConditionConfig, RuleConfig
from watchkeeper.rows import MetricRow
from watchkeeper.stats import baseline
from watchkeeper.windows import format_duration

ALL = "*"


@dataclass(frozen=True)
class SeriesKey:
    model: str
    metric: str
    column: str
    segment_column: str
    segment_value: str
    version: str = "*"  # the model version the series measures ("*": all of them)

    @property
    def segment(self) -> str:
        return ALL if self.segment_column == ALL else f"{self.segment_column}={self.segment_value}"


# One window's value of a series: a row of the metrics table.
Point = MetricRow


Series = Mapping[SeriesKey, Sequence[Point]]  # each sorted by window_start


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

    def to_json(self) -> str:
        return json.dumps(
            {
                "state": self.state,
                "held": self.held,
                "quiet": self.quiet,
                "severity": self.severity,
                "since": self.since.isoformat() if self.since else None,
                "last_window": self.last_window.isoformat() if self.last_window else None,
                "alert_id": self.alert_id,
            }
        )

    @classmethod
    def from_json(
        cls, fingerprint: str, rule: str, labels: Mapping[str, str], text: str
    ) -> AlertState:
        d = json.loads(text)
        return cls(
            fingerprint,
            rule,
            labels,
            d["state"],
            d["held"],
            d["quiet"],
            d["severity"],
            datetime.fromisoformat(d["since"]) if d["since"] else None,
            datetime.fromisoformat(d["last_window"]) if d["last_window"] else None,
            d["alert_id"],
        )


@dataclass(frozen=True)
class Evidence:
    """Why a condition held (or did not) at a window: the value and what it was held to."""

    series: SeriesKey
    value: float | None
    lower: float | None
    upper: float | None
    sample_size: int
    compared_with: float | None  # the threshold, the reference value, or the baseline
    spread: float | None  # the baseline's spread (std or scaled MAD)
    holds: bool
    text: str  # in plain words

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.series.metric,
            "column": self.series.column,
            "segment": self.series.segment,
            "value": self.value,
            "lower": self.lower,
            "upper": self.upper,
            "sample_size": self.sample_size,
            "compared_with": self.compared_with,
            "baseline_spread": self.spread,
            "holds": self.holds,
            "text": self.text,
        }


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


def matches(c: ConditionConfig, key: SeriesKey) -> bool:
    if not fnmatch.fnmatchcase(key.metric, c.metric):
        return False
    columns = (c.column,) if isinstance(c.column, str) else c.column
    if not any(fnmatch.fnmatchcase(key.column, pattern) for pattern in columns):
        return False
    if c.segment == "any":
        return True
    if c.segment == ALL:
        return key.segment_column == ALL
    column, _, value = c.segment.partition("=")
    return fnmatch.fnmatchcase(key.segment_column, column) and fnmatch.fnmatchcase(
        key.segment_value, value
    )


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
        state = states.get(fp) or AlertState(fp, rule.name, labels, severity=rule.severity)
        by_window: dict[datetime, datetime] = {}
        for key in keys:
            for p in series[key]:
                if p.window_end <= now and (
                    state.last_window is None or p.window_start > state.last_window
                ):
                    by_window[p.window_start] = p.window_end
        for start in sorted(by_window):
            end = by_window[start]
            held: list[Evidence] = []
            seen = 0
            for c in rule.conditions:
                checked = (
                    check(
                        c,
                        key,
                        series[key],
                        start,
                        reference,
                        state.state == "firing",
                        key in versioned,
                    )
                    for key in keys
                    if matches(c, key)
                )
                found = [e for e in checked if e is not None]
                if found:
                    seen += 1
                holding = [e for e in found if e.holds]
                if holding:
                    held.append(max(holding, key=_strength))
            if seen == 0:
                continue  # no data for this window: nothing changes
            state, event = step(rule, state, len(held), need, hold_for, keep_for, start)
            state = replace(state, last_window=start)
            if event is not None:
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
                state = replace(state, alert_id=None, severity=rule.severity)
        out[fp] = state
    return out, events


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


def _strength(e: Evidence) -> float:
    if e.value is None or e.compared_with is None:
        return 0.0
    return abs(e.value - e.compared_with) / (e.spread or abs(e.compared_with) or 1.0)


def check(
    c: ConditionConfig,
    key: SeriesKey,
    points: Sequence[Point],
    start: datetime,
    reference: Mapping[tuple[str, str, str], float],
    firing: bool,
    versioned: bool = False,
) -> Evidence | None:
    """Whether condition ``c`` holds for the series at window ``start`` (None: no value)."""
    index = _index(points, start)
    if index is None:
        return None
    p = points[index]
    if p.value is None or (isinstance(p.value, float) and math.isnan(p.value)):
        return None

    def evidence(holds: bool, compared: float | None, spread: float | None, text: str) -> Evidence:
        return Evidence(
            key, p.value, p.lower, p.upper, p.sample_size, compared, spread, holds, text
        )

    if c.mature_only and p.provisional:
        return None  # still arriving: neither for nor against
    name = _name(key, versioned)
    if p.sample_size < c.min_sample_size:
        return evidence(False, None, None, f"{name}: {p.sample_size} events, too few to judge")
    if c.status:
        holds = p.status in c.status
        return evidence(holds, None, None, f"{name} is {p.status}")
    if c.against == "baseline":
        return _baseline(c, key, points, index, evidence, name)
    value = p.value
    compared: float | None = None
    if c.against == "reference":
        ref = reference.get((key.model, _unestimated(key.metric), key.column))
        if ref is None:
            return evidence(False, None, None, f"{name}: no reference value to compare with")
        compared = ref
        value = p.value - ref if c.change == "absolute" else (p.value - ref) / (abs(ref) or 1.0)
    above, below = c.above, c.below
    if firing and c.resolve_at is not None:  # hysteresis: hold until the value crosses back
        above = c.resolve_at if above is not None else None
        below = c.resolve_at if below is not None else None
    holds = (above is not None and value > above) or (below is not None and value < below)
    if holds and c.interval_excludes and p.lower is not None and p.upper is not None:
        target = compared if compared is not None else (above if above is not None else below)
        assert target is not None
        if c.against == "reference":
            holds = not (p.lower <= target <= p.upper)
        elif above is not None and value > above:
            holds = p.lower > above
        else:
            holds = p.upper < (below if below is not None else target)
    if c.against == "reference":
        assert compared is not None
        change = f"{value:+.1%}" if c.change == "relative" else f"{value:+.3g}"
        text = f"{name} is {p.value:.3g}, {change} from the reference's {compared:.3g}"
    else:
        limit = above if above is not None and p.value > above else below
        side = "above" if limit == above else "below"
        text = f"{name} is {p.value:.3g}" + (
            f", {side} {limit:.3g}" if holds and limit is not None else ""
        )
        compared = limit
    return evidence(holds, compared, None, text)


def _baseline(
    c: ConditionConfig,
    key: SeriesKey,
    points: Sequence[Point],
    index: int,
    evidence: Any,
    name: str,
) -> Evidence:
    p = points[index]
    b = c.baseline
    history = baseline.past(
        [(q.window_start, q.value) for q in points[:index]], p.window_start, b.windows, b.seasonal
    )
    found = baseline.level(history, b.method)
    if found is None or found.n < b.min_history:
        n = 0 if found is None else found.n
        return evidence(  # type: ignore[no-any-return]
            False, None, None, f"{name}: {n} past values, too few for a baseline"
        )
    centre, spread = found.centre, found.spread
    assert p.value is not None
    z = (p.value - centre) / spread
    holds = (c.direction in ("above", "both") and z > b.k) or (
        c.direction in ("below", "both") and z < -b.k
    )
    if holds and c.interval_excludes and p.lower is not None and p.upper is not None:
        holds = not (p.lower <= centre <= p.upper)
    usual = f"usually {centre:.3g} ± {b.k:g}×{spread:.2g}"
    if b.seasonal is not None:
        usual += f" at this time of the {format_duration(b.seasonal)} cycle"
    return evidence(holds, centre, spread, f"{name} is {p.value:.3g}, {usual}")  # type: ignore[no-any-return]


def _index(points: Sequence[Point], start: datetime) -> int | None:
    lo, hi = 0, len(points)
    while lo < hi:
        mid = (lo + hi) // 2
        if points[mid].window_start < start:
            lo = mid + 1
        else:
            hi = mid
    return lo if lo < len(points) and points[lo].window_start == start else None


def _unestimated(metric: str) -> str:
    """An estimated metric is compared with the realized value on the reference."""
    entry = CATALOGUE.get(metric)
    return entry.estimates if entry is not None and entry.estimates else metric


def _name(key: SeriesKey, versioned: bool = False) -> str:
    text = key.metric.replace("_", " ")
    if key.column:
        text += f" of {key.column}"
    if key.segment_column != ALL:
        text += f" in {key.segment}"
    if versioned and key.version != "*":
        text += f" (version {key.version})"
    return text


def summarize(
    rule: RuleConfig, labels: Mapping[str, str], held: Sequence[Evidence], event: str
) -> str:
    """One line in plain language."""
    model = labels["model"]
    if event == "resolved":
        return f"{model}: {rule.name.replace('_', ' ')} resolved"
    what = "; ".join(e.text for e in held) or rule.description or rule.name
    return f"{model}: {what}" + (f" ({rule.description})" if rule.description and held else "")
