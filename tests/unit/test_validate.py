"""Validation is pure Arrow: each reason code, and every lossless coercion."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest

from tests.helpers import MODEL_YAML, event
from watchkeeper.config import parse_config
from watchkeeper.ingest.readers import rows_to_table
from watchkeeper.ingest.validate import validate
from watchkeeper.schema import events_spec, labels_spec

CONFIG = parse_config(MODEL_YAML)
EVENTS = events_spec(CONFIG.model("fraud"))
LABELS = labels_spec(CONFIG.model("fraud"))


def reasons(rows: list[dict[str, object]]) -> dict[int, str]:
    checked = validate(rows_to_table(rows), EVENTS)
    return {row: checked.problems.primary(row)[0] for row in checked.problems.rows}


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"amount": -1.0}, "out_of_range"),
        ({"amount": 1000.5}, "out_of_range"),
        ({"score": 1.5}, "out_of_range"),
        ({"latency_ms": -3}, "out_of_range"),
        ({"country": "XX"}, "unknown_category"),
        ({"pred": 2}, "unknown_category"),
        ({"amount": None}, "null_in_required"),
        ({"id": None}, "null_in_required"),
        ({"score": None}, "null_in_required"),
        ({"amount": "12,5"}, "bad_type"),
        ({"is_new": "maybe"}, "bad_type"),
        ({"is_new": 3}, "bad_type"),
        ({"pred": 0.5}, "bad_type"),
        ({"amount": [1, 2]}, "bad_type"),
        ({"ts": "yesterday"}, "unparseable_timestamp"),
        ({"ts": "2026-13-45T00:00:00"}, "unparseable_timestamp"),
        ({"ts": None}, "null_in_required"),
        ({"amount": "Infinity"}, "non_finite_number"),
        ({"amount": float("-inf")}, "non_finite_number"),
        ({"latency_ms": float("inf")}, "non_finite_number"),
    ],
)
def test_each_reason(override: dict[str, object], reason: str) -> None:
    rows = [event(0), event(1, **override), event(2)]
    assert reasons(rows) == {1: reason}


def test_missing_required_column_quarantines_every_row() -> None:
    table = rows_to_table([event(0), event(1)]).drop(["amount"])
    checked = validate(table, EVENTS)
    assert checked.good.num_rows == 0
    assert {checked.problems.primary(r)[0] for r in range(2)} == {"missing_column"}


def test_missing_optional_column_is_null_and_reported() -> None:
    table = rows_to_table([event(0), event(1)]).drop(["channel"])
    checked = validate(table, EVENTS)
    assert checked.good.num_rows == 2
    assert checked.good["channel"].null_count == 2
    assert checked.missing_columns == ("channel",)


def test_unexpected_column_is_reported() -> None:
    checked = validate(rows_to_table([event(0, shoe_size=42)]), EVENTS)
    assert checked.unexpected_columns == ("shoe_size",)


def test_a_row_with_several_problems_has_one_primary_reason_and_all_details() -> None:
    checked = validate(rows_to_table([event(0, amount=None, country="XX", ts="bad")]), EVENTS)
    reason, detail = checked.problems.primary(0)
    assert reason == "null_in_required"
    assert "amount: missing value" in detail
    assert "country: not one of the declared values" in detail
    assert "ts: not an ISO 8601 time" in detail


def test_lossless_coercions() -> None:
    rows = [
        event(0, amount="12.5", is_new="yes", pred="1", score="0.75", ts="2026-04-30 10:00:00"),
        event(1, amount=7, is_new=0, pred=True, ts="2026-04-30T12:00:00+02:00"),
        event(2, amount=float("nan"), channel=3, ts="2026-04-30T10:00:00.5Z"),
    ]
    rows[2]["amount"] = 5  # keep required amount valid; NaN is tested on latency
    rows[2]["latency_ms"] = float("nan")
    checked = validate(rows_to_table(rows), EVENTS)
    assert checked.problems.rows == {}
    good = checked.good.to_pydict()
    assert good["amount"] == [12.5, 7.0, 5.0]
    assert good["is_new"] == [True, False, True]
    assert good["pred"] == [1, 1, 0]
    assert good["score"] == [0.75, 0.25, 0.25]
    assert good["channel"] == ["web", "web", "3"]
    assert good["latency_ms"][2] is None  # NaN is stored as null
    assert good["ts"] == [
        datetime(2026, 4, 30, 10, tzinfo=UTC),
        datetime(2026, 4, 30, 10, tzinfo=UTC),
        datetime(2026, 4, 30, 10, 0, 0, 500000, tzinfo=UTC),
    ]
    assert checked.good.schema.field("ts").type == pa.timestamp("us", tz="UTC")


def test_typed_columns_pass_through() -> None:
    table = pa.table(
        {
            "id": pa.array([1, 2], pa.int32()),
            "ts": pa.array([datetime(2026, 1, 1), datetime(2026, 1, 2)], pa.timestamp("ms")),
            "amount": pa.array([1, 2], pa.int16()),
            "score": pa.array([0.1, 0.9], pa.float32()),
            "pred": pa.array([False, True]),
            "country": pa.array(["US", "DE"]).dictionary_encode(),
        }
    )
    checked = validate(table, EVENTS)
    assert checked.problems.rows == {}
    good = checked.good.to_pydict()
    assert good["id"] == ["1", "2"]
    assert good["ts"][0] == datetime(2026, 1, 1, tzinfo=UTC)
    assert good["pred"] == [0, 1]
    assert good["country"] == ["US", "DE"]
    assert math.isclose(good["score"][1], 0.9, rel_tol=1e-6)


def test_float_category_codes_become_integer_text() -> None:
    checked = validate(rows_to_table([event(0, channel=3.0), event(1, channel=2.5)]), EVENTS)
    assert checked.good["channel"].to_pylist() == ["3", "2.5"]


def test_binary_labels_accept_bools_and_text() -> None:
    rows = [
        {"id": "a", "is_fraud": True},
        {"id": "b", "is_fraud": "0"},
        {"id": "c", "is_fraud": "false"},
        {"id": "d", "is_fraud": 2},
        {"id": "e", "is_fraud": None},
    ]
    checked = validate(rows_to_table(rows), LABELS)
    assert checked.good["label"].to_pylist() == [1, 0, 0]
    assert {r: checked.problems.primary(r)[0] for r in checked.problems.rows} == {
        3: "unknown_category",
        4: "null_in_required",
    }


def test_an_integer_beyond_64_bits_is_kept_as_text_for_validation() -> None:
    from watchkeeper.ingest.readers import rows_to_table

    table = rows_to_table([{"amount": 2**70}, {"amount": 3}])
    assert table["amount"].to_pylist() == [str(2**70), "3"]


def test_nanosecond_timestamps_are_truncated_to_microseconds() -> None:
    import pyarrow as pa

    from watchkeeper.ingest.validate import coerce

    raw = pa.array([1_772_323_223_556_336_190], pa.timestamp("ns", tz="UTC"))
    values, failed = coerce(raw, "timestamp")
    assert values.to_pylist()[0].microsecond == 556_336  # the nanoseconds dropped
    assert not np.asarray(failed).any()


@pytest.mark.parametrize("status", ["error", "timeout", "ERROR"])
def test_a_failed_request_is_stored_without_its_output(status: str) -> None:
    """A failed request has no score or prediction: that is what failing means, so it is
    stored (and counted as an error), not quarantined; its inputs are still checked."""
    found = reasons(
        [
            event(1, status=status, score=None, pred=None),
            event(2, status="ok", score=None),
            event(3, status=status, score=None, amount=None),
        ]
    )
    assert found == {1: "null_in_required", 2: "null_in_required"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-01", datetime(2026, 3, 1, tzinfo=UTC)),
        ("2026-03-01Z", datetime(2026, 3, 1, tzinfo=UTC)),
        ("2026-03-01T10:00:00.123456789Z", datetime(2026, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2026-03-01T10:00:00.1234567", datetime(2026, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2026-03-01 10:00:00+05:30", datetime(2026, 3, 1, 4, 30, tzinfo=UTC)),
        ("2026-03-01T10:00:00-0800", datetime(2026, 3, 1, 18, tzinfo=UTC)),
        ("2026-03-01T10:00-08", datetime(2026, 3, 1, 18, tzinfo=UTC)),
        ("2026-03-01T10:00:00 Z", datetime(2026, 3, 1, 10, tzinfo=UTC)),
    ],
)
def test_every_iso_form_the_docs_list_is_read(text: str, expected: datetime) -> None:
    checked = validate(rows_to_table([event(0, ts=text)]), EVENTS)
    assert not checked.problems.rows
    assert checked.good.column("ts").to_pylist() == [expected]


def test_times_outside_the_accepted_window_are_quarantined() -> None:
    rows = [event(0), event(1, ts="9999-12-31T23:59:59Z"), event(2, ts="1969-12-31T23:00:00Z")]
    times = (datetime(1970, 1, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC))
    checked = validate(rows_to_table(rows), EVENTS, times)
    assert {r: checked.problems.primary(r)[0] for r in checked.problems.rows} == {
        1: "timestamp_out_of_range",
        2: "timestamp_out_of_range",
    }
