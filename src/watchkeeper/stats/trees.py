"""A fitted ``HistGradientBoostingRegressor`` as plain data, predicted with numpy alone.

Loss models are kept in the store, and a store file may come from elsewhere: what is read
back from it must be data, never code (a pickle runs whatever it names when loaded). So a
fitted model is taken apart into its trees' node arrays (scikit-learn's own predictor
arrays), written as JSON numbers and lists, checked when read, and predicted here without
scikit-learn.

The semantics are scikit-learn's (its ``_predictor.pyx`` and ``gradient_boosting.py``, as
of 1.9, where categorical features go through an ``OrdinalEncoder`` inside the model):

- A raw prediction is the baseline plus each tree's leaf value, added tree after tree; the
  prediction is ``exp(raw)`` for the Poisson loss (log link), ``raw`` for squared error.
- At a numeric split, a value goes left when ``value <= num_threshold``; a missing value
  (NaN) goes left when ``missing_go_to_left``. A threshold of +inf is a split on
  missingness: every value goes left, NaN as ``missing_go_to_left`` says (right).
- Categorical features are ordinal-encoded inside the fitted model: its known categories
  (the distinct non-missing values seen at fit, sorted) become codes 0..k-1, and the trees'
  bitsets are over those codes, not over the values given. A value that is not a known
  category (one unseen at fit, or NaN) is treated as missing. So a tree's
  ``feature_idx`` here is the column of X (scikit-learn's own index is into its reordered
  matrix, categorical columns first), and each categorical column keeps its categories.
- At a categorical split, a known category goes left when its code is in the node's bitset
  (``left_cat_bitsets[bitset_idx]``), else right; missing and unknown values go as
  ``missing_go_to_left`` says. (A categorical column of a single known category gets a
  split "on missingness" whose bitset scikit-learn never fills: the node keeps bitset 0,
  another split's. Its ``predict`` reads that bitset, so this does too.)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

Floats = np.ndarray[Any, np.dtype[np.float64]]
Ints = np.ndarray[Any, np.dtype[np.int64]]
Bools = np.ndarray[Any, np.dtype[np.bool_]]
Words = np.ndarray[Any, np.dtype[np.uint32]]
I16 = np.ndarray[Any, np.dtype[np.int16]]

LINKS = {"LogLink": "log", "IdentityLink": "identity"}  # scikit-learn's link -> ours
MAX_CATEGORIES = 256  # a bitset holds 8 × 32 codes
CHUNK_ELEMENTS = 1 << 18  # rows × trees walked at once: the working set stays in cache

FLOAT_FIELDS = ("value", "num_threshold")
INT_FIELDS = ("feature_idx", "left", "right", "bitset_idx")
BOOL_FIELDS = ("missing_go_to_left", "is_leaf", "is_categorical")
NODE_FIELDS = (
    "value",
    "feature_idx",
    "num_threshold",
    "missing_go_to_left",
    "left",
    "right",
    "is_leaf",
    "is_categorical",
    "bitset_idx",
)
TREE_KEYS = frozenset((*NODE_FIELDS, "left_cat_bitsets"))
ENSEMBLE_KEYS = frozenset(("baseline", "link", "categories", "trees"))


@dataclass(frozen=True, eq=False, repr=False)
class Tree:
    """One tree's nodes, in scikit-learn's order (the root first, every child after its
    parent). Only ``value`` is read at a leaf."""

    value: Floats
    feature_idx: Ints  # the column of X split on
    num_threshold: Floats
    missing_go_to_left: Bools
    left: Ints
    right: Ints
    is_leaf: Bools
    is_categorical: Bools
    bitset_idx: Ints  # the row of left_cat_bitsets, at a categorical split
    left_cat_bitsets: Words  # (splits, 8): the category codes that go left

    def __post_init__(self) -> None:
        for name in (*NODE_FIELDS, "left_cat_bitsets"):
            array = getattr(self, name)
            if isinstance(array, np.ndarray):
                array.setflags(write=False)  # checked once (by the ensemble), then fixed

    @property
    def size(self) -> int:
        return len(self.value)

    def __repr__(self) -> str:
        return f"Tree({self.size} nodes)"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in NODE_FIELDS:
            array = getattr(self, name)
            out[name] = (array.astype(np.int64) if array.dtype == np.bool_ else array).tolist()
        out["left_cat_bitsets"] = self.left_cat_bitsets.astype(np.int64).tolist()
        return out

    @classmethod
    def from_json(cls, data: object) -> Tree:
        if not isinstance(data, dict):
            raise ValueError(f"a tree is an object, not {type(data).__name__}")
        _keys(data, TREE_KEYS, "a tree")
        fields: dict[str, Any] = {}
        for name in FLOAT_FIELDS:
            fields[name] = _numbers(data[name], name, np.float64)
        for name in INT_FIELDS:
            fields[name] = _numbers(data[name], name, np.int64)
        for name in BOOL_FIELDS:
            flags = _numbers(data[name], name, np.int64)
            if ((flags != 0) & (flags != 1)).any():
                raise ValueError(f"{name} holds values other than 0 and 1")
            fields[name] = flags.astype(np.bool_)
        words = data["left_cat_bitsets"]
        if not isinstance(words, list):
            raise ValueError("left_cat_bitsets is not a list")
        rows = [_numbers(row, "left_cat_bitsets", np.int64) for row in words]
        if any(len(row) != 8 for row in rows):
            raise ValueError("left_cat_bitsets rows are not of 8 words")
        bitsets = np.array(rows, dtype=np.int64).reshape(len(rows), 8)
        if ((bitsets < 0) | (bitsets > 0xFFFFFFFF)).any():
            raise ValueError("left_cat_bitsets holds words outside 0..2³²-1")
        fields["left_cat_bitsets"] = bitsets.astype(np.uint32)
        return cls(**fields)


@dataclass(frozen=True, eq=False, repr=False)
class TreeEnsemble:
    """A fitted gradient-boosted regressor: the baseline raw prediction, the link, each
    column's known categories (None: numeric) and the trees. Checked on construction."""

    baseline: float
    link: str  # "log": the prediction is exp(raw); "identity": raw
    categories: tuple[tuple[float, ...] | None, ...]  # per column of X
    trees: tuple[Tree, ...]

    def __post_init__(self) -> None:
        _check(self)

    @property
    def n_features(self) -> int:
        return len(self.categories)

    def __repr__(self) -> str:
        return (
            f"TreeEnsemble({len(self.trees)} trees, link={self.link!r}, {self.n_features} features)"
        )

    @classmethod
    def from_sklearn(cls, model: Any) -> TreeEnsemble:
        """The trees of a fitted ``HistGradientBoostingRegressor`` (one tree an iteration)."""
        predictors = getattr(model, "_predictors", None)
        if predictors is None:
            raise ValueError("the model is not a fitted HistGradientBoostingRegressor")
        if getattr(model, "n_trees_per_iteration_", 1) != 1:
            raise ValueError("only models of one tree an iteration (regressors) are read")
        link_name = type(model._loss.link).__name__
        if link_name not in LINKS:
            raise ValueError(f"the model's link {link_name} is not one of {sorted(LINKS)}")
        n = int(model.n_features_in_)
        columns = np.arange(n)  # scikit-learn's feature index -> the column of X
        categories: list[tuple[float, ...] | None] = [None] * n
        if getattr(model, "_preprocessor", None) is not None:
            # Categorical columns are ordinal-encoded and moved first (a ColumnTransformer).
            is_categorical = np.asarray(model.is_categorical_, dtype=bool)
            columns = np.concatenate(
                [np.flatnonzero(is_categorical), np.flatnonzero(~is_categorical)]
            )
            remapped = np.asarray(model._is_categorical_remapped, dtype=bool)
            if remapped.tolist() != sorted(remapped.tolist(), reverse=True):
                raise ValueError("the model's categorical columns are not first, as expected")
            encoder = model._preprocessor.named_transformers_["encoder"]
            for column, known in zip(
                np.flatnonzero(is_categorical), encoder.categories_, strict=True
            ):
                values = np.asarray(known, dtype=np.float64)
                if len(values) and np.isnan(values[-1]):
                    values = values[:-1]  # NaN is missing, not a category
                categories[int(column)] = tuple(float(v) for v in values)
        trees = []
        for iteration in predictors:
            (predictor,) = iteration
            nodes = predictor.nodes
            leaf = nodes["is_leaf"].astype(np.bool_)
            trees.append(
                Tree(
                    value=nodes["value"].astype(np.float64),
                    feature_idx=np.where(leaf, 0, columns[nodes["feature_idx"]]).astype(np.int64),
                    num_threshold=nodes["num_threshold"].astype(np.float64),
                    missing_go_to_left=nodes["missing_go_to_left"].astype(np.bool_),
                    left=nodes["left"].astype(np.int64),
                    right=nodes["right"].astype(np.int64),
                    is_leaf=leaf,
                    is_categorical=nodes["is_categorical"].astype(np.bool_),
                    bitset_idx=nodes["bitset_idx"].astype(np.int64),
                    left_cat_bitsets=np.asarray(
                        predictor.raw_left_cat_bitsets, dtype=np.uint32
                    ).reshape(-1, 8),
                )
            )
        baseline = float(np.asarray(model._baseline_prediction, dtype=np.float64).item())
        return cls(baseline, LINKS[link_name], tuple(categories), tuple(trees))

    def to_json(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline,
            "link": self.link,
            "categories": [None if c is None else list(c) for c in self.categories],
            "trees": [t.to_json() for t in self.trees],
        }

    @classmethod
    def from_json(cls, data: object) -> TreeEnsemble:
        """An ensemble from ``to_json``'s output; ValueError on anything malformed."""
        if not isinstance(data, dict):
            raise ValueError(f"a tree ensemble is an object, not {type(data).__name__}")
        _keys(data, ENSEMBLE_KEYS, "a tree ensemble")
        baseline = data["baseline"]
        if type(baseline) not in (int, float):
            raise ValueError("baseline is not a number")
        link = data["link"]
        if link not in LINKS.values():
            raise ValueError(f"link {link!r} is not one of {sorted(LINKS.values())}")
        raw_categories = data["categories"]
        if not isinstance(raw_categories, list):
            raise ValueError("categories is not a list")
        categories = tuple(
            None if c is None else tuple(_numbers(c, "categories", np.float64).tolist())
            for c in raw_categories
        )
        raw_trees = data["trees"]
        if not isinstance(raw_trees, list):
            raise ValueError("trees is not a list")
        trees = []
        for i, tree in enumerate(raw_trees):
            try:
                trees.append(Tree.from_json(tree))
            except ValueError as e:
                raise ValueError(f"tree {i}: {e}") from None
        return cls(float(baseline), link, categories, tuple(trees))

    def raw_predict(self, x: np.ndarray[Any, Any]) -> Floats:
        """Each row's raw prediction (before the link's inverse)."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(
                f"expected rows of {self.n_features} features, got an array of shape {x.shape}"
            )
        return self._walker.raw(x)

    def predict(self, x: np.ndarray[Any, Any]) -> Floats:
        """Each row's prediction: what scikit-learn's ``predict`` gives."""
        raw = self.raw_predict(x)
        return np.exp(raw) if self.link == "log" else raw

    @cached_property
    def _walker(self) -> _Walker:
        return _Walker(self)


class _Walker:
    """The ensemble laid out for walking every (row, tree) pair a level at a time.

    All trees' nodes are renumbered into one array where a split's right child directly
    follows its left child, and a leaf leads to itself: a step is ``node = next[node] +
    goes_right``, the same for every pair. Each split reads one small-integer column of a
    coded matrix of the rows: a numeric feature's values as the index of the first of its
    thresholds they do not exceed (missing below all or above all, per the split's
    direction), a categorical split's rows as 0 (left) or 1 (right). The trees are walked
    in groups of equal depth, so none is walked deeper than it is.
    """

    def __init__(self, ensemble: TreeEnsemble) -> None:
        self.baseline = ensemble.baseline
        trees = ensemble.trees
        self.n_trees = len(trees)
        sizes = np.array([t.size for t in trees], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        total = int(offsets[-1])
        bitset_offsets = np.concatenate(
            [[0], np.cumsum([len(t.left_cat_bitsets) for t in trees], dtype=np.int64)]
        ).astype(np.int64)

        # Every node, at its new place: parallel arrays over the renumbered nodes.
        nxt = np.zeros(total, dtype=np.int64)
        value = np.zeros(total, dtype=np.float64)
        split = np.zeros(total, dtype=np.bool_)
        feature = np.zeros(total, dtype=np.int64)
        threshold = np.zeros(total, dtype=np.float64)
        missing_left = np.zeros(total, dtype=np.bool_)
        categorical = np.zeros(total, dtype=np.bool_)
        bitset = np.zeros(total, dtype=np.int64)
        for tree, offset, bitset_offset in zip(trees, offsets, bitset_offsets, strict=False):
            splits = np.flatnonzero(~tree.is_leaf)
            new = np.zeros(tree.size, dtype=np.int64)
            new[tree.left[splits]] = 1 + 2 * np.arange(len(splits))
            new[tree.right[splits]] = 2 + 2 * np.arange(len(splits))
            at = offset + new
            nxt[at] = at  # a leaf stays
            nxt[at[splits]] = offset + new[tree.left[splits]]
            value[at] = tree.value
            split[at] = ~tree.is_leaf
            feature[at] = tree.feature_idx
            threshold[at] = tree.num_threshold
            missing_left[at] = tree.missing_go_to_left
            categorical[at] = tree.is_categorical
            bitset[at] = bitset_offset + tree.bitset_idx
        words = (
            np.concatenate([t.left_cat_bitsets for t in trees])
            if trees
            else np.zeros((0, 8), dtype=np.uint32)
        )
        numeric = split & ~categorical
        categorical &= split

        column = np.zeros(total, dtype=np.int64)
        code_threshold = np.zeros(total, dtype=np.int64)
        # Numeric columns: one per (feature, missing direction) split on.
        self.numeric: list[tuple[int, Floats, int]] = []  # (feature, thresholds, NaN code)
        for f in np.unique(feature[numeric]).tolist():
            on = numeric & (feature == f)
            cuts = np.unique(threshold[on])
            for left in (True, False):
                here = on & (missing_left == left)
                if here.any():
                    column[here] = len(self.numeric)
                    code_threshold[here] = np.searchsorted(cuts, threshold[here])
                    self.numeric.append((f, cuts, -1 if left else len(cuts) + 1))
        # Categorical columns: one per distinct (feature, missing direction, bitset).
        self.categorical: list[tuple[int, Floats, int, I16]] = []  # feature, categories,
        # first column, each column's direction per category code (the last: missing)
        n_columns = len(self.numeric)
        for f in np.unique(feature[categorical]).tolist():
            on = np.flatnonzero(categorical & (feature == f))
            keys = np.column_stack([missing_left[on].astype(np.int64), words[bitset[on]]])
            distinct, which = np.unique(keys, axis=0, return_inverse=True)
            known = np.array(ensemble.categories[f], dtype=np.float64)
            codes = np.arange(len(known))
            goes_left = (distinct[:, 1 + codes // 32] >> (codes % 32)) & 1
            directions = np.column_stack([1 - goes_left, 1 - distinct[:, 0]]).astype(np.int16)
            column[on] = n_columns + which.ravel()
            code_threshold[on] = 0
            self.categorical.append((f, known, n_columns, directions))
            n_columns += len(distinct)
        self.n_columns = n_columns
        # Codes reach the most thresholds of a feature + 1; int16 unless there are more.
        most = max((len(cuts) for _, cuts, _ in self.numeric), default=0)
        self.dtype: type[np.signedinteger[Any]] = np.int16 if most + 2 < 2**15 - 1 else np.int32
        code_threshold[~split] = np.iinfo(self.dtype).max  # no code exceeds it: a leaf stays

        # Each tree's depth, level by level from the roots.
        depth = np.zeros(total, dtype=np.int64)
        frontier = offsets[:-1]
        level = 0
        while len(frontier):
            depth[frontier] = level
            inner = nxt[frontier[split[frontier]]]
            frontier = np.concatenate([inner, inner + 1])
            level += 1
        tree_depth = np.maximum.reduceat(depth, offsets[:-1]) if total else np.zeros(0, np.int64)
        self.groups = [
            (int(d), np.flatnonzero(tree_depth == d)) for d in np.unique(tree_depth).tolist()
        ]
        # Indices as numpy's own (intp): take() converts any other index type first.
        self.roots = offsets[:-1].astype(np.intp)
        self.nxt = nxt.astype(np.intp)
        self.column = column.astype(np.intp)
        self.threshold = code_threshold.astype(self.dtype)
        self.value = value

    def codes(self, x: Floats) -> np.ndarray[Any, Any]:
        """The rows as the walk reads them: (columns, rows), contiguous per column."""
        out = np.empty((self.n_columns, len(x)), dtype=self.dtype)
        for i, (f, cuts, nan_code) in enumerate(self.numeric):
            values = x[:, f]
            out[i] = np.searchsorted(cuts, values)
            out[i, np.isnan(values)] = nan_code
        for f, known, first, directions in self.categorical:
            values = x[:, f]
            slot = np.searchsorted(known, values)
            found = slot < len(known)
            found[found] = known[slot[found]] == values[found]
            slot[~found] = len(known)  # unknown or missing
            out[first : first + len(directions)] = directions[:, slot]
        return out

    def raw(self, x: Floats) -> Floats:
        rows = max(1, CHUNK_ELEMENTS // max(self.n_trees, 1))
        out = np.empty(len(x), dtype=np.float64)
        for start in range(0, len(x), rows):
            out[start : start + rows] = self._raw_chunk(x[start : start + rows])
        return out

    def _raw_chunk(self, x: Floats) -> Floats:
        n = len(x)
        flat = self.codes(x).ravel()
        base = self.column * n  # where each node's column starts in flat
        leaves = np.empty((self.n_trees, n), dtype=np.float64)
        for depth, trees in self.groups:
            node = np.repeat(self.roots[trees], n)
            if depth:
                row = np.tile(np.arange(n, dtype=np.intp), len(trees))
                at = np.empty_like(node)
                code = np.empty(len(node), dtype=self.dtype)
                cut = np.empty(len(node), dtype=self.dtype)
                right = np.empty(len(node), dtype=np.bool_)
                step = np.empty_like(node)
                for _ in range(depth):  # (every index is in range: "wrap" only skips checks)
                    np.take(base, node, out=at, mode="wrap")
                    at += row
                    np.take(flat, at, out=code, mode="wrap")
                    np.take(self.threshold, node, out=cut, mode="wrap")
                    np.greater(code, cut, out=right)
                    np.take(self.nxt, node, out=step, mode="wrap")
                    np.add(step, right, out=node)
            leaves[trees] = self.value[node].reshape(len(trees), n)
        # Tree after tree, from the baseline, as scikit-learn adds them (same rounding).
        raw = np.full(n, self.baseline)
        for leaf in leaves:
            raw += leaf
        return raw


def _check(e: TreeEnsemble) -> None:
    """Everything prediction relies on, so a malformed ensemble fails here, clearly."""
    if e.link not in LINKS.values():
        raise ValueError(f"link {e.link!r} is not one of {sorted(LINKS.values())}")
    if not np.isfinite(e.baseline):
        raise ValueError("the baseline is not finite")
    for f, known in enumerate(e.categories):
        if known is None:
            continue
        values = np.array(known, dtype=np.float64)
        if len(values) > MAX_CATEGORIES:
            raise ValueError(f"column {f} has more than {MAX_CATEGORIES} categories")
        if not (values[1:] > values[:-1]).all() or np.isnan(values).any():
            raise ValueError(f"column {f}'s categories are not increasing numbers")
    for i, tree in enumerate(e.trees):
        try:
            _check_tree(tree, e.categories)
        except ValueError as err:
            raise ValueError(f"tree {i}: {err}") from None


def _check_tree(t: Tree, categories: tuple[tuple[float, ...] | None, ...]) -> None:
    dtypes = {
        **dict.fromkeys(FLOAT_FIELDS, np.float64),
        **dict.fromkeys(INT_FIELDS, np.int64),
        **dict.fromkeys(BOOL_FIELDS, np.bool_),
    }
    n = t.size
    if n == 0:
        raise ValueError("no nodes")
    for name, dtype in dtypes.items():
        array = getattr(t, name)
        if not isinstance(array, np.ndarray) or array.dtype != dtype or array.ndim != 1:
            raise ValueError(f"{name} is not a 1-d array of {np.dtype(dtype).name}")
        if len(array) != n:
            raise ValueError(f"{name} has {len(array)} entries, value has {n}")
    b = t.left_cat_bitsets
    if not isinstance(b, np.ndarray) or b.dtype != np.uint32 or b.ndim != 2 or b.shape[1] != 8:
        raise ValueError("left_cat_bitsets is not an array of rows of 8 uint32 words")
    splits = np.flatnonzero(~t.is_leaf)
    leaves = t.is_leaf
    if not np.isfinite(t.value[leaves]).all():
        raise ValueError("a leaf's value is not finite")
    # A tree: the root no one's child, every other node the child of exactly one node
    # before it (so the walk ends at a leaf, in at most n steps).
    left, right = t.left[splits], t.right[splits]
    children = np.concatenate([left, right])
    if ((children < 1) | (children >= n)).any():
        raise ValueError("a child index is out of range")
    if ((left <= splits) | (right <= splits)).any():
        raise ValueError("a child comes before its parent")
    if (np.bincount(children, minlength=n)[1:] != 1).any():
        raise ValueError("the nodes do not form a tree (a node is not the child of exactly one)")
    features = t.feature_idx[splits]
    if ((features < 0) | (features >= len(categories))).any():
        raise ValueError(f"a split's feature is not one of the {len(categories)} columns")
    kinds = np.array([categories[f] is not None for f in features.tolist()], dtype=np.bool_)
    if (kinds != t.is_categorical[splits]).any():
        raise ValueError("a split's kind (categorical or numeric) is not its column's")
    numeric = splits[~t.is_categorical[splits]]
    if np.isnan(t.num_threshold[numeric]).any():
        raise ValueError("a numeric split's threshold is NaN")
    at = t.bitset_idx[splits[t.is_categorical[splits]]]
    if ((at < 0) | (at >= len(b))).any():
        raise ValueError("a categorical split's bitset index is out of range")


def _keys(data: dict[Any, Any], expected: frozenset[str], what: str) -> None:
    missing = expected - data.keys()
    if missing:
        raise ValueError(f"{what} lacks {', '.join(sorted(missing))}")
    extra = data.keys() - expected
    if extra:
        raise ValueError(f"{what} has unknown keys {', '.join(sorted(map(str, extra)))}")


def _numbers(data: object, name: str, dtype: type[np.generic]) -> np.ndarray[Any, Any]:
    """A JSON list of numbers as a 1-d array (ints only, for an int dtype)."""
    if not isinstance(data, list):
        raise ValueError(f"{name} is not a list")
    allowed = (int,) if dtype is np.int64 else (int, float)
    if not all(type(v) in allowed for v in data):
        kind = "integers" if dtype is np.int64 else "numbers"
        raise ValueError(f"{name} holds values other than {kind}")
    try:
        return np.array(data, dtype=dtype)
    except OverflowError:
        raise ValueError(f"{name} holds a number out of range") from None
