"""The engine connection: open, create tables, insert Arrow data, run Ibis expressions."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import sqlglot as sg
from ibis.common.exceptions import IbisError

from watchkeeper.config import Config
from watchkeeper.errors import StoreError
from watchkeeper.schema import KINDS, DType, spec_for
from watchkeeper.store.compiled import install as install_compiled
from watchkeeper.store.tables import META, SCHEMA_VERSION, SHARED

log = logging.getLogger(__name__)

ROW_GROUP = 122_880

_IBIS_TYPES: dict[DType, str] = {
    "string": "string",
    "float64": "float64",
    "int64": "int64",
    "boolean": "boolean",
    "timestamp": "timestamp('UTC')",
}
ARROW_TYPES: dict[DType, pa.DataType] = {
    "string": pa.string(),
    "float64": pa.float64(),
    "int64": pa.int64(),
    "boolean": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}


def _engine_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [IbisError]
    try:
        import duckdb

        errors.append(duckdb.Error)
    except ImportError:  # pragma: no cover - duckdb is a dependency
        pass
    return tuple(errors)


_ENGINE_ERRORS = _engine_errors()


@contextmanager
def engine_errors(action: str) -> Iterator[None]:
    """Translate the engine's exceptions into StoreError, keeping the cause."""
    try:
        yield
    except _ENGINE_ERRORS as exc:
        raise StoreError(f"{action}: {exc}") from exc


def ibis_schema(columns: Mapping[str, DType]) -> ibis.Schema:
    return ibis.schema({name: _IBIS_TYPES[dtype] for name, dtype in columns.items()})


def arrow_schema(columns: Mapping[str, DType]) -> pa.Schema:
    return pa.schema([(name, ARROW_TYPES[dtype]) for name, dtype in columns.items()])


def shared_rows(name: str, rows: list[dict[str, Any]]) -> pa.Table:
    """Rows for one of the shared tables, typed by its schema (missing keys are null)."""
    schema = arrow_schema(SHARED[name])
    return pa.Table.from_pylist([{c: r.get(c) for c in schema.names} for r in rows], schema=schema)


@ibis.udf.scalar.builtin(name="epoch_us")  # type: ignore[untyped-decorator]
def _duckdb_epoch_us(ts: datetime) -> int:  # type: ignore[empty-body]
    """DuckDB's epoch_us(TIMESTAMPTZ)."""


@ibis.udf.scalar.builtin(name="unix_micros")  # type: ignore[untyped-decorator]
def _spark_unix_micros(ts: datetime) -> int:  # type: ignore[empty-body]
    """Spark's unix_micros(TIMESTAMP)."""


def _same_type(stored: Any, wanted: Any) -> bool:
    """Equal up to nullability and timestamp precision (engines store microseconds)."""
    if stored.is_timestamp() and wanted.is_timestamp():
        return bool(stored.timezone == wanted.timezone)
    return bool(stored.copy(nullable=True) == wanted.copy(nullable=True))


