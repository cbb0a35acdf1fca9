"""Performance in a run: from pushed-down counts, equal to scikit-learn on the window's
labelled events, provisional until labels mature, recomputed as late labels arrive."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

import watchkeeper
from tests.helpers import MONITOR_T0 as T0
from tests.helpers import Clock
from tests.helpers import monitor_rows as rows
from watchkeeper.config import parse_config
from watchkeeper.tasks import regression as loss_estimation

YAML = """\
engine: {path: store.duckdb}
models:
  - name: m
    task: binary_classification
    threshold: 0.5
    columns:
      event_id: id
      timestamp: ts
      features:
        - {name: x, kind: numeric}
        - {name: c, kind: categorical}
      score: score
      segments: [region]
    labels:
      expected_coverage: 0.9
      max_delay: 7d
    monitoring:
      window: 1d
      min_labels: 50
"""


def scored(n: int, seed: int) -> pd.DataFrame:
    frame = rows(n, T0, 24, seed=seed).to_pandas()
    # Another stream than the one that drew the features: labels independent of them.
    rng = np.random.default_rng([seed, 1])
    frame["label"] = (rng.uniform(size=n) < 0.3).astype(int)
    frame["score"] = np.clip(rng.beta(2, 5, n) + 0.35 * frame["label"], 0, 1)
    return frame


@pytest.fixture
def ws(tmp_path: Path, clock: Clock) -> Any:
    clock.now = T0 + timedelta(days=1, hours=1)
    with watchkeeper.open(parse_config(YAML, base_dir=tmp_path), clock=clock) as w:
        ref = scored(5000, 1)
        w.set_reference("m", ref.drop(columns=["id", "ts"]))
        yield w


def metric(table: Any, name: str, segment: tuple[str, str] = ("*", "*")) -> dict[str, Any]:
    found = [
        r
        for r in table.to_pylist()
        if r["metric"] == name and (r["segment_column"], r["segment_value"]) == segment
    ]
    assert len(found) == 1, (name, found)
    return found[0]


def test_metrics_equal_scikit_learn_and_mature_with_late_labels(
    ws: watchkeeper.Workspace, clock: Clock
) -> None:
    events = scored(3000, 2)
    ws.ingest_events("m", events.drop(columns=["label"]))
    first = events.iloc[:1200]  # labels for 40% of the day arrive first
    ws.ingest_labels("m", first[["id", "label"]])
    result = ws.run("m").metrics
    cov = metric(result, "label_coverage")
    assert cov["value"] == pytest.approx(0.4) and cov["provisional"] is True
    auc = metric(result, "roc_auc")
    assert auc["provisional"] is True and "labels for 40% of events" in auc["detail"]
    exact = skm.roc_auc_score(first["label"], first["score"])
    assert auc["value"] == pytest.approx(exact, abs=1e-9)
    assert auc["lower"] < auc["value"] < auc["upper"]
    acc = metric(result, "accuracy")
    assert acc["value"] == pytest.approx(
        skm.accuracy_score(first["label"], (first["score"] >= 0.5).astype(int))
    )
    assert acc["sample_size"] == 1200
    # Everything measured on labels is provisional, so that rules judge it again later.
    on_labels = {"segment_gap", "weak_slice", "roc_auc", "accuracy", "label_coverage"}
    early = [r for r in result.to_pylist() if r["metric"] in on_labels]
    assert {r["metric"] for r in early} == on_labels
    assert all(r["provisional"] for r in early)

    # The rest of the labels arrive: the window is dirty, recomputed, and now final.
    clock.now += timedelta(days=1)
    ws.ingest_labels("m", events.iloc[1200:][["id", "label"]])
    clock.now += timedelta(hours=1)
    again = ws.run("m")
    assert again.windows == [T0]
    result = again.metrics
    assert metric(result, "label_coverage")["provisional"] is False
    assert not any(r["provisional"] for r in result.to_pylist() if r["metric"] in on_labels)
    for name, reference in [
        ("precision", lambda y, s: skm.precision_score(y, s >= 0.5)),
        ("recall", lambda y, s: skm.recall_score(y, s >= 0.5)),
        ("f1", lambda y, s: skm.f1_score(y, s >= 0.5)),
        ("log_loss", lambda y, s: skm.log_loss(y, s)),
        ("brier", lambda y, s: skm.brier_score_loss(y, s)),
    ]:
        row = metric(result, name)
        assert row["provisional"] is False
        assert row["value"] == pytest.approx(reference(events["label"], events["score"])), name
    table = {
        r["column"]: r
        for r in result.to_pylist()
        if r["metric"] == "reliability" and r["segment_column"] == "*"
    }
    high = events[(events.score >= 0.7) & (events.score < 0.8)]
    assert table["[0.7, 0.8)"]["value"] == pytest.approx(high["label"].mean())
    assert table["[0.7, 0.8)"]["detail"] == f"mean score {high['score'].mean():.3f}"
    north = events[events.region == "a"]
    assert metric(result, "accuracy", ("region", "a"))["value"] == pytest.approx(
        skm.accuracy_score(north["label"], (north["score"] >= 0.5).astype(int))
    )
    assert len(ws.metrics("m", metric="roc_auc", segment="*")) == 1  # replaced, not added


def on_edges(n: int, seed: int, days: int) -> pd.DataFrame:
    """Events over ``days`` days whose scores are often tied and often on a bin edge
    (0.29, 0.57, 0.58: k / 100 whose float64 product with 100 falls below k)."""
    frame = rows(n, T0, 24 * days, seed=seed).to_pandas()
    rng = np.random.default_rng([seed, 2])
    frame["label"] = (rng.uniform(size=n) < 0.3).astype(int)
    score = np.clip(rng.beta(2, 5, n) + 0.35 * frame["label"], 0, 1)
    pick = rng.uniform(size=n)
    score = np.where(pick < 0.15, rng.choice([0.29, 0.57, 0.58, 0.5, 0.3], n), score)
    frame["score"] = np.where((pick >= 0.15) & (pick < 0.4), score.round(2), score)
    return frame


@pytest.mark.parametrize("cap", [512, 0], ids=["combined", "per-segment-set"])
def test_roc_auc_equals_scikit_learn_in_every_window_and_segment(
    ws: watchkeeper.Workspace, clock: Clock, monkeypatch: pytest.MonkeyPatch, cap: int
) -> None:
    import watchkeeper.profiles.base as compute

    monkeypatch.setattr(compute, "COMBINATIONS_CAP", cap)
    clock.now = T0 + timedelta(days=3, hours=1)
    events = on_edges(6000, 12, days=3)
    ws.ingest_events("m", events.drop(columns=["label"]))
    ws.ingest_labels("m", events[["id", "label"]])
    result = ws.run("m").metrics.to_pylist()
    day = events["ts"].dt.floor("1D")
    found = [r for r in result if r["metric"] == "roc_auc"]
    assert len(found) == 3 * 3  # three days, the whole traffic and two regions
    for r in found:
        mine = events[day == pd.Timestamp(r["window_start"])]
        if r["segment_column"] == "region":
            mine = mine[mine["region"] == r["segment_value"]]
        exact = skm.roc_auc_score(mine["label"], mine["score"])
        assert r["value"] == pytest.approx(exact, abs=1e-9), r
        assert "unbinned" not in r["detail"]  # exact: no binning bound to state
    # The score bins hold what numpy puts there: 0.29 in [0.2, 0.3), 0.3 in [0.3, 0.4).
    first = events[day == pd.Timestamp(T0)]
    table = {
        r["column"]: r
        for r in result
        if r["metric"] == "reliability" and r["segment_column"] == "*" and r["window_start"] == T0
    }
    for low in (0.2, 0.3, 0.5):
        mine = first[(first["score"] >= low) & (first["score"] < round(low + 0.1, 1))]
        row = table[f"[{low:.1f}, {low + 0.1:.1f})"]
        assert row["sample_size"] == len(mine)
        assert row["value"] == pytest.approx(mine["label"].mean())


def test_a_window_becomes_final_after_the_maximum_label_delay(
    ws: watchkeeper.Workspace, clock: Clock
) -> None:
    events = scored(1000, 3)
    ws.ingest_events("m", events.drop(columns=["label"]))
    ws.ingest_labels("m", events.iloc[:300][["id", "label"]])
    assert metric(ws.run("m").metrics, "roc_auc")["provisional"] is True
    clock.now = T0 + timedelta(days=9)
    late = ws.run("m", full=True).metrics
    assert metric(late, "roc_auc")["provisional"] is False  # 30% is all there will be


def test_few_labels_are_insufficient_data(ws: watchkeeper.Workspace) -> None:
    events = scored(1000, 4)
    ws.ingest_events("m", events.drop(columns=["label"]))
    ws.ingest_labels("m", events.iloc[:20][["id", "label"]])
    row = metric(ws.run("m").metrics, "accuracy")
    assert row["status"] == "insufficient_data" and row["value"] is None
    assert row["detail"].startswith("20 labelled events; needs 50")


def test_label_lag_is_measured_per_window(ws: watchkeeper.Workspace) -> None:
    events = scored(1000, 5)
    ws.ingest_events("m", events.drop(columns=["label"]))
    labels = events[["id", "label"]].copy()
    lag_hours = np.where(np.arange(1000) % 2 == 0, 2.0, 10.0)
    labels["label_timestamp"] = events["ts"] + pd.to_timedelta(lag_hours, unit="h")
    ws.ingest_labels("m", labels)
    result = ws.run("m").metrics
    p50, p90 = metric(result, "label_lag_p50"), metric(result, "label_lag_p90")
    assert p50["value"] / 3600 == pytest.approx(np.quantile(lag_hours, 0.5), abs=4)
    assert p90["value"] / 3600 == pytest.approx(10.0, abs=0.1)
    assert p90["sample_size"] == 1000 and p90["detail"] == "10.0 hours"


def test_cost_and_value_of_the_decisions(tmp_path: Path, clock: Clock) -> None:
    clock.now = T0 + timedelta(days=1, hours=1)
    costed = YAML.replace(
        "    labels:\n",
        "    costs: {false_positive: 5, false_negative: 120, true_positive_value: 100}\n"
        "    labels:\n",
    )
    with watchkeeper.open(parse_config(costed, base_dir=tmp_path), clock=clock) as w:
        w.set_reference("m", scored(5000, 1).drop(columns=["id", "ts"]))
        events = scored(2000, 6)
        w.ingest_events("m", events.drop(columns=["label"]))
        w.ingest_labels("m", events[["id", "label"]])
        result = w.run("m").metrics
    y, yhat = events["label"].to_numpy(), (events["score"] >= 0.5).to_numpy().astype(int)
    tp = int(((y == 1) & (yhat == 1)).sum())
    fp = int(((y == 0) & (yhat == 1)).sum())
    fn = int(((y == 1) & (yhat == 0)).sum())
    assert metric(result, "cost")["value"] == 5 * fp + 120 * fn
    assert metric(result, "value")["value"] == 100 * tp
    assert metric(result, "net_value")["value"] == 100 * tp - 5 * fp - 120 * fn
    assert metric(result, "cost")["detail"] == f"{tp} TP, {fp} FP, {fn} FN"


def test_fairness_matches_fairlearn(tmp_path: Path, clock: Clock) -> None:
    from fairlearn.metrics import (
        MetricFrame,
        demographic_parity_difference,
        demographic_parity_ratio,
        equalized_odds_difference,
        equalized_odds_ratio,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )

    clock.now = T0 + timedelta(days=1, hours=1)
    fair = YAML.replace(
        "      segments: [region]\n", "      segments: [region]\n      sensitive: [group]\n"
    )
    rng = np.random.default_rng(9)

    def with_groups(frame: pd.DataFrame) -> pd.DataFrame:
        frame["group"] = rng.choice(
            ["g1", "g2", "g3", "tiny"], len(frame), p=[0.5, 0.3, 0.195, 0.005]
        )
        # The model favours g1: its scores are nudged up.
        frame["score"] = np.clip(frame["score"] + 0.1 * (frame["group"] == "g1"), 0, 1)
        return frame

    with watchkeeper.open(parse_config(fair, base_dir=tmp_path), clock=clock) as w:
        w.set_reference("m", with_groups(scored(5000, 1)).drop(columns=["id", "ts"]))
        events = with_groups(scored(4000, 7))
        w.ingest_events("m", events.drop(columns=["label"]))
        w.ingest_labels("m", events[["id", "label"]])
        result = w.run("m").metrics
    kept = events[events.group != "tiny"]  # 0.5% of 4000: below min_labels, left out
    y, g = kept["label"], kept["group"]
    yhat = (kept["score"] >= 0.5).astype(int)
    frame = MetricFrame(
        metrics={"sel": selection_rate, "tpr": true_positive_rate, "fpr": false_positive_rate},
        y_true=y,
        y_pred=yhat,
        sensitive_features=g,
    )
    for group in ("g1", "g2", "g3"):
        assert metric(result, "positive_rate", ("group", group))["value"] == pytest.approx(
            frame.by_group.loc[group, "sel"]
        )
        assert metric(result, "recall", ("group", group))["value"] == pytest.approx(
            frame.by_group.loc[group, "tpr"]
        )
        assert metric(result, "false_positive_rate", ("group", group))["value"] == pytest.approx(
            frame.by_group.loc[group, "fpr"]
        )
    dp = metric(result, "demographic_parity_difference", ("group", "*"))
    assert dp["value"] == pytest.approx(
        demographic_parity_difference(y, yhat, sensitive_features=g)
    )
    assert dp["p_value"] < 0.01 and dp["detail"] == "groups with too few labels left out: tiny"
    assert metric(result, "demographic_parity_ratio", ("group", "*"))["value"] == pytest.approx(
        demographic_parity_ratio(y, yhat, sensitive_features=g)
    )
    assert metric(result, "equalized_odds_difference", ("group", "*"))["value"] == pytest.approx(
        equalized_odds_difference(y, yhat, sensitive_features=g)
    )
    assert metric(result, "equalized_odds_ratio", ("group", "*"))["value"] == pytest.approx(
        equalized_odds_ratio(y, yhat, sensitive_features=g)
    )
    overall_selection = ((events["score"] >= 0.5).astype(int)).mean()
    g1 = [
        r
        for r in result.to_pylist()
        if r["segment_value"] == "g1"
        and r["column"] == "positive_rate"
        and r["metric"] in ("difference_to_overall", "ratio_to_overall")
    ]
    by_metric = {r["metric"]: r for r in g1}
    assert by_metric["difference_to_overall"]["value"] == pytest.approx(
        frame.by_group.loc["g1", "sel"] - overall_selection
    )
    assert by_metric["ratio_to_overall"]["value"] == pytest.approx(
        frame.by_group.loc["g1", "sel"] / overall_selection
    )
    assert by_metric["difference_to_overall"]["p_value"] < 0.01  # the favoured group
    share = metric(result, "traffic_share", ("group", "g1"))
    assert share["value"] == pytest.approx((events.group == "g1").mean())
    assert share["detail"].endswith("of the reference")


def test_a_gap_on_few_people_reads_as_uncertain(tmp_path: Path, clock: Clock) -> None:
    clock.now = T0 + timedelta(days=1, hours=1)
    fair = YAML.replace(
        "      segments: [region]\n", "      segments: [region]\n      sensitive: [group]\n"
    )
    with watchkeeper.open(parse_config(fair, base_dir=tmp_path), clock=clock) as w:
        ref = scored(5000, 1)
        ref["group"] = np.where(np.arange(5000) % 2 == 0, "a", "b")
        w.set_reference("m", ref.drop(columns=["id", "ts"]))
        events = scored(240, 8)  # 120 people a group: same model, no real gap
        events["group"] = np.where(np.arange(240) % 2 == 0, "a", "b")
        w.ingest_events("m", events.drop(columns=["label"]))
        w.ingest_labels("m", events[["id", "label"]])
        dp = metric(w.run("m").metrics, "demographic_parity_difference", ("group", "*"))
    assert dp["p_value"] > 0.05  # whatever difference was measured is not significant


def test_regression_metrics_in_a_run(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    yaml = """\
engine: {path: store.duckdb}
models:
  - name: prices
    task: regression
    columns:
      event_id: id
      timestamp: ts
      features:
        - {name: rooms, kind: numeric}
      prediction: price
      segments: [city]
    monitoring: {window: 1d, min_labels: 50}
