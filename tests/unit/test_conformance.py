"""One conformance suite over every plug-in registry: the drift methods, the data-quality
metrics, each task's metrics and estimator, the metric families and the catalogue.

The cases are generated from the registries (as river's ``test_estimators.py`` does), with
ids ``registry:plug-in[:kind]:check``, and each plug-in gets only the checks that apply to
it: a categorical check is not generated for a numeric-only method, a p-value check only
for a test, an interval check only for a metric that gives an interval. A plug-in added to
a registry is checked here without anyone writing a test for it; one that a check needs a
counterpart for (a numpy version of a quality metric, a scikit-learn reference of a task's
metric) fails until the counterpart is written below.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cache
from types import SimpleNamespace
from typing import Any, get_args

import numpy as np
import pytest
from scipy import stats as sps
from sklearn import metrics as skm

from tests.helpers import (
    bin_index,
    categorical_binning,
    categorical_profile,
    numeric_binning,
    numeric_profile,
    ranking_sums_from_rows,
)
from watchkeeper import catalogue as cat
from watchkeeper.catalogue import CATALOGUE, ESTIMABLE, PROMETHEUS
from watchkeeper.config import ModelConfig, parse_config
from watchkeeper.errors import UnknownMethodError
from watchkeeper.metrics.family import Aggregates, Context, Family, declared
from watchkeeper.metrics.registry import FAMILIES
from watchkeeper.profiles.counts import (
    BinaryCounts,
    MulticlassCounts,
    RankingSums,
    RegressionSums,
    score_bins,
)
from watchkeeper.profiles.types import ColumnProfile
from watchkeeper.server.exports import GRAFANA_UNITS
from watchkeeper.stats import drift, quality
from watchkeeper.stats import estimation as est
from watchkeeper.stats import multiclass as mc
from watchkeeper.stats import performance as perf
from watchkeeper.stats import regression as reg
from watchkeeper.stats.drift import Comparison, Method, compare
from watchkeeper.stats.loss import LossSums
from watchkeeper.stats.performance import Estimate
from watchkeeper.tasks import TASKS, Task

Array = np.ndarray[Any, Any]
KINDS = ("numeric", "categorical")


def case(id_: str, *values: object, marks: Any = ()) -> Any:
    return pytest.param(*values, id=id_, marks=marks)


# == drift methods ===========================================================================


def numeric_case(ref: Array, cur: Array) -> Comparison:
    b = numeric_binning(ref)
    return Comparison(b, numeric_profile(ref, b), numeric_profile(cur, b))


def categorical_case(ref: Array, cur: Array) -> Comparison:
    b = categorical_binning(list(ref))
    return Comparison(b, categorical_profile(list(ref), b), categorical_profile(list(cur), b))


def comparison(kind: str, ref: Array, cur: Array) -> Comparison:
    return numeric_case(ref, cur) if kind == "numeric" else categorical_case(ref, cur)


CATEGORIES = list("abcdefg")


@cache
def scenarios(kind: str) -> tuple[tuple[Array, Array], ...]:
    """Simulated (reference, window) pairs with a drift between them."""
    rng = np.random.default_rng([3, KINDS.index(kind)])
    if kind == "numeric":
        return (
            (rng.normal(10, 2, 5000), rng.normal(10.8, 2.4, 3000)),  # location and scale
            (rng.gamma(2, 3, 4000), rng.gamma(3, 2.5, 2500)),  # skewed
            (rng.gamma(2, 3, 4000).round(), rng.gamma(2.2, 3, 2500).round()),  # ties
        )
    p_ref = [0.3, 0.2, 0.15, 0.15, 0.1, 0.06, 0.04]
    p_cur = [0.2, 0.2, 0.2, 0.15, 0.1, 0.1, 0.05]
    with_unseen = np.concatenate([rng.choice(CATEGORIES, 2400, p=p_cur), ["zzz"] * 100])
    return (
        (rng.choice(CATEGORIES, 4000, p=p_ref), rng.choice(CATEGORIES, 2500, p=p_cur)),
        (rng.choice(CATEGORIES, 4000, p=p_ref), with_unseen),  # one unseen category
    )


def exact_inputs(c: Comparison, ref: Array, cur: Array, bound: float) -> tuple[Array, Array]:
    """What a method's exact counterpart reads: the raw values when the method declares a
    binning bound (the statistic approximates one on raw data), else the labels of the bins
    it is computed over (exact on those bins: a numeric column's coarse grid, a categorical
    column's categories)."""
    if c.binning.kind == "categorical" or bound > 0:
        return ref, cur
    edges = tuple(c.binning.coarse_edges())
    return bin_index(ref, edges), bin_index(cur, edges)


def check_drift_identity(m: Method, kind: str) -> None:
    ref, _ = scenarios(kind)[0]
    c = comparison(kind, ref, ref)
    result = compare(m.key, c)
    assert result is not None
    assert result.statistic == pytest.approx(0.0, abs=1e-12)
    if m.is_test:
        assert result.p_value is not None and result.p_value > 0.99
    else:
        assert result.p_value is None


def check_drift_detects_a_shift(m: Method, kind: str) -> None:
    for ref, cur in scenarios(kind):
        result = compare(m.key, comparison(kind, ref, cur))
        assert result is not None
        assert result.statistic > 0
        if m.is_test:
            assert result.p_value is not None and 0 <= result.p_value < 0.05


def check_drift_bound(m: Method, kind: str) -> None:
    """The binned statistic is within its declared bound of the exact one."""
    for ref, cur in scenarios(kind):
        c = comparison(kind, ref, cur)
        result = compare(m.key, c)
        assert result is not None and result.bound >= 0
        exact = m.exact(*exact_inputs(c, ref, cur, result.bound))
        assert abs(result.statistic - exact) <= result.bound + 1e-9 * max(1.0, abs(exact)), (
            result.statistic,
            exact,
            result.bound,
        )
        if result.bound > 0:
            assert abs(result.statistic - exact) < 0.05  # binning costs little in practice


def check_drift_symmetry(m: Method, kind: str) -> None:
    """Symmetric in its two sides exactly when its exact counterpart is (the registry has no
    symmetry flag: the exact function is the declaration)."""
    for ref, cur in scenarios(kind):
        c = comparison(kind, ref, cur)
        forward = compare(m.key, c)
        backward = compare(m.key, Comparison(c.binning, c.current, c.reference))
        assert forward is not None and backward is not None
        a, b = exact_inputs(c, ref, cur, forward.bound)
        exact_symmetric = math.isclose(m.exact(a, b), m.exact(b, a), rel_tol=1e-9, abs_tol=1e-12)
        binned_symmetric = math.isclose(
            forward.statistic, backward.statistic, rel_tol=1e-9, abs_tol=1e-12
        )
        assert binned_symmetric == exact_symmetric, (forward.statistic, backward.statistic)
        if m.is_test and exact_symmetric:
            assert forward.p_value == pytest.approx(backward.p_value, rel=1e-9, abs=1e-12)


def check_drift_category_order(m: Method, kind: str) -> None:
    rng = np.random.default_rng(17)
    for ref, cur in scenarios(kind):
        c = categorical_case(ref, cur)
        k = len(c.binning.categories)
        perm = np.r_[rng.permutation(k), k, k + 1]  # "other" and "unseen" stay last
        shuffled = Comparison(
            replace(c.binning, categories=tuple(np.asarray(c.binning.categories)[perm[:k]])),
            replace(c.reference, bins=c.reference.bins[perm]),
            replace(c.current, bins=c.current.bins[perm]),
        )
        a, b = compare(m.key, c), compare(m.key, shuffled)
        assert a is not None and b is not None
        assert b.statistic == pytest.approx(a.statistic, rel=1e-12, abs=1e-12)
        if a.p_value is None:
            assert b.p_value is None
        else:
            assert b.p_value == pytest.approx(a.p_value, rel=1e-12, abs=1e-12)


def check_drift_empty_bins_stay_finite(m: Method, kind: str) -> None:
    ref, _ = scenarios(kind)[0]
    if kind == "numeric":
        c = numeric_case(ref, ref[ref < 9])  # the upper bins are empty
    else:
        c = categorical_case(ref, np.array(["a"] * 50 + ["zzz"] * 5))  # most empty, unseen
    result = compare(m.key, c)
    assert result is not None
    assert np.isfinite(result.statistic) and result.statistic > 0
    assert np.isfinite(result.bound)


def check_drift_empty_window_is_insufficient(m: Method, kind: str) -> None:
    ref, _ = scenarios(kind)[0]
    c = comparison(kind, ref, ref)
    empty = ColumnProfile.zero(c.binning.kind, c.binning.n_bins)
    all_missing = replace(empty, count=10, missing=10)
    assert compare(m.key, Comparison(c.binning, c.reference, all_missing)) is None
    assert compare(m.key, Comparison(c.binning, all_missing, c.reference)) is None


def check_drift_null_p_values(m: Method, kind: str) -> None:
    """Under no drift a test's p-values are about uniform (a loose check over 40 seeds; a
    binned statistic may be conservative, never anti-conservative)."""
    p_values = []
    for seed in range(40):
        rng = np.random.default_rng([29, seed])
        if kind == "numeric":
            ref, cur = rng.normal(0, 1, 1500), rng.normal(0, 1, 1000)
        else:
            probs = [0.3, 0.25, 0.2, 0.15, 0.1]
            ref, cur = (
                rng.choice(CATEGORIES[:5], 1500, p=probs),
                rng.choice(CATEGORIES[:5], 1000, p=probs),
            )
        result = compare(m.key, comparison(kind, ref, cur))
        assert result is not None and result.p_value is not None
        p_values.append(result.p_value)
    p = np.array(p_values)
    assert ((p >= 0) & (p <= 1)).all()
    assert (p < 0.05).mean() <= 0.15, np.sort(p)
    assert 0.2 <= (p < 0.5).mean() <= 0.8, np.sort(p)
    assert sps.kstest(p, "uniform").pvalue > 1e-3, np.sort(p)


def check_drift_wrong_kind_is_refused(m: Method, kind: str) -> None:
    ref = np.array(CATEGORIES * 10) if kind == "categorical" else np.arange(100.0)
    with pytest.raises(UnknownMethodError, match=f"drift method for {kind} columns"):
        compare(m.key, comparison(kind, ref, ref))


def check_drift_metadata(m: Method) -> None:
    assert m.key and re.fullmatch(r"[a-z][a-z0-9_]*", m.key)
    assert m.description.strip() and m.source.strip()
    assert m.kinds and m.kinds <= set(KINDS)
    assert m.threshold > 0
    if m.is_test:
        assert m.threshold < 1  # a significance level
    assert callable(m.compute) and callable(m.exact)
    entry = CATALOGUE[f"drift_{m.key}"]  # catalogued from the registry
    assert entry.description.startswith(m.description)
    assert entry.family == "drift"


KindCheck = Callable[[Method, str], None]
DRIFT_CHECKS: list[tuple[str, KindCheck, Callable[[Method, str], bool]]] = [
    ("identity", check_drift_identity, lambda m, k: k in m.kinds),
    ("detects_shift", check_drift_detects_a_shift, lambda m, k: k in m.kinds),
    ("bound", check_drift_bound, lambda m, k: k in m.kinds),
    ("symmetry", check_drift_symmetry, lambda m, k: k in m.kinds),
    (
        "category_order",
        check_drift_category_order,
        lambda m, k: k == "categorical" and k in m.kinds,
    ),
    ("empty_bins_finite", check_drift_empty_bins_stay_finite, lambda m, k: k in m.kinds),
    ("empty_window", check_drift_empty_window_is_insufficient, lambda m, k: k in m.kinds),
    ("null_p_values", check_drift_null_p_values, lambda m, k: m.is_test and k in m.kinds),
    ("refused", check_drift_wrong_kind_is_refused, lambda m, k: k not in m.kinds),
]


def drift_cases() -> Iterator[Any]:
    for key, m in sorted(drift.REGISTRY.items()):
        yield case(f"drift:{key}:metadata", m, "", lambda m, _k: check_drift_metadata(m))
        for kind in KINDS:
            for name, check, applies in DRIFT_CHECKS:
                if applies(m, kind):
                    yield case(f"drift:{key}:{kind}:{name}", m, kind, check)


DRIFT_CASES = list(drift_cases())


@pytest.mark.parametrize(("method", "kind", "check"), DRIFT_CASES)
def test_drift_method(method: Method, kind: str, check: KindCheck) -> None:
    check(method, kind)


@pytest.mark.parametrize(
    "missing",
    [
        case("drift:register:without_description", {"description": ""}),
        case("drift:register:without_source", {"source": ""}),
        case("drift:register:without_kinds", {"kinds": frozenset()}),
    ],
)
def test_a_drift_method_without_metadata_is_refused(missing: dict[str, Any]) -> None:
    before = dict(drift.REGISTRY)
    with pytest.raises(ValueError, match="without its metadata"):
        drift.register(replace(drift.REGISTRY["psi"], key="bare", **missing))
    assert before == drift.REGISTRY


def test_unknown_drift_method_lists_the_registry() -> None:
    with pytest.raises(UnknownMethodError, match="registered: chi2, hellinger, jensen_shannon"):
        drift.get("nope")


def test_ks_p_value_matches_scipy_on_distinct_values() -> None:
    rng = np.random.default_rng(5)
    ref = rng.integers(0, 50, 4000).astype(float)  # one bin per value: no binning error
    cur = rng.integers(2, 52, 3000).astype(float)
    b = numeric_binning(np.concatenate([ref, cur]))
    result = compare("ks", Comparison(b, numeric_profile(ref, b), numeric_profile(cur, b)))
    expected = sps.ks_2samp(ref, cur, method="asymp")
    assert result is not None
    assert result.statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-6)


