"""Monitoring runs: windows → aggregates → metric families → the metrics table."""

from watchkeeper.monitor.notebook import DriftReport, FeatureDrift, compare
from watchkeeper.monitor.result import Cycle, RunResult
from watchkeeper.monitor.runs import run
from watchkeeper.monitor.windows import dirty_windows

__all__ = ["Cycle", "DriftReport", "FeatureDrift", "RunResult", "compare", "dirty_windows", "run"]
