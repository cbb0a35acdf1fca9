"""Every mergeable aggregate, by property (hypothesis): ``zero()`` is neutral, ``merge`` is
associative and commutative, and the merge of parts computed from split rows equals the
whole computed at once, and numpy on the same rows.

These are what lets the engine count an hour at a time and a run add hours into days,
versions and segments: a window's numbers must not depend on how its rows were split.

Aggregates without a ``zero()`` use their default construction as the zero (``Profile()``,
``LossSums()``); ``SliceLoss`` has no ``merge`` (only ``minus``, the rest of a window), so
its properties are those of ``minus``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from tests.helpers import (
    categorical_binning,
    categorical_profile,
    numeric_binning,
    numeric_profile,
    ranking_sums_from_rows,
)
from watchkeeper.profiles.counts import BinaryCounts, MulticlassCounts, RankingSums, RegressionSums
from watchkeeper.profiles.slices import SliceLoss
from watchkeeper.profiles.types import ColumnProfile, Profile, merge_all
from watchkeeper.stats import multiclass as mc
from watchkeeper.stats import performance as perf
from watchkeeper.stats import ranking
from watchkeeper.stats import regression as reg
from watchkeeper.stats.loss import LossSums, estimated_mae

PROPERTY = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MAX_ROWS = 25

NUMERIC = numeric_binning(np.linspace(-100.0, 100.0, 400))
CATEGORICAL = categorical_binning([*"aaaaabbbbcccdde"], vocabulary=3)  # d, e: other
CLASSES = ("a", "b", "c")
K = 3

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
value_or_null = st.one_of(finite, st.just(float("nan")))
category = st.sampled_from(["a", "b", "c", "d", "e", "zz", None])  # zz: never seen
probability = st.floats(0.0, 1.0, allow_nan=False)


def close(a: Any, b: Any) -> bool:
    """Equal up to float rounding: ``close_to`` where the aggregate has one, field by field
    where its ``==`` is the dataclass's exact one, else its own (tolerant) ``==``."""
    if hasattr(a, "close_to"):
        return bool(a.close_to(b))
    if a.__dataclass_params__.eq:
        return type(a) is type(b) and all(
            math.isclose(getattr(a, f.name), getattr(b, f.name), rel_tol=1e-9, abs_tol=1e-9)
            for f in fields(a)
        )
    return bool(a == b)


# -- each aggregate: its rows, how to compute it from them, its zero, and numpy -----------------


@dataclass(frozen=True)
class Spec:
    name: str
    rows: st.SearchStrategy[list[Any]]  # one part's rows
    of: Callable[[list[Any]], Any]  # the aggregate of some rows
    zero: Callable[[], Any]
    numpy: Callable[[Any, list[Any]], None]  # asserts the aggregate equals numpy on the rows

    def __repr__(self) -> str:
        return self.name


def _numeric_values(rows: list[Any]) -> np.ndarray[Any, Any]:
    return np.asarray(rows, dtype=float)


def numpy_numeric(p: ColumnProfile, rows: list[Any]) -> None:
    x = _numeric_values(rows)
    present = x[~np.isnan(x)]
    assert (p.count, p.missing, int(p.bins.sum())) == (len(x), len(x) - len(present), len(present))
    if len(present) == 0:
        assert math.isnan(p.mean) and math.isnan(p.low) and math.isnan(p.high)
        return
    scale = max(1.0, float(np.abs(present).max()))
    assert p.mean == pytest.approx(present.mean(), rel=1e-9, abs=1e-12 * scale)
    # From the moments: the cancellation costs about sqrt(eps) of the scale, at worst.
    assert abs(p.std - present.std()) <= 1e-7 * scale
    assert (p.low, p.high) == (present.min(), present.max())


def numpy_categorical(p: ColumnProfile, rows: list[Any]) -> None:
    present = [v for v in rows if v is not None]
    assert (p.count, p.missing) == (len(rows), len(rows) - len(present))
    k = len(CATEGORICAL.categories)
    expected = [sum(v == c for v in present) for c in CATEGORICAL.categories]
    expected.append(
        sum(v in CATEGORICAL.known and v not in CATEGORICAL.categories for v in present)
    )
    expected.append(sum(v not in CATEGORICAL.known for v in present))
    assert p.bins.tolist() == expected and len(p.bins) == k + 2


