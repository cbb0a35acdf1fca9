"""The compiled-SQL cache answers every query exactly as a fresh compile would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import ibis
import pytest

from watchkeeper.store.compiled import CompiledQueries


@pytest.fixture()
def con():  # type: ignore[no-untyped-def]
    backend = ibis.duckdb.connect()
    backend.raw_sql(
        "CREATE TABLE t (ts TIMESTAMPTZ, name VARCHAR, n BIGINT, w INTEGER, x DOUBLE, ok BOOLEAN)"
    )
    backend.raw_sql(
        "INSERT INTO t VALUES ('2026-01-01 00:00:00+00', 'a', 1, 10, 0.5, true),"
        " ('2026-01-02 00:00:00+00', 'it''s', 7777777000000, 2077777000, 1.5, false),"
        " ('2026-01-03 12:00:00+00', 'wksentinel', 3, 493848, 2.5, true)"
    )
    yield backend
    backend.disconnect()


def _query(t, since: datetime, name: str, n: int, w: int, x: float, names: list[str]):  # type: ignore[no-untyped-def]
    return (
        t.filter(
            (t.ts >= since)
            & (t.ts < since + timedelta(days=2))
            & ((t.name == name) | t.name.isin(names))
            & (t.n >= n)
            & (t.w != w)
            & (t.x > x)
        )
        .group_by("name")
        .aggregate(count=t.n.count(), total=t.x.sum())
        .order_by("name")
    )


CASES = [
    (datetime(2026, 1, 1, tzinfo=UTC), "a", 0, 5, 0.0, ["b"]),
    (datetime(2025, 12, 31, tzinfo=UTC), "it's", 1, 6, 0.0, ["a", "c"]),  # quote in a literal
    (datetime(2026, 1, 1, tzinfo=UTC), "a", 0, 5, 1.0, ["b"]),  # another float: another shape
    (datetime(2026, 1, 1, tzinfo=UTC), "a", 0, 0, 0.0, ["a"]),  # equal literals in two places
    (datetime(2026, 1, 1, 6, 30, 0, 123456, tzinfo=UTC), "b", 3, 5, 0.0, ["it's"]),
    (datetime(2025, 1, 1, tzinfo=UTC), "wksentinel", 0, 5, 0.0, ["x"]),  # a sentinel's trace
    (datetime(2025, 1, 1, tzinfo=UTC), "a", 7777777000000, 2077777000, 0.0, ["x"]),
]


def test_cached_sql_equals_a_fresh_compile_and_the_same_answers(con) -> None:  # type: ignore[no-untyped-def]
    plain = con.compile
    cache = CompiledQueries(con)
    t = con.table("t")
    for _round in range(2):  # the second round answers every shape from the cache
        for case in CASES:
            expr = _query(t, *case)
            assert cache(expr) == plain(expr)
            assert con.sql(cache(expr)).to_pyarrow().equals(expr.to_pyarrow())
    assert cache.hits > len(CASES)
    assert cache.misses >= 2  # the cases whose values carry a sentinel's trace


def test_queries_differing_only_in_literals_share_one_shape(con) -> None:  # type: ignore[no-untyped-def]
    cache = CompiledQueries(con)
    t = con.table("t")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for hour in range(48):
        expr = t.filter((t.ts >= start + timedelta(hours=hour)) & (t.name == f"m{hour}"))
        assert cache(expr) == con.compile(expr)
    assert len(cache._shapes) == 1
    assert cache.hits == 48  # the first compiles the shape, then fills it in like the rest


def test_installed_on_a_store_backend(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from watchkeeper.store.engine import Store

    store = Store.open(f"duckdb://{tmp_path / 's.duckdb'}")
    try:
        assert isinstance(store.backend.compile, CompiledQueries)
        again = Store(store.backend, store.url)
        assert again.backend.compile is store.backend.compile
    finally:
        store.close()


def test_literals_that_look_like_sentinels_or_name_a_column_stay_exact(con) -> None:  # type: ignore[no-untyped-def]
    cache = CompiledQueries(con)
    t = con.table("t")
    since = datetime(2026, 1, 1, tzinfo=UTC)
    tricky = [
        (t.name == "7777777000001") & (t.n >= 8_000_000_000),  # a literal holding a sentinel
        (t.n == 7777777000001) | (t.n == 1_000_000_000_000),
        (t.n == 7777777001000) | (t.n == 5),
    ]
    for _round in range(2):
        for expr in tricky:
            assert cache(t.filter(expr)) == con.compile(t.filter(expr))
        for name in ("it's", 'say "hi"', "plain"):
            for scalar in ((t.ts >= since).sum(), (t.name == name).sum()):
                assert cache(scalar) == con.compile(scalar)
                got = con.raw_sql(cache(scalar)).fetchall()
                assert got == [(scalar.execute(),)]