"""
    clock.now = T0 + timedelta(days=1, hours=1)
    rng = np.random.default_rng(12)

    def frame(n: int, prefix: str) -> pd.DataFrame:
        rooms = rng.integers(1, 6, n)
        truth = 50_000 * rooms + rng.normal(0, 20_000, n)
        return pd.DataFrame(
            {
                "id": [f"{prefix}{i}" for i in range(n)],
                "ts": [T0 + timedelta(seconds=int(s)) for s in rng.uniform(0, 86_000, n)],
                "rooms": rooms.astype(float),
                "price": truth + rng.normal(3_000, 15_000, n),
                "city": rng.choice(["x", "y"], n),
                "label": truth,
            }
        )

    with watchkeeper.open(parse_config(yaml, base_dir=tmp_path), clock=clock) as w:
        w.set_reference("prices", frame(3000, "r").drop(columns=["id", "ts"]))
        events = frame(2000, "e")
        w.ingest_events("prices", events.drop(columns=["label"]))
        w.ingest_labels("prices", events[["id", "label"]])
        result = w.run("prices").metrics
    y, p = events["label"], events["price"]
    assert metric(result, "mae")["value"] == pytest.approx(skm.mean_absolute_error(y, p))
    assert metric(result, "rmse")["value"] == pytest.approx(skm.root_mean_squared_error(y, p))
    assert metric(result, "r2")["value"] == pytest.approx(skm.r2_score(y, p))
    assert metric(result, "mape")["value"] == pytest.approx(
        skm.mean_absolute_percentage_error(y, p)
    )
    bias = metric(result, "mean_error")
    assert bias["value"] == pytest.approx(float(np.mean(p - y)))
    assert bias["lower"] < 3_000 < bias["upper"]  # the planted bias is inside the interval
    residuals = (p - y).to_numpy()
    for name, q in (("residual_p10", 0.1), ("residual_p50", 0.5), ("residual_p90", 0.9)):
        assert metric(result, name)["value"] == pytest.approx(np.quantile(residuals, q))
    # The events are streamed through the loss model: any batch size gives the same sums.
    monkeypatch.setattr(loss_estimation, "BATCH_ROWS", 97)
    with watchkeeper.open(parse_config(yaml, base_dir=tmp_path), clock=clock) as w:
        again = w.run("prices", full=True).metrics
    for name in ("estimated_mae", "estimated_rmse"):
        assert metric(again, name)["value"] == pytest.approx(metric(result, name)["value"])
    x = events[events.city == "x"]
    assert metric(result, "mae", ("city", "x"))["value"] == pytest.approx(
        skm.mean_absolute_error(x["label"], x["price"])
    )
    # Estimated without labels (direct loss estimation), and backtested at once.
    estimate = metric(result, "estimated_mae")
    assert estimate["lower"] < skm.mean_absolute_error(y, p) < estimate["upper"]
    assert "assuming no concept shift" in estimate["detail"]
    assert (
        metric(result, "estimated_rmse", ("city", "y"))["sample_size"] == (events.city == "y").sum()
    )
    backtest = {
        r["column"]: r
        for r in result.to_pylist()
        if r["metric"] == "estimation_error" and r["segment_column"] == "*"
    }
    assert backtest["mae"]["status"] == "ok"
    assert backtest["mae"]["value"] == pytest.approx(
        estimate["value"] - skm.mean_absolute_error(y, p)
    )


def test_multiclass_metrics_in_a_run(tmp_path: Path, clock: Clock) -> None:
    yaml = """\
