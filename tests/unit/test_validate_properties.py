"""Properties of validation that must hold for any input: nothing is lost, good rows keep
their values, and a row's fate does not depend on the rows around it."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import MODEL_YAML
from watchkeeper.config import parse_config
from watchkeeper.ingest.readers import rows_to_table
from watchkeeper.ingest.validate import validate
from watchkeeper.schema import events_spec

SPEC = events_spec(parse_config(MODEL_YAML).model("fraud"))

good_amount = st.floats(min_value=0, max_value=1000, allow_nan=False)
any_amount = st.one_of(
    good_amount,
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.none(),
)
row = st.fixed_dictionaries(
    {
        "id": st.text(alphabet="abc", min_size=1, max_size=4),
        "ts": st.sampled_from(["2026-01-01T00:00:00Z", "2026-01-01 05:00:00", "x", None]),
        "amount": any_amount,
        "country": st.sampled_from(["US", "DE", "XX", None]),
        "score": st.one_of(st.floats(min_value=0, max_value=1), st.floats(1.01, 5)),
        "pred": st.sampled_from([0, 1, 2, "1", True]),
    }
)


def fates(rows: list[dict[str, Any]]) -> list[bool]:
    checked = validate(rows_to_table(rows), SPEC)
    bad = set(checked.problems.rows)
    return [i not in bad for i in range(len(rows))]


@settings(max_examples=200, deadline=None)
@given(st.lists(row, min_size=1, max_size=30))
def test_every_row_is_either_kept_or_quarantined(rows: list[dict[str, Any]]) -> None:
    checked = validate(rows_to_table(rows), SPEC)
    assert checked.good.num_rows + len(checked.problems.rows) == len(rows)
    assert list(checked.good_rows) == [
        i for i in range(len(rows)) if i not in checked.problems.rows
    ]
    for i in checked.problems.rows:
        reason, detail = checked.problems.primary(i)
        assert reason and detail


@settings(max_examples=200, deadline=None)
@given(st.lists(row, min_size=1, max_size=30))
def test_kept_rows_keep_their_values(rows: list[dict[str, Any]]) -> None:
    checked = validate(rows_to_table(rows), SPEC)
    for out, i in zip(checked.good.to_pylist(), checked.good_rows, strict=True):
        source = rows[int(i)]
        assert out["id"] == source["id"]
        assert 0 <= out["amount"] <= 1000
        assert float(source["amount"]) == out["amount"]
        assert out["country"] in ("US", "DE", None)


@settings(max_examples=100, deadline=None)
@given(st.lists(row, min_size=2, max_size=20))
def test_a_rows_fate_does_not_depend_on_its_neighbours(rows: list[dict[str, Any]]) -> None:
    # Each row alone reaches the same verdict as within the batch (types can differ per
    # batch, e.g. a column that is all numbers in one and mixed in another).
    together = fates(rows)
    alone = [fates([r])[0] for r in rows]
    assert together == alone


def test_schema_of_good_rows_is_the_stored_schema() -> None:
    checked = validate(
        rows_to_table([{"id": "a", "ts": "2026-01-01", "amount": 1, "score": 0.5, "pred": 0}]), SPEC
    )
    types = dict(zip(checked.good.schema.names, checked.good.schema.types, strict=True))
    assert types["amount"] == pa.float64()
    assert types["ts"] == pa.timestamp("us", tz="UTC")
    assert types["pred"] == pa.int64()
