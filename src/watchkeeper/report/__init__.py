"""The stakeholder report: one self-contained HTML file for people who are not engineers."""

from watchkeeper.report.charts import bar_chart, display_bins, line_chart
from watchkeeper.report.html import esc, fmt
from watchkeeper.report.story import Library, Report, build

__all__ = [
    "Library",
    "Report",
    "bar_chart",
    "build",
    "display_bins",
    "esc",
    "fmt",
    "line_chart",
]
