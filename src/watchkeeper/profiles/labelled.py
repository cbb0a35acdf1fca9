"""The labelled events' aggregates in the engine, one query each per window × version ×
segment: score histograms (labelled or not), binary counts, regression sums, multiclass
confusion matrices and ranking sums (see ``profiles.counts``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from watchkeeper.profiles.base import (
    Base,
    Engine,
    Key,
    Source,
    Windowing,
    lead,
    sql_number,
    sql_text,
)
from watchkeeper.profiles.counts import (
    EPS,
    MAPE_FLOOR,
    SCORE_BINS,
    BinaryCounts,
    MulticlassCounts,
    RankingSums,
    RegressionSums,
)


def score_bin_sql(s: str, bins: int = SCORE_BINS) -> str:
    """SQL for the score bin of ``s`` (a DOUBLE), as ``profiles.counts.score_bins``: the
    number of interior edges ``k / bins`` at or below it. ``FLOOR(s * bins)`` alone puts
    0.29 in bin 28 (0.29 * 100 is 28.999999999999996 in float64); it is off by at most one,
    so it is corrected by comparing with the edges next to it, computed as numpy does
    (``k / bins``, one correctly rounded division)."""
    floor = f"LEAST(GREATEST(CAST(FLOOR({s} * {bins}) AS BIGINT), 0), {bins - 1})"
    width = f"CAST({bins} AS DOUBLE)"
    return (
        f"CASE WHEN {floor} < {bins - 1} AND {s} >= CAST({floor} + 1 AS DOUBLE) / {width} "
        f"THEN {floor} + 1 "
        f"WHEN {floor} > 0 AND {s} < CAST({floor} AS DOUBLE) / {width} THEN {floor} - 1 "
        f"ELSE {floor} END"
    )


def compute_score_histogram(
    source: Source,
    score: str,
    windowing: Windowing | None,
    engine: Engine,
    predicted: tuple[str, str] | None = None,
    predicted_positive: str | None = None,
) -> dict[Key, np.ndarray[Any, Any]]:
    """Per window × version × segment, events per equal-width score bin on [0, 1] (labelled
    or not): what estimating performance without labels starts from. With ``predicted``
    (a prediction column and a class), twice the bins: first the events predicted as another
    class, then those predicted as that class (one class against the rest). With
    ``predicted_positive`` (a binary prediction column), likewise: first the events
    predicted 0, then those predicted 1."""
    split = predicted[0] if predicted else predicted_positive
    base = Base.of(source, [score, *([split] if split else [])], windowing, engine)
    q = engine.quote
    s = f"CAST({q(score)} AS DOUBLE)"
    keys = [q(k) for k in base.group_keys()] + [q(f"wk_s{i}") for i in range(len(base.segments))]
    code = score_bin_sql(s)
    bins = SCORE_BINS
    flag = None
    if predicted is not None:
        column, cls = predicted
        flag = f"CASE WHEN CAST({q(column)} AS STRING) = '{sql_text(cls)}' THEN 1 ELSE 0 END"
    elif predicted_positive is not None:
        flag = f"CASE WHEN CAST({q(predicted_positive)} AS BIGINT) = 1 THEN 1 ELSE 0 END"
    if flag is not None:
        code = f"{flag} * {SCORE_BINS} + {code}"
        bins = 2 * SCORE_BINS
    inner = (
        f"(SELECT {', '.join([*keys, f'{code} AS wk_bin'])} FROM ({base.sql}) AS wk_t "
        f"WHERE {q(score)} IS NOT NULL) AS wk_b"
    )
    result = engine.sql(base.query(inner, ["COUNT(*) AS n"], ["wk_bin"]))
    return {k: p.counts for k, p in base.collect(result, "wk_bin", bins).items()}


def compute_binary_counts(
    source: Source,
    score: str,
    label: str,
    predicted: str | None,
    threshold: float,
    windowing: Windowing | None,
    engine: Engine,
    ranks: bool = True,
) -> dict[Key, BinaryCounts]:
    """Per window × version × segment, the counts binary-classification metrics need:
    events per score bin × label × prediction (with their score sums), the sums behind
    log loss and the Brier score, and (with ``ranks``) the positives' rank sum of the exact
    ROC AUC. ``source`` holds labelled events only."""
    columns = [score, label, *([predicted] if predicted else [])]
    base = Base.of(source, columns, windowing, engine)
    q = engine.quote
    bins = SCORE_BINS
    s, y = f"CAST({q(score)} AS DOUBLE)", f"CAST({q(label)} AS BIGINT)"
    yhat = (
        f"CAST({q(predicted)} AS BIGINT)"
        if predicted
        else f"CASE WHEN {s} >= {sql_number(threshold)} THEN 1 ELSE 0 END"
    )
    clipped = f"GREATEST(LEAST({s}, {1 - EPS!r}), {EPS!r})"
    keys = [q(k) for k in base.group_keys()] + [q(f"wk_s{i}") for i in range(len(base.segments))]
    bin_code = score_bin_sql(s, bins)
    labelled = f"{q(score)} IS NOT NULL AND {q(label)} IS NOT NULL"
    inner = (
        f"(SELECT {lead(keys)}({bin_code}) * 4 + {y} * 2 + {yhat} AS wk_bin, "
        f"{s} AS wk_s, -({y} * LN({clipped}) + (1 - {y}) * LN(1 - {clipped})) AS wk_ll, "
        f"({s} - {y}) * ({s} - {y}) AS wk_br "
        f"FROM ({base.sql}) AS wk_t WHERE {labelled}) AS wk_b"
    )
    measures = [
        "COUNT(*) AS n",
        "SUM(wk_s) AS ss",
        "SUM(wk_ll) AS ll",
        "SUM(wk_ll * wk_ll) AS llq",
        "SUM(wk_br) AS br",
        "SUM(wk_br * wk_br) AS brq",
    ]
    result = engine.sql(base.query(inner, measures, ["wk_bin"]))
    out: dict[Key, BinaryCounts] = {}
    for key, parts in base.collect(result, "wk_bin", bins * 4, per_code=["ss"]).items():
        cube = parts.counts.reshape(bins, 2, 2)  # score bin, label, prediction
        out[key] = BinaryCounts(
            cube[:, 1, :].sum(axis=1),
            cube[:, 0, :].sum(axis=1),
            parts.per_code["ss"].reshape(bins, 4).sum(axis=1),
            int(cube[:, 1, 1].sum()),
            int(cube[:, 0, 1].sum()),
            int(cube[:, 0, 0].sum()),
            int(cube[:, 1, 0].sum()),
            parts.sums["ll"],
            parts.sums["llq"],
            parts.sums["br"],
            parts.sums["brq"],
        )
    if ranks:
        for key, (rank_sum, positives) in _positive_rank_sums(base, s, y, labelled, engine).items():
            found = out.get(key)
            if found is not None and int(found.positives.sum()) == positives:
                out[key] = replace(found, positive_rank_sum=rank_sum)
    return out


def _positive_rank_sums(
    base: Base, score: str, label: str, where: str, engine: Engine
) -> dict[Key, tuple[float, int]]:
    """Per window × version × segment, the sum over positives of their score's rank among
    the labelled events (ties sharing their average rank), and the positives.

    Ranks are computed over each segment set's own partition (window × version × that
    set's value), so this query is one GROUP BY per set whether or not the counts are
    rolled up. An event's average rank is RANK() + (its ties - 1) / 2: twice it is an
    integer, summed exactly."""
    q = engine.quote
    keys = [q(k) for k in base.group_keys()] + [q(f"wk_s{i}") for i in range(len(base.segments))]
    rows = (
        f"SELECT {lead(keys)}{score} AS wk_x, {label} AS wk_y "
        f"FROM ({base.sql}) AS wk_t WHERE {where}"
    )

    def ranked(partition: Sequence[str]) -> str:
        over = f"PARTITION BY {', '.join(partition)} " if partition else ""
        rank = f"CAST(RANK() OVER ({over}ORDER BY wk_x) AS BIGINT)"
        ties = f"COUNT(*) OVER (PARTITION BY {', '.join([*partition, 'wk_x'])})"
        return (
            f"(SELECT {lead(keys)}wk_y, 2 * {rank} + {ties} - 1 AS wk_r2 "
            f"FROM ({rows}) AS wk_u) AS wk_rk"
        )

    measures = [
        "SUM(CASE WHEN wk_y = 1 THEN wk_r2 ELSE 0 END) AS rank2",
        "SUM(CASE WHEN wk_y = 1 THEN 1 ELSE 0 END) AS positives",
    ]
    result = engine.sql(base.query_per_set(ranked, measures))
    return {
        key: (parts.sums["rank2"] / 2, round(parts.sums["positives"]))
        for key, parts in base.collect(result, per_set=True).items()
    }


def compute_regression_sums(
    source: Source,
    prediction: str,
    label: str,
    windowing: Windowing | None,
    engine: Engine,
) -> dict[Key, RegressionSums]:
    """Per window × version × segment, the residual moments regression metrics need."""
    base = Base.of(source, [prediction, label], windowing, engine)
    q = engine.quote
    p, y = f"CAST({q(prediction)} AS DOUBLE)", f"CAST({q(label)} AS DOUBLE)"
    keys = [q(k) for k in base.group_keys()] + [q(f"wk_s{i}") for i in range(len(base.segments))]
    away = f"ABS(wk_y) >= {MAPE_FLOOR!r}"
    inner = (
        f"(SELECT {lead(keys)}{p} - {y} AS wk_e, {y} AS wk_y FROM ({base.sql}) AS wk_t "
        f"WHERE {q(prediction)} IS NOT NULL AND {q(label)} IS NOT NULL) AS wk_b"
    )
    ape = f"CASE WHEN {away} THEN ABS(wk_e) / ABS(wk_y) END"
    measures = [
        "COUNT(*) AS rows",
        "SUM(wk_e) AS e1",
        "SUM(wk_e * wk_e) AS e2",
        "SUM(wk_e * wk_e * wk_e * wk_e) AS e4",
        "SUM(ABS(wk_e)) AS ae",
        "SUM(wk_y) AS y1",
        "SUM(wk_y * wk_y) AS y2",
        f"SUM({ape}) AS ape1",
        f"SUM(({ape}) * ({ape})) AS ape2",
        f"SUM(CASE WHEN {away} THEN 1 ELSE 0 END) AS apen",
    ]
    out: dict[Key, RegressionSums] = {}
    for key, parts in base.collect(engine.sql(base.query(inner, measures))).items():
        m = parts.sums
        out[key] = RegressionSums(
            int(m["rows"]),
            m["e1"],
            m["e2"],
            m["e4"],
            m["ae"],
            m["y1"],
            m["y2"],
            m["ape1"],
            m["ape2"],
            int(m["apen"]),
        )
    return out


def compute_multiclass_counts(
    source: Source,
    prediction: str,
    label: str,
    classes: Sequence[str],
    scores: Mapping[str, str] | None,
    windowing: Windowing | None,
    engine: Engine,
) -> dict[Key, MulticlassCounts]:
    """Per window × version × segment, the confusion matrix over ``classes`` (and the sums
    behind log loss when every class has a score column)."""
    q = engine.quote
    k = len(classes)
    with_scores = bool(scores) and all(c in (scores or {}) for c in classes)
    columns = [prediction, label, *((scores or {}).values() if with_scores else ())]
    base = Base.of(source, columns, windowing, engine)

    def index(column: str) -> str:
        whens = " ".join(
            f"WHEN CAST({q(column)} AS STRING) = '{sql_text(c)}' THEN {i}"
            for i, c in enumerate(classes)
        )
        return f"CASE {whens} END"

    keys = [q(g) for g in base.group_keys()] + [q(f"wk_s{i}") for i in range(len(base.segments))]
    extra = ""
    measures = ["COUNT(*) AS n"]
    if with_scores:
        assert scores is not None
        label_text = f"CAST({q(label)} AS STRING)"
        whens = " ".join(
            f"WHEN {label_text} = '{sql_text(c)}' THEN CAST({q(scores[c])} AS DOUBLE)"
            for c in classes
        )
        true_score = f"CASE {whens} END"
        clipped = f"GREATEST(LEAST({true_score}, {1 - EPS!r}), {EPS!r})"
        extra = f", -LN({clipped}) AS wk_ll"
        measures += ["SUM(wk_ll) AS ll", "SUM(wk_ll * wk_ll) AS llq", "COUNT(wk_ll) AS lln"]
    inner = (
        f"(SELECT {lead(keys)}{index(label)} * {k} + {index(prediction)} AS wk_bin{extra} "
        f"FROM ({base.sql}) AS wk_t WHERE {q(prediction)} IS NOT NULL AND {q(label)} IS NOT NULL) "
        "AS wk_b"
    )
    out: dict[Key, MulticlassCounts] = {}
    result = engine.sql(base.query(inner, measures, ["wk_bin"]))
    for key, parts in base.collect(result, "wk_bin", k * k).items():
        out[key] = MulticlassCounts(
            tuple(classes),
            parts.counts.reshape(k, k),
            parts.sums.get("ll", 0.0),
            parts.sums.get("llq", 0.0),
            int(parts.sums.get("lln", 0)),
        )
    return out


def compute_ranking_sums(
    source: Source,
    query_id: str,
    label: str,
    position: str | None,
    score: str | None,
    k: int,
    windowing: Windowing | None,
    engine: Engine,
) -> dict[Key, RankingSums]:
    """Per window × version × segment, per-query ranking quality summed over queries: each
    query's hits in the top ``k``, its DCG over its ideal DCG, and its first relevant rank."""
    q = engine.quote
    columns = [query_id, label, *(c for c in (position, score) if c)]
    base = Base.of(source, columns, windowing, engine)
    keys = [q(g) for g in base.group_keys()] + [q(f"wk_s{i}") for i in range(len(base.segments))]
    part = ", ".join([*keys, q(query_id)])
    by_score = f"CAST({q(score or '')} AS DOUBLE) DESC"
    rank = (
        f"CAST({q(position)} AS BIGINT)"
        if position
        else f"ROW_NUMBER() OVER (PARTITION BY {part} ORDER BY {by_score})"
    )
    y = f"CAST({q(label)} AS DOUBLE)"
    ranked = (
        f"SELECT {lead(keys)}{q(query_id)} AS wk_q, {rank} AS wk_r, {y} AS wk_y, "
        f"ROW_NUMBER() OVER (PARTITION BY {part} ORDER BY {y} DESC) AS wk_i "
        f"FROM ({base.sql}) AS wk_t WHERE {q(label)} IS NOT NULL AND {q(query_id)} IS NOT NULL"
    )
    per_query = (
        f"SELECT {lead(keys)}wk_q, COUNT(*) AS wk_n, "
        "SUM(CASE WHEN wk_y > 0 THEN 1 ELSE 0 END) AS wk_c, "
        f"SUM(CASE WHEN wk_r <= {k} AND wk_y > 0 THEN 1 ELSE 0 END) AS wk_hits, "
        f"SUM(CASE WHEN wk_r <= {k} THEN wk_y / LOG2(wk_r + 1) ELSE 0 END) AS wk_dcg, "
        f"SUM(CASE WHEN wk_i <= {k} THEN wk_y / LOG2(wk_i + 1) ELSE 0 END) AS wk_idcg, "
        "MIN(CASE WHEN wk_y > 0 THEN wk_r END) AS wk_first "
        f"FROM ({ranked}) AS wk_rk GROUP BY {', '.join([*keys, 'wk_q'])}"
    )
    precision = f"CAST(wk_hits AS DOUBLE) / {k}"
    ndcg = "CASE WHEN wk_idcg > 0 THEN wk_dcg / wk_idcg END"
    rr = "CASE WHEN wk_first IS NOT NULL THEN 1.0 / wk_first ELSE 0.0 END"
    measures = [
        "COUNT(*) AS rows",
        "SUM(wk_n) AS imp",
        "SUM(wk_c) AS clicks",
        f"SUM({precision}) AS p1",
        f"SUM(({precision}) * ({precision})) AS p2",
        f"SUM({ndcg}) AS g1",
        f"SUM(({ndcg}) * ({ndcg})) AS g2",
        "SUM(CASE WHEN wk_idcg > 0 THEN 1 ELSE 0 END) AS gn",
        f"SUM({rr}) AS r1",
        f"SUM(({rr}) * ({rr})) AS r2",
    ]
    out: dict[Key, RankingSums] = {}
    result = engine.sql(base.query(f"({per_query}) AS wk_pq", measures))
    for key, parts in base.collect(result).items():
        m = parts.sums
        out[key] = RankingSums(
            int(m["rows"]),
            int(m["imp"]),
            int(m["clicks"]),
            m["p1"],
            m["p2"],
            m["g1"],
            m["g2"],
            int(m["gn"]),
            m["r1"],
            m["r2"],
        )
    return out


__all__ = [
    "compute_binary_counts",
    "compute_multiclass_counts",
    "compute_ranking_sums",
    "compute_regression_sums",
    "compute_score_histogram",
    "score_bin_sql",
]