def test_chi2_matches_scipy() -> None:
    ref, cur = scenarios("categorical")[0]
    c = categorical_case(ref, cur)
    result = compare("chi2", c)
    table = np.vstack([c.reference.bins, c.current.bins])
    expected = sps.chi2_contingency(table[:, table.sum(axis=0) > 0], correction=False)
    assert result is not None
    assert result.statistic == pytest.approx(expected[0])
    assert result.p_value == pytest.approx(expected[1])


def test_js_matches_scipy() -> None:
    from scipy.spatial.distance import jensenshannon

    ref, cur = scenarios("categorical")[0]
    c = categorical_case(ref, cur)
    p, q = c.proportions("fine")
    result = compare("jensen_shannon", c)
    assert result is not None
    assert result.statistic == pytest.approx(jensenshannon(p, q, base=2))


# == data-quality metrics ====================================================================


@cache
def quality_data(kind: str) -> tuple[Any, Any, Any]:
    """A reference binning, a window's raw values and their profile (nulls, values out of
    the reference's range or vocabulary)."""
    rng = np.random.default_rng([7, KINDS.index(kind)])
    if kind == "numeric":
        ref = rng.normal(10, 2, 3000)
        b = numeric_binning(ref)
        cur = rng.normal(11, 3, 2000)
        cur[rng.uniform(size=2000) < 0.1] = np.nan
        return b, cur, numeric_profile(cur, b)
    ref_values = list(rng.choice(list("abcdef"), 3000, p=[0.3, 0.25, 0.2, 0.1, 0.1, 0.05]))
    b = categorical_binning(ref_values, vocabulary=4)  # e and f are known, not in the vocabulary
    values = list(rng.choice([*"abcdef", "yy", "zz"], 2000))
    values = [None if rng.uniform() < 0.1 else v for v in values]
    return b, values, categorical_profile(values, b)


