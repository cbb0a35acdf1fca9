"""Ranking and recommendation quality from per-query sums pushed down by the engine.

Positions are ranks shown to the user, 1 at the top (derived from the score within the
query when no position is logged). A label is the relevance of an item (a click is 1).
Gains are linear (``rel / log2(rank + 1)``), as scikit-learn's ``ndcg_score``.
"""

from __future__ import annotations

from collections.abc import Callable

from watchkeeper.profiles.counts import RankingSums
from watchkeeper.stats.performance import Estimate, mean_estimate, wilson

_Q = "normal, over queries"

METRICS: dict[str, Callable[[RankingSums], Estimate]] = {
    "ctr": lambda s: wilson(s.clicks, s.impressions),
    "precision_at_k": lambda s: mean_estimate(s.precision_at_k, s.precision_sq, s.queries, _Q),
    "ndcg_at_k": lambda s: mean_estimate(s.ndcg, s.ndcg_sq, s.ndcg_queries, _Q),
    "mrr": lambda s: mean_estimate(s.reciprocal_rank, s.reciprocal_rank_sq, s.queries, _Q),
}
