from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tests.helpers import MODEL_YAML
from watchkeeper.catalogue import ESTIMABLE, catalogue
from watchkeeper.config import EXAMPLE_CONFIG, load_config, parse_config
from watchkeeper.errors import ConfigError, UnknownModelError
from watchkeeper.tasks.registry import TASKS


def problems(text: str) -> list[tuple[str, int | None, str]]:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    return [(p.path, p.line, p.message) for p in info.value.problems]


def test_example_config_is_valid_and_complete(tmp_path: Path) -> None:
    config = parse_config(EXAMPLE_CONFIG, base_dir=tmp_path)
    model = config.model("fraud")
    assert model.task == "binary_classification"
    assert model.decision_threshold == 0.5
    assert [f.kind for f in model.columns.features] == [
        "numeric",
        "categorical",
        "categorical",
        "numeric",
        "boolean",
    ]
    assert model.labels.max_delay == timedelta(days=30)
    assert config.engine_url() == f"duckdb://{(tmp_path / 'watchkeeper.duckdb').resolve()}"


def test_config_is_frozen() -> None:
    config = parse_config(MODEL_YAML)
    with pytest.raises(Exception, match="frozen"):
        config.models[0].owner = "someone"  # type: ignore[misc]


def test_wrong_feature_kind_is_named_with_its_place_and_line() -> None:
    text = MODEL_YAML.replace("{name: is_new, kind: boolean}", "{name: is_new, kind: bool}")
    found = problems(text)
    assert found == [
        (
            "models[0].columns.features[3].kind",
            text.splitlines().index("        - {name: is_new, kind: bool}") + 1,
            "must be one of numeric, categorical, boolean",
        )
    ]


def test_several_structural_mistakes_are_reported_together() -> None:
    text = """\
models:
  - name: Fraud
    task: classification
    columns:
      features:
        - name: amount
          kind: numeric
          range: [0, "a lot"]
    colour: red
"""
    found = {(path, line): message for path, line, message in problems(text)}
    assert found[("models[0].name", 2)].startswith("must be lowercase")
    assert found[("models[0].task", 3)] == (
        "must be one of binary_classification, multiclass_classification, regression, ranking"
    )
    assert ("models[0].columns.features[0].range[1]", 8) in found
    assert found[("models[0].colour", 9)] == "is not a known setting"


def test_missing_required_setting() -> None:
    assert problems("models:\n  - name: m\n") == [("models[0].task", 2, "is required")]


def test_cross_field_mistakes_are_reported_together() -> None:
    text = """\
models:
  - name: m
    task: regression
    threshold: 0.3
    columns:
      features:
        - {name: x, kind: categorical, range: [0, 1]}
        - {name: y, kind: numeric, range: [5, 1]}
        - {name: x, kind: numeric}
      segments: [region, region]
  - name: m
    task: multiclass_classification
    columns:
      scores: {cat: p_cat}
"""
    found = {path: message for path, _, message in problems(text)}
    assert found["models[0].threshold"].startswith("a decision threshold applies only")
    assert found["models[0].columns.features[0].range"] == "only numeric features have a range"
    assert found["models[0].columns.features[1].range"] == "must be [low, high] with low < high"
    assert (
        "already used by models[0].columns.features[0].name"
        in found["models[0].columns.features[2].name"]
    )
    assert found["models[0].columns.segments[1]"] == "lists 'region' twice"
    assert found["models[0].columns.prediction"].startswith("a regression model needs")
    assert found["models[1].name"].startswith("model 'm' is already declared")
    assert found["models[1].classes"].startswith("a multiclass_classification model must list")


def test_yaml_syntax_error_names_the_line() -> None:
    found = problems("models:\n  - name: m\n    task: [regression\n")
    assert len(found) == 1
    _path, line, message = found[0]
    assert line is not None and line >= 3
    assert message.startswith("not valid YAML")


def test_bad_duration_names_its_place() -> None:
    text = MODEL_YAML.replace(
        "      timestamp: labelled_at", "      timestamp: labelled_at\n      max_delay: soon"
    )
    found = problems(text)
    assert found[0][0] == "models[0].labels.max_delay"
    assert "not a duration" in found[0][2]


def test_error_message_lists_every_problem_with_the_file(tmp_path: Path) -> None:
    path = tmp_path / "watchkeeper.yaml"
    path.write_text("engine: {path: a, url: b}\nmodels: []\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).splitlines() == [
        f"invalid configuration in {path} (1 problem):",
        "  line 1: engine: give either path or url, not both",
    ]


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml")


def test_unknown_model_lists_known_ones() -> None:
    config = parse_config(MODEL_YAML)
    with pytest.raises(UnknownModelError, match="declares: fraud, prices"):
        config.model("nope")


