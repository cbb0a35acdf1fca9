"""``triage(store, model, ...)``: pick the window and the metric, then run the steps."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from watchkeeper.catalogue import needs_labels
from watchkeeper.config import ModelConfig
from watchkeeper.errors import TriageError
from watchkeeper.store import Store
from watchkeeper.store.metrics import MetricsTable
from watchkeeper.triage import steps
from watchkeeper.triage.evidence import BASELINE_WINDOWS, CORRELATION_WINDOWS, load
from watchkeeper.triage.investigation import Investigation
from watchkeeper.triage.model import Triage, default_metric


def triage(
    store: Store,
    model: ModelConfig,
    *,
    metric: str | None = None,
    at: datetime | None = None,
    window: timedelta | None = None,
    alert: dict[str, Any] | None = None,
) -> Triage:
    """Investigate ``metric`` (default: the task's headline metric, or the alert's) at the
    window containing ``at`` (default: the alert's window, else the newest window)."""
    size = window or model.monitoring.window
    column = ""
    if alert is not None:
        labels = json.loads(alert["labels"])
        # A rule on one series names its metric; a combined rule's drop is the model's
        # headline metric (its conditions are the evidence, not the thing that fell).
        metric = metric or labels.get("metric") or _fell(alert, model)
        column = labels.get("column") or ""
        at = at or alert["window_start"]
        size = timedelta(seconds=int(alert["window_size_s"] or size.total_seconds()))
    wanted = metric or default_metric(model)
    horizon = size * (CORRELATION_WINDOWS + BASELINE_WINDOWS + 2)
    end = at
    if end is None:
        end = MetricsTable(store).newest(model.name, [wanted, f"estimated_{wanted}"], size)
        if end is None:
            raise TriageError(f"{model.name} has no {wanted!r} metric yet; run it first")
    m = load(store, model, end - horizon, end + size, size)
    # The metric's column: the alert's, else none, else the one it has (latency_ms).
    columns = m.columns(wanted) or m.columns(f"estimated_{wanted}")
    column = column or ("" if "" in columns or not columns else columns[0])
    starts = sorted(s for s in m.series(wanted, column) if s <= end)
    if not starts and m.series(f"estimated_{wanted}", column):
        wanted = f"estimated_{wanted}"  # no labels yet: the estimate is what there is
        starts = sorted(s for s in m.series(wanted, column) if s <= end)
    if not starts and alert is not None and size != model.monitoring.window:
        # An alert on a short window (a broken feature, a new version's scores, judged
        # six-hourly) that the headline metric is not computed on: the steps read that
        # window's own rows (its inputs, its versions), the alert having judged it.
        inv = Investigation(model, m, wanted, "", end, size, alert)
        inv.judged_elsewhere = True
        return investigate(inv)
    elsewhere = False
    if not starts and alert is not None and metric is not None:
        # The alert is on a segment's series (a gap, a slice): what matters is whether the
        # model's headline metric fell, and where; the alert has judged its own series, so
        # the headline holding does not make it "not real".
        wanted, column, elsewhere = default_metric(model), "", True
        starts = sorted(s for s in m.series(wanted, column) if s <= end)
        if not starts and m.series(f"estimated_{wanted}", column):
            wanted = f"estimated_{wanted}"
            starts = sorted(s for s in m.series(wanted, column) if s <= end)
    if not starts:
        raise TriageError(
            f"{model.name} has no {wanted!r} values at or before {end:%Y-%m-%d %H:%M}"
        )
    inv = Investigation(model, m, wanted, column, starts[-1], size, alert)
    inv.judged_elsewhere = elsewhere or (alert is not None and not _judged(alert, wanted))
    return investigate(inv)


def _held(alert: dict[str, Any]) -> set[str] | None:
    """The metrics (estimates counted as what they estimate) of the alert's conditions that
    held (None: the alert carries no readable evidence)."""
    try:
        evidence = json.loads(alert.get("evidence") or "[]")
    except (TypeError, ValueError):
        return None
    if not evidence:
        return None
    return {
        str(x.get("metric", "")).removeprefix("estimated_")
        for x in evidence
        if x.get("holds", True)
    }


def _fell(alert: dict[str, Any], model: ModelConfig) -> str | None:
    """The performance metric a rule over several fired on, when the headline is not among
    those that held and all that held are measured on labels (precision fell while ROC AUC
    held): triage what fell."""
    held = _held(alert)
    if not held or default_metric(model) in held or not all(needs_labels(k) for k in held):
        return None  # a combined rule (drift with calibration): its drop is the headline's
    return sorted(held)[0]


def _judged(alert: dict[str, Any], metric: str) -> bool:
    """Whether the alert's own evidence is on ``metric`` (or its estimate): else it fired
    on other signals (drift, calibration, a segment's gap) and whether the headline metric
    has fallen yet says nothing about whether the alert is real."""
    held = _held(alert)
    return not held or metric.removeprefix("estimated_") in held


def investigate(inv: Investigation) -> Triage:
    """The six steps, then the ranking."""
    value = inv.m.value(inv.metric, inv.w, inv.column)
    usual = inv.m.usual(inv.metric, inv.before, inv.column)
    found = [
        inv.is_it_real(value, usual),
        steps.data(inv),
        steps.model(inv),
        steps.infrastructure(inv),
        steps.where(inv),
        steps.business(inv),
    ]
    return Triage(
        inv.model.name,
        inv.metric,
        inv.w,
        inv.w + inv.size,
        value,
        usual,
        found,
        inv.rank(),
        inv.alert["alert_id"] if inv.alert else None,
        inv.segment,
        inv.feature,
    )


__all__ = ["investigate", "triage"]