engine: {path: store.duckdb}
models:
  - name: animals
    task: multiclass_classification
    classes: [cat, dog, fox]
    columns:
      event_id: id
      timestamp: ts
      features:
        - {name: size, kind: numeric}
      prediction: guess
      scores: {cat: p_cat, dog: p_dog, fox: p_fox}
    monitoring: {window: 1d, min_labels: 50}
"""
    clock.now = T0 + timedelta(days=1, hours=1)
    rng = np.random.default_rng(14)
    classes = np.array(["cat", "dog", "fox"])

    def frame(n: int, prefix: str) -> pd.DataFrame:
        y = rng.choice(classes, n, p=[0.5, 0.3, 0.2])
        logits = rng.normal(0, 1, (n, 3)) + 1.2 * (classes == y[:, None])
        probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        return pd.DataFrame(
            {
                "id": [f"{prefix}{i}" for i in range(n)],
                "ts": [T0 + timedelta(seconds=int(s)) for s in rng.uniform(0, 86_000, n)],
                "size": rng.normal(10, 3, n),
                "guess": classes[probs.argmax(axis=1)],
                "p_cat": probs[:, 0],
                "p_dog": probs[:, 1],
                "p_fox": probs[:, 2],
                "label": y,
            }
        )

    with watchkeeper.open(parse_config(yaml, base_dir=tmp_path), clock=clock) as w:
        w.set_reference("animals", frame(2000, "r").drop(columns=["id", "ts"]))
        events = frame(1500, "e")
        w.ingest_events("animals", events.drop(columns=["label"]))
        w.ingest_labels("animals", events[["id", "label"]])
        result = w.run("animals").metrics
    y, p = events["label"], events["guess"]
    assert metric(result, "accuracy")["value"] == pytest.approx(skm.accuracy_score(y, p))
    assert metric(result, "macro_f1")["value"] == pytest.approx(skm.f1_score(y, p, average="macro"))
    assert metric(result, "weighted_recall")["value"] == pytest.approx(
        skm.recall_score(y, p, average="weighted")
    )
    probs = events[["p_cat", "p_dog", "p_fox"]].to_numpy()
    assert metric(result, "log_loss")["value"] == pytest.approx(
        skm.log_loss(y, probs, labels=list(classes))
    )
    per_class = {r["column"]: r["value"] for r in result.to_pylist() if r["metric"] == "recall"}
    expected = skm.recall_score(y, p, labels=list(classes), average=None)
    assert per_class == pytest.approx(dict(zip(classes, expected, strict=True)))
    # Estimated one class against the rest, and backtested against the labels at once.
    estimate = metric(result, "estimated_accuracy")
    assert estimate["lower"] < skm.accuracy_score(y, p) < estimate["upper"]
    assert "one class against the rest" in estimate["detail"]
    backtests = {
        r["column"]: r
        for r in result.to_pylist()
        if r["metric"] == "estimation_error" and r["segment_column"] == "*"
    }
    assert {"accuracy", "macro_f1", "recall:cat"} <= set(backtests)
    assert backtests["accuracy"]["status"] == "ok"
    recalls = [r for r in result.to_pylist() if r["metric"] == "estimated_recall"]
    assert sorted(r["column"] for r in recalls if r["segment_column"] == "*") == list(classes)


def _gap_run(tmp_path: Path, clock: Clock, seed: int, weak: bool) -> Any:
    clock.now = T0 + timedelta(days=1, hours=1)
    folder = tmp_path / str(seed)
    folder.mkdir()
    with watchkeeper.open(parse_config(YAML, base_dir=folder), clock=clock) as w:
        w.set_reference("m", scored(3000, 1).drop(columns=["id", "ts"]))
        events = scored(3000, seed)
        if weak:  # the model quietly fails for region b: its scores are noise
            b = events.region == "b"
            events.loc[b, "score"] = np.random.default_rng(seed).uniform(size=int(b.sum()))
        w.ingest_events("m", events.drop(columns=["label"]))
        w.ingest_labels("m", events[["id", "label"]])
        return w.run("m").metrics


def test_a_planted_weak_segment_is_found(tmp_path: Path, clock: Clock) -> None:
    result = _gap_run(tmp_path, clock, 20, weak=True)
    gaps = {
        (r["segment_value"], r["column"]): r
        for r in result.to_pylist()
        if r["metric"] == "segment_gap"
    }
    assert gaps[("b", "accuracy")]["status"] == "worse"
    assert gaps[("b", "accuracy")]["value"] < -0.05
    assert gaps[("b", "accuracy")]["p_value"] < 0.001
    assert gaps[("a", "accuracy")]["status"] == "ok"  # the rest, compared with b, looks better


def test_no_weak_segment_is_reported_where_there_is_none(tmp_path: Path, clock: Clock) -> None:
    flagged = 0
    for seed in range(30, 42):
        result = _gap_run(tmp_path, clock, seed, weak=False)
        flagged += sum(
            1 for r in result.to_pylist() if r["metric"] == "segment_gap" and r["status"] == "worse"
        )
    # 12 runs × 2 segments × 4 metrics at a 5% false-discovery rate: at most a stray one.
    assert flagged <= 2


def test_outcomes_become_business_kpis(tmp_path: Path, clock: Clock) -> None:
    yaml = YAML.replace(
        "    labels:\n",
        "    outcomes:\n      - name: chargeback\n      - name: reviews\n    labels:\n",
    ).replace("      min_labels: 50\n", "      min_labels: 50\n      baseline_windows: 5\n")
    clock.now = T0 + timedelta(days=6, hours=1)
    rng = np.random.default_rng(21)
    with watchkeeper.open(parse_config(yaml, base_dir=tmp_path), clock=clock) as w:
        w.set_reference("m", scored(3000, 1).drop(columns=["id", "ts"]))
        outcomes = []
        for day in range(6):
            events = scored(1000, 100 + day)
            events["id"] = [f"d{day}-{i}" for i in range(1000)]
            events["ts"] = events["ts"] + pd.Timedelta(days=day)
            w.ingest_events("m", events.drop(columns=["label"]))
            rate = 0.04 if day == 5 else 0.02  # chargebacks double on the last day
            hit = events["id"][rng.uniform(size=1000) < rate]
            outcomes += [{"id": i, "outcome": "chargeback", "value": 1} for i in hit]
            outcomes.append(
                {
                    "outcome": "reviews",
                    "value": 50 + day,
                    "timestamp": (T0 + timedelta(days=day, hours=3)).isoformat(),
                }
            )
        result = w.ingest_outcomes("m", outcomes)
        assert result.accepted == len(outcomes)
        m = w.run("m").to_pandas()
    totals = m[(m.metric == "outcome_total") & (m.column == "chargeback")].set_index("window_start")
    per_day = pd.Series(
        [o["id"].split("-")[0] for o in outcomes if o["outcome"] == "chargeback"]
    ).value_counts()
    assert totals.loc[T0 + timedelta(days=5), "value"] == per_day["d5"]
    rate = m[(m.metric == "outcome_rate") & (m.window_start == T0 + timedelta(days=5))]
    assert rate.value.iloc[0] == pytest.approx(per_day["d5"] / 1000)
    change = m[(m.metric == "outcome_change") & (m.window_start == T0 + timedelta(days=5))]
    assert change.value.iloc[0] > 1.5  # about twice the recent days' median
    reviews = m[(m.metric == "outcome_total") & (m.column == "reviews")].sort_values("window_start")
    assert reviews.value.tolist() == [50.0, 51.0, 52.0, 53.0, 54.0, 55.0]


def test_an_outcome_rate_is_final_once_its_outcomes_have_had_time_to_arrive(
    tmp_path: Path, clock: Clock
) -> None:
    """Conversions arrive in a batch an hour after each day: their rate is final about a
    day after its window, not when the labels' seven days have passed; until a complete
    window has shown the delay, the labels' maximum delay is assumed."""
    yaml = YAML.replace("    labels:\n", "    outcomes:\n      - name: conversion\n    labels:\n")
    days = 10
    rng = np.random.default_rng(5)
    clock.now = T0
    with watchkeeper.open(parse_config(yaml, base_dir=tmp_path), clock=clock) as w:
        w.set_reference("m", scored(3000, 1).drop(columns=["id", "ts"]))
        for day in range(days):
            clock.now = T0 + timedelta(days=day + 1, hours=1)  # the day's batch
            events = scored(600, 200 + day)
            events["id"] = [f"d{day}-{i}" for i in range(600)]
            events["ts"] = events["ts"] + pd.Timedelta(days=day)
            w.ingest_events("m", events.drop(columns=["label"]))
            hit = events[rng.uniform(size=600) < 0.1]
            known = hit["ts"] + pd.to_timedelta(rng.uniform(10, 60, len(hit)), unit="m")
            outcomes = [
                {"id": i, "outcome": "conversion", "value": 1, "timestamp": t.isoformat()}
                for i, t in zip(hit["id"], known.dt.floor("s"), strict=True)
            ]
            assert w.ingest_outcomes("m", outcomes).accepted == len(outcomes)
        first = w.run("m").to_pandas()
        rate = first[first.metric == "outcome_rate"].set_index("window_start")
        delay = first[first.metric == "outcome_delay"].set_index("window_start")
        young = T0 + timedelta(days=days - 2)
        assert bool(rate.loc[young, "provisional"])  # no complete window had shown the delay
        # Only windows older than the labels' maximum delay say how late conversions come:
        # up to a day and an hour after their event, when their batch was stored.
        assert set(delay.index) == {T0 + timedelta(days=d) for d in range(days - 7)}
        assert delay["value"].between(20 * 3600, 25 * 3600).all()
        # A late conversion touches the young window; recomputed later, it is final.
        clock.now += timedelta(hours=1)
        late = {"id": f"d{days - 2}-0", "outcome": "conversion", "value": 1}
        w.ingest_outcomes("m", [{**late, "timestamp": clock.now.isoformat()}])
        clock.now += timedelta(hours=8)
        again = w.run("m").to_pandas()
        recomputed = again[(again.metric == "outcome_rate") & (again.window_start == young)]
        assert not bool(recomputed["provisional"].iloc[0])


