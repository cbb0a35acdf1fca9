"""Ranking and recommendation: per-query sums per window (precision@k, NDCG@k, reciprocal
rank, clicks), the metrics over them, and the catalogue coverage of the items shown."""

from __future__ import annotations

from watchkeeper.config import ModelConfig
from watchkeeper.profiles.base import Engine, Key, Source, Windowing
from watchkeeper.profiles.counts import RankingSums
from watchkeeper.profiles.labelled import compute_ranking_sums
from watchkeeper.stats.ranking import METRICS
from watchkeeper.tasks.base import Task


def counts(
    model: ModelConfig, source: Source, windowing: Windowing | None, engine: Engine
) -> dict[Key, RankingSums] | None:
    cols = model.columns
    if cols.query_id is None:
        return None
    return compute_ranking_sums(
        source,
        cols.query_id,
        model.labels.column,
        cols.position,
        cols.score,
        model.monitoring.ranking_k,
        windowing,
        engine,
    )


def items(model: ModelConfig) -> str | None:
    return model.columns.item_id


TASK = Task(key="ranking", headline="ndcg_at_k", metrics=METRICS, counts=counts, items=items)

__all__ = ["TASK"]