def _present(values: Any) -> list[Any]:
    if isinstance(values, np.ndarray):
        return list(values[~np.isnan(values)])
    return [v for v in values if v is not None]


def _missing(values: Any) -> float:
    return (
        float(np.mean(np.isnan(values)))
        if isinstance(values, np.ndarray)
        else float(np.mean([v is None for v in values]))
    )


def _out_of_range(values: Any, b: Any) -> float:
    x = np.asarray(_present(values))
    return float(np.mean((x < b.edges[0]) | (x > b.edges[-1])))


def _unseen(values: Any, b: Any) -> float:
    return float(np.mean([v not in set(b.known) for v in _present(values)]))


# Each quality metric's numpy version on the raw values: (value, its sample size).
QUALITY_NUMPY: Mapping[str, Callable[[Any, Any], tuple[float, int]]] = {
    "missing_rate": lambda v, b: (_missing(v), len(v)),
    "out_of_range_rate": lambda v, b: (_out_of_range(v, b), len(_present(v))),
    "unseen_rate": lambda v, b: (_unseen(v, b), len(_present(v))),
    "mean": lambda v, b: (float(np.mean(_present(v))), len(_present(v))),
    "std": lambda v, b: (float(np.std(_present(v))), len(_present(v))),
}


def check_quality_metadata(q: quality.QualityMetric, kind: str) -> None:
    assert q.key and q.description.strip() and q.kinds and q.kinds <= set(KINDS)
    entry = CATALOGUE[q.key]
    assert entry.family == "data_quality"
    assert entry.description == q.description  # the two texts say the same