def test_ranking_metrics_in_a_run(tmp_path: Path, clock: Clock) -> None:
    yaml = """\
engine: {path: store.duckdb}
models:
  - name: search
    task: ranking
    columns:
      event_id: id
      timestamp: ts
      features:
        - {name: price, kind: numeric}
      score: relevance
      query_id: query
      item_id: item
    monitoring: {window: 1d, min_labels: 20, ranking_k: 5}
"""
    clock.now = T0 + timedelta(days=1, hours=1)
    rng = np.random.default_rng(17)
    records = []
    for qi in range(150):
        n_items = int(rng.integers(3, 12))
        true_rel = rng.integers(0, 3, n_items)
        score = true_rel + rng.normal(0, 1.2, n_items)
        for j in range(n_items):
            records.append(
                {
                    "id": f"q{qi}-{j}",
                    "ts": T0 + timedelta(minutes=qi * 5),
                    "price": float(rng.uniform(5, 50)),
                    "relevance": float(score[j]),
                    "query": f"q{qi}",
                    "item": f"i{rng.integers(0, 300)}",
                    "label": float(true_rel[j]),
                }
            )
    events = pd.DataFrame(records)
    with watchkeeper.open(parse_config(yaml, base_dir=tmp_path), clock=clock) as w:
        w.set_reference("search", events.drop(columns=["id", "ts"]))
        w.ingest_events("search", events.drop(columns=["label"]))
        w.ingest_labels("search", events[["id", "label"]])
        result = w.run("search").metrics
    ndcg, precision, rr = [], [], []
    for _, group in events.groupby("query"):
        y, s = group["label"].to_numpy(), group["relevance"].to_numpy()
        order = np.argsort(-s, kind="stable")
        if y.max() > 0:
            ndcg.append(skm.ndcg_score([y], [s], k=5))
        precision.append(float((y[order][:5] > 0).sum()) / 5)
        hits = np.flatnonzero(y[order] > 0)
        rr.append(1.0 / (hits[0] + 1) if len(hits) else 0.0)
    assert metric(result, "ndcg_at_k")["value"] == pytest.approx(np.mean(ndcg))
    assert metric(result, "precision_at_k")["value"] == pytest.approx(np.mean(precision))
    assert metric(result, "mrr")["value"] == pytest.approx(np.mean(rr))
    assert metric(result, "ctr")["value"] == pytest.approx((events["label"] > 0).mean())
    assert metric(result, "mrr")["sample_size"] == 150
    coverage = [r for r in result.to_pylist() if r["metric"] == "catalogue_coverage"]
    assert coverage[0]["value"] == pytest.approx(1.0)  # the reference is these very events
    assert coverage[0]["column"] == "item"


