"""Signals of performance that need no labels, from the score histogram: the mean
confidence (max of p and 1 - p, at bin centres: within half a bin), the share of
low-confidence predictions (scores in [0.4, 0.6)), and the predicted positive rate (of the
declared prediction column where there is one: the histogram is then split by it, the
events predicted 0 then those predicted 1; else of the scores at or above the threshold)."""

from __future__ import annotations

import numpy as np

from watchkeeper.metrics.family import Aggregates, Context, Family
from watchkeeper.profiles.counts import SCORE_BINS
from watchkeeper.rows import MetricRow


def proxy_rows(ctx: Context, agg: Aggregates) -> list[MetricRow]:
    rows: list[MetricRow] = []
    threshold = ctx.model.decision_threshold
    split = ctx.model.columns.prediction is not None
    for key, found in sorted(agg.histograms.items()):
        n = int(found.sum())
        if n == 0:
            continue
        where = ctx.where(key)
        if split and len(found) == 2 * SCORE_BINS:
            hist = found[:SCORE_BINS] + found[SCORE_BINS:]
            predicted = float(found[SCORE_BINS:].sum())
        else:
            hist = found
            lows = np.arange(len(hist)) / len(hist)
            predicted = float(hist[lows >= threshold - 1e-12].sum())
        bins = len(hist)
        centres = (np.arange(bins) + 0.5) / bins
        lows = np.arange(bins) / bins
        confidence = float((hist * np.maximum(centres, 1 - centres)).sum() / n)
        uncertain = (lows >= 0.4 - 1e-12) & (lows < 0.6 - 1e-12)
        rows += [
            where.row("mean_confidence", "", confidence, n),
            where.row("low_confidence_share", "", float(hist[uncertain].sum() / n), n),
            where.row("predicted_positive_rate", "", predicted / n, n),
        ]
    return rows


PROXIES = Family(
    "proxies",
    "Mean confidence, low-confidence share and predicted positive rate of the scores.",
    ("mean_confidence", "low_confidence_share", "predicted_positive_rate"),
    proxy_rows,
    needs=("scores",),
)

__all__ = ["PROXIES"]
