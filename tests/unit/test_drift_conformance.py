"""Every registered drift method, through the same checks (ids are ``method:check``).

A method added to the registry is checked here without anyone writing a test for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest

from tests.helpers import (
    categorical_binning,
    categorical_profile,
    numeric_binning,
    numeric_profile,
)
from watchkeeper.errors import UnknownMethodError
from watchkeeper.profiles.types import ColumnProfile
from watchkeeper.stats import drift
from watchkeeper.stats.drift import REGISTRY, Comparison, compare

RNG = np.random.default_rng(3)
REF_NUM = RNG.normal(10, 2, 5000)
CUR_NUM = RNG.normal(10.8, 2.4, 3000)
REF_CAT = list(RNG.choice(list("abcdefg"), 4000, p=[0.3, 0.2, 0.15, 0.15, 0.1, 0.06, 0.04]))
CUR_CAT = list(RNG.choice(list("abcdefg"), 2500, p=[0.2, 0.2, 0.2, 0.15, 0.1, 0.1, 0.05]))


def numeric_case(ref: np.ndarray = REF_NUM, cur: np.ndarray = CUR_NUM) -> Comparison:
    b = numeric_binning(ref)
    return Comparison(b, numeric_profile(ref, b), numeric_profile(cur, b))


def categorical_case(ref: list[str] = REF_CAT, cur: list[str] = CUR_CAT) -> Comparison:
    b = categorical_binning(ref)
    return Comparison(b, categorical_profile(ref, b), categorical_profile(cur, b))


CASES = {"numeric": numeric_case, "categorical": categorical_case}


def check_identical_is_zero(key: str, kind: str) -> None:
    c = CASES[kind]()
    same = Comparison(c.binning, c.reference, c.reference)
    result = compare(key, same)
    assert result is not None
    assert result.statistic == pytest.approx(0.0, abs=1e-12)
    if result.p_value is not None:
        assert result.p_value > 0.99


def check_non_negative_and_detects_a_shift(key: str, kind: str) -> None:
    result = compare(key, CASES[kind]())
    assert result is not None
    assert result.statistic > 0
    if result.p_value is not None:
        assert 0 <= result.p_value < 0.05


def check_category_order_does_not_matter(key: str, kind: str) -> None:
    if kind != "categorical":
        return
    c = categorical_case()
    k = len(c.binning.categories)
    perm = np.r_[RNG.permutation(k), k, k + 1]

    def permute(p: ColumnProfile) -> ColumnProfile:
        return replace(p, bins=p.bins[perm])

    shuffled = replace(c.binning, categories=tuple(np.asarray(c.binning.categories)[perm[:k]]))
    a = compare(key, c)
    b = compare(key, Comparison(shuffled, permute(c.reference), permute(c.current)))
    assert a is not None and b is not None
    assert b.statistic == pytest.approx(a.statistic, rel=1e-12, abs=1e-12)


def check_empty_bins_stay_finite(key: str, kind: str) -> None:
    if kind == "numeric":
        c = numeric_case(REF_NUM, REF_NUM[REF_NUM < 9])  # the upper bins are empty
    else:
        c = categorical_case(REF_CAT, ["a"] * 50 + ["zzz"] * 5)  # most categories empty, unseen
    result = compare(key, c)
    assert result is not None
    assert np.isfinite(result.statistic) and result.statistic > 0


def check_empty_window_is_insufficient(key: str, kind: str) -> None:
    c = CASES[kind]()
    empty = ColumnProfile.zero(c.binning.kind, c.binning.n_bins)
    assert (
        compare(key, Comparison(c.binning, c.reference, replace(empty, count=10, missing=10)))
        is None
    )


def check_agrees_with_the_exact_value(key: str, kind: str) -> None:
    method = REGISTRY[key]
    c = CASES[kind]()
    result = compare(key, c)
    assert result is not None
    if kind == "categorical":
        exact = method.exact(np.asarray(REF_CAT), np.asarray(CUR_CAT))
        assert result.statistic == pytest.approx(exact, rel=1e-9)
        return
    if key in ("wasserstein", "ks"):  # on raw values, within the stated bound
        exact = method.exact(REF_NUM, CUR_NUM)
        assert abs(result.statistic - exact) <= result.bound + 1e-9
        assert abs(result.statistic - exact) < 0.05  # binning costs little in practice
        return
    # histogram methods on numeric columns are exact over the coarse bins
    from tests.helpers import bin_index

    edges = tuple(c.binning.coarse_edges())
    exact = method.exact(bin_index(REF_NUM, edges), bin_index(CUR_NUM, edges))
    assert result.statistic == pytest.approx(exact, rel=1e-9)


def check_has_metadata(key: str, kind: str) -> None:
    m = REGISTRY[key]
    assert m.key == key and m.description and m.source and m.threshold > 0


CHECKS: list[Callable[[str, str], None]] = [
    check_has_metadata,
    check_identical_is_zero,
    check_non_negative_and_detects_a_shift,
    check_category_order_does_not_matter,
    check_empty_bins_stay_finite,
    check_empty_window_is_insufficient,
    check_agrees_with_the_exact_value,
]

PARAMS = [
    pytest.param(key, kind, check, id=f"{key}:{kind}:{check.__name__.removeprefix('check_')}")
    for key, method in sorted(REGISTRY.items())
    for kind in sorted(method.kinds)
    for check in CHECKS
]


@pytest.mark.parametrize(("key", "kind", "check"), PARAMS)
def test_conformance(key: str, kind: str, check: Callable[[str, str], None]) -> None:
    check(key, kind)


def test_every_method_is_covered() -> None:
    assert {p.values[0] for p in PARAMS} == set(REGISTRY)
    assert len(REGISTRY) >= 7


def test_registering_without_metadata_fails() -> None:
    with pytest.raises(ValueError, match="without its metadata"):
        drift.register(replace(REGISTRY["psi"], key="bare", description=""))
    assert "bare" not in REGISTRY


def test_unknown_method_lists_the_registry() -> None:
    with pytest.raises(UnknownMethodError, match="registered: chi2, hellinger, jensen_shannon"):
        drift.get("nope")


def test_a_method_on_the_wrong_kind_is_refused() -> None:
    with pytest.raises(UnknownMethodError, match="drift method for categorical columns"):
        compare("ks", categorical_case())


def test_ks_p_value_matches_scipy_on_distinct_values() -> None:
    from scipy import stats

    ref = RNG.integers(0, 50, 4000).astype(float)  # discrete: one bin per value, no binning error
    cur = RNG.integers(2, 52, 3000).astype(float)
    b = numeric_binning(np.concatenate([ref, cur]))
    result = compare("ks", Comparison(b, numeric_profile(ref, b), numeric_profile(cur, b)))
    expected = stats.ks_2samp(ref, cur, method="asymp")
    assert result is not None
    assert result.statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-6)


def test_chi2_matches_scipy() -> None:
    from scipy import stats

    c = categorical_case()
    result = compare("chi2", c)
    table = np.vstack([c.reference.bins, c.current.bins])
    table = table[:, table.sum(axis=0) > 0]
    expected = stats.chi2_contingency(table, correction=False)
    assert result is not None
    assert result.statistic == pytest.approx(expected[0])
    assert result.p_value == pytest.approx(expected[1])


def test_js_matches_scipy() -> None:
    from scipy.spatial.distance import jensenshannon

    c = categorical_case()
    p, q = c.proportions("fine")
    result = compare("jensen_shannon", c)
    assert result is not None
    assert result.statistic == pytest.approx(jensenshannon(p, q, base=2))