def _slice_run(tmp_path: Path, clock: Clock, seed: int, weak: bool) -> list[dict[str, Any]]:
    clock.now = T0 + timedelta(days=1, hours=1)
    folder = tmp_path / f"s{seed}"
    folder.mkdir()
    with watchkeeper.open(parse_config(YAML, base_dir=folder), clock=clock) as w:
        w.set_reference("m", scored(3000, 1).drop(columns=["id", "ts"]))
        events = scored(6000, seed)
        if weak:  # the model fails for one pair of values only
            bad = (events.region == "b") & (events.c == "r")
            events.loc[bad, "score"] = 1 - events.loc[bad, "score"]
        w.ingest_events("m", events.drop(columns=["label"]))
        w.ingest_labels("m", events[["id", "label"]])
        result = w.run("m").metrics
    # the slices found ('' is the search's own row: found or not)
    return [r for r in result.to_pylist() if r["metric"] == "weak_slice" and r["column"]]


def test_a_planted_weak_slice_is_found_first(tmp_path: Path, clock: Clock) -> None:
    found = _slice_run(tmp_path, clock, 50, weak=True)
    assert found, "no weak slice found"
    top = found[0]
    assert top["column"] in ("region=b & c=r", "c=r & region=b")
    assert top["status"] == "worse" and top["p_value"] < 0.001
    assert top["value"] > 0.3  # its error rate is far above the rest's
    assert "of labelled events" in top["detail"]