def check_quality_numpy(q: quality.QualityMetric, kind: str) -> None:
    assert q.key in QUALITY_NUMPY, f"write the numpy version of quality metric {q.key!r}"
    b, values, profile = quality_data(kind)
    value, n = q.compute(profile, b)
    expected, expected_n = QUALITY_NUMPY[q.key](values, b)
    assert value == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert n == expected_n
    assert expected > 0  # the data exercise the metric


def check_quality_is_a_rate(q: quality.QualityMetric, kind: str) -> None:
    b, _, profile = quality_data(kind)
    cases = [profile, replace(profile, count=profile.present, missing=0)]
    cases.append(replace(profile, missing=profile.count))  # every row missing
    for p in cases:
        value, n = q.compute(p, b)
        assert (0 <= value <= 1) if n else math.isnan(value)


def check_quality_on_an_empty_window(q: quality.QualityMetric, kind: str) -> None:
    b, _, _ = quality_data(kind)
    value, n = q.compute(ColumnProfile.zero(b.kind, b.n_bins), b)
    assert n == 0 and math.isnan(value)


QualityCheck = Callable[[quality.QualityMetric, str], None]


def quality_cases() -> Iterator[Any]:
    for key, q in sorted(quality.REGISTRY.items()):
        yield case(f"quality:{key}:metadata", q, "", check_quality_metadata)
        for kind in sorted(q.kinds):
            yield case(f"quality:{key}:{kind}:numpy", q, kind, check_quality_numpy)
            yield case(f"quality:{key}:{kind}:empty", q, kind, check_quality_on_an_empty_window)
            if key in CATALOGUE and CATALOGUE[key].unit == "ratio":
                yield case(f"quality:{key}:{kind}:rate", q, kind, check_quality_is_a_rate)


QUALITY_CASES = list(quality_cases())


@pytest.mark.parametrize(("metric", "kind", "check"), QUALITY_CASES)
def test_quality_metric(metric: quality.QualityMetric, kind: str, check: QualityCheck) -> None:
    check(metric, kind)


@pytest.mark.parametrize(
    "missing",
    [
        case("quality:register:without_description", {"description": ""}),
        case("quality:register:without_kinds", {"kinds": frozenset()}),
    ],
)
def test_a_quality_metric_without_metadata_is_refused(missing: dict[str, Any]) -> None:
    before = dict(quality.REGISTRY)
    with pytest.raises(ValueError, match="without its metadata"):
        quality.register(replace(quality.REGISTRY["mean"], key="bare", **missing))
    assert before == quality.REGISTRY


# == each task's metrics =====================================================================

CLASSES = ("cat", "dog", "fox", "owl")
RANKING_K = 5


@dataclass(frozen=True)
class Rows:
    """A task's simulated labelled rows (exact data) and their counts."""

    counts: Any
    y: Array
    p: Array  # the prediction (ranking: the query)
    s: Array  # the score (multiclass: every class's; ranking: the item's)


