"""Turn a file or an in-memory table into a stream of Arrow record batches.

Files are read in batches, so a file larger than memory streams through. CSV is read as
text and typed by validation, so one odd value quarantines one row instead of failing the
file. A line that is not a row at all (a CSV line with the wrong number of fields, a JSON
line that does not parse) is kept as a rejected line with its text.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from watchkeeper.errors import InputError

DEFAULT_BATCH_ROWS = 2 * 122_880  # two of DuckDB's row groups
_JSON_CHUNK_BYTES = 32 << 20


@dataclass
class Rejected:
    """A line of input that could not be read as a row."""

    line: int | None
    text: str
    reason: str


@dataclass
class Source:
    """Record batches to ingest, and what is known about them up front."""

    name: str
    batches: Iterator[pa.RecordBatch]
    total_rows: int | None = None
    rejected: list[Rejected] = field(default_factory=list)


def open_source(data: Any, batch_rows: int = DEFAULT_BATCH_ROWS) -> Source:
    """Accept a path (Parquet, CSV, JSON Lines or a JSON array), a pandas or polars
    DataFrame, a pyarrow Table, RecordBatch or RecordBatchReader, or a list of dicts."""
    if isinstance(data, str | Path):
        return _open_file(Path(data), batch_rows)
    if isinstance(data, pa.Table):
        return Source("table", iter(data.to_batches(batch_rows)), data.num_rows)
    if isinstance(data, pa.RecordBatch):
        return Source("record batch", iter([data]), data.num_rows)
    if isinstance(data, pa.RecordBatchReader):
        return Source("record batch reader", iter(data))
    module = type(data).__module__.split(".")[0]
    if module == "pandas":
        table = _from_pandas(data)
        return Source("pandas DataFrame", iter(table.to_batches(batch_rows)), table.num_rows)
    if module == "polars":
        table = data.to_arrow()
        return Source("polars DataFrame", iter(table.to_batches(batch_rows)), table.num_rows)
    if isinstance(data, Sequence) and all(isinstance(r, Mapping) for r in data):
        table = rows_to_table(list(data))
        return Source("list of rows", iter(table.to_batches(batch_rows)), table.num_rows)
    raise InputError(
        f"cannot ingest a {type(data).__name__}; give a file path (Parquet, CSV, JSON Lines), "
        "a pandas or polars DataFrame, a pyarrow Table, or a list of dicts"
    )


def require_column(source: Source, column: str, message: str) -> Source:
    """The same source, refused with ``message`` (an InputError) when its first batch has
    no ``column``; nothing is read twice."""
    first = next(source.batches, None)
    if first is None:
        return source
    if column not in first.schema.names:
        raise InputError(message)
    return Source(
        source.name, itertools.chain([first], source.batches), source.total_rows, source.rejected
    )


def _open_file(path: Path, batch_rows: int) -> Source:
    if not path.exists():
        raise InputError(f"no such file: {path}")
    suffix = "".join(s for s in path.suffixes[-2:] if s != ".gz").lower() or path.suffix.lower()
    try:
        if suffix.endswith((".parquet", ".pq")):
            reader = pq.ParquetFile(path, pre_buffer=False)
            return Source(
                str(path),
                reader.iter_batches(batch_size=batch_rows),
                reader.metadata.num_rows,
            )
        if suffix.endswith((".csv", ".tsv")):
            return _open_csv(path, batch_rows, delimiter="\t" if suffix.endswith(".tsv") else ",")
        if suffix.endswith((".jsonl", ".ndjson", ".json")):
            return _open_json(path, batch_rows)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc
    raise InputError(f"{path}: unknown file type; use .parquet, .csv, .tsv, .jsonl or .json")


def _open_csv(path: Path, batch_rows: int, delimiter: str) -> Source:
    with open(path, newline="", encoding="utf-8") as fh:
        header = next(csv.reader(fh, delimiter=delimiter), None)
    if not header:
        raise InputError(f"{path}: empty CSV file (no header line)")
    source = Source(str(path), iter(()))

    def on_invalid(row: Any) -> str:
        source.rejected.append(
            Rejected(
                getattr(row, "number", None),
                row.text,
                f"expected {row.expected_columns} fields, found {row.actual_columns}",
            )
        )
        return "skip"

    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=64 << 20),
        parse_options=pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=on_invalid),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in header},
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )
    source.batches = _rebatch(reader, batch_rows)
    return source


def _open_json(path: Path, batch_rows: int) -> Source:
    with open(path, "rb") as fh:
        head = fh.read(4096).lstrip()
    source = Source(str(path), iter(()))
    if head.startswith(b"["):
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: not valid JSON: {exc}") from exc
        if not all(isinstance(r, dict) for r in rows):
            raise InputError(f"{path}: a JSON array must hold one object per row")
        table = rows_to_table(rows)
        source.batches = iter(table.to_batches(batch_rows))
        source.total_rows = table.num_rows
        return source
    source.batches = _json_lines(path, source)
    return source


BODY_FORMATS = ("json", "jsonl", "arrow", "parquet")


def open_bytes(body: bytes, fmt: str, name: str = "request body") -> Source:
    """A request body as a source: a JSON array of objects, JSON Lines, an Arrow IPC
    stream or a Parquet file. Broken JSON lines are rejected one by one, as in files."""
    try:
        if fmt == "json":
            try:
                rows = json.loads(body)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise InputError(f"{name}: not valid JSON: {exc}") from exc
            if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                raise InputError(f"{name}: a JSON body must be an array of objects, one per row")
            table = rows_to_table(rows)
            return Source(name, iter(table.to_batches(DEFAULT_BATCH_ROWS)), table.num_rows)
        if fmt == "jsonl":
            source = Source(name, iter(()))
            source.batches = _json_chunks(io.BytesIO(body), source)
            return source
        if fmt == "arrow":
            reader = pa.ipc.open_stream(io.BytesIO(body))
            table = reader.read_all()
            return Source(name, iter(table.to_batches(DEFAULT_BATCH_ROWS)), table.num_rows)
        if fmt == "parquet":
            parquet = pq.ParquetFile(io.BytesIO(body))
            return Source(
                name, parquet.iter_batches(batch_size=DEFAULT_BATCH_ROWS), parquet.metadata.num_rows
            )
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{name}: cannot read it as {fmt}: {exc}") from exc
    raise InputError(f"{name}: unknown format {fmt!r}; one of {', '.join(BODY_FORMATS)}")


def _json_lines(path: Path, source: Source) -> Iterator[pa.RecordBatch]:
    with open(path, "rb") as fh:
        yield from _json_chunks(fh, source)


def _json_chunks(fh: Any, source: Source) -> Iterator[pa.RecordBatch]:
    """JSON Lines in chunks: Arrow's parser when the chunk is clean, line by line when not."""
    line_no = 0
    while True:
        chunk = fh.read(_JSON_CHUNK_BYTES)
        if not chunk:
            break
        chunk += fh.readline()
        lines = chunk.count(b"\n") + (0 if chunk.endswith(b"\n") else 1)
        try:
            table = pajson.read_json(io.BytesIO(chunk))
            yield from table.to_batches()
        except pa.ArrowInvalid:
            rows: list[dict[str, Any]] = []
            for i, line in enumerate(chunk.splitlines(), start=line_no + 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    text = line.decode("utf-8", "replace")
                    source.rejected.append(Rejected(i, text, f"not valid JSON: {exc.msg}"))
                    continue
                if not isinstance(row, dict):
                    text = line.decode("utf-8", "replace")
                    source.rejected.append(Rejected(i, text, "a line must hold a JSON object"))
                    continue
                rows.append(row)
            if rows:
                yield from rows_to_table(rows).to_batches()
        line_no += lines


def _rebatch(reader: pa.RecordBatchReader, batch_rows: int) -> Iterator[pa.RecordBatch]:
    for batch in reader:
        for start in range(0, batch.num_rows, batch_rows):
            yield batch.slice(start, batch_rows)


def rows_to_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows to a table; a column whose values mix types is kept as text for validation."""
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    columns = {}
    for name in names:
        values = [row.get(name) for row in rows]
        columns[name] = _array(values)
    return pa.table(columns) if columns else pa.table({})


def _array(values: list[Any]) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        # Mixed types, or an integer beyond 64 bits: kept as text, for validation to judge.
        return pa.array([None if v is None else _text(v) for v in values], pa.string())


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _from_pandas(frame: Any) -> pa.Table:
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        columns = {}
        for name in frame.columns:
            series = frame[name]
            try:
                columns[str(name)] = pa.array(series, from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
                columns[str(name)] = pa.array(
                    [None if _is_missing(v) else _text(v) for v in series], pa.string()
                )
        return pa.table(columns)


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)
