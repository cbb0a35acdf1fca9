"""Alerts over the store: load metric series, evaluate the rules, keep state and episodes,
mute what silences and inhibition explain, and write notifications to the outbox.

Everything an evaluation changes (states, episodes, events, notifications) is written in
one transaction, so a crash leaves either all of it or none.
"""

from __future__ import annotations

import fnmatch
import itertools
import json
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import ibis

from watchkeeper.alerts.evaluate import (
    AlertEvent,
    AlertState,
    Point,
    SeriesKey,
    evaluate,
    matches,
)
from watchkeeper.config import AlertingConfig, Config, ModelConfig, RuleConfig
from watchkeeper.errors import UnknownAlertError, UnknownRuleError, WatchkeeperError
from watchkeeper.store import Store
from watchkeeper.store.engine import shared_rows
from watchkeeper.store.tables import (
    ALERT_EVENTS,
    ALERT_STATES,
    ALERTS,
    METRICS,
    OUTBOX,
    SILENCES,
)

VERDICTS = ("actionable", "noise", "expected_change")
ReferenceValues = Mapping[tuple[str, str, str], float]


def rules_for(config: Config, model: str) -> list[RuleConfig]:
    return [r for r in config.alerting.rules if fnmatch.fnmatchcase(model, r.models)]


def window_of(rule: RuleConfig, model: ModelConfig) -> timedelta:
    return rule.window or model.monitoring.window