@cache
def task_rows(task: str) -> Rows:
    rng = np.random.default_rng([11, sorted(TASKS).index(task)])
    if task == "binary_classification":
        y = (rng.uniform(size=5000) < 0.3).astype(int)
        s = np.clip(rng.beta(2, 5, 5000) + 0.35 * y, 0, 1)
        p = (s >= 0.5).astype(int)
        return Rows(perf.counts_from_rows(s, y, p), y, p, s)
    if task == "multiclass_classification":
        n = 3000
        y = rng.choice(CLASSES, n, p=[0.45, 0.3, 0.2, 0.05])
        logits = rng.normal(0, 1, (n, 4)) + 1.5 * (np.array(CLASSES) == y[:, None])
        logits[:, 3] -= 1.5  # owl is rarely predicted
        probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        p = np.array(CLASSES)[probs.argmax(axis=1)]
        true_score = probs[np.arange(n), [CLASSES.index(v) for v in y]]
        return Rows(mc.counts_from_rows(CLASSES, y, p, true_score), y, p, probs)
    if task == "regression":
        y = rng.gamma(3, 50, 4000) + 1  # away from zero: mape is comparable
        p = y * rng.normal(1.0, 0.2, 4000) + rng.normal(5, 10, 4000)
        return Rows(reg.sums_from_rows(p, y), y, p, p)
    if task == "ranking":
        sizes = rng.integers(2, 13, 400)
        q = np.repeat(np.arange(len(sizes)), sizes)
        y = rng.choice([0, 0, 0, 1, 2, 3], len(q)).astype(float)
        y[np.isin(q, np.arange(0, 400, 7))] = 0  # some queries have nothing relevant
        s = y + rng.normal(0, 1.5, len(q))  # continuous: no ties in a query
        return Rows(ranking_sums_from_rows(q, y, s, RANKING_K), y, q, s)
    raise KeyError(f"simulate rows of task {task!r} for the conformance suite")


def _ece(r: Rows) -> float:
    which = np.minimum((r.s * 10).astype(int), 9)
    gaps = [
        (which == i).sum() * abs(r.s[which == i].mean() - r.y[which == i].mean())
        for i in range(10)
        if (which == i).any()
    ]
    return float(sum(gaps) / len(r.s))


def _per_query(r: Rows) -> Iterator[tuple[Array, Array]]:
    """Each query's labels and scores."""
    for query in np.unique(r.p):
        yield r.y[r.p == query], r.s[r.p == query]


def _top_k_hits(y: Array, s: Array) -> float:
    top = np.argsort(-s)[:RANKING_K]
    return float((y[top] > 0).sum() / RANKING_K)


def _reciprocal_rank(y: Array, s: Array) -> float:
    order = y[np.argsort(-s)]
    hits = np.nonzero(order > 0)[0]
    return 1.0 / (hits[0] + 1) if len(hits) else 0.0


def _ndcg(r: Rows) -> float:
    """scikit-learn's ndcg_score, over the queries with a relevant item (where it is
    comparable: watchkeeper leaves the others out, scikit-learn scores them 0)."""
    found = [skm.ndcg_score([y], [s], k=RANKING_K) for y, s in _per_query(r) if (y > 0).any()]
    return float(np.mean(found))


Reference = Callable[[Rows], float]
MACRO = {"average": "macro", "zero_division": 0}
WEIGHTED = {"average": "weighted", "zero_division": 0}

# Each task's metrics on exact data, by scikit-learn (or numpy where it has none).
REFERENCES: Mapping[str, Mapping[str, Reference]] = {
    "binary_classification": {
        "accuracy": lambda r: skm.accuracy_score(r.y, r.p),
        "precision": lambda r: skm.precision_score(r.y, r.p),
        "recall": lambda r: skm.recall_score(r.y, r.p),
        "specificity": lambda r: skm.recall_score(r.y, r.p, pos_label=0),
        "false_positive_rate": lambda r: 1 - skm.recall_score(r.y, r.p, pos_label=0),
        "false_negative_rate": lambda r: 1 - skm.recall_score(r.y, r.p),
        "f1": lambda r: skm.f1_score(r.y, r.p),
        "positive_rate": lambda r: float(r.p.mean()),
        "roc_auc": lambda r: skm.roc_auc_score(r.y, r.s),
        "pr_auc": lambda r: skm.average_precision_score(r.y, r.s),
        "log_loss": lambda r: skm.log_loss(r.y, r.s),
        "brier": lambda r: skm.brier_score_loss(r.y, r.s),
        "expected_calibration_error": _ece,
    },
    "multiclass_classification": {
        "accuracy": lambda r: skm.accuracy_score(r.y, r.p),
        "macro_precision": lambda r: skm.precision_score(r.y, r.p, **MACRO),
        "macro_recall": lambda r: skm.recall_score(r.y, r.p, **MACRO),
        "macro_f1": lambda r: skm.f1_score(r.y, r.p, **MACRO),
        "weighted_precision": lambda r: skm.precision_score(r.y, r.p, **WEIGHTED),
        "weighted_recall": lambda r: skm.recall_score(r.y, r.p, **WEIGHTED),
        "weighted_f1": lambda r: skm.f1_score(r.y, r.p, **WEIGHTED),
        "log_loss": lambda r: skm.log_loss(r.y, r.s, labels=list(CLASSES)),
    },
    "regression": {
        "mae": lambda r: skm.mean_absolute_error(r.y, r.p),
        "rmse": lambda r: skm.root_mean_squared_error(r.y, r.p),
        "mape": lambda r: skm.mean_absolute_percentage_error(r.y, r.p),
        "r2": lambda r: skm.r2_score(r.y, r.p),
        "mean_error": lambda r: float(np.mean(r.p - r.y)),
    },
    "ranking": {
        "ctr": lambda r: float((r.y > 0).mean()),
        "precision_at_k": lambda r: float(np.mean([_top_k_hits(*q) for q in _per_query(r)])),
        "ndcg_at_k": _ndcg,
        "mrr": lambda r: float(np.mean([_reciprocal_rank(*q) for q in _per_query(r)])),
    },
}

