"""Tuning: how each rule has done (review), what a rule or an edited copy would have fired
over the stored history (replay), and rules by name."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import yaml
from pydantic import ValidationError

from watchkeeper.alerts.history import episodes
from watchkeeper.alerts.machine import evaluate
from watchkeeper.alerts.series import load_series, window_of
from watchkeeper.config import Config, ModelConfig, RuleConfig
from watchkeeper.errors import UnknownRuleError, WatchkeeperError
from watchkeeper.store import Store

ReferenceValues = Mapping[tuple[str, str, str], float]


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
    except ValidationError as exc:
        raise WatchkeeperError(f"the edited rule is not valid: {exc}") from None


def rule_named(config: Config, name: str) -> RuleConfig:
    for r in config.alerting.rules:
        if r.name == name:
            return r
    raise UnknownRuleError(name, [r.name for r in config.alerting.rules])


__all__ = ["ReplayedAlert", "RuleReview", "edited", "replay", "review", "rule_named"]