def test_no_weak_slice_where_there_is_none(tmp_path: Path, clock: Clock) -> None:
    reported = sum(len(_slice_run(tmp_path, clock, seed, weak=False)) for seed in range(60, 68))
    assert reported <= 1  # eight windows at a 5% false-discovery rate


def test_performance_is_estimated_before_labels_and_backtested_after(
    ws: watchkeeper.Workspace, clock: Clock
) -> None:
    events = scored(3000, 9)
    ws.ingest_events("m", events.drop(columns=["label"]))
    first = ws.run("m").metrics  # no labels yet: only the estimate
    estimate = metric(first, "estimated_accuracy")
    assert estimate["lower"] < estimate["value"] < estimate["upper"]
    assert "assuming no concept shift" in estimate["detail"]
    assert not [r for r in first.to_pylist() if r["metric"] == "accuracy"]
    score = events["score"].to_numpy()
    assert metric(first, "predicted_positive_rate")["value"] == pytest.approx((score >= 0.5).mean())
    assert metric(first, "low_confidence_share")["value"] == pytest.approx(
        ((score >= 0.4) & (score < 0.6)).mean()
    )
    confidence = metric(first, "mean_confidence")["value"]
    assert confidence == pytest.approx(np.maximum(score, 1 - score).mean(), abs=0.005)
    clock.now += timedelta(days=1)
    ws.ingest_labels("m", events[["id", "label"]])
    clock.now += timedelta(hours=1)
    later = ws.run("m").metrics
    realized = metric(later, "accuracy")["value"]
    backtest = next(
        r
        for r in later.to_pylist()
        if r["metric"] == "estimation_error"
        and r["column"] == "accuracy"
        and r["segment_column"] == "*"
    )
    assert backtest["value"] == pytest.approx(
        metric(later, "estimated_accuracy")["value"] - realized
    )
    assert backtest["status"] == "ok"  # the world did not change: the band covers the truth


