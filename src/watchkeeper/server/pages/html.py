"""The dashboard's pages are Jinja2 templates (``watchkeeper/server/templates``) rendered
with autoescaping, so everything taken from data is text; here are the environment, its
filters, chart specs as JSON inside a script element the browser does not execute, and
series thinned for drawing."""

from __future__ import annotations

import functools
import json
from typing import Any

import jinja2
from markupsafe import Markup

from watchkeeper.report.html import esc
from watchkeeper.report.specs import finite
from watchkeeper.rows import MetricRow


def json_script(name: str, data: Any) -> str:
    """Data for a script inside a script element the browser does not run: ``<``, ``>`` and
    ``&`` written as escapes, so no text from data (``</script>``, ``<!--``) can end it."""
    text = json.dumps(finite(data), default=str, allow_nan=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f'<script type="application/json" id="{esc(name)}">{text}</script>'


def number(value: Any, digits: int = 3) -> str:
    """A value as the pages write it: – for none, a float to ``digits`` significant
    digits (the template escapes the result)."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


@functools.cache
def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("watchkeeper.server", "templates"),
        autoescape=True,  # every value is text unless a filter says it is markup
        undefined=jinja2.StrictUndefined,  # a misspelt name fails the page, not blanks it
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["number"] = number
    env.filters["json_script"] = lambda data, name: Markup(json_script(name, data))
    env.filters["seg"] = seg
    return env


def render(template: str, **context: Any) -> str:
    """A page from its template (``watchkeeper/server/templates``), autoescaped."""
    return _templates().get_template(template).render(**context)


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


__all__ = ["MAX_POINTS", "json_script", "number", "render", "seg", "thin"]
