"""Alert evaluation on metric series with known answers: quiet on noise, fast on a step,
steady on a flapping series, escalating as evidence joins; live equals replay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from watchkeeper.alerts import AlertState, Point, SeriesKey, evaluate
from watchkeeper.config import RuleConfig

T0 = datetime(2026, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def rule(**fields: Any) -> RuleConfig:
    return RuleConfig.model_validate(fields)


def series(values: Any, metric: str = "row_count", column: str = "", **point: Any) -> dict:
    key = SeriesKey("m", metric, column, "*", "*")
    points = [
        Point(T0 + i * HOUR, T0 + (i + 1) * HOUR, None if v is None else float(v), **point)
        for i, v in enumerate(values)
    ]
    return {key: points}


def run_live(r: RuleConfig, data: dict, hours: int) -> list:
    """Evaluate after every window closes, carrying the state, as a scheduler would."""
    states: dict[str, AlertState] = {}
    events = []
    for h in range(1, hours + 1):
        states, found = evaluate(r, data, states, T0 + h * HOUR, HOUR)
        events += found
    return events


def test_a_stationary_series_over_ninety_days_raises_no_page() -> None:
    rng = np.random.default_rng([1, 1])
    hours = 90 * 24
    daily = 1000 + 300 * np.sin(2 * np.pi * np.arange(hours) / 24)  # seasonal traffic
    data = series(rng.normal(daily, 30))
    volume = rule(
        name="volume",
        severity="page",
        owner="infrastructure",
        conditions=[
            {
                "metric": "row_count",
                "against": "baseline",
                "baseline": {"windows": 14, "seasonal": "1d"},
            }
        ],
        **{"for": 3},
    )
    _, events = evaluate(volume, data, {}, T0 + hours * HOUR, HOUR)
    assert [e for e in events if e.severity == "page"] == []


def test_a_step_change_pages_within_the_hold() -> None:
    rng = np.random.default_rng([2, 1])
    values = rng.normal(1000, 30, 24 * 20)
    values[400:] -= 600  # traffic halves at hour 400
    volume = rule(
        name="volume",
        severity="page",
        conditions=[{"metric": "row_count", "against": "baseline", "baseline": {"windows": 48}}],
        **{"for": 3},
    )
    events = run_live(volume, series(values), len(values))
    firing = [e for e in events if e.kind == "firing"]
    assert len(firing) == 1
    assert firing[0].window_start == T0 + 402 * HOUR  # the third window below: the hold
    assert firing[0].severity == "page"
    assert "row count is" in firing[0].summary and "usually" in firing[0].summary


def test_a_flapping_series_does_not_flap_the_alert() -> None:
    # Above the threshold every other window for two days.
    values = [0.3 if i % 2 else 0.1 for i in range(48)] + [0.05] * 10
    flappy = rule(
        name="missing",
        conditions=[{"metric": "missing_rate", "above": 0.2}],
        keep_firing_for=2,
    )
    events = run_live(flappy, series(values, "missing_rate"), len(values))
    assert [e.kind for e in events] == ["firing", "resolved"]
    # Without hysteresis it would have fired 24 times.
    naive = rule(name="missing", conditions=[{"metric": "missing_rate", "above": 0.2}])
    assert (
        sum(e.kind == "firing" for e in run_live(naive, series(values, "missing_rate"), 58)) == 24
    )


def test_hysteresis_holds_until_the_value_crosses_back() -> None:
    values = [0.1, 0.3, 0.18, 0.17, 0.12, 0.1]
    r = rule(
        name="missing", conditions=[{"metric": "missing_rate", "above": 0.2, "resolve_at": 0.15}]
    )
    events = run_live(r, series(values, "missing_rate"), len(values))
    assert [(e.kind, e.window_start) for e in events] == [
        ("firing", T0 + HOUR),
        ("resolved", T0 + 4 * HOUR),
    ]


def test_a_combined_rule_opens_a_ticket_and_escalates_to_a_page() -> None:
    drift = [0.0] * 5 + [0.5] * 10
    calibration = [0.02] * 8 + [0.2] * 7
    kpi = [1.0] * 10 + [0.6] * 5
    data = {
        **series(drift, "drift", "amount"),
        **series(calibration, "expected_calibration_error"),
        **series(kpi, "outcome_rate", "confirmed_fraud"),
    }
    combined = rule(
        name="fraud_model_failing",
        severity="ticket",
        conditions=[
            {"metric": "drift", "column": "amount", "above": 0.2},
            {"metric": "expected_calibration_error", "above": 0.1},
            {"metric": "outcome_rate", "below": 0.8},
        ],
        require="any",
        escalate={"require": 3, "severity": "page"},
    )
    events = run_live(combined, data, 15)
    assert [(e.kind, e.severity, e.window_start) for e in events] == [
        ("firing", "ticket", T0 + 5 * HOUR),
        ("escalated", "page", T0 + 10 * HOUR),
    ]
    assert len(events[1].evidence) == 3  # every condition's evidence is carried


def test_k_of_n_needs_k_conditions() -> None:
    data = {**series([0.5] * 3, "drift", "a"), **series([0.0] * 3, "drift", "b")}
    two = rule(
        name="two",
        conditions=[
            {"metric": "drift", "column": "a", "above": 0.2},
            {"metric": "drift", "column": "b", "above": 0.2},
        ],
        require=2,
    )
    _, events = evaluate(two, data, {}, T0 + 3 * HOUR, HOUR)
    assert events == []


def test_small_windows_and_intervals_that_include_the_threshold_do_not_fire() -> None:
    r = rule(
        name="acc",
        conditions=[
            {"metric": "accuracy", "below": 0.9, "min_sample_size": 100, "interval_excludes": True}
        ],
    )
    few = series([0.5], "accuracy", sample_size=20, lower=0.3, upper=0.7)
    wide = series([0.85], "accuracy", sample_size=500, lower=0.8, upper=0.93)
    sure = series([0.85], "accuracy", sample_size=500, lower=0.82, upper=0.88)
    for data, fires in ((few, False), (wide, False), (sure, True)):
        _, events = evaluate(r, data, {}, T0 + HOUR, HOUR)
        assert bool(events) == fires


def test_comparison_with_the_reference() -> None:
    r = rule(
        name="drop",
        conditions=[{"metric": "estimated_accuracy", "against": "reference", "below": -0.05}],
    )
    data = series([0.95, 0.90], "estimated_accuracy")
    _, events = evaluate(r, data, {}, T0 + 2 * HOUR, HOUR, {("m", "accuracy", ""): 0.96})
    assert [e.window_start for e in events] == [T0 + HOUR]  # -6.25% from 0.96
    assert "-6.2% from the reference's 0.96" in events[0].summary


def test_status_conditions_and_segment_patterns() -> None:
    key = SeriesKey("m", "drift", "amount", "device", "android")
    whole = SeriesKey("m", "drift", "amount", "*", "*")
    data = {
        key: [Point(T0, T0 + HOUR, 0.4, status="drifted")],
        whole: [Point(T0, T0 + HOUR, 0.1, status="ok")],
    }
    r = rule(
        name="d", conditions=[{"metric": "drift", "segment": "device=*", "status": ["drifted"]}]
    )
    _, events = evaluate(r, data, {}, T0 + HOUR, HOUR)
    assert [e.labels["segment"] for e in events] == ["device=android"]
    r = rule(name="d", conditions=[{"metric": "drift", "status": ["drifted"]}])
    assert evaluate(r, data, {}, T0 + HOUR, HOUR)[1] == []  # whole traffic only


def test_open_windows_are_not_evaluated() -> None:
    r = rule(name="x", conditions=[{"metric": "row_count", "above": 5}])
    _, events = evaluate(r, series([10]), {}, T0 + HOUR / 2, HOUR)
    assert events == []


@pytest.mark.parametrize("seed", [3, 4])
def test_live_evaluation_equals_replay(seed: int) -> None:
    rng = np.random.default_rng([seed, 1])
    values = rng.normal(100, 5, 500)
    values[100:130] += 40
    values[300:302] -= 40
    values[400:480:3] += 60
    r = rule(
        name="v",
        conditions=[{"metric": "row_count", "against": "baseline", "baseline": {"windows": 24}}],
        keep_firing_for=1,
        **{"for": 2},
    )
    data = series(values)
    live = run_live(r, data, len(values))
    _, replay = evaluate(r, data, {}, T0 + len(values) * HOUR, HOUR)
    strip = [(e.kind, e.alert_id, e.window_start, e.severity, e.summary) for e in live]
    assert strip == [(e.kind, e.alert_id, e.window_start, e.severity, e.summary) for e in replay]
    assert sum(e.kind == "firing" for e in live) >= 2


def test_state_round_trips_through_json() -> None:
    s = AlertState("fp", "r", {"a": "b"}, "firing", 3, 1, "page", T0, T0 + HOUR, "fp-1")
    assert AlertState.from_json("fp", "r", {"a": "b"}, s.to_json()) == s


def test_group_by_makes_one_alert_per_segment() -> None:
    data = {
        SeriesKey("m", "segment_gap", metric, "region", region): [
            Point(T0, T0 + HOUR, -0.2, status="worse")
        ]
        for metric in ("recall", "precision", "accuracy")
        for region in ("asia", "europe")
    }
    one_each = rule(
        name="gap", conditions=[{"metric": "segment_gap", "segment": "any", "status": ["worse"]}]
    )
    assert len(evaluate(one_each, data, {}, T0 + HOUR, HOUR)[1]) == 6
    grouped = one_each.model_copy(update={"group_by": ("segment",)})
    events = evaluate(grouped, data, {}, T0 + HOUR, HOUR)[1]
    assert sorted(e.labels["segment"] for e in events) == ["region=asia", "region=europe"]


def maturing(values: Any, drop_from: int, labels_per_hour: int, now_hour: int) -> dict:
    """An AUC series as a live store holds it at ``now_hour``: each window's labels arrive
    over the 24 hours after it closes (sample size grows, provisional until then); the
    windows from ``drop_from`` have a real drop that shows only once enough labels are in
    (early on, too few labels to judge)."""
    key = SeriesKey("m", "roc_auc", "", "*", "*")
    points = []
    for i, v in enumerate(values):
        age = now_hour - (i + 1)
        if age < 0:
            break
        n = min(age, 24) * labels_per_hour
        value = float(v) if i >= drop_from else 0.9
        points.append(
            Point(
                T0 + i * HOUR,
                T0 + (i + 1) * HOUR,
                value,
                value - 0.01,
                value + 0.01,
                sample_size=n,
                provisional=age < 24,
            )
        )
    return {key: points}


def test_windows_are_judged_again_as_their_labels_mature() -> None:
    """Live evaluation (every hour, with the labels known then) fires the same alerts as one
    evaluation at the end, although each window first had too few labels to judge."""
    r = rule(
        name="drop",
        conditions=[{"metric": "roc_auc", "below": 0.8, "min_sample_size": 400}],
        **{"for": 2},
    )
    values = [0.9] * 60 + [0.7] * 40
    hours = 130
    states: dict[str, AlertState] = {}
    live = []
    for h in range(1, hours + 1):
        states, found = evaluate(r, maturing(values, 60, 20, h), states, T0 + h * HOUR, HOUR)
        live += found
    _, replay = evaluate(r, maturing(values, 60, 20, hours), {}, T0 + hours * HOUR, HOUR)
    fired = {e.alert_id for e in live if e.kind == "firing"}
    assert fired == {e.alert_id for e in replay if e.kind == "firing"}
    assert len(fired) == 1
    # It fired on the first window of the drop with enough labels, about a day late: the
    # labels' delay, not a judgement made once and never again.
    first = min(e.at for e in live if e.kind == "firing")
    assert T0 + 61 * HOUR < first <= T0 + 61 * HOUR + timedelta(hours=24)
    assert states[next(iter(states))].settled is not None


def test_an_alert_the_matured_labels_contradict_is_resolved() -> None:
    r = rule(name="drop", conditions=[{"metric": "roc_auc", "below": 0.8}])
    key = SeriesKey("m", "roc_auc", "", "*", "*")
    early = {key: [Point(T0, T0 + HOUR, 0.6, sample_size=50, provisional=True)]}
    states, events = evaluate(r, early, {}, T0 + HOUR, HOUR)
    assert [e.kind for e in events] == ["firing"]
    matured = {key: [Point(T0, T0 + HOUR, 0.88, sample_size=900)]}
    states, events = evaluate(r, matured, states, T0 + 2 * HOUR, HOUR)
    assert [e.kind for e in events] == ["resolved"]
    assert next(iter(states.values())).state == "inactive"


def test_an_alert_the_matured_labels_reveal_says_what_holds() -> None:
    r = rule(name="drop", conditions=[{"metric": "roc_auc", "below": 0.8}])
    key = SeriesKey("m", "roc_auc", "", "*", "*")
    early = {key: [Point(T0, T0 + HOUR, 0.88, sample_size=50, provisional=True)]}
    states, events = evaluate(r, early, {}, T0 + HOUR, HOUR)
    assert events == []
    matured = {key: [Point(T0, T0 + HOUR, 0.62, sample_size=900)]}
    states, events = evaluate(r, matured, states, T0 + 2 * HOUR, HOUR)
    assert [e.kind for e in events] == ["firing"]
    assert "0.62" in events[0].summary and "labels matured" in events[0].summary
    assert events[0].evidence and events[0].evidence[0].series.metric == "roc_auc"


def test_an_absent_condition_holds_when_nothing_it_selects_is_unusual() -> None:
    r = rule(
        name="model_change",
        conditions=[
            {"metric": "drift", "column": "score", "status": ["drifted"]},
            {"metric": "drift", "column": "x*", "status": ["drifted"], "absent": True},
        ],
    )

    def key(column: str) -> SeriesKey:
        return SeriesKey("m", "drift", column, "*", "*")

    def at(status: str) -> list[Point]:
        return [Point(T0, T0 + HOUR, 0.3, status=status)]

    alone = {key("score"): at("drifted"), key("x1"): at("ok"), key("x2"): at("ok")}
    _, events = evaluate(r, alone, {}, T0 + HOUR, HOUR)
    assert [e.kind for e in events] == ["firing"]
    assert "no drift is unusual" in events[0].summary
    with_inputs = {**alone, key("x2"): at("drifted")}
    _, events = evaluate(r, with_inputs, {}, T0 + HOUR, HOUR)
    assert events == []


def test_a_significance_condition_needs_the_metrics_own_test() -> None:
    r = rule(
        name="gap",
        conditions=[
            {"metric": "ratio_to_overall", "segment": "any", "below": 0.8, "max_p_value": 0.01}
        ],
    )
    key = SeriesKey("m", "ratio_to_overall", "positive_rate", "age_band", "18-25")
    noisy = {key: [Point(T0, T0 + HOUR, 0.5, p_value=0.2)]}
    assert evaluate(r, noisy, {}, T0 + HOUR, HOUR)[1] == []
    clear = {key: [Point(T0, T0 + HOUR, 0.5, p_value=0.001)]}
    assert [e.kind for e in evaluate(r, clear, {}, T0 + HOUR, HOUR)[1]] == ["firing"]
