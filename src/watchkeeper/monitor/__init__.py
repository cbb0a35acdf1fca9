"""Monitoring runs: windows → profiles → statistics → the metrics table."""

from watchkeeper.monitor.run import NoReferenceError, RunResult, dirty_windows, run

__all__ = ["NoReferenceError", "RunResult", "dirty_windows", "run"]
