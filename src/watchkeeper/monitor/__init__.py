"""Monitoring runs: windows → profiles → statistics → the metrics table."""

from watchkeeper.monitor.compare import DriftReport, FeatureDrift, compare
from watchkeeper.monitor.run import NoReferenceError, RunResult, dirty_windows, run

__all__ = [
    "DriftReport",
    "FeatureDrift",
    "NoReferenceError",
    "RunResult",
    "compare",
    "dirty_windows",
    "run",
]
