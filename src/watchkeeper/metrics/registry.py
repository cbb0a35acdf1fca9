"""The metric families a run computes, in order."""

from __future__ import annotations

from watchkeeper.metrics.arrivals import ARRIVALS
from watchkeeper.metrics.business import COSTS, OUTCOMES
from watchkeeper.metrics.drift import DRIFT
from watchkeeper.metrics.estimation import ESTIMATION
from watchkeeper.metrics.fairness import FAIRNESS
from watchkeeper.metrics.family import Family
from watchkeeper.metrics.labels import LABELS
from watchkeeper.metrics.multivariate import MULTIVARIATE
from watchkeeper.metrics.performance import PERFORMANCE
from watchkeeper.metrics.proxies import PROXIES
from watchkeeper.metrics.quality import QUALITY
from watchkeeper.metrics.segments import SEGMENTS
from watchkeeper.metrics.service import SERVICE, VOLUME
from watchkeeper.metrics.slices import WEAK_SLICES
from watchkeeper.metrics.versions import VERSIONS

FAMILIES: tuple[Family, ...] = (
    SERVICE,
    QUALITY,
    DRIFT,
    MULTIVARIATE,
    VERSIONS,
    LABELS,
    PERFORMANCE,
    COSTS,
    FAIRNESS,
    SEGMENTS,
    ESTIMATION,
    PROXIES,
    WEAK_SLICES,
    VOLUME,
    OUTCOMES,
    ARRIVALS,
)

__all__ = ["FAMILIES"]
