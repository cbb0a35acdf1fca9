"""The weak-slice search's aggregates: per window, the labelled events' loss sums of every
value of each candidate column and of every pair of such values (numeric columns cut at
the reference's coarse edges), and of the whole window. The tests over them are in the
weak-slices family."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir

from watchkeeper.profiles.base import Engine, bin_sql
from watchkeeper.profiles.binning import Binning
from watchkeeper.windows import EPOCH


@dataclass(frozen=True)
class Candidate:
    name: str
    binning: Binning | None  # numeric: cut at the coarse edges


@dataclass(frozen=True)
class SliceLoss:
    n: int
    total: float  # the sum of the loss
    squares: float  # the sum of its squares

    def minus(self, part: SliceLoss) -> SliceLoss:
        return SliceLoss(self.n - part.n, self.total - part.total, self.squares - part.squares)


@dataclass(frozen=True)
class SliceSums:
    """One window's slices: the whole window's sums and each slice's, by its description."""

    window_start: datetime
    whole: SliceLoss
    slices: dict[str, SliceLoss]


def slice_sums(
    engine: Engine,
    labelled: ir.Table,
    timestamp: str | None,
    candidates: Sequence[Candidate],
    size: timedelta,
) -> list[SliceSums]:
    """The sums of every slice of ``labelled`` (events joined with their labels, limited to
    the run's windows, with each event's loss in ``wk_loss``): one query per candidate
    column and per pair. Without a timestamp the whole table is one window (a reference,
    at the epoch)."""
    if not candidates:
        return []
    q = engine.quote
    size_us = int(size.total_seconds()) * 1_000_000
    keep: dict[str, ir.Value] = {
        "wk_w": engine.epoch_micros(labelled[timestamp]) // size_us
        if timestamp is not None
        else ibis.literal(0, "int64"),
        "wk_loss": labelled.wk_loss,
    }
    for c in candidates:
        keep[c.name] = labelled[c.name]
    base_sql = engine.compile(labelled.select(**keep))

    def code(c: Candidate) -> str:
        if c.binning is not None and c.binning.coarse:
            edges = [float(e) for e in c.binning.coarse_edges()]
            return bin_sql(f"CAST({q(c.name)} AS DOUBLE)", edges)
        return f"CAST({q(c.name)} AS STRING)"

    groups: list[tuple[Candidate, ...]] = [(c,) for c in candidates]
    groups += list(itertools.combinations(candidates, 2))
    totals: dict[int, SliceLoss] = {}
    found: dict[int, dict[str, SliceLoss]] = defaultdict(dict)
    for group in groups:
        cols = ", ".join(f"{code(c)} AS wk_k{i}" for i, c in enumerate(group))
        keys = ", ".join(f"wk_k{i}" for i in range(len(group)))
        sql = (
            f"SELECT wk_w, {keys}, COUNT(*) AS n, SUM(wk_l) AS l, SUM(wk_l * wk_l) AS l2 "
            f"FROM (SELECT wk_w, {cols}, CAST(wk_loss AS DOUBLE) AS wk_l FROM ({base_sql}) AS t) "
            f"AS s GROUP BY wk_w, {keys}"
        )
        rows = engine.sql(sql).to_pylist()
        if len(group) == 1:
            by_w: dict[int, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
            for r in rows:
                acc = by_w[r["wk_w"]]
                acc[0] += r["n"]
                acc[1] += r["l"] or 0.0
                acc[2] += r["l2"] or 0.0
            for w, (n, total, squares) in by_w.items():
                totals.setdefault(w, SliceLoss(int(n), total, squares))
        for r in rows:
            values = [r[f"wk_k{i}"] for i in range(len(group))]
            if any(v is None for v in values):
                continue
            text = " & ".join(describe(c, v) for c, v in zip(group, values, strict=True))
            found[r["wk_w"]][text] = SliceLoss(
                int(r["n"]), float(r["l"] or 0.0), float(r["l2"] or 0.0)
            )
    return [
        SliceSums(
            EPOCH + timedelta(microseconds=w * size_us),
            totals.get(w, SliceLoss(0, 0.0, 0.0)),
            slices,
        )
        for w, slices in found.items()
    ]


def describe(c: Candidate, value: Any) -> str:
    """A slice's value in words: ``region=eu``, ``amount in [10, 20)``."""
    if c.binning is not None and c.binning.coarse:
        edges = [float(e) for e in c.binning.coarse_edges()]
        i = int(value)
        if i == 0:
            return f"{c.name} < {edges[0]:.4g}"
        if i > len(edges) - 1:
            return f"{c.name} > {edges[-1]:.4g}"
        return f"{c.name} in [{edges[i - 1]:.4g}, {edges[i]:.4g})"
    return f"{c.name}={value}"


__all__ = ["Candidate", "SliceLoss", "SliceSums", "describe", "slice_sums"]