def profile_of(rows: list[Any]) -> Profile:
    x = [r[0] for r in rows]
    c = [r[1] for r in rows]
    return Profile(
        len(rows),
        sum(r[2] for r in rows),
        {
            "x": numeric_profile(np.asarray(x, dtype=float), NUMERIC),
            "c": categorical_profile(c, CATEGORICAL),
        },
    )


def numpy_profile(p: Profile, rows: list[Any]) -> None:
    assert (p.rows, p.errors) == (len(rows), sum(r[2] for r in rows))
    if not rows:  # Profile() has no columns; the rows' have empty ones
        return
    numpy_numeric(p.columns["x"], [r[0] for r in rows])
    numpy_categorical(p.columns["c"], [r[1] for r in rows])


def binary_of(rows: list[Any]) -> BinaryCounts:
    s, y, yhat = (np.array([r[i] for r in rows], dtype=float) for i in range(3))
    return perf.counts_from_rows(s, y, yhat)


def numpy_binary(c: BinaryCounts, rows: list[Any]) -> None:
    s, y, yhat = (np.array([r[i] for r in rows], dtype=float) for i in range(3))
    assert c.n == len(rows) and int(c.positives.sum()) == int(y.sum())
    assert (c.tp, c.fp) == (
        int(((yhat == 1) & (y == 1)).sum()),
        int(((yhat == 1) & (y == 0)).sum()),
    )
    if not rows:
        return
    assert perf.accuracy(c).value == pytest.approx(np.mean(y == yhat))
    assert perf.brier(c).value == pytest.approx(np.mean((s - y) ** 2), abs=1e-12)
    clipped = np.clip(s, 1e-15, 1 - 1e-15)
    ll = -(y * np.log(clipped) + (1 - y) * np.log(1 - clipped))
    assert perf.log_loss(c).value == pytest.approx(ll.mean(), abs=1e-9)
    if 0 < y.sum() < len(y):
        auc = perf.roc_auc(c)
        assert auc.value is not None
        assert abs(auc.value - skm.roc_auc_score(y, s)) <= auc.bound + 1e-12


def multiclass_of(rows: list[Any]) -> MulticlassCounts:
    if not rows:
        return MulticlassCounts.zero(CLASSES)
    y, p, score = zip(*rows, strict=True)
    return mc.counts_from_rows(CLASSES, list(y), list(p), list(score))


def numpy_multiclass(c: MulticlassCounts, rows: list[Any]) -> None:
    expected = np.zeros((3, 3), dtype=np.int64)
    for y, p, _ in rows:
        expected[CLASSES.index(y), CLASSES.index(p)] += 1
    assert c.confusion.tolist() == expected.tolist() and c.log_loss_n == len(rows)
    if rows:
        assert mc.accuracy(c).value == pytest.approx(np.trace(expected) / len(rows))
        ll = -np.log(np.clip([r[2] for r in rows], 1e-15, 1 - 1e-15))
        assert mc.log_loss(c).value == pytest.approx(ll.mean(), abs=1e-9)


def regression_of(rows: list[Any]) -> RegressionSums:
    if not rows:
        return RegressionSums.zero()
    p, y = zip(*rows, strict=True)
    return reg.sums_from_rows(p, y)


def numpy_regression(s: RegressionSums, rows: list[Any]) -> None:
    assert s.n == len(rows)
    if not rows:
        return
    p, y = (np.array(v, dtype=float) for v in zip(*rows, strict=True))
    e = p - y
    scale = max(1.0, float(np.abs(e).max()))
    assert reg.mae(s).value == pytest.approx(np.abs(e).mean(), abs=1e-9 * scale)
    assert reg.mean_error(s).value == pytest.approx(e.mean(), abs=1e-9 * scale)
    assert reg.rmse(s).value == pytest.approx(np.sqrt((e * e).mean()), abs=1e-9 * scale)


def ranking_of(rows: list[Any]) -> RankingSums:
    """Rows are queries (a part never splits one): each a list of (relevance, score)."""
    q = [i for i, query in enumerate(rows) for _ in query]
    items = [item for query in rows for item in query]
    if not items:
        return RankingSums.zero()
    y, s = zip(*items, strict=True)
    return ranking_sums_from_rows(np.array(q), np.array(y, float), np.array(s, float), K)