class Store:
    """A connection to the engine behind Ibis, with watchkeeper's tables."""

    def __init__(self, backend: Any, url: str, memory_limit: str | None = None) -> None:
        install_compiled(backend)
        self.backend = backend
        self.url = url
        self.memory_limit = memory_limit
        self._limit = memory_limit  # the buffer pool's limit now (a run's, during one)
        self._tables: dict[str, ir.Table] = {}
        self._compiled: dict[tuple[str, pa.Schema], str] = {}
        self._quoted: dict[str, str] = {}

    @classmethod
    def open(cls, url: str, memory_limit: str | None = None, threads: int | None = None) -> Store:
        with engine_errors(f"cannot open the store at {url}"):
            backend = ibis.connect(url)
            if backend.name == "duckdb":
                if memory_limit:
                    backend.raw_sql(f"SET memory_limit = '{memory_limit}'")
                if threads:
                    backend.raw_sql(f"SET threads = {int(threads)}")
        return cls(backend, url, memory_limit)

    @property
    def engine(self) -> str:
        return str(self.backend.name)

    def close(self) -> None:
        disconnect = getattr(self.backend, "disconnect", None)
        if disconnect is not None:
            with engine_errors("closing the store"):
                disconnect()

    # -- tables -------------------------------------------------------------------------

    def tables(self) -> set[str]:
        with engine_errors("listing tables"):
            return set(self.backend.list_tables())

    def table(self, name: str) -> ir.Table:
        """A stored table as an Ibis expression (its schema is looked up once)."""
        found = self._tables.get(name)
        if found is None:
            with engine_errors(f"opening table {name}"):
                found = self.backend.table(name)
            self._tables[name] = found
        return found

    def ensure(self, config: Config) -> None:
        """Create every table the config needs (idempotent) and check the schema version."""
        self._tables.clear()
        self._compiled.clear()
        existing = self.tables()
        with engine_errors("creating tables"):
            for name, columns in SHARED.items():
                self._ensure_table(name, columns, existing)
            for model in config.models:
                for kind in KINDS:
                    spec = spec_for(kind, model)
                    self._ensure_table(spec.table, spec.stored_schema(), existing)
        self._check_version(META in existing)

    def _ensure_table(self, name: str, columns: Mapping[str, DType], existing: set[str]) -> None:
        if name not in existing:
            self.backend.create_table(name, schema=ibis_schema(columns))
            return
        # A column added to the config since the table was made: add it (nulls for the past).
        stored = self.backend.table(name).schema()
        for column, dtype in columns.items():
            wanted = ibis.dtype(_IBIS_TYPES[dtype])
            if column not in stored:
                compiler = self.backend.compiler
                sql_type = compiler.type_mapper.from_ibis(wanted).sql(compiler.dialect)
                table_sql = sg.to_identifier(name, quoted=True).sql(compiler.dialect)
                column_sql = sg.to_identifier(column, quoted=True).sql(compiler.dialect)
                self.backend.raw_sql(f"ALTER TABLE {table_sql} ADD COLUMN {column_sql} {sql_type}")
            elif not _same_type(stored[column], wanted):
                raise StoreError(
                    f"table {name!r} stores column {column!r} as {stored[column]}, but the "
                    f"config now makes it {wanted}; rename the column or start a new store"
                )

    def _check_version(self, had_meta: bool) -> None:
        meta = self.table(META)
        with engine_errors("reading the store version"):
            rows = meta.filter(meta.key == "schema_version").to_pyarrow().to_pylist()
        if not rows:
            self.insert(META, pa.table({"key": ["schema_version"], "value": [str(SCHEMA_VERSION)]}))
            return
        found = int(rows[0]["value"])
        if found > SCHEMA_VERSION:
            raise StoreError(
                f"the store at {self.url} has schema version {found}, newer than this "
                f"watchkeeper understands ({SCHEMA_VERSION}); upgrade watchkeeper"
            )
        # Migrations from older versions go here, one function per step, when version 2 exists.

    # -- reads and writes ---------------------------------------------------------------

    def insert(self, name: str, data: pa.Table | ir.Table) -> None:
        """Append rows (an Arrow table, or an Ibis expression the engine runs) to a table."""
        if isinstance(data, ir.Table):
            with engine_errors(f"writing to {name}"):
                self.backend.insert(name, data)
            return
        if data.num_rows == 0:
            return
        raw = getattr(self.backend, "con", None)
        if self.engine == "duckdb" and raw is not None:
            # Straight to DuckDB: Ibis' insert compiles and looks up schemas each time, which
            # costs more than the write itself for the small batches a server commits.
            data = pa.Table.from_batches(data.to_batches(max_chunksize=ROW_GROUP), data.schema)
            view = f"wk_arrow_{uuid.uuid4().hex}"
            columns = ", ".join(self.quote(c) for c in data.column_names)
            with engine_errors(f"writing to {name}"):
                raw.register(view, data)
                try:
                    raw.execute(
                        f"INSERT INTO {self.quote(name)} ({columns}) SELECT {columns} FROM {view}"
                    )
                finally:
                    raw.unregister(view)
            return
        with self.arrow(data) as rows, engine_errors(f"writing to {name}"):
            self.backend.insert(name, rows.select(*data.column_names))

    def delete(self, name: str, where: Callable[[ir.Table], ir.BooleanValue]) -> None:
        """Delete the rows of a table that match a predicate (Ibis has no DELETE).

        The predicate is compiled by Ibis for this engine; only its WHERE clause is kept.
        """
        table = self.table(name)
        dialect = self.backend.compiler.dialect
        sql = str(self.backend.compile(table.filter(where(table))))
        select = sg.parse_one(sql, dialect=dialect)
        condition = select.args.get("where")
        if condition is None:
            raise StoreError(f"refusing to delete every row of {name}")
        condition = condition.this.copy()
        for column in condition.find_all(sg.exp.Column):
            column.set("table", None)
            column.set("db", None)
            column.set("catalog", None)
        statement = sg.exp.Delete(
            this=sg.to_identifier(name, quoted=True), where=sg.exp.Where(this=condition)
        )
        with engine_errors(f"deleting from {name}"):
            self.backend.raw_sql(statement.sql(dialect=dialect))

    def sql(self, query: str) -> pa.Table:
        """Run SQL text written for this engine's dialect (see ``compile`` and ``quote``)."""
        raw = getattr(self.backend, "con", None)
        with engine_errors("running a query"):
            if self.engine == "duckdb" and raw is not None:
                return raw.sql(query).to_arrow_table()
            result = self.backend.sql(query).to_pyarrow()
        return result if isinstance(result, pa.Table) else pa.table({"value": [result]})

    def compile(self, expr: ir.Expr) -> str:
        """An Ibis expression as SQL text for this engine."""
        with engine_errors("compiling a query"):
            return str(self.backend.compile(expr))

    def quote(self, name: str) -> str:
        """An identifier quoted for this engine's dialect."""
        found = self._quoted.get(name)
        if found is None:
            found = str(sg.to_identifier(name, quoted=True).sql(self.backend.compiler.dialect))
            self._quoted[name] = found
        return found

    def epoch_micros(self, ts: ir.TimestampValue) -> ir.IntegerValue:
        """Microseconds since 1970 of a UTC timestamp. Ibis' generic form casts the zoned
        timestamp first, which costs DuckDB as much as the rest of a profiling query."""
        if self.engine == "duckdb":
            return _duckdb_epoch_us(ts)
        if self.engine == "pyspark":
            return _spark_unix_micros(ts)
        return (ts.epoch_seconds() * 1_000_000).cast("int64")

    @contextmanager
    def working_memory(self, limit: str | None) -> Iterator[None]:
        """DuckDB's buffer pool at ``limit`` for the block, then back to what it was."""
        raw = getattr(self.backend, "con", None)
        if self.engine != "duckdb" or raw is None or not limit:
            yield
            return
        with engine_errors("setting the memory limit"):
            before = (
                self.memory_limit or raw.sql("SELECT current_setting('memory_limit')").fetchone()[0]
            )
            raw.execute(f"SET memory_limit = '{limit}'")
        self._limit = limit
        try:
            yield
        finally:
            self._limit = before
            with suppress(Exception):
                raw.execute(f"SET memory_limit = '{before}'")

    def shed_cache(self) -> None:
        """DuckDB: give back the table blocks its buffer pool keeps cached past the store's
        own ``memory_limit`` (lowering the limit evicts them; it is then put back). A run of
        many batches calls this between them: what one batch read is not needed by the next,
        and it would otherwise stay cached up to the run's larger pool."""
        raw = getattr(self.backend, "con", None)
        if self.engine != "duckdb" or raw is None or not self.memory_limit:
            return
        if self._limit == self.memory_limit:
            return  # the pool is the store's own: nothing is cached past it
        # Best effort: a database file opened twice in one process (serve's reader, writer
        # and scheduler) shares one pool, so this lowers it for all of them for a moment, to
        # the limit they work under outside runs; what other queries hold pinned is kept
        # (then DuckDB refuses the lower limit, and the cache stays until the next batch).
        try:
            raw.execute(f"SET memory_limit = '{self.memory_limit}'")
        except Exception as exc:  # the run goes on with its cache
            log.debug("the run's cache was not shed: %s", exc)
        with suppress(Exception):
            raw.execute(f"SET memory_limit = '{self._limit}'")

    @contextmanager
    def cached(self, expr: ir.Table) -> Iterator[ir.Table]:
        """The result of ``expr`` computed once (a temporary table, or Spark's cache) for
        the queries of the block, and dropped after it."""
        with engine_errors("caching a result"):
            table = expr.cache()
        try:
            yield table
        finally:
            with suppress(Exception):
                table.release()

    def query_with(
        self,
        data: pa.Table,
        build: Callable[[ir.Table], ir.Expr],
        cache: str | None = None,
    ) -> pa.Table:
        """Run the query ``build`` makes from ``data`` (e.g. a semi-join on a batch's ids).

        With ``cache`` (a name for the query; ``build`` must then depend on nothing but the
        data), DuckDB compiles it once per name and data schema and reruns the SQL: the
        small lookups of an ingestion request cost less than their compilation."""
        raw = getattr(self.backend, "con", None)
        if cache is None or self.engine != "duckdb" or raw is None:
            with self.arrow(data) as table:
                return self.execute(build(table))
        key = (cache, data.schema)
        view = f"wk_q_{abs(hash(key)):x}"
        with engine_errors("running a query"):
            raw.register(view, data)
            try:
                sql = self._compiled.get(key)
                if sql is None:
                    sql = self.compile(build(self.backend.table(view)))
                    self._compiled[key] = sql
                result: pa.Table = raw.sql(sql).to_arrow_table()
            finally:
                raw.unregister(view)
        return result

    @contextmanager
    def arrow(self, data: pa.Table) -> Iterator[ir.Table]:
        """An Arrow table as an Ibis table, for the duration of the block.

        Ibis keeps every ``memtable`` registered until the process exits; a long ingestion
        would hold all of its data. This registers the table and drops it afterwards.
        """
        # Engines scan Arrow data in parallel by record batch: hand them batches of one
        # row group each (DuckDB's is 122,880 rows), not one large batch.
        data = pa.Table.from_batches(data.to_batches(max_chunksize=ROW_GROUP), data.schema)
        name = f"wk_arrow_{uuid.uuid4().hex}"
        raw = getattr(self.backend, "con", None)
        if self.engine == "duckdb" and raw is not None:
            with engine_errors("registering rows"):
                raw.register(name, data)
                table = self.backend.table(name)
            try:
                yield table
            finally:
                raw.unregister(name)
            return
        # Elsewhere, a temporary view over the data, dropped afterwards.
        with engine_errors("registering rows"):
            self.backend.create_view(name, ibis.memtable(data), overwrite=True)
            table = self.backend.table(name)
        try:
            yield table
        finally:
            with suppress(Exception):
                self.backend.drop_view(name)

    def execute(self, expr: ir.Expr) -> pa.Table:
        with engine_errors("running a query"):
            result = expr.to_pyarrow()
        return result if isinstance(result, pa.Table) else pa.table({"value": [result]})

    def batches(self, expr: ir.Table, rows: int = 65_536) -> Iterator[pa.RecordBatch]:
        """The result of ``expr`` a batch of at most ``rows`` at a time, never all at once."""
        session = getattr(self.backend, "_session", None)
        if self.engine == "pyspark" and session is not None:
            # Ibis' pyspark backend collects the whole result first; Spark's local iterator
            # brings one partition at a time to the driver instead.
            schema = expr.schema().to_pyarrow()
            with engine_errors("running a query"):
                frame = session.sql(self.compile(expr))
                pending: list[dict[str, Any]] = []
                for row in frame.toLocalIterator():
                    pending.append(row.asDict())
                    if len(pending) >= rows:
                        yield pa.RecordBatch.from_pylist(pending, schema=schema)
                        pending = []
                if pending:
                    yield pa.RecordBatch.from_pylist(pending, schema=schema)
            return
        with engine_errors("running a query"):
            reader = expr.to_pyarrow_batches(chunk_size=rows)
        with reader:
            while True:
                with engine_errors("reading a result"):
                    try:
                        batch = reader.read_next_batch()
                    except StopIteration:
                        return
                yield batch

    def scalar(self, expr: ir.Scalar) -> Any:
        with engine_errors("running a query"):
            return expr.execute()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside commit together or not at all (where the engine has transactions)."""
        raw = getattr(self.backend, "con", None)
        if self.engine != "duckdb" or raw is None:
            yield
            return
        with engine_errors("starting a transaction"):
            raw.begin()
        try:
            yield
        except BaseException:
            with engine_errors("rolling back"):
                raw.rollback()
            raise
        with engine_errors("committing"):
            raw.commit()
