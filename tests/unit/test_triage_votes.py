"""Triage's votes on stored rows: a concept shift, an early biased sample, outcomes still
arriving, and alerts judged on other signals than the headline metric."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from watchkeeper.config import EXAMPLE_CONFIG, parse_config
from watchkeeper.rows import MetricRow
from watchkeeper.triage.evidence import Metrics
from watchkeeper.triage.investigation import Investigation
from watchkeeper.triage.run import _judged, investigate

DAY = timedelta(days=1)
T0 = datetime(2026, 3, 1, tzinfo=UTC)
MODEL = parse_config(EXAMPLE_CONFIG).model("fraud")


def row(metric: str, day: int, value: float, column: str = "", **kw: Any) -> MetricRow:
    start = T0 + day * DAY
    return MetricRow(start, start + DAY, value, metric=metric, column=column, **kw)


def history(last: dict[str, dict[str, Any]], days: int = 10) -> list[MetricRow]:
    """Calm days, then the last one as given (metric → value and keywords)."""
    out = []
    for d in range(days):
        out += [
            row("roc_auc", d, 0.82, lower=0.80, upper=0.84, sample_size=2000),
            row("estimated_roc_auc", d, 0.82, lower=0.80, upper=0.84, sample_size=2000),
            row("label_coverage", d, 0.9, sample_size=2000),
            row("row_count", d, 2000.0, sample_size=2000),
            row("outcome_rate", d, 0.06, "confirmed_fraud", sample_size=2000),
        ]
    for metric, spec in last.items():
        out = [r for r in out if not (r.metric == metric and r.window_start == T0 + days * DAY)]
        column = spec.pop("column", "")
        out.append(row(metric, days, spec.pop("value"), column, sample_size=2000, **spec))
    return out


def triage_of(rows: list[MetricRow], alert: dict[str, Any] | None = None, judged: bool = True):  # type: ignore[no-untyped-def]
    inv = Investigation(MODEL, Metrics(rows), "roc_auc", "", T0 + 10 * DAY, DAY, alert)
    inv.judged_elsewhere = not judged
    return investigate(inv)


def calm_last(**changes: dict[str, Any]) -> list[MetricRow]:
    last: dict[str, dict[str, Any]] = {
        "estimated_roc_auc": {"value": 0.82},
        "label_coverage": {"value": 0.9},
        "row_count": {"value": 2000.0},
        "outcome_rate": {"value": 0.06, "column": "confirmed_fraud"},
    }
    last.update(changes)
    return history(last)


def test_realized_falling_beyond_its_interval_while_the_estimate_holds_is_a_concept_shift() -> None:
    found = triage_of(calm_last(roc_auc={"value": 0.70, "lower": 0.66, "upper": 0.74}))
    assert found.top.cause == "model"
    assert any("concept shift" in e for e in found.top.evidence)


def test_an_early_sample_no_maturer_window_confirms_is_not_real() -> None:
    found = triage_of(
        calm_last(
            roc_auc={"value": 0.70, "lower": 0.66, "upper": 0.74, "provisional": True},
            label_coverage={"value": 0.2, "provisional": True},
        )
    )
    assert found.top.cause == "not_real"


def test_an_outcome_rate_still_arriving_is_not_a_business_change() -> None:
    moved = {"value": 0.02, "column": "confirmed_fraud"}
    arriving = triage_of(calm_last(outcome_rate={**moved, "provisional": True}))
    final = triage_of(calm_last(outcome_rate=dict(moved)))
    assert not any(h.cause == "business" and h.score for h in arriving.hypotheses)
    assert any(h.cause == "business" and h.score for h in final.hypotheses)


def test_an_alert_on_other_signals_is_not_called_unreal_for_a_headline_that_held() -> None:
    drift = {"alert_id": "a1", "evidence": json.dumps([{"metric": "drift", "column": "amount"}])}
    auc = {"evidence": json.dumps([{"metric": "roc_auc"}, {"metric": "precision"}])}
    assert not _judged(drift, "roc_auc") and _judged(auc, "roc_auc")
    assert _judged(auc, "estimated_roc_auc") and _judged({"evidence": "[]"}, "roc_auc")
    calm = calm_last(roc_auc={"value": 0.82, "lower": 0.80, "upper": 0.84})
    assert triage_of(calm).top.cause == "not_real"
    assert not any(
        h.cause == "not_real" and h.score for h in triage_of(calm, drift, judged=False).hypotheses
    )


def test_an_outcome_rate_a_few_percent_off_is_not_a_business_change() -> None:
    # 0.06 every day: the spread is nil, and a 5% move is still no change of behaviour.
    slight = triage_of(calm_last(outcome_rate={"value": 0.057, "column": "confirmed_fraud"}))
    assert not any(h.cause == "business" and h.score for h in slight.hypotheses)


def test_a_weak_slice_alert_blames_the_model_on_that_slice() -> None:
    rows = calm_last(roc_auc={"value": 0.82, "lower": 0.80, "upper": 0.84})
    worst = "region=west & device=android"
    rows.append(
        row("weak_slice", 10, 0.15, worst, sample_size=95, status="worse",
            detail="error rate 0.27 against 0.12 elsewhere")
    )  # fmt: skip
    inv = Investigation(MODEL, Metrics(rows), "weak_slice", "", T0 + 10 * DAY, DAY, None)
    inv.judged_elsewhere = True
    found = investigate(inv)
    assert found.top.cause == "model"
    assert any(worst in e for e in found.top.evidence)


def test_an_early_drop_a_weak_slice_accounts_for_is_the_model_on_that_slice() -> None:
    # The whole's interval still holds the usual level on a fifth of the labels, but the
    # slice search found the same pair significantly worse the two days before: the drop
    # is real and local (no input drifted), not an early-label artefact.
    def early() -> list[MetricRow]:
        return calm_last(
            roc_auc={"value": 0.78, "lower": 0.70, "upper": 0.83, "provisional": True},
            label_coverage={"value": 0.2, "provisional": True},
        )

    worst = "region=west & device=android"
    rows = early()
    for day in (8, 9):
        rows.append(
            row("weak_slice", day, 0.15, worst, sample_size=80, status="worse", p_value=0.03,
                provisional=True, detail="error rate 0.29 against 0.14 elsewhere")
        )  # fmt: skip
    found = triage_of(rows)
    assert found.top.cause == "model"
    assert any(worst in e for e in found.top.evidence)
    # Without the slice it stays what it was: an early sample nothing confirms.
    assert triage_of(early()).top.cause == "not_real"
    # A slice of long ago, before the change and the last few windows, is not evidence.
    long_ago = row("weak_slice", 2, 0.15, worst, sample_size=80, status="worse", p_value=0.03)
    old = [*early(), long_ago]
    assert triage_of(old).top.cause == "not_real"
    # Nor is a slice that was weak before the change as well: it is how the model always was.
    always = [*rows, long_ago]
    assert triage_of(always).top.cause == "not_real"
