"""Reconstruction drift's row error as the engine computes it: the SQL equals numpy's."""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from tests.helpers import correlated
from watchkeeper.stats.reconstruction import Reconstruction, fit

pytestmark = pytest.mark.integration


def engine_errors(fitted: Reconstruction, data: dict[str, list[Any]]) -> np.ndarray[Any, Any]:
    con = duckdb.connect()
    con.register("t", pa.table(data))
    z = fitted.standardised_sql(lambda c: f'"{c}"', lambda v: v.replace("'", "''"))
    inner = ", ".join(f"{v} AS z{j}" for j, v in enumerate(z))
    error = fitted.error_sql([f"z{j}" for j in range(len(z))])
    rows = con.execute(f"SELECT {error} AS e FROM (SELECT {inner} FROM t)").fetchnumpy()
    return np.asarray(rows["e"], dtype=float)


def test_the_engines_sql_computes_the_same_error_with_nulls_and_categories() -> None:
    rng = np.random.default_rng(5)
    n = 3_000
    data: dict[str, list[Any]] = correlated(rng, n, 0.7)
    data["x1"] = [None if i % 17 == 0 else v for i, v in enumerate(data["x1"])]
    plan = rng.choice(["basic", "plus", "pro", "it's"], size=n, p=[0.5, 0.3, 0.195, 0.005])
    data["plan"] = [None if i % 23 == 0 else str(v) for i, v in enumerate(plan)]
    data["new"] = [bool(v) for v in rng.random(n) < 0.3]
    kinds = {**dict.fromkeys(correlated(rng, 1, 0.0), "numeric"), "plan": "categorical"}
    kinds["new"] = "categorical"
    fitted = fit(data, kinds)
    assert fitted is not None
    kept = {c.value for c in fitted.columns if c.feature == "plan"}
    assert kept == {"basic", "plus", "pro", None}  # "it's" is rarer than 1%: the rest
    np.testing.assert_allclose(engine_errors(fitted, data), fitted.errors(data), rtol=1e-9)
    again = Reconstruction.from_json(fitted.to_json())
    np.testing.assert_allclose(again.errors(data), fitted.errors(data), rtol=0, atol=0)
