"""init --from: a config guessed from logged events (roles by name and values), with the
example config's rules fitted to the schema."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from watchkeeper.config import EXAMPLE_CONFIG, parse_config
from watchkeeper.config.rules import RuleInputs, default_alerting
from watchkeeper.demo.scenario import eta_day, fraud_day
from watchkeeper.errors import InputError
from watchkeeper.ingest.infer import infer, infer_config

FRAUD_FEATURES = ("amount", "merchant_category", "country", "account_age_days", "is_new_user")


def fraud_frame(n: int = 3_000, day: int = 34) -> pd.DataFrame:
    """A day of the demo's fraud events (day 34 has timeouts) with their labels."""
    d = fraud_day(np.random.default_rng(7), day, n)
    return d.events.merge(d.labels, on="event_id")


def rules(text: str) -> dict[str, dict[str, object]]:
    config = parse_config(text)
    return {r.name: r.model_dump(by_alias=True) for r in config.alerting.rules}


def test_the_demo_events_get_their_roles_and_a_config_that_loads() -> None:
    text = infer_config(fraud_frame(), model="fraud")
    model = parse_config(text).model("fraud")
    cols = model.columns
    assert model.task == "binary_classification"
    assert model.decision_threshold == 0.5
    assert (cols.event_id, cols.timestamp) == ("event_id", "timestamp")
    assert (cols.score, cols.prediction) == ("score", "prediction")
    assert (cols.latency, cols.status, cols.model_version) == (
        "latency_ms",
        "status",
        "model_version",
    )
    assert cols.segments == ("region", "device", "user_type")
    assert cols.sensitive == ("age_band",)
    assert cols.metadata == ("feature_version",)
    assert [(f.name, f.kind) for f in cols.features] == [
        ("amount", "numeric"),
        ("merchant_category", "categorical"),
        ("country", "categorical"),
        ("account_age_days", "numeric"),
        ("is_new_user", "boolean"),
    ]
    # Nothing that would quarantine real rows.
    assert all(f.nullable and f.range is None and f.values is None for f in cols.features)
    assert (model.labels.column, model.labels.timestamp) == ("label", "label_timestamp")
    assert model.monitoring.window == timedelta(days=1)
    assert model.monitoring.min_rows == 100 and model.monitoring.min_labels == 100


def test_each_role_has_its_reason_beside_it() -> None:
    text = infer_config(fraud_frame(), model="fraud")
    line = next(x for x in text.splitlines() if x.strip().startswith("score:"))
    assert "# floats within [0, 1], named like a probability" in line
    line = next(x for x in text.splitlines() if x.strip().startswith("status:"))
    assert "error" in line and "ok" in line and "timeout" in line


def test_the_rules_are_the_examples_with_the_features_found() -> None:
    found = rules(infer_config(fraud_frame(), model="fraud"))
    example = rules(EXAMPLE_CONFIG)
    # The rules that need outcomes or costs cannot apply: init --from knows none.
    assert set(example) - set(found) == {"business_kpi_change", "cost_of_mistakes"}
    for name in set(found) - {"model_degrading"}:
        assert found[name] == example[name], name
    # model_degrading keeps its drift and calibration conditions, not the outcome one.
    assert [c["metric"] for c in found["model_degrading"]["conditions"]] == [
        "drift",
        "expected_calibration_error",
    ]
    assert found["model_degrading"]["escalate"] is None


def test_the_feature_lists_of_the_rules_are_the_models() -> None:
    events = eta_day(np.random.default_rng(3), 2, 2_000)
    frame = events[0].merge(events[1], on="event_id").rename(columns={"traffic": "congestion"})
    found = rules(infer_config(frame, model="eta", label="minutes"))
    drift = found["feature_drift"]["conditions"][0]
    assert drift["column"] == ("distance_km", "congestion", "city")
    assert found["prediction_drift"]["conditions"][0]["column"] == ("eta_minutes",)


def test_a_regression_model_gets_the_regression_metrics() -> None:
    events, labels = eta_day(np.random.default_rng(3), 2, 2_000)
    result = infer(events.merge(labels, on="event_id"), model="eta", label="minutes")
    model = parse_config(result.yaml).model("eta")
    assert model.task == "regression"
    assert model.columns.prediction == "eta_minutes"  # closest to the label's values
    assert model.columns.score is None and model.threshold is None
    found = rules(result.yaml)
    drop = found["performance_drop"]
    assert [(c["metric"], c["above"], c["against"]) for c in drop["conditions"]] == [
        ("mae", 0.05, "reference"),
        ("rmse", 0.05, "reference"),
    ]
    assert drop["require"] == "any"
    estimated = found["estimated_performance_drop"]["conditions"]
    assert [c["metric"] for c in estimated] == ["estimated_mae", "estimated_rmse"]
    for gone in ("calibration", "fairness_gap", "latency", "error_rate", "model_change"):
        assert gone not in found
    assert any(m.startswith("latency rule left out") for m in result.missing)