def test_multiclass_estimate_without_a_prediction_column(tmp_path: Path, clock: Clock) -> None:
    """With only the class scores, the prediction is the class with the highest score."""
    yaml = """\
engine: {path: store.duckdb}
models:
  - name: animals
    task: multiclass_classification
    classes: [cat, dog]
    columns:
      event_id: id
      timestamp: ts
      features: [{name: size, kind: numeric}]
      scores: {cat: p_cat, dog: p_dog}
    monitoring: {window: 1d}
"""
    clock.now = T0 + timedelta(days=1, hours=1)
    rng = np.random.default_rng([3, 1])

    def frame(n: int) -> pd.DataFrame:
        p_cat = rng.uniform(0, 1, n)
        return pd.DataFrame(
            {
                "id": [f"e{i}" for i in range(n)],
                "ts": [T0 + timedelta(seconds=int(s)) for s in rng.uniform(0, 86_000, n)],
                "size": rng.normal(10, 3, n),
                "p_cat": p_cat,
                "p_dog": 1 - p_cat,
                "label": np.where(rng.uniform(size=n) < p_cat, "cat", "dog"),
            }
        )

    with watchkeeper.open(parse_config(yaml, base_dir=tmp_path), clock=clock) as w:
        w.set_reference("animals", frame(4000).drop(columns=["id", "ts"]))
        events = frame(2000)
        w.ingest_events("animals", events.drop(columns=["label"]))
        result = w.run("animals").metrics
    estimate = metric(result, "estimated_accuracy")
    # A calibrated score p: an event is right with probability max(p, 1 - p).
    truth = np.maximum(events["p_cat"], 1 - events["p_cat"]).mean()
    assert estimate["value"] == pytest.approx(truth, abs=0.01)