def numpy_ranking(s: RankingSums, rows: list[Any]) -> None:
    assert s.queries == len(rows) and s.impressions == sum(len(q) for q in rows)
    assert s.clicks == sum(y > 0 for q in rows for y, _ in q)
    if not rows:
        return
    hits = [sum(y > 0 for y, _ in sorted(q, key=lambda i: -i[1])[:K]) / K for q in rows]
    assert ranking.METRICS["precision_at_k"](s).value == pytest.approx(np.mean(hits))
    relevant = [q for q in rows if any(y > 0 for y, _ in q)]
    ndcg = [
        skm.ndcg_score([[y for y, _ in q]], [[v for _, v in q]], k=K) if len(q) > 1 else 1.0
        for q in relevant
    ]
    assert ranking.METRICS["ndcg_at_k"](s).value == (
        pytest.approx(np.mean(ndcg)) if relevant else None
    )


def loss_of(rows: list[Any]) -> LossSums:
    absolute = np.array([r[0] for r in rows], dtype=float)
    squared = np.array([r[0] ** 2 + r[1] for r in rows], dtype=float)
    return LossSums.of(absolute, squared, sum(r[2] for r in rows))


def numpy_loss(s: LossSums, rows: list[Any]) -> None:
    assert (s.n, s.outside) == (len(rows), sum(r[2] for r in rows))
    if rows:
        assert estimated_mae(s).value == pytest.approx(np.mean([r[0] for r in rows]))
        extra = sum(r[1] for r in rows)  # squared - absolute², each row's variance
        assert s.var_absolute == pytest.approx(extra, abs=1e-9 * max(1.0, s.squared))


# A query's items: (relevance, score), scores distinct (the engine orders ties arbitrarily).
query = st.lists(
    st.tuples(st.sampled_from([0.0, 0.0, 1.0, 2.0, 3.0]), st.floats(0, 1, allow_nan=False)),
    min_size=1,
    max_size=8,
    unique_by=lambda item: item[1],
)

SPECS = [
    Spec(
        "ColumnProfile:numeric",
        st.lists(value_or_null, max_size=MAX_ROWS),
        lambda rows: numeric_profile(_numeric_values(rows), NUMERIC),
        lambda: ColumnProfile.zero("numeric", NUMERIC.n_bins),
        numpy_numeric,
    ),
    Spec(
        "ColumnProfile:categorical",
        st.lists(category, max_size=MAX_ROWS),
        lambda rows: categorical_profile(rows, CATEGORICAL),
        lambda: ColumnProfile.zero("categorical", CATEGORICAL.n_bins),
        numpy_categorical,
    ),
    Spec(
        "Profile",
        st.lists(st.tuples(value_or_null, category, st.integers(0, 1)), max_size=MAX_ROWS),
        profile_of,
        Profile,  # no zero(): the default is the profile of nothing
        numpy_profile,
    ),
    Spec(
        "BinaryCounts",
        st.lists(st.tuples(probability, st.integers(0, 1), st.integers(0, 1)), max_size=MAX_ROWS),
        binary_of,
        BinaryCounts.zero,
        numpy_binary,
    ),
    Spec(
        "MulticlassCounts",
        st.lists(
            st.tuples(st.sampled_from(CLASSES), st.sampled_from(CLASSES), probability),
            max_size=MAX_ROWS,
        ),
        multiclass_of,
        lambda: MulticlassCounts.zero(CLASSES),
        numpy_multiclass,
    ),
    Spec(
        "RegressionSums",
        st.lists(st.tuples(finite, finite), max_size=MAX_ROWS),
        regression_of,
        RegressionSums.zero,
        numpy_regression,
    ),
    Spec(
        "RankingSums",
        st.lists(query, max_size=6),
        ranking_of,
        RankingSums.zero,
        numpy_ranking,
    ),
    Spec(
        "LossSums",
        st.lists(
            st.tuples(st.floats(0, 1e3), st.floats(0, 1e3), st.integers(0, 1)),
            max_size=MAX_ROWS,
        ),
        loss_of,
        LossSums,  # no zero(): the default is the sums of nothing
        numpy_loss,
    ),
]
BY_NAME = {s.name: s for s in SPECS}
IDS = [s.name for s in SPECS]


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
@PROPERTY
@given(data=st.data())
def test_zero_is_neutral(spec: Spec, data: st.DataObject) -> None:
    a = spec.of(data.draw(spec.rows))
    zero = spec.zero()
    assert close(zero.merge(a), a)
    assert close(a.merge(zero), a)
    if spec.name != "Profile":  # Profile() has no columns; the profile of no rows has empty ones
        assert close(spec.of([]), zero)


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
@PROPERTY
@given(data=st.data())
def test_merge_is_associative(spec: Spec, data: st.DataObject) -> None:
    a, b, c = (spec.of(data.draw(spec.rows)) for _ in range(3))
    assert close(a.merge(b).merge(c), a.merge(b.merge(c)))


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
@PROPERTY
@given(data=st.data())
def test_merge_is_commutative(spec: Spec, data: st.DataObject) -> None:
    a, b = (spec.of(data.draw(spec.rows)) for _ in range(2))
    assert close(a.merge(b), b.merge(a))


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
@PROPERTY
@given(data=st.data())
def test_parts_merged_equal_the_whole_and_numpy(spec: Spec, data: st.DataObject) -> None:
    parts = data.draw(st.lists(spec.rows, min_size=1, max_size=4))
    whole_rows = [row for part in parts for row in part]
    merged = spec.zero()
    for part in parts:
        merged = merged.merge(spec.of(part))
    whole = spec.of(whole_rows)
    assert close(merged, whole)
    spec.numpy(whole, whole_rows)
    spec.numpy(merged, whole_rows)