def test_renamed_columns_are_found_by_their_values() -> None:
    frame = fraud_frame(2_000, day=3).rename(
        columns={
            "event_id": "request_id",
            "timestamp": "ts",
            "score": "proba",
            "prediction": "pred",
            "latency_ms": "latency",
            "status": "outcome_status",
            "label": "is_fraud",
            "label_timestamp": "label_time",
        }
    )
    frame["ts"] = frame["ts"].astype(str)  # logged as text
    model = parse_config(infer_config(frame, model="fraud")).model("fraud")
    cols = model.columns
    assert (cols.event_id, cols.timestamp) == ("request_id", "ts")
    assert (cols.score, cols.prediction, cols.latency) == ("proba", "pred", "latency")
    assert cols.status == "outcome_status"
    assert (model.labels.column, model.labels.timestamp) == ("is_fraud", "label_time")
    found = rules(infer_config(frame, model="fraud"))
    assert found["model_change"]["conditions"][0]["column"] == ("proba", "pred")


def test_what_the_schema_lacks_leaves_its_rules_out() -> None:
    frame = fraud_frame(2_000, day=3).drop(
        columns=["latency_ms", "status", "age_band", "region", "device", "user_type"]
    )
    result = infer(frame, model="fraud")
    found = rules(result.yaml)
    for gone in ("latency", "error_rate", "fairness_gap", "segment_gap"):
        assert gone not in found
    assert "weak_slice" in found and "performance_drop" in found
    assert "latency rule left out: latency_p99 (no latency column)" in result.missing
    assert any(m.startswith("no status column") for m in result.missing)


def test_a_file_without_a_timestamp_is_refused_with_what_was_looked_for() -> None:
    frame = fraud_frame(500, day=3).drop(columns=["timestamp", "label_timestamp"])
    with pytest.raises(InputError, match=r"no timestamp column: looked for a datetime column"):
        infer_config(frame)
    frame = fraud_frame(500, day=3).drop(columns=["event_id"])
    with pytest.raises(InputError, match=r"no event id column: .* named event_id, request_id"):
        infer_config(frame)


def test_a_status_without_ok_is_not_taken_for_one() -> None:
    frame = fraud_frame(1_000, day=3)
    frame["status"] = frame["status"].replace({"ok": "success"})
    result = infer(frame, model="fraud")
    assert parse_config(result.yaml).model("fraud").columns.status is None
    assert any("has no 'ok'" in m for m in result.missing)


def test_the_example_rules_come_back_unchanged_for_the_examples_schema() -> None:
    inputs = RuleInputs(
        "binary_classification",
        FRAUD_FEATURES,
        "score",
        "prediction",
        latency=True,
        status=True,
        model_version=True,
        segments=True,
        sensitive=True,
        outcomes=True,
        costs=True,
    )
    found = default_alerting(inputs)
    assert found.notes == []
    assert found.text == EXAMPLE_CONFIG[EXAMPLE_CONFIG.index("\nalerting:\n") + 1 :]


def test_named_outcomes_bring_their_rules() -> None:
    without = rules(infer_config(fraud_frame(), model="fraud"))
    text = infer_config(fraud_frame(), model="fraud", outcomes=["confirmed_fraud", "review"])
    config = parse_config(text)
    assert [o.name for o in config.model("fraud").outcomes] == ["confirmed_fraud", "review"]
    found = rules(text)
    assert "business_kpi_change" in found and "business_kpi_change" not in without
    degrading = parse_config(text).alerting.rules
    metrics = [c.metric for r in degrading if r.name == "model_degrading" for c in r.conditions]
    assert "outcome_rate" in metrics
    with pytest.raises(InputError, match="outcome name"):
        infer_config(fraud_frame(), outcomes=["Bad Name"])


def test_the_labels_delay_and_coverage_come_from_the_sample() -> None:
    frame = fraud_frame()  # the demo's labels arrive 2 to 12 days after the event
    frame.loc[frame.index[:300], "label"] = np.nan  # a tenth never labelled
    labels = parse_config(infer_config(frame, model="fraud")).model("fraud").labels
    assert timedelta(days=12) < labels.max_delay <= timedelta(days=15)
    assert labels.expected_coverage == 0.9
