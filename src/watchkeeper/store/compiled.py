"""Compiled SQL kept for queries of the same shape.

Ibis spends far longer compiling a small query than DuckDB spends running it (about 12 ms
against 4 ms for the store's own tables), and a monitor asks the same questions every
cycle with only the literals changed: this model, windows since this time. So each query's
shape, its expression with every string, timestamp and 32- or 64-bit integer literal replaced by a
sentinel, is compiled once; later queries of that shape get the cached SQL with the
sentinels' text replaced by their own literals' text, rendered by the same compiler.

A shape is cached only when every sentinel appears in the SQL exactly as the compiler
renders a literal, and a query is answered from the cache only when no trace of a sentinel
is left after the substitution; otherwise it is compiled as usual. Everything else (other
literal types, intervals, booleans, the tables and their schemas) is part of the shape.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import ibis.expr.datatypes as dt
import ibis.expr.operations as ops

SIZE = 1024  # shapes kept
# Integer sentinels are a thousand apart, so that a compile rule doing arithmetic on a value
# (an index + 1) leaves a number no sentinel has, whose trace then refuses the shape.
MAX_LITERALS = 999
Entry = tuple[str, tuple[str, ...], "re.Pattern[str]"]  # SQL, sentinel texts, their pattern
_UNKNOWN: Entry = ("", (), re.compile("(?!)"))  # not looked at yet (by identity)
_TRACES = ("wksentinel", "7777777", "2077777", "MAKE_TIMESTAMPTZ(1111, ", "MAKE_TIMESTAMP(1111, ")


def _sentinel(i: int, dtype: dt.DataType) -> Any:
    if dtype.is_string():
        return f"wksentinel{i:05d}q"
    if dtype.is_int64():
        return 7_777_777_000_000 + i * 1000
    if dtype.is_int32():
        return 2_077_777_000 + i * 1000
    zoned = dtype.timezone == "UTC"
    return datetime(1111, 1, 1, 1, 1, 1, i + 1, tzinfo=UTC if zoned else None)


def _abstract(lit: ops.Literal) -> bool:
    dtype = lit.dtype
    if lit.value is None:
        return False
    if dtype.is_string() or dtype.is_int64() or dtype.is_int32():
        return True
    # Timestamps in UTC or naive; another zone would render differently.
    return bool(dtype.is_timestamp() and dtype.timezone in (None, "UTC"))


_REF = object()  # marks a reference to an earlier node of a fingerprint


def _fingerprint(op: ops.Node, found: dict[ops.Literal, int]) -> tuple[Any, ...]:
    """A query's structure as one flat tuple, a row per distinct node (children by their
    row number, so a relation that a hundred fields point at is spelled once), abstracted
    literals as their type and their place among the distinct literals (equal shapes
    number them alike)."""
    rows: list[Any] = []
    ids: dict[ops.Node, tuple[object, int]] = {}

    def visit(node: Any) -> Any:
        if isinstance(node, ops.Node):
            ref = ids.get(node)
            if ref is not None:
                return ref
            if isinstance(node, ops.Literal) and _abstract(node):
                row: Any = ("?", node.dtype, found.setdefault(node, len(found)))
            else:
                row = (type(node), *(visit(a) for a in node.__args__))
            ref = ids[node] = (_REF, len(rows))
            rows.append(row)
            return ref
        if isinstance(node, tuple | list):
            return tuple(visit(a) for a in node)
        if isinstance(node, dict):  # FrozenOrderedDict of a projection or aggregate
            return tuple((k, visit(v)) for k, v in node.items())
        return node

    visit(op)
    return tuple(rows)


class _Shape:
    """A fingerprint hashed once (a nested tuple rehashes its whole depth on every use)."""

    __slots__ = ("hash", "key")

    def __init__(self, key: Any) -> None:
        self.key = key
        self.hash = hash(key)

    def __hash__(self) -> int:
        return self.hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Shape) and self.hash == other.hash and self.key == other.key


class CompiledQueries:
    """A drop-in for a SQL backend's ``compile`` that reuses SQL across literals."""

    def __init__(self, backend: Any, size: int = SIZE) -> None:
        self.backend = backend
        self.plain = backend.compile
        self.size = size
        self._shapes: dict[_Shape, Entry | None] = {}
        self.hits = 0
        self.misses = 0

    def _render(self, lit: ops.Literal) -> str:
        compiler = self.backend.compiler
        return str(
            compiler.visit_Literal(lit, value=lit.value, dtype=lit.dtype).sql(
                dialect=compiler.dialect
            )
        )

    def __call__(
        self,
        expr: Any,
        /,
        *,
        limit: int | None = None,
        params: Any = None,
        pretty: bool = False,
    ) -> str:
        if params or pretty:
            return str(self.plain(expr, limit=limit, params=params, pretty=pretty))
        # Compile names an unnamed column or scalar from its expression: name it from the
        # real literals first, so that the name is part of the shape, not the sentinels'.
        expr = expr.as_table()
        op = expr.op()
        found: dict[ops.Literal, int] = {}
        try:
            shape = _Shape((_fingerprint(op, found), limit))
        except (TypeError, RecursionError):  # an unhashable argument, or a deep graph
            return str(self.plain(expr, limit=limit))
        literals = list(found)
        if len(literals) > MAX_LITERALS:
            return str(self.plain(expr, limit=limit))
        # One lookup (a server's threads share the cache; another may clear it meanwhile).
        entry = self._shapes.get(shape, _UNKNOWN)
        if entry is _UNKNOWN:
            entry = self._learn(shape, op, limit, literals)
        if entry is None:
            self.misses += 1
            return str(self.plain(expr, limit=limit))
        rendered = [self._render(lit) for lit in literals]
        if any(trace in text for text in rendered for trace in _TRACES):
            self.misses += 1  # a literal that looks like a sentinel: no safe substitution
            return str(self.plain(expr, limit=limit))
        # Every sentinel at once: one by one, a literal's text holding a later sentinel's
        # text would be rewritten again.
        by_text = dict(zip(entry[1], rendered, strict=True))
        sql = entry[2].sub(lambda m: by_text[m.group(0)], entry[0])
        self.hits += 1
        return sql

    def _learn(
        self, shape: Any, op: ops.Node, limit: int | None, literals: list[ops.Literal]
    ) -> Entry | None:
        marks = {
            lit: ops.Literal(_sentinel(i, lit.dtype), lit.dtype) for i, lit in enumerate(literals)
        }
        masked = op.replace(marks) if marks else op
        sql = str(self.plain(masked.to_expr(), limit=limit))
        texts = tuple(self._render(s) for s in marks.values())
        pattern = re.compile("|".join(re.escape(t) for t in texts) or "(?!)")
        rest = pattern.sub("", sql)
        usable = all(text in sql for text in texts) and not any(t in rest for t in _TRACES)
        entry = (sql, texts, pattern) if usable else None
        if len(self._shapes) >= self.size:  # queries of one-off tables: start afresh
            self._shapes.clear()
        self._shapes[shape] = entry
        return entry


def install(backend: Any) -> None:
    """Give a DuckDB backend the cache (once; the stores sharing it share the cache)."""
    if getattr(backend, "name", None) != "duckdb" or isinstance(
        getattr(backend, "compile", None), CompiledQueries
    ):
        return
    backend.compile = CompiledQueries(backend)


__all__ = ["CompiledQueries", "install"]
