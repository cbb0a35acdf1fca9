"""The metric series alert rules select, read through the metrics table's one reader."""

from __future__ import annotations

import fnmatch
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from watchkeeper.alerts.conditions import Point, SeriesKey, matches
from watchkeeper.config import Config, ModelConfig, RuleConfig
from watchkeeper.store import Store
from watchkeeper.store.metrics import MetricsTable


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
    rules = list(rules)
    patterns = [c.metric for r in rules for c in r.conditions]
    out: dict[SeriesKey, dict[datetime, Point]] = defaultdict(dict)
    for p in MetricsTable(store).matching(model, patterns, size, since):
        key = SeriesKey(
            model, p.metric, p.column, p.segment_column, p.segment_value, p.model_version
        )
        if not any(matches(c, key) for rule in rules for c in rule.conditions):
            continue
        before = out[key].get(p.window_start)
        if before is None or p.sample_size > before.sample_size:
            out[key][p.window_start] = p
    return {k: [v[s] for s in sorted(v)] for k, v in out.items()}


__all__ = ["load_series", "rules_for", "window_of"]
