"""The report's HTML pieces: escaping, number formatting, tables, the page."""

from __future__ import annotations

import html
from typing import Any


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return esc(value)


def table(title: str, headers: list[str], body: str) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f"<section><h3>{esc(title)}</h3>{table}</section>"


def tr(*cells: str) -> str:
    """A table row of cells already escaped or formatted."""
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2733;
  max-width: 980px; margin: 2em auto; padding: 0 1em; }}
h1 {{ font-size: 1.6em; margin-bottom: 0; }} .meta {{ color: #5b6776; margin-top: .2em; }}
.summary {{ border-left: 6px solid #999; padding: .6em 1.2em; margin: 1.2em 0;
  background: #f7f8fa; }}
.summary.good {{ border-color: #2e8540; }} .summary.warn {{ border-color: #d9822b; }}
.summary.bad {{ border-color: #c23030; }} .summary h2 {{ margin: .2em 0; }}
.next {{ font-size: 1.05em; }}
.charts {{ display: grid; grid-template-columns: 1fr; gap: 1em; }}
figure {{ margin: 0; }} figcaption {{ color: #5b6776; font-size: .9em; }}
svg.chart {{ width: 100%; height: auto; background: #fff; border: 1px solid #e3e6ea; }}
rect.ref {{ fill: #9aa8b8; }} rect.live {{ fill: #2b6cb0; }}
.line {{ fill: none; stroke-width: 2; }} .s0 {{ stroke: #2b6cb0; }}
.s1 {{ stroke: #d9822b; stroke-dasharray: 5 3; }}
.marker {{ stroke: #c23030; stroke-dasharray: 6 4; stroke-width: 1.5; }}
.axis {{ stroke: #8893a0; }} .tick {{ font-size: 11px; fill: #5b6776; }}
table {{ border-collapse: collapse; width: 100%; font-size: .9em; }}
th, td {{ text-align: left; padding: .25em .6em; border-bottom: 1px solid #e3e6ea; }}
span.drifted {{ color: #c23030; font-weight: 600; }}
</style></head>
<body>
<h1>{title}</h1>
<p class="meta">Period: {span}. Written {generated} by watchkeeper.</p>
{body}
</body></html>
"""


__all__ = ["PAGE", "esc", "fmt", "table", "tr"]
