"""The Grafana dashboard's JSON model: units from the catalogue, thresholds from the rules on
the value, legends that tell series apart, firing alerts as annotations, and variables for
the model, segment and version (its queries are run in a real Prometheus elsewhere)."""

from __future__ import annotations

from pathlib import Path

from watchkeeper.config import EXAMPLE_CONFIG, parse_config
from watchkeeper.server.exports import grafana_dashboard


def _panel(board: dict, starts: str) -> dict:  # type: ignore[type-arg]
    return next(p for p in board["panels"] if p["title"].startswith(starts))


def test_units_thresholds_legends_annotations_and_variables(tmp_path: Path) -> None:
    board = grafana_dashboard(parse_config(EXAMPLE_CONFIG, base_dir=tmp_path))
    errors = _panel(board, "Error rate")["fieldConfig"]["defaults"]
    assert errors["unit"] == "percentunit"
    # The example's error_rate rule pages above 5%: the line is drawn there.
    assert errors["thresholds"]["steps"] == [
        {"color": "green", "value": None},
        {"color": "red", "value": 0.05},
    ]
    performance = _panel(board, "Performance")
    assert performance["fieldConfig"]["defaults"]["unit"] == "none"  # AUC, MAE, log loss alike
    legend = performance["targets"][0]["legendFormat"]
    assert legend == "metric={{metric}} segment={{segment}} kind={{kind}} version={{version}}"
    assert 'version=~"$version"' in performance["targets"][0]["expr"]
    drift = _panel(board, "Drift")["fieldConfig"]["defaults"]
    assert len(drift["thresholds"]["steps"]) == 1  # a rule on the decision: no fixed line
    names = [v["name"] for v in board["templating"]["list"]]
    assert names == ["datasource", "model", "segment", "version"]
    segment = board["templating"]["list"][2]
    assert segment["current"]["value"] == "*"  # the whole traffic unless a segment is picked
    (annotation,) = board["annotations"]["list"]
    volume = _panel(board, "Events")["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert volume == [{"color": "green", "value": None}]  # volume rules are ratios, not counts
    assert (
        'alertstate="firing"' in annotation["expr"] and "{{alertname}}" in annotation["titleFormat"]
    )
