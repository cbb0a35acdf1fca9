"""Watchkeeper's estimates without labels against NannyML's published CBPE outputs on
NannyML's synthetic car loan dataset (``bench/nannyml_check.py``), offline: the test reads
the NannyML wheel the bench caches (`.ci/run` downloads it; by hand, the test is skipped
when it is not there)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.helpers import need

BENCH = Path(__file__).resolve().parents[2] / "bench" / "nannyml_check.py"

pytestmark = pytest.mark.integration


def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("nannyml_check", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def car_loan() -> dict[str, Any]:
    check = bench()
    whl = check.cached_wheel(check.cache_dir())
    need(
        whl is not None,
        f"NannyML's wheel cached in {check.cache_dir()}: run `python bench/nannyml_check.py` "
        "once online (it downloads nannyml==0.13.1 without dependencies) or set "
        "WATCHKEEPER_BENCH_CACHE",
    )
    result: dict[str, Any] = check.compare(check.DATASETS["car_loan"], whl)
    return result


@pytest.mark.parametrize("metric", ["roc_auc", "accuracy", "f1"])
def test_estimates_equal_nannyml_published_ones(car_loan: dict[str, Any], metric: str) -> None:
    # NannyML publishes six decimals; the realized values were checked against its
    # PerformanceCalculator's (and scikit-learn) inside compare.
    chunks = car_loan["metrics"][metric]["chunks"]
    assert len(chunks) == 10 and all(c["rows"] == 5000 for c in chunks)
    assert max(abs(c["difference"]) for c in chunks) < 1e-5


@pytest.mark.parametrize("metric", ["roc_auc", "accuracy", "f1"])
def test_degraded_where_nannyml_alerts(car_loan: dict[str, Any], metric: str) -> None:
    chunks = car_loan["metrics"][metric]["chunks"]
    assert [c["status"] == "degraded" for c in chunks] == [c["nannyml_alert"] for c in chunks]
    assert [c["nannyml_alert"] for c in chunks] == [False] * 5 + [True] * 5


def test_a_band_fixed_by_the_reference_agrees_everywhere(car_loan: dict[str, Any]) -> None:
    for metric in ("roc_auc", "accuracy", "f1"):
        chunks = car_loan["metrics"][metric]["chunks"]
        assert [c["fixed_degraded"] for c in chunks] == [c["nannyml_alert"] for c in chunks]