@PROPERTY
@given(parts=st.lists(BY_NAME["Profile"].rows, max_size=4))
def test_merge_all_is_the_fold_of_merge(parts: list[list[Any]]) -> None:
    profiles = [profile_of(p) for p in parts]
    expected = Profile()
    for p in profiles:
        expected = expected.merge(p)
    assert merge_all(profiles) == expected


@PROPERTY
@given(
    a=st.lists(st.tuples(value_or_null, category, st.integers(0, 1)), max_size=MAX_ROWS),
    b=st.lists(st.tuples(value_or_null, category, st.integers(0, 1)), max_size=MAX_ROWS),
)
def test_profiles_of_different_columns_merge_by_column(a: list[Any], b: list[Any]) -> None:
    only_x = Profile(len(a), 0, {"x": profile_of(a).columns["x"]})
    only_c = Profile(len(b), 0, {"c": profile_of(b).columns["c"]})
    merged = only_x.merge(only_c)
    assert set(merged.columns) == {"x", "c"}
    assert merged.columns["x"] == only_x.columns["x"] and merged.columns["c"] == only_c.columns["c"]
    assert merged == only_c.merge(only_x)


def test_aggregates_over_different_bins_or_classes_refuse_to_merge() -> None:
    with pytest.raises(ValueError, match="different bins"):
        ColumnProfile.zero("numeric", 5).merge(ColumnProfile.zero("numeric", 6))
    with pytest.raises(ValueError, match="different bins"):
        ColumnProfile.zero("numeric", 5).merge(ColumnProfile.zero("categorical", 5))
    with pytest.raises(ValueError, match="different classes"):
        MulticlassCounts.zero(("a", "b")).merge(MulticlassCounts.zero(("a", "c")))


# -- SliceLoss: no merge, only minus (a slice's rest of the window) ----------------------------

losses = st.lists(st.floats(0, 1e3, allow_nan=False), max_size=MAX_ROWS)


def slice_of(values: Sequence[float]) -> SliceLoss:
    x = np.asarray(values, dtype=float)
    return SliceLoss(len(x), float(x.sum()), float((x * x).sum()))


@PROPERTY
@given(part=losses, rest=losses)
def test_a_slices_rest_is_the_whole_minus_the_slice(part: list[float], rest: list[float]) -> None:
    whole, mine = slice_of(part + rest), slice_of(part)
    assert close(whole.minus(mine), slice_of(rest))
    assert close(mine.minus(SliceLoss(0, 0.0, 0.0)), mine)
    assert close(mine.minus(mine), SliceLoss(0, 0.0, 0.0))
