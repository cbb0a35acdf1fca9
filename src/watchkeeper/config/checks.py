"""The cross-field checks, once the structure is sound: pure, they yield (path, message)
pairs (unknown columns, a threshold on a regression model, a drift method that is not
registered, an alert condition on a metric the catalogue lacks, ...)."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from datetime import timedelta

from watchkeeper.catalogue import Metric, catalogue, nearest
from watchkeeper.config.models import (
    SEVERITIES,
    AlertingConfig,
    ConditionConfig,
    Config,
    DriftConfig,
    ModelConfig,
)
from watchkeeper.stats.drift import REGISTRY


def check_config(config: Config) -> Iterator[tuple[str, str]]:
    if config.engine.path and config.engine.url:
        yield "engine", "give either path or url, not both"
    seen: dict[str, int] = {}
    for i, model in enumerate(config.models):
        where = f"models[{i}]"
        if model.name in seen:
            yield (
                f"{where}.name",
                f"model {model.name!r} is already declared at models[{seen[model.name]}]",
            )
        seen.setdefault(model.name, i)
        yield from _check_model(model, where)
    yield from _check_alerting(config.alerting, [m.name for m in config.models])
    names: set[str] = set()
    for i, key in enumerate(config.server.api_keys):
        at = f"server.api_keys[{i}]"
        if (key.sha256 is None) == (key.env is None):
            yield at, "give exactly one of sha256 (the key's hash) or env (a variable holding it)"
        if key.name in names:
            yield f"{at}.name", f"key {key.name!r} is declared twice"
        names.add(key.name)


def _check_alerting(alerting: AlertingConfig, models: list[str]) -> Iterator[tuple[str, str]]:
    names: dict[str, int] = {}
    for i, rule in enumerate(alerting.rules):
        at = f"alerting.rules[{i}]"
        if rule.name in names:
            yield (
                f"{at}.name",
                f"rule {rule.name!r} is already declared at rules[{names[rule.name]}]",
            )
        names.setdefault(rule.name, i)
        if models and not fnmatch.filter(models, rule.models):
            yield f"{at}.models", f"matches no model (models: {', '.join(models)})"
        if isinstance(rule.require, int) and not 1 <= rule.require <= len(rule.conditions):
            yield f"{at}.require", f"must be between 1 and {len(rule.conditions)} (the conditions)"
        if rule.escalate is not None:
            if rule.escalate.require > len(rule.conditions):
                yield f"{at}.escalate.require", f"there are only {len(rule.conditions)} conditions"
            if SEVERITIES.index(rule.escalate.severity) <= SEVERITIES.index(rule.severity):
                yield f"{at}.escalate.severity", f"must be above the rule's {rule.severity}"
        for j, c in enumerate(rule.conditions):
            where = f"{at}.conditions[{j}]"
            tests = (c.above is not None) or (c.below is not None) or bool(c.status)
            if c.against == "baseline":
                if c.status or c.above is not None or c.below is not None:
                    yield (
                        where,
                        "a baseline condition uses direction and baseline.k, "
                        "not above, below or status",
                    )
            elif not tests:
                yield where, "needs above, below or status"
            if c.against == "reference" and c.status:
                yield f"{where}.status", "a status cannot be compared with the reference"
            if c.resolve_at is not None and (c.above is None) == (c.below is None):
                yield f"{where}.resolve_at", "needs exactly one of above or below"
            if c.segment not in ("*", "any") and "=" not in c.segment:
                yield f"{where}.segment", "must be *, any, or COLUMN=VALUE (VALUE may be *)"
            yield from _check_metric(c, where)
    receivers: set[str] = set()
    for i, r in enumerate(alerting.receivers):
        at = f"alerting.receivers[{i}]"
        if r.name in receivers:
            yield f"{at}.name", f"receiver {r.name!r} is declared twice"
        receivers.add(r.name)
        if r.type != "log" and not r.url:
            yield f"{at}.url", f"a {r.type} receiver needs a url"


def _check_metric(c: ConditionConfig, where: str) -> Iterator[tuple[str, str]]:
    """A condition's metric (a key or a pattern) must be catalogued; compared with the
    reference, it must be one the reference can hold a value of."""
    found = catalogue.matching(c.metric)
    pattern = any(ch in c.metric for ch in "*?[")
    if not found:
        close = ", ".join(nearest(c.metric))
        head = f"no metric matches {c.metric!r}" if pattern else f"unknown metric {c.metric!r}"
        yield f"{where}.metric", head + (f"; did you mean {close}?" if close else "")
    elif c.against == "reference" and not any(_on_reference(m) for m in found):
        what = (
            f"no metric matching {c.metric!r} has a value"
            if pattern
            else f"metric {c.metric!r} has no value"
        )
        yield f"{where}.against", f"{what} on the reference; use against: baseline or value"


def _on_reference(metric: Metric) -> bool:
    """Whether the reference can hold a value of the metric (for any model task)."""
    return metric.on_reference


def _check_model(model: ModelConfig, where: str) -> Iterator[tuple[str, str]]:
    cols = model.columns
    at = f"{where}.columns"
    owned: dict[str, str] = {}

    def claim(name: str | None, path: str) -> Iterator[tuple[str, str]]:
        if name is None:
            return
        if name.startswith("wk_"):
            yield path, "column names starting with wk_ are reserved for watchkeeper"
        elif name in owned:
            yield path, f"column {name!r} is already used by {owned[name]}"
        else:
            owned[name] = path

    yield from claim(cols.event_id, f"{at}.event_id")
    yield from claim(cols.timestamp, f"{at}.timestamp")
    for j, feature in enumerate(cols.features):
        fpath = f"{at}.features[{j}]"
        yield from claim(feature.name, f"{fpath}.name")
        if feature.range is not None:
            if feature.kind != "numeric":
                yield f"{fpath}.range", "only numeric features have a range"
            elif not feature.range[0] < feature.range[1]:
                yield f"{fpath}.range", "must be [low, high] with low < high"
        if feature.values is not None:
            if feature.kind != "categorical":
                yield f"{fpath}.values", "only categorical features have allowed values"
            elif len(set(feature.values)) != len(feature.values):
                yield f"{fpath}.values", "lists a value twice"
            elif not feature.values:
                yield f"{fpath}.values", "must list at least one value"
    single = ("prediction", "score", "latency", "status", "model_version", "query_id", "item_id")
    for role in (*single, "position"):
        yield from claim(getattr(cols, role), f"{at}.{role}")
    if cols.scores:
        for cls, name in cols.scores.items():
            yield from claim(name, f"{at}.scores.{cls}")
    for j, name in enumerate(cols.metadata):
        yield from claim(name, f"{at}.metadata[{j}]")
    # Segments and sensitive attributes may reuse a feature or metadata column.
    reusable = {f.name for f in cols.features} | set(cols.metadata)
    for role in ("segments", "sensitive"):
        names: tuple[str, ...] = getattr(cols, role)
        for j, name in enumerate(names):
            if names.index(name) != j:
                yield f"{at}.{role}[{j}]", f"lists {name!r} twice"
            elif name not in reusable:
                yield from claim(name, f"{at}.{role}[{j}]")

    if model.labels.column in owned:
        yield (
            f"{where}.labels.column",
            (
                f"{model.labels.column!r} is an event column ({owned[model.labels.column]}); "
                "name the label column differently"
            ),
        )
    task = model.task
    if model.threshold is not None and task != "binary_classification":
        yield f"{where}.threshold", "a decision threshold applies only to binary_classification"
    if task == "binary_classification" and not (cols.score or cols.prediction):
        yield at, "a binary_classification model needs a score or a prediction column"
    if task == "multiclass_classification":
        if not model.classes:
            yield f"{where}.classes", "a multiclass_classification model must list its classes"
        elif len(model.classes) < 2:
            yield f"{where}.classes", "must list at least two classes"
        if not (cols.prediction or cols.scores):
            yield at, "a multiclass_classification model needs a prediction or scores columns"
        if cols.scores and model.classes:
            for cls in cols.scores:
                if cls not in model.classes:
                    yield f"{at}.scores.{cls}", f"{cls!r} is not one of the model's classes"
    elif model.classes is not None:
        yield f"{where}.classes", "classes apply only to multiclass_classification"
    if cols.scores and task != "multiclass_classification":
        yield f"{at}.scores", "per-class scores apply only to multiclass_classification"
    if task == "regression" and not cols.prediction:
        yield f"{at}.prediction", "a regression model needs its prediction column"
    if task == "ranking":
        if not cols.query_id:
            yield f"{at}.query_id", "a ranking model needs a query_id column"
        if not (cols.score or cols.position):
            yield at, "a ranking model needs a score or a position column"
    outcome_names = [o.name for o in model.outcomes]
    for j, name in enumerate(outcome_names):
        if outcome_names.index(name) != j:
            yield f"{where}.outcomes[{j}].name", f"outcome {name!r} is declared twice"
    if model.costs is not None and task != "binary_classification":
        yield f"{where}.costs", "a cost matrix applies only to binary_classification"
    mon = f"{where}.monitoring"
    if model.monitoring.window < timedelta(seconds=1):
        yield f"{mon}.window", "must be at least 1s"
    sliceable = {f.name for f in cols.features} | set(cols.segments) | set(cols.sensitive)
    sliceable |= set(cols.metadata)
    for j, name in enumerate(model.monitoring.slice_columns or ()):
        if name not in sliceable:
            yield (
                f"{mon}.slice_columns[{j}]",
                (f"{name!r} is not a feature, segment, sensitive or metadata column"),
            )
    if model.monitoring.drift_methods != "all":
        for j, key in enumerate(model.monitoring.drift_methods):
            if key not in REGISTRY:
                yield (
                    f"{mon}.drift_methods[{j}]",
                    (f"unknown drift method {key!r}; registered: {', '.join(sorted(REGISTRY))}"),
                )
    yield from _check_drift(model.monitoring.numeric_drift, "numeric", f"{mon}.numeric_drift")
    yield from _check_drift(
        model.monitoring.categorical_drift, "categorical", f"{mon}.categorical_drift"
    )
    for j, feature in enumerate(cols.features):
        if feature.drift is not None:
            kind = "numeric" if feature.kind == "numeric" else "categorical"
            yield from _check_drift(feature.drift, kind, f"{at}.features[{j}].drift")


def _check_drift(drift: DriftConfig, kind: str, where: str) -> Iterator[tuple[str, str]]:
    for field_name, is_test in (("effect", False), ("test", True)):
        key = getattr(drift, field_name)
        if key is None:
            continue
        fitting = sorted(k for k, m in REGISTRY.items() if kind in m.kinds and m.is_test == is_test)
        if key not in fitting:
            what = "test" if is_test else "distance"
            yield (
                f"{where}.{field_name}",
                (f"{key!r} is not a {what} for {kind} columns; one of {', '.join(fitting)}"),
            )
    if drift.effect is None and drift.test is None:
        yield where, "name an effect, a test, or both"


__all__ = ["check_config"]
