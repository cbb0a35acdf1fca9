from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tests.helpers import MODEL_YAML
from watchkeeper.config import EXAMPLE_CONFIG, load_config, parse_config
from watchkeeper.errors import ConfigError, UnknownModelError


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