def test_monitoring_settings_are_checked() -> None:
    text = MODEL_YAML.replace(
        "      metadata: [feature_version]\n",
        "      metadata: [feature_version]\n"
        "    monitoring:\n"
        "      slice_columns: [region, shoe_size]\n"
        "      drift_methods: [psi, magic]\n"
        "      numeric_drift: {effect: chi2, test: ks}\n",
    )
    found = {path: message for path, _, message in problems(text)}
    assert found["models[0].monitoring.slice_columns[1]"] == (
        "'shoe_size' is not a feature, segment, sensitive or metadata column"
    )
    assert found["models[0].monitoring.drift_methods[1]"].startswith(
        "unknown drift method 'magic'; registered: chi2, hellinger"
    )
    assert found["models[0].monitoring.numeric_drift.effect"] == (
        "'chi2' is not a distance for numeric columns; one of hellinger, jensen_shannon, psi, "
        "total_variation, wasserstein"
    )


# -- the metrics alert conditions name ----------------------------------------------------


def with_conditions(*conditions: str) -> str:
    """MODEL_YAML with one rule per condition (a flow mapping), on the fraud model."""
    rules = "".join(
        f"    - name: r{i}\n      models: fraud\n      conditions:\n        - {c}\n"
        for i, c in enumerate(conditions)
    )
    return f"{MODEL_YAML}alerting:\n  rules:\n{rules}"


def line_of(text: str, fragment: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if fragment in line)


def test_a_mistyped_metric_is_refused_with_its_place_line_and_nearest_keys() -> None:
    text = with_conditions(
        "{metric: error_rate, above: 0.1}",
        "{metric: roc_aucc, against: reference, below: -0.05}",
    )
    assert problems(text) == [
        (
            "alerting.rules[1].conditions[0].metric",
            line_of(text, "roc_aucc"),
            "unknown metric 'roc_aucc'; did you mean roc_auc, pr_auc, estimated_roc_auc?",
        )
    ]
    # Nothing near: the key alone.
    assert problems(with_conditions("{metric: zzz, above: 1}"))[0][2] == "unknown metric 'zzz'"


def test_a_metric_pattern_matching_nothing_is_refused() -> None:
    text = with_conditions("{metric: 'foo_*', above: 1}", "{metric: 'lateny_p?', above: 1}")
    assert problems(text) == [
        (
            "alerting.rules[0].conditions[0].metric",
            line_of(text, "foo_*"),
            "no metric matches 'foo_*'",
        ),
        (
            "alerting.rules[1].conditions[0].metric",
            line_of(text, "lateny_p?"),
            "no metric matches 'lateny_p?'; did you mean latency_p99, latency_p90, latency_p50?",
        ),
    ]


def test_every_rule_of_the_example_config_names_catalogued_metrics() -> None:
    config = parse_config(EXAMPLE_CONFIG)
    conditions = [c for rule in config.alerting.rules for c in rule.conditions]
    assert len(conditions) >= 15
    for c in conditions:
        assert catalogue.matching(c.metric), c.metric


def test_rules_on_a_drift_method_and_on_estimated_metrics_pass() -> None:
    config = parse_config(
        with_conditions(
            "{metric: drift_psi, above: 0.2}",
            "{metric: 'drift_*', column: amount, above: 0.2}",
            "{metric: 'estimated_*', below: 0.7}",
            "{metric: 'estimated_*', against: reference, below: -0.05}",
            "{metric: estimated_accuracy, against: reference, below: -0.05}",
            "{metric: 'latency_p9?', against: baseline, direction: above}",
        )
    )
    assert [r.conditions[0].metric for r in config.alerting.rules][:3] == [
        "drift_psi",
        "drift_*",
        "estimated_*",
    ]


def test_a_metric_the_reference_has_no_value_of_is_not_compared_with_it() -> None:
    text = with_conditions(
        "{metric: latency_p99, against: reference, above: 0.5}",
        "{metric: 'drift_*', against: reference, above: 0.5}",
        "{metric: 'latency_*', against: baseline, direction: above}",
    )
    assert problems(text) == [
        (
            "alerting.rules[0].conditions[0].against",
            line_of(text, "latency_p99"),
            "metric 'latency_p99' has no value on the reference; use against: baseline or value",
        ),
        (
            "alerting.rules[1].conditions[0].against",
            line_of(text, "'drift_*'"),
            (
                "no metric matching 'drift_*' has a value on the reference; "
                "use against: baseline or value"
            ),
        ),
    ]


def test_every_value_a_reference_holds_may_be_compared_with() -> None:
    """What watchkeeper.reference.values stores (missing rates, each task's performance
    metrics, the predicted positive rate) and their estimates pass ``against: reference``."""
    keys = {"missing_rate", "predicted_positive_rate"}
    for task in TASKS.values():
        keys |= set(task.metrics)
    for estimated in ESTIMABLE.values():
        keys |= {f"estimated_{k}" for k in estimated}
    conditions = [f"{{metric: {k}, against: reference, below: -0.1}}" for k in sorted(keys)]
    assert len(parse_config(with_conditions(*conditions)).alerting.rules) == len(keys)