def _world_run(tmp_path: Path, clock: Clock, concept: bool) -> dict[str, Any]:
    """Ten daily windows of a model calibrated on its reference, with labels: the inputs
    shift from day to day (covariate shift), and with ``concept`` the relation between
    inputs and label changes from the third day."""
    rng = np.random.default_rng([21, int(concept)])

    def frame(n: int, start: Any, shift: float, changed: bool, prefix: str) -> pd.DataFrame:
        x = rng.normal(shift, 1, n)
        score = 1 / (1 + np.exp(-(1.5 * x - 1)))
        truth = 1 / (1 + np.exp(-(0.2 * x + 0.3))) if changed else score
        return pd.DataFrame(
            {
                "id": [f"{prefix}{i}" for i in range(n)],
                "ts": [start + timedelta(seconds=int(s)) for s in rng.uniform(0, 86_000, n)],
                "x": x,
                "c": rng.choice(["u", "v"], n),
                "region": rng.choice(["north", "south"], n),
                "score": score,
                "label": (rng.uniform(size=n) < truth).astype(int),
            }
        )

    days = 10
    clock.now = T0 + timedelta(days=days, hours=1)
    with watchkeeper.open(parse_config(YAML, base_dir=tmp_path), clock=clock) as w:
        w.set_reference("m", frame(20_000, T0, 0.0, False, "r").drop(columns=["id", "ts"]))
        for d in range(days):
            day = frame(1500, T0 + timedelta(days=d), (d % 4) * 0.3, concept and d >= 2, f"d{d}_")
            w.ingest_events("m", day.drop(columns=["label"]))
            w.ingest_labels("m", day[["id", "label"]])
        result = w.run("m")
        # A new day without labels yet: its estimate carries the record so far.
        clock.now += timedelta(days=1)
        w.ingest_events(
            "m", frame(1500, T0 + timedelta(days=days), 0.3, concept, "new").drop(columns=["label"])
        )
        later = w.run("m").metrics
        return {"backtest": w.backtest("m"), "notes": result.notes, "later": later}


def test_the_backtest_says_the_estimate_holds_under_covariate_shift(
    tmp_path: Path, clock: Clock
) -> None:
    found = _world_run(tmp_path, clock, concept=False)
    backtest = found["backtest"]
    for name in ("accuracy", "precision", "recall", "f1", "specificity", "roc_auc"):
        assert backtest[name].windows == 10
        assert backtest[name].coverage >= 0.9, backtest[name]
        assert backtest[name].trust == "holds"
    assert not [n for n in found["notes"] if "failing" in n]
    assert "the estimate has held" in metric(found["later"], "estimated_accuracy")["detail"]


def test_the_backtest_flags_the_estimate_under_concept_shift(tmp_path: Path, clock: Clock) -> None:
    found = _world_run(tmp_path, clock, concept=True)
    accuracy = found["backtest"]["accuracy"]
    assert accuracy.trust == "failing", accuracy
    assert "concept shift" in accuracy.caveat
    assert any("estimated accuracy" in n and "failing" in n for n in found["notes"])
    detail = metric(found["later"], "estimated_accuracy")["detail"]
    assert "backtest" in detail and "concept shift" in detail


def test_estimates_read_the_declared_prediction_not_the_threshold(
    tmp_path: Path, clock: Clock
) -> None:
    """A model whose decisions cut its score at 0.3 while its config says 0.5: estimates
    follow the declared prediction column, so they hold on the reference itself and on
    windows like it."""
    yaml = YAML.replace("      score: score\n", "      score: score\n      prediction: pred\n")
    rng = np.random.default_rng([31, 2])

    def frame(n: int, start: Any, prefix: str) -> pd.DataFrame:
        x = rng.normal(0, 1, n)
        score = 1 / (1 + np.exp(-(1.5 * x - 1)))
        return pd.DataFrame(
            {
                "id": [f"{prefix}{i}" for i in range(n)],
                "ts": [start + timedelta(seconds=int(s)) for s in rng.uniform(0, 86_000, n)],
                "x": x,
                "c": rng.choice(["u", "v"], n),
                "region": rng.choice(["north", "south"], n),
                "score": score,
                "pred": (score >= 0.3).astype(int),
                "label": (rng.uniform(size=n) < score).astype(int),
            }
        )

    days = 6
    clock.now = T0 + timedelta(days=days, hours=1)
    with watchkeeper.open(parse_config(yaml, base_dir=tmp_path), clock=clock) as w:
        reference = frame(5000, T0, "r")
        w.set_reference("m", reference.drop(columns=["id", "ts"]))
        # The first day is the reference itself; the others are drawn like it.
        for d in range(days):
            day = reference if d == 0 else frame(2500, T0 + timedelta(days=d), f"d{d}_")
            w.ingest_events("m", day.drop(columns=["label"]))
            w.ingest_labels("m", day[["id", "label"]])
        result = w.run("m").metrics.to_pylist()
        backtest = w.backtest("m")
    on_reference = {
        r["column"]: r
        for r in result
        if r["metric"] == "estimation_error"
        and r["segment_column"] == "*"
        and r["window_start"] == T0
    }
    names = ("accuracy", "precision", "recall", "specificity", "f1", "roc_auc")
    assert set(names) <= set(on_reference)
    for name in names:
        assert on_reference[name]["status"] == "ok", on_reference[name]
        assert backtest[name].windows == days
        assert backtest[name].trust == "holds", backtest[name]
    # The realized recall is the prediction's, not the threshold's.
    recall = next(
        r
        for r in result
        if r["metric"] == "recall" and r["segment_column"] == "*" and r["window_start"] == T0
    )
    y, s = reference["label"], reference["score"]
    assert recall["value"] == pytest.approx(skm.recall_score(y, s >= 0.3))
    # Without labels too: the predicted positive rate is the prediction's, as the reference's.
    rate = next(
        r
        for r in result
        if r["metric"] == "predicted_positive_rate"
        and r["segment_column"] == "*"
        and r["window_start"] == T0
    )
    assert rate["value"] == pytest.approx((s >= 0.3).mean())