# The aggregate of no labelled events, per task.
ZEROS: Mapping[str, Callable[[], Any]] = {
    "binary_classification": BinaryCounts.zero,
    "multiclass_classification": lambda: MulticlassCounts.zero(CLASSES),
    "regression": RegressionSums.zero,
    "ranking": RankingSums.zero,
}

# One labelled event (ranking: one query): a metric is None or a finite number.
TINY: Mapping[str, Callable[[], Any]] = {
    "binary_classification": lambda: perf.counts_from_rows(
        np.array([0.9]), np.array([1]), np.array([1])
    ),
    "multiclass_classification": lambda: mc.counts_from_rows(CLASSES, ["dog"], ["cat"], [0.2]),
    "regression": lambda: reg.sums_from_rows([3.0], [2.0]),
    "ranking": lambda: ranking_sums_from_rows(
        np.array([1, 1]), np.array([0.0, 1.0]), np.array([0.9, 0.1]), RANKING_K
    ),
}


def check_task_metric_reference(task: Task, key: str) -> None:
    """Equal to the reference on exact data, or within the metric's declared bound."""
    references = REFERENCES.get(task.key, {})
    assert key in references, f"write the scikit-learn reference of {task.key} metric {key!r}"
    rows = task_rows(task.key)
    e = task.metrics[key](rows.counts)
    expected = float(references[key](rows))
    assert isinstance(e, Estimate) and e.value is not None
    assert e.bound >= 0 and (e.lower is None) == (e.upper is None)
    assert abs(e.value - expected) <= e.bound + 1e-9 * max(1.0, abs(expected)), (
        e.value,
        expected,
        e.bound,
    )
    if e.bound > 0:
        assert e.bound < 0.05  # the bound is informative on 5000 events
    assert e.sample_size > 0


def check_task_metric_interval(task: Task, key: str) -> None:
    e = task.metrics[key](task_rows(task.key).counts)
    assert e.value is not None and e.lower is not None and e.upper is not None
    assert e.lower <= e.value <= e.upper
    assert math.isfinite(e.lower) and math.isfinite(e.upper)
    if e.method in ("wilson", "delta"):  # a proportion's (and F1's) interval stays in [0, 1]
        assert e.lower >= 0 and e.upper <= 1


def check_task_metric_empty(task: Task, key: str) -> None:
    e = task.metrics[key](ZEROS[task.key]())
    assert isinstance(e, Estimate)
    assert (e.value, e.lower, e.upper) == (None, None, None)
    assert e.sample_size == 0


def check_task_metric_tiny(task: Task, key: str) -> None:
    e = task.metrics[key](TINY[task.key]())
    assert isinstance(e, Estimate)
    if e.value is not None:
        assert math.isfinite(e.value)
    if e.lower is not None and e.upper is not None and e.value is not None:
        assert math.isfinite(e.lower) and math.isfinite(e.upper)
        assert e.lower <= e.value <= e.upper


def check_task_metric_catalogued(task: Task, key: str) -> None:
    assert key in CATALOGUE, f"{task.key} metric {key!r} is not in the catalogue"
    entry = CATALOGUE[key]
    assert entry.family == "performance" and entry.needs_labels
    assert task.key in entry.tasks


def _gives_an_interval(task: Task, key: str) -> bool:
    try:
        return task.metrics[key](task_rows(task.key).counts).lower is not None
    except Exception:  # the reference check reports it
        return False


TaskCheck = Callable[[Task, str], None]


def task_metric_cases() -> Iterator[Any]:
    for name, task in sorted(TASKS.items()):
        for key in task.metrics:
            at = f"task:{name}:{key}"
            yield case(f"{at}:reference", task, key, check_task_metric_reference)
            if _gives_an_interval(task, key):
                yield case(f"{at}:interval", task, key, check_task_metric_interval)
            yield case(f"{at}:empty", task, key, check_task_metric_empty)
            yield case(f"{at}:one_event", task, key, check_task_metric_tiny)
            yield case(f"{at}:catalogued", task, key, check_task_metric_catalogued)


TASK_METRIC_CASES = list(task_metric_cases())


@pytest.mark.parametrize(("task", "key", "check"), TASK_METRIC_CASES)
def test_task_metric(task: Task, key: str, check: TaskCheck) -> None:
    check(task, key)


def test_every_reference_is_of_a_registered_metric() -> None:
    # A reference left behind by a removed or renamed metric would silently test nothing.
    assert {t: set(r) for t, r in REFERENCES.items()} == {
        t: set(task.metrics) for t, task in TASKS.items()
    }


# -- the estimators' outputs ----------------------------------------------------------------

