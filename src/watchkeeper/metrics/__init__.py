"""Metric families: pure functions from a run's aggregates to typed metric rows."""

from watchkeeper.metrics.family import Aggregates, Context, Family
from watchkeeper.metrics.registry import FAMILIES

__all__ = ["FAMILIES", "Aggregates", "Context", "Family"]
