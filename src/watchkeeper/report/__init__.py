"""The stakeholder report: one self-contained HTML file for people who are not engineers."""

from watchkeeper.report.charts import display_bins
from watchkeeper.report.html import esc, fmt
from watchkeeper.report.story import Library, Report, build

__all__ = [
    "Library",
    "Report",
    "build",
    "display_bins",
    "esc",
    "fmt",
]
