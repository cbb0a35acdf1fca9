"""Column profiles in the engine: one query for the row counts and every numeric column's
moments, then one query per column for its bin counts (numeric: a binary search over the
reference's edges written as nested CASEs; categorical: a join with its vocabulary)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa

from watchkeeper.profiles.base import Base, Engine, Key, Parts, Source, Windowing, bin_sql
from watchkeeper.profiles.binning import Binning
from watchkeeper.profiles.types import ColumnProfile, Profile


def compute_profiles(
    source: Source,
    binnings: Sequence[Binning],
    windowing: Windowing | None,
    engine: Engine,
    progress: Callable[[int], None] | None = None,
) -> dict[Key, Profile]:
    """Profiles of every window × version × segment of ``source``, computed in the engine.

    ``progress`` is called with 1 after each query (one for the row counts, one per column).
    """
    base = Base.of(source, [b.name for b in binnings], windowing, engine)
    q = engine.quote
    measures = ["COUNT(*) AS rows"]
    if source.status is not None:
        s = q(source.status)
        measures.append(
            f"SUM(CASE WHEN {s} IS NOT NULL AND LOWER({s}) <> 'ok' THEN 1 ELSE 0 END) AS errors"
        )
    # The moments of every numeric column in the same scan: one query, not one per column.
    numeric = [b for b in binnings if b.kind == "numeric"]
    for i, b in enumerate(numeric):
        x = f"CAST({q(b.name)} AS DOUBLE)"
        measures += [
            f"SUM({x}) AS s__{i}",
            f"SUM({x} * {x}) AS q__{i}",
            f"MIN({x}) AS lo__{i}",
            f"MAX({x}) AS hi__{i}",
        ]
    totals = base.collect(engine.sql(base.query(f"({base.sql}) AS wk_t", measures)))
    if progress is not None:
        progress(1)
    hists: dict[str, dict[Key, Parts]] = {}
    for b in binnings:
        hists[b.name] = _histogram(base, b, engine)
        if progress is not None:
            progress(1)
    out: dict[Key, Profile] = {}
    index = {b.name: i for i, b in enumerate(numeric)}
    for key, parts in totals.items():
        rows = int(parts.sums["rows"])
        columns = {}
        for b in binnings:
            h = hists[b.name].get(key)
            bins = h.counts if h is not None else np.zeros(b.n_bins, dtype=np.int64)
            profile = ColumnProfile(b.kind, rows, rows - int(bins.sum()), bins)
            if b.name in index:
                j = index[b.name]
                profile = ColumnProfile(
                    b.kind,
                    profile.count,
                    profile.missing,
                    bins,
                    parts.sums[f"s__{j}"],
                    parts.sums[f"q__{j}"],
                    parts.extremes[f"lo__{j}"],
                    parts.extremes[f"hi__{j}"],
                )
            columns[b.name] = profile
        out[key] = Profile(rows, int(parts.sums.get("errors", 0)), columns)
    return out


def _histogram(base: Base, b: Binning, engine: Engine) -> dict[Key, Parts]:
    q = engine.quote
    x = q(b.name)
    if b.kind == "numeric":
        value = f"CAST({x} AS DOUBLE)"
        measures = ["COUNT(*) AS n"]
        keys = [q(k) for k in base.group_keys()] + [
            q(f"wk_s{i}") for i in range(len(base.segments))
        ]
        # The value is projected first and binned after, so the engine casts it once.
        values = f"SELECT {', '.join([*keys, f'{value} AS wk_x'])} FROM ({base.sql}) AS wk_t"
        binned = [*keys, f"{bin_sql('wk_x', b.edges)} AS wk_bin"]
        inner = (
            f"(SELECT {', '.join(binned)} FROM ({values} WHERE {x} IS NOT NULL) AS wk_v) AS wk_b"
        )
        result = engine.sql(base.query(inner, measures, ["wk_bin"]))
        return base.collect(result, "wk_bin", b.n_bins)
    vocab = pa.table(
        {
            "wk_cat": pa.array([*b.categories, *b.known], pa.string()),
            "wk_code": pa.array(
                [*range(len(b.categories)), *([len(b.categories)] * len(b.known))], pa.int64()
            ),
        }
    )
    # a known category that is in the vocabulary appears twice; keep its vocabulary code
    vocab = (
        vocab.group_by("wk_cat")
        .aggregate([("wk_code", "min")])
        .rename_columns(["wk_cat", "wk_code"])
    )
    unseen = len(b.categories) + 1
    with engine.arrow(vocab) as mapping:
        name = q(mapping.get_name())
        keys = [f"wk_t.{q(k)}" for k in base.group_keys()] + [
            f"wk_t.{q(f'wk_s{i}')}" for i in range(len(base.segments))
        ]
        inner = (
            f"(SELECT {', '.join([*keys, f'COALESCE(wk_m.wk_code, {unseen}) AS wk_bin'])} "
            f"FROM ({base.sql}) AS wk_t LEFT JOIN {name} AS wk_m "
            f"ON CAST(wk_t.{x} AS STRING) = wk_m.wk_cat WHERE wk_t.{x} IS NOT NULL) AS wk_b"
        )
        result = engine.sql(base.query(inner, ["COUNT(*) AS n"], ["wk_bin"]))
    return base.collect(result, "wk_bin", b.n_bins)


__all__ = ["compute_profiles"]
