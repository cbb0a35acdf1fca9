"""Alerts over the store: evaluate a model's rules over the windows closed since the last
evaluation, keep state and episodes, and queue the notifications it calls for.

Everything an evaluation changes (states, episodes, events, notifications) is written in
one transaction, so a crash leaves either all of it or none.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from watchkeeper.alerts.conditions import Point, SeriesKey, matches, unestimated
from watchkeeper.alerts.history import apply_events, load_states, save_states
from watchkeeper.alerts.machine import AlertEvent, AlertState, evaluate
from watchkeeper.alerts.noise import reconcile
from watchkeeper.alerts.series import load_series, rules_for, window_of
from watchkeeper.config import Config, ModelConfig, RuleConfig
from watchkeeper.store import Store

log = logging.getLogger(__name__)
_WARNED: set[tuple[str, str, str]] = set()

ReferenceValues = Mapping[tuple[str, str, str], float]


@dataclass(frozen=True)
class Evaluated:
    """What one evaluation did."""

    events: list[AlertEvent]
    notifications: int
    muted: dict[str, str]  # alert_id → why it was not notified
    # Rules that cannot judge what they select, and why (a reference without the value
    # they compare with): said, not silent.
    unjudged: dict[str, str] = field(default_factory=dict)


def evaluate_model(
    store: Store,
    config: Config,
    model: ModelConfig,
    now: datetime,
    reference: Callable[[], ReferenceValues] | None = None,
) -> Evaluated:
    """Evaluate every rule that applies to ``model`` over the windows closed by ``now``
    and not evaluated yet; store what changed and queue the notifications it calls for."""
    rules = rules_for(config, model.name)
    if not rules:
        return Evaluated([], 0, {})
    needs_reference = any(c.against == "reference" for r in rules for c in r.conditions)
    ref_values = reference() if (reference is not None and needs_reference) else {}
    series_by_size: dict[timedelta, dict[SeriesKey, list[Point]]] = {}
    by_size: dict[timedelta, list[RuleConfig]] = defaultdict(list)
    for r in rules:
        by_size[window_of(r, model)].append(r)
    previous = load_states(store, model.name)
    for size, group in by_size.items():
        # Rules with instances read back from where they judge again; a rule without any
        # yet (new, or whose metrics never appeared) reads its own series whole, so that
        # it does not make the others reread theirs every cycle.
        known = [r for r in group if any(st.rule == r.name for st in previous.values())]
        fresh = [r for r in group if r not in known]
        loaded = load_series(store, model.name, size, known, _since(known, previous, size))
        if fresh:
            loaded.update(load_series(store, model.name, size, fresh, None))
        series_by_size[size] = loaded
    new_states: dict[str, AlertState] = {}
    events: list[AlertEvent] = []
    unjudged: dict[str, str] = {}
    for r in rules:
        size = window_of(r, model)
        if (why := _without_reference(r, series_by_size[size], ref_values)) is not None:
            unjudged[r.name] = why
            if (model.name, r.name, why) not in _WARNED:  # once per process, not every minute
                _WARNED.add((model.name, r.name, why))
                log.warning("rule %s cannot judge %s: %s", r.name, model.name, why)
        mine = {fp: s for fp, s in previous.items() if s.rule == r.name}
        states, found = evaluate(r, series_by_size[size], mine, now, size, ref_values)
        new_states.update({fp: s for fp, s in states.items() if s != mine.get(fp)})
        events += found
    with store.transaction():
        save_states(store, model.name, new_states, now)
        apply_events(store, events, now)
        muted, queued = reconcile(store, config.alerting, now, model.name)
    return Evaluated(events, queued, muted, unjudged)


def _without_reference(
    rule: RuleConfig, series: Mapping[SeriesKey, list[Point]], reference: ReferenceValues
) -> str | None:
    """Why a rule's comparison with the reference cannot hold, when the model's series it
    selects have no value on the reference to compare with (a reference set without
    labels, a metric the reference cannot measure)."""
    for c in rule.conditions:
        if c.against != "reference":
            continue
        selected = [k for k in series if matches(c, k)]
        wanted = {(k.model, unestimated(k.metric), k.column) for k in selected}
        if selected and not any(w in reference for w in wanted):
            names = ", ".join(sorted({w[1] for w in wanted}))
            return (
                f"the reference has no value of {names} to compare with (set a reference "
                "with labels, or measure what the rule needs)"
            )
    return None


def _since(
    rules: list[RuleConfig], states: Mapping[str, AlertState], size: timedelta
) -> datetime | None:
    """How far back the rules' series must be read: from the earliest window any of their
    instances judges again (its settled window), less the longest history a baseline
    looks at. None (everything) while a rule has no state yet."""
    starts = []
    for r in rules:
        mine = [s for s in states.values() if s.rule == r.name]
        if not mine:
            return None
        spans = [
            (c.baseline.seasonal or size) * (c.baseline.windows + 1)
            for c in r.conditions
            if c.against == "baseline"
        ]
        span = max([size * 2, *spans])
        for state in mine:
            at = state.settled.last_window if state.settled is not None else state.last_window
            if at is None:
                return None
            starts.append(at - span)
    return min(starts) if starts else None


__all__ = ["Evaluated", "evaluate_model"]
