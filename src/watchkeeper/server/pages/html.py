"""The dashboard's HTML pieces: the page frame, tables, chart hosts whose Vega-Lite spec
travels as JSON inside a script element the browser does not execute, and series thinned
for drawing.
Everything taken from data is escaped."""

from __future__ import annotations

import json
from typing import Any

from watchkeeper.report.html import esc
from watchkeeper.report.specs import finite
from watchkeeper.rows import MetricRow


def json_script(name: str, data: Any) -> str:
    """Data for a script inside a script element the browser does not run: ``<``, ``>`` and
    ``&`` written as escapes, so no text from data (``</script>``, ``<!--``) can end it."""
    text = json.dumps(finite(data), default=str, allow_nan=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f'<script type="application/json" id="{esc(name)}">{text}</script>'


def chart(name: str, spec: dict[str, Any]) -> str:
    """A chart drawn in the browser from its Vega-Lite spec (``watchkeeper.report.specs``)."""
    return f'<div class="chart-host" data-spec="{esc(name)}"></div>' + json_script(name, spec)


def page(title: str, body: str, models: list[str]) -> str:
    nav = "".join(f'<a href="/models/{esc(m)}">{esc(m)}</a>' for m in models)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)} · watchkeeper</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/assets/dashboard.css"><link rel="icon" href="data:,"></head>
<body><header><a class="brand" href="/">watchkeeper</a><nav>{nav}
<a href="/alerts">alerts</a></nav></header><main><h1>{esc(title)}</h1>{body}</main>
<script src="/assets/vega/vega.min.js"></script>
<script src="/assets/vega/vega-lite.min.js"></script>
<script src="/assets/vega/vega-embed.min.js"></script>
<script src="/assets/charts.js"></script></body></html>"""


def table(headers: list[str], rows: list[list[str]], cls: str = "") -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    if not rows:
        body = f'<tr><td colspan="{len(headers)}">none</td></tr>'
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


MAX_POINTS = 1_000  # a chart shows at most this many points: longer series are averaged


def thin(points: list[Any]) -> list[Any]:
    """At most MAX_POINTS points: consecutive windows averaged (a bucket is provisional when
    any of its windows is), so a year of hourly windows draws as fast as a month."""
    if len(points) <= MAX_POINTS:
        return points
    size = -(-len(points) // MAX_POINTS)
    out = []
    for i in range(0, len(points), size):
        bucket = points[i : i + size]
        mean = sum(float(p[1]) for p in bucket) / len(bucket)
        if len(bucket[0]) > 2:
            out.append([bucket[0][0], mean, any(p[2] for p in bucket)])
        else:
            out.append([bucket[0][0], mean])
    return out


def seg(row: MetricRow) -> str:
    if row.segment_column == "*":
        return "all traffic"
    return f"{row.segment_column}={row.segment_value}"


__all__ = ["MAX_POINTS", "chart", "json_script", "page", "seg", "table", "thin"]