MODELS_YAML = """\
engine: {path: store.duckdb}
models:
  - name: b
    task: binary_classification
    columns:
      event_id: id
      timestamp: ts
      features: [{name: x, kind: numeric}, {name: c, kind: categorical}]
      score: score
      segments: [region]
      latency: latency_ms
      status: status
    labels: {column: label, timestamp: labelled_at}
    outcomes: [{name: chargeback}]
    costs: {false_positive: 5, false_negative: 120}
  - name: m
    task: multiclass_classification
    classes: [cat, dog, fox, owl]
    columns:
      features: [{name: x, kind: numeric}]
      prediction: pred
      scores: {cat: s_cat, dog: s_dog, fox: s_fox, owl: s_owl}
  - name: r
    task: regression
    columns:
      features: [{name: x, kind: numeric}]
      prediction: pred
  - name: k
    task: ranking
    columns:
      features: [{name: x, kind: numeric}]
      query_id: q
      item_id: item
      score: score
"""


@cache
def models() -> Mapping[str, ModelConfig]:
    """One parsed model per task."""
    return {m.task: m for m in parse_config(MODELS_YAML).models}


def estimated(task: Task) -> Mapping[str, Estimate]:
    """The estimator's output on a window like the simulated one."""
    assert task.estimator is not None
    model, rows = models()[task.key], task_rows(task.key)
    if task.key == "binary_classification":
        fitted: Any = est.CalibrationMap.fit(rows.counts)
        aggregate: Any = rows.counts.positives + rows.counts.negatives
    elif task.key == "multiclass_classification":
        fitted, aggregate = {}, {}
        predicted = np.array([CLASSES.index(v) for v in rows.p])
        for i, cls in enumerate(CLASSES):
            score = rows.s[:, i]
            fitted[cls] = est.CalibrationMap.fit(
                perf.counts_from_rows(score, rows.y == cls, score >= 0.5)
            )
            bins = score_bins(score) + 100 * (predicted == i)
            aggregate[cls] = np.bincount(bins, minlength=200)
    elif task.key == "regression":
        # The sums and the reference rows the loss model learnt from are all an estimate reads.
        fitted = SimpleNamespace(rows=len(rows.y))
        error = np.abs(rows.p - rows.y)
        aggregate = LossSums.of(error, error**2)
    else:
        raise KeyError(f"build an estimator input for task {task.key!r}")
    return task.estimator.estimate(model, fitted, aggregate).estimates


def check_estimator_outputs_are_catalogued(task: Task) -> None:
    found = estimated(task)
    bases = {name.split(":", 1)[0] for name in found}
    assert bases == set(ESTIMABLE[task.key])
    for base in bases:
        entry = CATALOGUE[f"estimated_{base}"]
        assert entry.estimates == base and task.key in entry.tasks
        assert base in task.metrics or base == "recall"  # recall:<class> is an extra
    for name, e in found.items():
        assert isinstance(e, Estimate) and e.value is not None, name
        assert e.lower is not None and e.upper is not None and e.lower <= e.value <= e.upper


def check_task_catalogue_is_emitted(task: Task) -> None:
    """Every performance key the catalogue lists for the task is one the task computes:
    a metric, an extra (a row per class or score bin) or a residual quantile."""
    for entry in cat.catalogue.of_family("performance"):
        if task.key not in entry.tasks or not entry.needs_labels:
            continue
        if entry.column:  # per class or per score bin: the task's extras
            continue
        if entry.key.startswith("residual_"):
            assert task.residual is not None, entry.key
            continue
        assert entry.key in task.metrics, entry.key


def check_no_estimator_no_estimates(task: Task) -> None:
    assert task.key not in ESTIMABLE


def task_cases() -> Iterator[Any]:
    for name, task in sorted(TASKS.items()):
        yield case(f"task:{name}:catalogue_emitted", task, check_task_catalogue_is_emitted)
        if task.estimator is not None:
            yield case(
                f"task:{name}:estimator:catalogued", task, check_estimator_outputs_are_catalogued
            )
        else:
            yield case(f"task:{name}:estimator:none", task, check_no_estimator_no_estimates)


@pytest.mark.parametrize(("task", "check"), list(task_cases()))
def test_task(task: Task, check: Callable[[Task], None]) -> None:
    check(task)


# == metric families =========================================================================

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)


def check_family_declares_catalogued_keys(family: Family, task: str) -> None:
    assert family.key and family.description.strip() and family.emits
    for pattern in family.emits:
        assert declared(replace(family, emits=(pattern,))), (
            f"family {family.key!r} emits {pattern!r}, which matches no catalogue key"
        )
    for key in family.history:
        assert key in CATALOGUE, key


def check_family_on_nothing(family: Family, task: str) -> None:
    model = models()[task]
    ctx = Context(model, TASKS[task], timedelta(hours=1), NOW, {})
    rows = family.compute(ctx, Aggregates())
    assert rows == []
    family.check(rows)


def family_cases() -> Iterator[Any]:
    for family in FAMILIES:
        yield case(
            f"family:{family.key}:declared", family, "", check_family_declares_catalogued_keys
        )
        for task in sorted(TASKS):
            yield case(f"family:{family.key}:{task}:empty", family, task, check_family_on_nothing)


