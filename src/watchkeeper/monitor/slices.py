"""Weak-slice discovery: where does the model do significantly worse than on the rest?

For each window, every value of a candidate column (segment columns, sensitive attributes,
categorical and boolean features, numeric features cut at the reference's coarse quantile
edges) and every pair of such values is a slice. Each slice with enough labelled events is
compared with the rest of the window on the model's loss (misclassification for
classifiers, absolute error for regression); Benjamini-Hochberg controls the false
discovery rate across all the slices tested in the window; the significant ones are ranked
by impact (events × gap) and the top ones reported with their evidence.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import ibis.expr.types as ir
import numpy as np
from scipy import special

from watchkeeper.config import ModelConfig
from watchkeeper.profiles.binning import Binning
from watchkeeper.profiles.compute import bin_sql
from watchkeeper.stats.multiple import benjamini_hochberg
from watchkeeper.store import Store
from watchkeeper.windows import EPOCH

MAX_CANDIDATES = 6  # candidate columns (pairs grow as the square)
MIN_SHARE = 0.01  # a slice must hold at least this share of the window's labelled events
TOP = 5  # slices reported per window


@dataclass(frozen=True)
class Slice:
    window_start: datetime
    description: str
    events: int
    loss: float  # the slice's mean loss (error rate, or mean absolute error)
    rest_loss: float
    q_value: float
    share: float

    @property
    def impact(self) -> float:
        return self.events * (self.loss - self.rest_loss)


@dataclass(frozen=True)
class _Candidate:
    name: str
    binning: Binning | None  # numeric: cut at the coarse edges


def candidates(model: ModelConfig, binnings: Sequence[Binning]) -> list[_Candidate]:
    by_name = {b.name: b for b in binnings}
    chosen = model.monitoring.slice_columns
    if chosen is not None:
        names = list(chosen)
    else:
        names = [*model.columns.segments, *model.columns.sensitive]
        names = [*dict.fromkeys([*names, *(f.name for f in model.columns.features)])]
        names = names[:MAX_CANDIDATES]
    out: list[_Candidate] = []
    for name in names:
        b = by_name.get(name)
        out.append(_Candidate(name, b if b is not None and b.kind == "numeric" else None))
    return out


def discover(
    store: Store,
    model: ModelConfig,
    labelled: ir.Table,
    binnings: Sequence[Binning],
    size: timedelta,
    is_rate: bool,
    minimum: int,
    alpha: float,
) -> list[Slice]:
    """The weak slices of each window of ``labelled``: events joined with their labels,
    limited to the run's windows, with each event's loss in ``wk_loss``."""
    cands = candidates(model, binnings)
    if not cands:
        return []
    q = store.quote
    size_us = int(size.total_seconds()) * 1_000_000
    keep: dict[str, ir.Value] = {
        "wk_w": store.epoch_micros(labelled[model.columns.timestamp]) // size_us,
        "wk_loss": labelled.wk_loss,
    }
    for c in cands:
        keep[c.name] = labelled[c.name]
    base_sql = store.compile(labelled.select(**keep))

    def code(c: _Candidate) -> str:
        if c.binning is not None and c.binning.coarse:
            edges = [float(e) for e in c.binning.coarse_edges()]
            return bin_sql(f"CAST({q(c.name)} AS DOUBLE)", edges)
        return f"CAST({q(c.name)} AS STRING)"

    groups: list[tuple[_Candidate, ...]] = [(c,) for c in cands]
    groups += list(itertools.combinations(cands, 2))
    totals: dict[int, tuple[int, float, float]] = {}
    found: list[tuple[int, str, int, float, float]] = []
    for group in groups:
        cols = ", ".join(f"{code(c)} AS wk_k{i}" for i, c in enumerate(group))
        keys = ", ".join(f"wk_k{i}" for i in range(len(group)))
        sql = (
            f"SELECT wk_w, {keys}, COUNT(*) AS n, SUM(wk_l) AS l, SUM(wk_l * wk_l) AS l2 "
            f"FROM (SELECT wk_w, {cols}, CAST(wk_loss AS DOUBLE) AS wk_l FROM ({base_sql}) AS t) "
            f"AS s GROUP BY wk_w, {keys}"
        )
        rows = store.sql(sql).to_pylist()
        if len(group) == 1:
            by_w: dict[int, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
            for r in rows:
                acc = by_w[r["wk_w"]]
                acc[0] += r["n"]
                acc[1] += r["l"] or 0.0
                acc[2] += r["l2"] or 0.0
            for w, (n, total, squares) in by_w.items():
                totals.setdefault(w, (int(n), total, squares))
        for r in rows:
            values = [r[f"wk_k{i}"] for i in range(len(group))]
            if any(v is None for v in values):
                continue
            text = " & ".join(_describe(c, v) for c, v in zip(group, values, strict=True))
            loss, squares = float(r["l"] or 0.0), float(r["l2"] or 0.0)
            found.append((r["wk_w"], text, int(r["n"]), loss, squares))
    out: list[Slice] = []
    by_window: dict[int, list[tuple[str, int, float, float]]] = defaultdict(list)
    for w, text, n, total, squares in found:
        by_window[w].append((text, n, total, squares))
    for w, items in by_window.items():
        n_all, l_all, q_all = totals.get(w, (0, 0.0, 0.0))
        tested = []
        for text, n, total, squares in items:
            rest_n = n_all - n
            if n < max(minimum, MIN_SHARE * n_all) or rest_n < minimum:
                continue
            loss, rest = total / n, (l_all - total) / rest_n
            # Every slice is tested, better ones too (their one-sided p is large): leaving
            # them out would make the family look more significant than it is.
            p = _p_value(total, squares, n, l_all - total, q_all - squares, rest_n, is_rate)
            tested.append((text, n, loss, rest, p))
        if not tested:
            continue
        q_values = benjamini_hochberg([t[4] for t in tested])
        start = EPOCH + timedelta(microseconds=w * size_us)
        significant = [
            Slice(start, text, n, loss, rest, qv, n / n_all)
            for (text, n, loss, rest, _), qv in zip(tested, q_values, strict=True)
            if qv < alpha and loss > rest
        ]
        sums = {text: (n, total, squares) for text, n, total, squares in items}
        kept = [
            s
            for s in significant
            if not _explained(s, significant, sums, n_all, l_all, q_all, is_rate, alpha)
        ]
        out += sorted(kept, key=lambda s: -s.impact)[:TOP]
    return out


def _explained(
    single: Slice,
    significant: list[Slice],
    sums: dict[str, tuple[int, float, float]],
    n_all: int,
    l_all: float,
    q_all: float,
    is_rate: bool,
    alpha: float,
) -> bool:
    """A one-column slice is explained by a significant pair inside it when, without that
    pair, it is no longer worse than the rest: the pair is the more specific answer."""
    if " & " in single.description:
        return False
    n, total, squares = sums[single.description]
    rest = (n_all - n, l_all - total, q_all - squares)
    for pair in significant:
        parts = pair.description.split(" & ")
        if len(parts) != 2 or single.description not in parts:
            continue
        pn, pt, pq = sums[pair.description]
        left = (n - pn, total - pt, squares - pq)
        if left[0] <= 1 or rest[0] <= 1:
            return True
        if left[1] / left[0] <= rest[1] / rest[0]:
            return True
        if _p_value(left[1], left[2], left[0], rest[1], rest[2], rest[0], is_rate) >= alpha:
            return True
    return False


def _describe(c: _Candidate, value: Any) -> str:
    if c.binning is not None and c.binning.coarse:
        edges = [float(e) for e in c.binning.coarse_edges()]
        i = int(value)
        if i == 0:
            return f"{c.name} < {edges[0]:.4g}"
        if i > len(edges) - 1:
            return f"{c.name} > {edges[-1]:.4g}"
        return f"{c.name} in [{edges[i - 1]:.4g}, {edges[i]:.4g})"
    return f"{c.name}={value}"


def _p_value(s1: float, q1: float, n1: int, s2: float, q2: float, n2: int, is_rate: bool) -> float:
    """One-sided: is the slice's mean loss higher than the rest's? (pooled two-proportion
    z-test for rates, Welch's test with a normal approximation for other losses)."""
    m1, m2 = s1 / n1, s2 / n2
    if is_rate:
        pooled = (s1 + s2) / (n1 + n2)
        se = float(np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2)))
    else:
        v1 = max(q1 / n1 - m1 * m1, 0.0) * n1 / max(n1 - 1, 1)
        v2 = max(q2 / n2 - m2 * m2, 0.0) * n2 / max(n2 - 1, 1)
        se = float(np.sqrt(v1 / n1 + v2 / n2))
    if se == 0:
        return 1.0
    return float(special.ndtr(-(m1 - m2) / se))