def load_series(
    store: Store,
    model: str,
    size: timedelta,
    rules: Iterable[RuleConfig],
    since: datetime | None = None,
) -> dict[SeriesKey, list[Point]]:
    """The metric series the rules select, for windows of ``size``, one per model version
    (a version rolled out beside another is judged on its own traffic)."""
    t = store.table(METRICS)
    mine = t.filter(t.model == model)
    names = store.execute(mine.select("metric").distinct())["metric"].to_pylist()
    patterns = [c.metric for r in rules for c in r.conditions]
    wanted = [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
    if not wanted:
        return {}
    seconds = int(size.total_seconds())
    expr = mine.filter(
        mine.metric.isin(wanted)
        & (mine.window_end == mine.window_start + ibis.interval(seconds=seconds))
    )
    if since is not None:
        expr = expr.filter(expr.window_start >= since)
    columns = [
        "metric",
        "column",
        "segment_column",
        "segment_value",
        "window_start",
        "window_end",
        "value",
        "lower",
        "upper",
        "sample_size",
        "status",
        "provisional",
        "model_version",
    ]
    rows = store.execute(expr.select(*columns).order_by("window_start")).to_pylist()
    out: dict[SeriesKey, dict[datetime, Point]] = defaultdict(dict)
    for r in rows:
        key = SeriesKey(
            model,
            r["metric"],
            r["column"],
            r["segment_column"],
            r["segment_value"],
            r["model_version"] or "*",
        )
        if not any(matches(c, key) for rule in rules for c in rule.conditions):
            continue
        p = Point(
            r["window_start"],
            r["window_end"],
            r["value"],
            r["lower"],
            r["upper"],
            int(r["sample_size"] or 0),
            r["status"] or "ok",
            bool(r["provisional"]),
        )
        before = out[key].get(p.window_start)
        if before is None or p.sample_size > before.sample_size:
            out[key][p.window_start] = p
    return {k: [v[s] for s in sorted(v)] for k, v in out.items()}


@dataclass(frozen=True)
class Evaluated:
    """What one evaluation did."""

    events: list[AlertEvent]
    notifications: int
    muted: dict[str, str]  # alert_id → why it was not notified


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
    for size, group in by_size.items():
        series_by_size[size] = load_series(store, model.name, size, group)
    previous = load_states(store, model.name)
    new_states: dict[str, AlertState] = {}
    events: list[AlertEvent] = []
    for r in rules:
        size = window_of(r, model)
        mine = {fp: s for fp, s in previous.items() if s.rule == r.name}
        states, found = evaluate(r, series_by_size[size], mine, now, size, ref_values)
        new_states.update({fp: s for fp, s in states.items() if s != mine.get(fp)})
        events += found
    with store.transaction():
        _save_states(store, model.name, new_states, now)
        _apply_events(store, events, now)
        muted, queued = reconcile(store, config.alerting, now, model.name)
    return Evaluated(events, queued, muted)


def load_states(store: Store, model: str) -> dict[str, AlertState]:
    t = store.table(ALERT_STATES)
    rows = store.execute(t.filter(t.model == model)).to_pylist()
    return {
        r["fingerprint"]: AlertState.from_json(
            r["fingerprint"], r["rule"], json.loads(r["labels"]), r["state"]
        )
        for r in rows
    }


def _save_states(store: Store, model: str, states: Mapping[str, AlertState], now: datetime) -> None:
    if not states:
        return
    keys = list(states)
    store.delete(ALERT_STATES, lambda t: (t.model == model) & t.fingerprint.isin(keys))
    store.insert(
        ALERT_STATES,
        shared_rows(
            ALERT_STATES,
            [
                {
                    "fingerprint": fp,
                    "rule": s.rule,
                    "model": model,
                    "labels": json.dumps(dict(s.labels), sort_keys=True),
                    "state": s.to_json(),
                    "updated_at": now,
                }
                for fp, s in states.items()
            ],
        ),
    )


def episodes(store: Store, where: Callable[[Any], Any] | None = None) -> list[dict[str, Any]]:
    t = store.table(ALERTS)
    expr = t if where is None else t.filter(where(t))
    return list(store.execute(expr.order_by("started_at")).to_pylist())


def _replace_episodes(store: Store, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    ids = [r["alert_id"] for r in rows]
    store.delete(ALERTS, lambda t: t.alert_id.isin(ids))
    store.insert(ALERTS, shared_rows(ALERTS, rows))


def _apply_events(store: Store, events: list[AlertEvent], now: datetime) -> None:
    if not events:
        return
    ids = list({e.alert_id for e in events})
    current = {r["alert_id"]: r for r in episodes(store, lambda t: t.alert_id.isin(ids))}
    for e in events:
        evidence = json.dumps([x.to_dict() for x in e.evidence])
        if e.kind == "firing":
            current[e.alert_id] = {
                "alert_id": e.alert_id,
                "fingerprint": e.fingerprint,
                "rule": e.rule,
                "model": e.labels.get("model"),
                "severity": e.severity,
                "owner": e.labels.get("owner"),
                "state": "firing",
                "labels": json.dumps(dict(e.labels), sort_keys=True),
                "evidence": evidence,
                "summary": e.summary,
                "started_at": e.window_end,
                "updated_at": now,
                "window_start": e.window_start,
                "window_size_s": int((e.window_end - e.window_start).total_seconds()),
                "resolved_notified": False,
            }
            continue
        row = current.get(e.alert_id)
        if row is None:  # state without its episode (should not happen): start one
            continue
        row = dict(row)
        row["updated_at"] = now
        if e.kind == "escalated":
            row |= {"severity": e.severity, "summary": e.summary, "evidence": evidence}
        elif e.kind == "resolved":
            row |= {"state": "resolved", "resolved_at": e.window_end}
        current[e.alert_id] = row
    _replace_episodes(store, list(current.values()))
    store.insert(
        ALERT_EVENTS,
        shared_rows(
            ALERT_EVENTS,
            [
                {
                    "alert_id": e.alert_id,
                    "fingerprint": e.fingerprint,
                    "rule": e.rule,
                    "model": e.labels.get("model"),
                    "kind": e.kind,
                    "severity": e.severity,
                    "window_start": e.window_start,
                    "at": now,
                    "summary": e.summary,
                }
                for e in events
            ],
        ),
    )


# ---------------------------------------------------------------------------------------
# noise control: silences and inhibition


def alert_labels(row: Mapping[str, Any]) -> dict[str, str]:
    """An episode's labels as notifications carry them (its severity included)."""
    return {**json.loads(row["labels"]), "severity": row["severity"]}


def _matches_all(matchers: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(fnmatch.fnmatchcase(labels.get(k, ""), v) for k, v in matchers.items())


def active_silences(store: Store, now: datetime) -> list[dict[str, Any]]:
    t = store.table(SILENCES)
    return list(store.execute(t.filter((t.starts_at <= now) & (t.ends_at > now))).to_pylist())


def add_silence(
    store: Store,
    matchers: Mapping[str, str],
    ends_at: datetime,
    now: datetime,
    created_by: str = "",
    comment: str = "",
) -> str:
    if not matchers:
        raise WatchkeeperError("a silence needs at least one matcher, e.g. model=fraud")
    if ends_at <= now:
        raise WatchkeeperError("a silence must end in the future")
    silence_id = uuid.uuid4().hex[:12]
    store.insert(
        SILENCES,
        shared_rows(
            SILENCES,
            [
                {
                    "silence_id": silence_id,
                    "matchers": json.dumps(dict(matchers), sort_keys=True),
                    "starts_at": now,
                    "ends_at": ends_at,
                    "created_by": created_by,
                    "comment": comment,
                }
            ],
        ),
    )
    return silence_id


def expire_silence(store: Store, silence_id: str, now: datetime) -> None:
    t = store.table(SILENCES)
    rows = store.execute(t.filter(t.silence_id == silence_id)).to_pylist()
    if not rows:
        raise WatchkeeperError(f"no silence {silence_id!r}")
    with store.transaction():
        store.delete(SILENCES, lambda t: t.silence_id == silence_id)
        store.insert(SILENCES, shared_rows(SILENCES, [{**rows[0], "ends_at": now}]))


def why_muted(
    row: Mapping[str, Any],
    firing: Sequence[Mapping[str, Any]],
    silences: Sequence[Mapping[str, Any]],
    alerting: AlertingConfig,
) -> str:
    """Why an episode is not to be notified now ('' when it is)."""
    labels = alert_labels(row)
    for s in silences:
        if _matches_all(json.loads(s["matchers"]), labels):
            return f"silenced by {s['silence_id']}"
    for rule in alerting.inhibit:
        if not _matches_all(rule.target, labels):
            continue
        for other in firing:
            if other["alert_id"] == row["alert_id"]:
                continue
            source = alert_labels(other)
            if _matches_all(rule.source, source) and all(
                source.get(k) == labels.get(k) for k in rule.equal
            ):
                return f"inhibited by {other['alert_id']} ({other['rule']})"
    return ""


def reconcile(
    store: Store, alerting: AlertingConfig, now: datetime, model: str | None = None
) -> tuple[dict[str, str], int]:
    """Bring notifications in line with the episodes: a firing episode that is not muted and
    was not sent at its severity is queued; a resolved one that was sent is queued as
    resolved. Muting is re-judged each time, so an expired silence or a resolved source of
    inhibition lets what it held back through."""
    t = store.table(ALERTS)
    open_ = t.state == "firing"
    unsent = (t.state == "resolved") & t.notified_severity.notnull() & ~t.resolved_notified
    expr = t.filter(open_ | unsent)
    if model is not None:
        expr = expr.filter(expr.model == model)
    rows = store.execute(expr).to_pylist()
    firing_all = episodes(store, lambda t: t.state == "firing")
    silences = active_silences(store, now)
    muted: dict[str, str] = {}
    notes: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    for row in rows:
        if row["state"] == "firing":
            reason = why_muted(row, firing_all, silences, alerting)
            if reason:
                muted[row["alert_id"]] = reason
            if reason != (row["muted"] or ""):
                row = {**row, "muted": reason}
                changed.append(row)
            if reason or row["notified_severity"] == row["severity"]:
                continue
            kind = "firing" if row["notified_severity"] is None else "escalated"
            notes += _notifications(alerting, row, kind, now)
            changed.append({**row, "notified_severity": row["severity"]})
        else:
            notes += _notifications(alerting, row, "resolved", now)
            changed.append({**row, "resolved_notified": True})
    latest = {r["alert_id"]: r for r in changed}
    _replace_episodes(store, list(latest.values()))
    if notes:
        store.insert(OUTBOX, shared_rows(OUTBOX, notes))
    return muted, len(notes)


def _notifications(
    alerting: AlertingConfig, row: Mapping[str, Any], kind: str, now: datetime
) -> list[dict[str, Any]]:
    from watchkeeper.alerts.notify import payload

    labels = alert_labels(row)
    out = []
    for receiver in alerting.receivers:
        if not _matches_all(receiver.match, labels):
            continue
        out.append(
            {
                "notification_id": uuid.uuid4().hex,
                "receiver": receiver.name,
                "alert_id": row["alert_id"],
                "kind": kind,
                "payload": json.dumps(payload(receiver, alerting, row, kind, now)),
                "created_at": now,
                "attempts": 0,
                "next_attempt_at": now,
                "gave_up": False,
            }
        )
    return out


# ---------------------------------------------------------------------------------------
# feedback: acknowledgement and verdicts


def episode(store: Store, alert_id: str) -> dict[str, Any]:
    """One alert episode; UnknownAlertError if there is none."""
    found = episodes(store, lambda t: t.alert_id == alert_id)
    if not found:
        raise UnknownAlertError(alert_id)
    return found[0]


def _log(store: Store, row: Mapping[str, Any], kind: str, now: datetime, text: str) -> None:
    store.insert(
        ALERT_EVENTS,
        shared_rows(
            ALERT_EVENTS,
            [
                {
                    "alert_id": row["alert_id"],
                    "fingerprint": row["fingerprint"],
                    "rule": row["rule"],
                    "model": row["model"],
                    "kind": kind,
                    "severity": row["severity"],
                    "window_start": row["window_start"],
                    "at": now,
                    "summary": text,
                }
            ],
        ),
    )


def acknowledge(
    store: Store, alert_id: str, now: datetime, by: str = "", comment: str = ""
) -> None:
    row = episode(store, alert_id)
    updated = {**row, "acknowledged_at": now, "acknowledged_by": by, "updated_at": now}
    if comment:
        updated["comment"] = comment
    with store.transaction():
        _replace_episodes(store, [updated])
        _log(store, row, "acknowledged", now, comment or f"acknowledged by {by or 'someone'}")


def close(
    store: Store, alert_id: str, verdict: str, now: datetime, comment: str = "", by: str = ""
) -> None:
    """Close an alert with a verdict: was it actionable, noise, or an expected change?"""
    if verdict not in VERDICTS:
        raise WatchkeeperError(f"verdict must be one of {', '.join(VERDICTS)}, not {verdict!r}")
    row = episode(store, alert_id)
    updated = {
        **row,
        "verdict": verdict,
        "comment": comment or row["comment"],
        "closed_at": now,
        "updated_at": now,
        "acknowledged_at": row["acknowledged_at"] or now,
        "acknowledged_by": row["acknowledged_by"] or by,
    }
    with store.transaction():
        _replace_episodes(store, [updated])
        _log(store, row, "closed", now, f"{verdict}: {comment}" if comment else verdict)


# ---------------------------------------------------------------------------------------
# review and replay


@dataclass(frozen=True)
class RuleReview:
    rule: str
    fired: int
    pages: int
    verdicts: Mapping[str, int]
    actionable_share: float | None  # of those with a verdict
    median_time_to_resolve: timedelta | None
    flapping: int  # re-fired within two windows of resolving
    open: int
    advice: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "fired": self.fired,
            "pages": self.pages,
            "verdicts": dict(self.verdicts),
            "actionable_share": self.actionable_share,
            "median_time_to_resolve_s": None
            if self.median_time_to_resolve is None
            else self.median_time_to_resolve.total_seconds(),
            "flapping": self.flapping,
            "open": self.open,
            "advice": self.advice,
        }


def review(
    store: Store, since: datetime | None = None, until: datetime | None = None
) -> list[RuleReview]:
    """Per rule over a period: how often it fired, what people said of it, how long its
    alerts lasted, whether it flapped; the rules that most need tuning first."""

    def where(t: Any) -> Any:
        cond = t.alert_id.notnull()
        if since is not None:
            cond &= t.started_at >= since
        if until is not None:
            cond &= t.started_at < until
        return cond

    rows = episodes(store, where)
    by_rule: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_rule[r["rule"]].append(r)
    out = []
    for rule, found in by_rule.items():
        verdicts: dict[str, int] = defaultdict(int)
        for r in found:
            if r["verdict"]:
                verdicts[r["verdict"]] += 1
        judged = sum(verdicts.values())
        share = verdicts.get("actionable", 0) / judged if judged else None
        durations = sorted(
            r["resolved_at"] - r["started_at"] for r in found if r["resolved_at"] is not None
        )
        median = durations[len(durations) // 2] if durations else None
        flaps = 0
        by_fp: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in found:
            by_fp[r["fingerprint"]].append(r)
        for group in by_fp.values():
            group.sort(key=lambda r: r["started_at"])
            for a, b in itertools.pairwise(group):
                gap = timedelta(seconds=2 * int(a["window_size_s"] or 3600))
                if a["resolved_at"] is not None and b["started_at"] - a["resolved_at"] <= gap:
                    flaps += 1
        noise = verdicts.get("noise", 0)
        if judged and noise / judged >= 0.5:
            advice = "mostly noise: raise its threshold, lengthen `for`, or add min_sample_size"
        elif flaps >= 2:
            advice = "flaps: add keep_firing_for or resolve_at (hysteresis)"
        elif judged == 0 and len(found) >= 3:
            advice = "nobody has judged its alerts: close them with a verdict to tune it"
        elif verdicts.get("expected_change", 0) > judged / 2:
            advice = "fires on expected changes: silence planned releases or add a baseline"
        else:
            advice = ""
        out.append(
            RuleReview(
                rule,
                len(found),
                sum(r["severity"] == "page" for r in found),
                dict(verdicts),
                share,
                median,
                flaps,
                sum(r["state"] == "firing" for r in found),
                advice,
            )
        )
    out.sort(key=lambda r: (-(bool(r.advice)), -(r.verdicts.get("noise", 0) + r.flapping), r.rule))
    return out


@dataclass(frozen=True)
class ReplayedAlert:
    alert_id: str
    labels: Mapping[str, str]
    severity: str
    fired_window: datetime
    resolved_window: datetime | None
    summary: str


def replay(
    store: Store,
    config: Config,
    rule: RuleConfig,
    model: ModelConfig,
    since: datetime,
    until: datetime,
    reference: Callable[[], ReferenceValues] | None = None,
) -> list[ReplayedAlert]:
    """What ``rule`` (or an edited copy) would have fired over the stored history from
    ``since`` to ``until``: evaluated from scratch, as live evaluation would have, window by
    window; earlier windows feed its baselines but their alerts are not shown."""
    size = window_of(rule, model)
    series = load_series(store, model.name, size, [rule])
    needs_reference = any(c.against == "reference" for c in rule.conditions)
    ref_values = reference() if reference is not None and needs_reference else {}
    _, events = evaluate(rule, series, {}, until, size, ref_values)
    found: dict[str, ReplayedAlert] = {}
    for e in events:
        if e.kind in ("firing", "escalated"):
            if e.kind == "firing" and e.window_start < since:
                continue
            before = found.get(e.alert_id)
            found[e.alert_id] = ReplayedAlert(
                e.alert_id,
                e.labels,
                e.severity,
                before.fired_window if before else e.window_start,
                None,
                e.summary,
            )
        elif e.alert_id in found:
            r = found[e.alert_id]
            found[e.alert_id] = ReplayedAlert(
                r.alert_id, r.labels, r.severity, r.fired_window, e.window_start, r.summary
            )
    return sorted(found.values(), key=lambda r: (r.fired_window, r.alert_id))


def edited(rule: RuleConfig, settings: Iterable[str]) -> RuleConfig:
    """A copy of ``rule`` with ``path=value`` settings applied (``for=3``,
    ``conditions.0.above=0.3``, ``conditions.0.baseline.k=4``), validated like the config."""
    import yaml

    data = rule.model_dump(by_alias=True, exclude_none=True, mode="json")
    for setting in settings:
        path, sep, text = setting.partition("=")
        if not sep:
            raise WatchkeeperError(f"{setting!r}: a setting is PATH=VALUE, e.g. for=3")
        node: Any = data
        parts = path.split(".")
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        last = parts[-1]
        value = yaml.safe_load(text)
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    try:
        return RuleConfig.model_validate(data)
    except Exception as exc:
        raise WatchkeeperError(f"the edited rule is not valid: {exc}") from None


def rule_named(config: Config, name: str) -> RuleConfig:
    for r in config.alerting.rules:
        if r.name == name:
            return r
    raise UnknownRuleError(name, [r.name for r in config.alerting.rules])
