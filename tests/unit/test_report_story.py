"""The report's story agrees with the alerts beside it: with urgent alerts open, a triage
that cannot confirm the drop says so, and why, instead of calling it "not a real drop"."""

from __future__ import annotations

from datetime import UTC, datetime

from watchkeeper.report.story import Report
from watchkeeper.triage.model import Hypothesis, Triage

T = datetime(2026, 5, 1, tzinfo=UTC)


def _report(*hypotheses: Hypothesis) -> Report:
    report = Report.__new__(Report)  # only the triage is read
    report.triage = Triage("fraud", "roc_auc", T, T, 0.7, 0.8, [], list(hypotheses))
    return report


NOT_REAL = Hypothesis(
    "not_real", "not a real drop", 5, 0.6, ["only 19% of events are labelled yet"],
    "wait for the labels to mature before acting",
)  # fmt: skip
MODEL = Hypothesis(
    "model", "the model is at fault", 3, 0.4, ["the model does worse on region=west"],
    "look at region=west",
)  # fmt: skip


def test_an_unconfirmed_drop_beside_urgent_alerts_is_said_as_such() -> None:
    text = _report(NOT_REAL, MODEL).next_step("bad")
    assert "not a real drop" not in text
    assert "not confirmed yet (only 19% of events are labelled yet)" in text
    assert "the model is at fault (the model does worse on region=west)" in text
    assert "wait for the labels" in text


def test_without_urgent_alerts_the_triage_is_quoted() -> None:
    assert "Most likely cause: not a real drop" in _report(NOT_REAL, MODEL).next_step("warn")
    assert "Most likely cause: the model is at fault" in _report(MODEL, NOT_REAL).next_step("bad")