@pytest.mark.parametrize(("family", "task", "check"), list(family_cases()))
def test_family(family: Family, task: str, check: Callable[[Family, str], None]) -> None:
    check(family, task)


def test_family_keys_are_unique() -> None:
    keys = [f.key for f in FAMILIES]
    assert len(keys) == len(set(keys))


# == the catalogue ===========================================================================

PLACEHOLDERS = {"{column}", "{segment}", "{metric}", "{base}", "{version}"}
SNAKE = re.compile(r"[a-z][a-z0-9_]*")


def check_entry_metadata(m: cat.Metric) -> None:
    assert SNAKE.fullmatch(m.key)
    assert m.description.strip() and m.computed_from.strip()
    assert m.unit in get_args(cat.Unit) and m.unit in GRAFANA_UNITS
    assert m.direction in get_args(cat.Direction)
    assert m.tasks and m.tasks <= cat.TASKS
    assert isinstance(m.additive, bool) and isinstance(m.needs_labels, bool)
    if m.additive:
        assert m.unit in ("count", "currency", "value"), "only amounts add up"


def check_entry_is_emitted(m: cat.Metric) -> None:
    """Some family declares the key (the run itself emits the ``run`` family's)."""
    emitters = [f.key for f in FAMILIES if any(fnmatch.fnmatchcase(m.key, p) for p in f.emits)]
    assert emitters or m.family == "run"


def check_entry_estimates(m: cat.Metric) -> None:
    assert m.estimates is not None
    realized = CATALOGUE[m.estimates]
    assert realized.estimates is None
    assert (m.unit, m.direction) == (realized.unit, realized.direction)
    assert m.tasks <= realized.tasks
    assert m.key == f"estimated_{m.estimates}"


def check_entry_export(m: cat.Metric, e: cat.Export) -> None:
    assert e.family in PROMETHEUS, e.family
    family = PROMETHEUS[e.family]
    assert family.labels[0] == "model"
    assert tuple(e.labels) == family.labels[1:]
    for label, source in e.labels.items():
        if "{" in source:
            assert source in PLACEHOLDERS, (label, source)
    if "{base}" in e.labels.values():
        assert m.estimates is not None or m.family == "performance"


def check_prometheus_naming(f: cat.PromFamily) -> None:
    """The Prometheus conventions (https://prometheus.io/docs/practices/naming/): the
    namespace prefix, the base unit as a suffix, no ``_total`` (counters') on a gauge."""
    assert re.fullmatch(r"watchkeeper_[a-z0-9_]+", f.name)
    assert f.help.strip() and f.unit in GRAFANA_UNITS
    assert f.labels and f.labels[0] == "model" and len(set(f.labels)) == len(f.labels)
    assert all(SNAKE.fullmatch(label) for label in f.labels)
    assert not f.name.endswith(("_total", "_count", "_sum", "_bucket", "_created"))
    assert (f.unit == "seconds") == f.name.endswith("_seconds")
    assert f.unit != "ms", "Prometheus' base unit of time is the second"
    if f.unit == "ratio":
        assert f.name.endswith("_ratio"), f"a ratio family is named *_ratio: {f.name}"
    if f.name.endswith("_ratio"):
        assert f.unit in ("ratio", "times_usual")


# The catalogue's known departures from a check: the test fails if one is fixed, so this
# list shrinks with the fixes.
KNOWN: Mapping[str, str] = {}


def catalogue_cases() -> Iterator[Any]:
    for key, m in CATALOGUE.items():
        yield case(f"catalogue:{key}:metadata", check_entry_metadata, m)
        yield case(f"catalogue:{key}:emitted", check_entry_is_emitted, m)
        if m.estimates is not None:
            yield case(f"catalogue:{key}:estimates", check_entry_estimates, m)
        for e in m.exports:
            yield case(
                f"catalogue:{key}:export:{e.family}",
                lambda m, e=e: check_entry_export(m, e),
                m,
            )
    for name, f in PROMETHEUS.items():
        id_ = f"prometheus:{name}:naming"
        marks = pytest.mark.xfail(reason=KNOWN[id_], strict=True) if id_ in KNOWN else ()
        yield case(id_, check_prometheus_naming, f, marks=marks)


@pytest.mark.parametrize(("check", "entry"), list(catalogue_cases()))
def test_catalogue(check: Callable[[Any], None], entry: Any) -> None:
    check(entry)


def test_every_prometheus_family_is_exported_by_some_metric() -> None:
    used = {e.family for m in CATALOGUE.values() for e in m.exports}
    assert used == set(PROMETHEUS)


# == the suite covers every registry ==========================================================


def test_every_plug_in_has_cases() -> None:
    ids = {p.id for p in [*DRIFT_CASES, *QUALITY_CASES, *TASK_METRIC_CASES]}
    for key in drift.REGISTRY:
        assert f"drift:{key}:metadata" in ids
    for key in quality.REGISTRY:
        assert f"quality:{key}:metadata" in ids
    for name, task in TASKS.items():
        for key in task.metrics:
            assert f"task:{name}:{key}:reference" in ids
    assert len(drift.REGISTRY) >= 7 and len(quality.REGISTRY) >= 5
