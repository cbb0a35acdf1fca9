"""Turn a file or an in-memory table into a stream of Arrow record batches.

Files are read in batches, so a file larger than memory streams through. CSV is read as
text and typed by validation, so one odd value quarantines one row instead of failing the
file. A line that is not a row at all (a CSV line with the wrong number of fields, a JSON
line that does not parse) is kept as a rejected line with its text.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import itertools
import json
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from watchkeeper.errors import InputError
from watchkeeper.ingest.json_text import MAX_NESTING, Deep, _Text, deeper_than, nesting

DEFAULT_BATCH_ROWS = 2 * 122_880  # two of DuckDB's row groups
_JSON_CHUNK_BYTES = 32 << 20
# A JSON array up to this size is parsed at once; a larger one element by element, so that
# its memory is not a Python object per value.
_JSON_LOADS_BYTES = 1 << 20


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
    # Read as it is stored, once (a large request body): it cannot be reread, and its
    # reading may fail midway.
    streamed: bool = False


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
    return dataclasses.replace(source, batches=itertools.chain([first], source.batches))


def _open_file(path: Path, batch_rows: int) -> Source:
    if not path.exists():
        raise InputError(f"no such file: {path}")
    suffixes = [x.lower() for x in path.suffixes[-2:]]
    suffix = "".join(x for x in suffixes if x not in _COMPRESSED) or path.suffix.lower()
    kind = next(
        (k for k, ends in _KINDS.items() if suffix.endswith(ends)),
        None,
    )
    if kind is None:
        raise InputError(
            f"{path}: unknown file type; use .parquet, .csv, .tsv, .jsonl or .json "
            "(each may be compressed: .gz, .zst)"
        )
    try:
        if kind == "parquet":
            reader = pq.ParquetFile(path, pre_buffer=False)
            source = Source(
                str(path),
                reader.iter_batches(batch_size=batch_rows),
                reader.metadata.num_rows,
            )
        elif kind in ("csv", "tsv"):
            source = _open_csv(path, batch_rows, delimiter="\t" if kind == "tsv" else ",")
        else:
            source = _open_json(path, batch_rows)
    except _UNREADABLE as exc:
        raise InputError(f"cannot read {path} as {kind}: {_said(exc)}") from exc
    source.batches = _guarded(source.batches, f"cannot read {path} as {kind}")
    return source


_COMPRESSED = (".gz", ".gzip", ".zst", ".zstd")
# What reading a damaged file raises: corrupt pages, a cut-short archive, text not UTF-8.
_UNREADABLE = (pa.ArrowException, OSError, UnicodeError, EOFError, zlib.error)
_KINDS = {
    "parquet": (".parquet", ".pq"),
    "csv": (".csv",),
    "tsv": (".tsv",),
    "json": (".jsonl", ".ndjson", ".json"),
}
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def _compression(path: Path) -> str | None:
    """The compression of a file, from its first bytes (whatever its name says)."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head.startswith(_GZIP_MAGIC):
        return "gzip"
    if head.startswith(_ZSTD_MAGIC):
        return "zstd"
    return None


def _open_binary(path: Path) -> Any:
    """A file opened for reading, decompressed if it is gzip or zstd."""
    found = _compression(path)
    if found == "gzip":
        return gzip.open(path, "rb")
    if found == "zstd":
        return pa.input_stream(str(path), compression="zstd")
    return open(path, "rb")


def _guarded(batches: Iterator[pa.RecordBatch], doing: str) -> Iterator[pa.RecordBatch]:
    """Batches whose reading fails midway (corrupt pages, a truncated archive) raise an
    InputError that says so, not the reader's own exception."""
    try:
        yield from batches
    except _UNREADABLE as exc:
        raise InputError(f"{doing}: {_said(exc)}") from exc


def _said(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 300 else text[:300] + "..."


def _open_csv(path: Path, batch_rows: int, delimiter: str) -> Source:
    with _open_binary(path) as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as fh:
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

    compression = _compression(path)
    reader = pacsv.open_csv(
        pa.input_stream(str(path), compression=compression) if compression else path,
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
    with _open_binary(path) as fh:
        head = fh.read(4096).lstrip()
    source = Source(str(path), iter(()))
    if head.startswith(b"["):  # read whole before anything is stored: a broken end refuses it
        with _open_binary(path) as fh:
            batches = list(json_array(fh, source, str(path), batch_rows))
        source.batches = iter(batches)
        source.total_rows = sum(b.num_rows for b in batches) + len(source.rejected)
        return source
    source.batches = _json_lines(path, source)
    return source


def json_array(
    data: bytes | str | BinaryIO, source: Source, name: str, batch_rows: int
) -> Iterator[pa.RecordBatch]:
    """A JSON array of objects (bytes, text or a binary file) as record batches of
    ``batch_rows`` rows. An element nested too deeply to parse, or with text that is not
    Unicode (a lone surrogate), is rejected by itself; the rest is kept. A small array is
    parsed at once; a large one is read a slice of text at a time and parsed one element at
    a time, and its rows turned into Arrow a few thousand at a time, so its memory is about
    a batch's whatever its size. A body broken at its end raises an InputError after the
    batches before it were given: whoever stores them stores them in one transaction."""
    elements: Iterable[Any]
    if isinstance(data, bytes | str) and len(data) <= _JSON_LOADS_BYTES:
        try:
            elements = json.loads(data)
        except RecursionError:
            elements = _elements(_binary(data), source, name)
        except ValueError as exc:  # also a number beyond Python's 4,300 digits
            raise InputError(f"{name}: not valid JSON: {exc}") from exc
        else:
            if not isinstance(elements, list):
                raise InputError(f"{name}: a JSON body must be an array of objects, one per row")
    else:
        elements = _elements(_binary(data), source, name)
    yield from _batches_of(elements, source, name, batch_rows)


def _binary(data: bytes | str | BinaryIO) -> BinaryIO:
    if isinstance(data, str):
        return io.BytesIO(data.encode("utf-8", "surrogatepass"))
    return io.BytesIO(data) if isinstance(data, bytes) else data


_OBJECTS_AT_ONCE = 16_384  # rows turned from Python objects into Arrow at a time


def _batches_of(
    elements: Iterable[Any], source: Source, name: str, batch_rows: int
) -> Iterator[pa.RecordBatch]:
    """The objects among ``elements`` as batches of ``batch_rows`` rows; the others
    rejected by themselves, as a JSON line that is not an object is."""
    step = min(_OBJECTS_AT_ONCE, batch_rows)
    objects: list[dict[str, Any]] = []
    tables: list[pa.Table] = []
    pending = 0  # rows in ``tables``
    first = 1  # the number of the first element in ``objects``
    rows = others = given = 0
    for number, row in enumerate(elements, start=1):
        if isinstance(row, Deep):
            source.rejected.append(Rejected(number, row.text, _TOO_DEEP))
        elif isinstance(row, dict) and deeper_than(row, MAX_NESTING):
            source.rejected.append(Rejected(number, _cut(row), _TOO_DEEP))
        elif isinstance(row, dict):
            if not objects:
                first = number
            objects.append(row)
            rows += 1
            if len(objects) == step:
                tables.append(_table_of(objects, source, first))
                pending += len(objects)
                objects = []
                if pending >= batch_rows:
                    for batch in _joined(tables, batch_rows):
                        given += 1
                        yield batch
                    pending = sum(t.num_rows for t in tables)
        else:
            source.rejected.append(Rejected(number, _cut(row), "a row must be a JSON object"))
            others += 1
    if objects or (not given and not tables):
        tables.append(_table_of(objects, source, first))
    yield from _joined(tables, batch_rows, last=True)
    if not rows and others:
        raise InputError(f"{name}: a JSON body must be an array of objects, one per row")


def _cut(row: Any) -> str:
    """The start of a rejected element's text."""
    try:
        return json.dumps(row)[:200]
    except (RecursionError, ValueError):
        return "(a nested value)"


def _joined(
    tables: list[pa.Table], batch_rows: int, last: bool = False
) -> Iterator[pa.RecordBatch]:
    """The whole batches of ``tables`` joined (all of them when ``last``); the rows left
    over stay in ``tables``, which is changed in place."""
    if not tables:
        return
    table = pa.concat_tables(_unified(tables), promote_options="default")
    tables.clear()
    whole = table.num_rows if last else table.num_rows - table.num_rows % batch_rows
    if whole:
        yield from table.slice(0, whole).combine_chunks().to_batches(batch_rows)
    if whole < table.num_rows:
        tables.append(table.slice(whole))


def _unified(tables: list[pa.Table]) -> list[pa.Table]:
    """Tables whose columns have one type each, as if all their rows had been made into a
    table at once (``rows_to_table``): numbers of both kinds become floats, and a column
    whose types otherwise differ (numbers in one, text in the next) is kept as text."""
    types: dict[str, set[pa.DataType]] = {}
    for t in tables:
        for f in t.schema:
            if not pa.types.is_null(f.type):
                types.setdefault(f.name, set()).add(f.type)
    numbers = {pa.int64(), pa.float64()}
    out = []
    for t in tables:
        for name, found in types.items():
            if len(found) < 2 or name not in t.column_names:
                continue
            i = t.column_names.index(name)
            if found <= numbers:
                t = t.set_column(i, name, t.column(i).cast(pa.float64()))
            elif t.schema.field(i).type != pa.string():
                values = [None if v is None else _text(v) for v in t.column(i).to_pylist()]
                t = t.set_column(i, name, pa.array(values, pa.string()))
        out.append(t)
    return out


_TOO_DEEP = "nested too deeply to read"


def _elements(fh: BinaryIO, source: Source, name: str) -> Iterator[Any]:
    """The elements of a JSON array one at a time, read from ``fh`` a slice at a time;
    those too deep rejected."""
    text = _Text(fh, name)
    decoder = json.JSONDecoder()
    i = text.space(0)
    if not text.at(i, "["):
        raise InputError(f"{name}: a JSON body must be an array of objects, one per row")
    i = text.space(i + 1)
    number = 0
    while text.has(i) and text.text[i] != "]":
        number += 1
        row, end = text.value(decoder, i)
        yield row  # a Deep too: rejected where rows are numbered
        i = text.space(end)
        if text.at(i, ","):
            i = text.space(i + 1)
            if text.at(i, "]"):
                raise InputError(
                    f"{name}: not valid JSON: a value expected at character {text.base + i}"
                )
        elif text.has(i) and text.text[i] != "]":
            raise InputError(
                f"{name}: not valid JSON: expected ',' or ']' at character {text.base + i}"
            )
        i = text.forget(i)
    if not text.has(i):
        raise InputError(f"{name}: not valid JSON: the array is not closed")
    if text.has(text.space(i + 1)):
        raise InputError(f"{name}: not valid JSON: extra data after the array")


def _table_of(rows: list[dict[str, Any]], source: Source, first: int = 1) -> pa.Table:
    """Rows as a table (numbered from ``first``); a row whose text is not Unicode is
    rejected by itself."""
    try:
        return rows_to_table(rows)
    except UnicodeEncodeError:
        pass
    good: list[dict[str, Any]] = []
    for number, row in enumerate(rows, start=first):
        try:
            json.dumps(row, ensure_ascii=False, default=str).encode("utf-8")
        except UnicodeEncodeError:
            text = json.dumps(row, default=str)[:200]
            source.rejected.append(
                Rejected(number, text, "a string is not valid Unicode (a lone surrogate)")
            )
            continue
        good.append(row)
    return rows_to_table(good)


BODY_FORMATS = ("json", "jsonl", "arrow", "parquet")


def open_bytes(body: bytes | BinaryIO, fmt: str, name: str = "request body") -> Source:
    """A request body as a source: a JSON array of objects, JSON Lines, an Arrow IPC
    stream or a Parquet file. Broken JSON lines are rejected one by one, as in files.

    Bytes are read whole here, so a broken body is refused before anything is stored; a
    file (a large body, written to disk as it arrived) is read a batch at a time as it is
    stored (``streamed``): its mistakes are raised midway, and the store must take its
    batches in one transaction so that a body broken at its end is still refused whole."""
    streamed = not isinstance(body, bytes)
    fh = _binary(body)
    try:
        if fmt == "json":
            source = Source(name, iter(()), streamed=streamed)
            batches = json_array(
                body if isinstance(body, bytes) else fh, source, name, DEFAULT_BATCH_ROWS
            )
            if streamed:
                source.batches = batches
                return source
            given = list(batches)
            source.batches = iter(given)
            source.total_rows = sum(b.num_rows for b in given) + len(source.rejected)
            return source
        if fmt == "jsonl":
            source = Source(name, iter(()), streamed=streamed)
            source.batches = _json_chunks(fh, source)
            return source
        if fmt == "arrow":
            reader = pa.ipc.open_stream(fh)
            if streamed:
                batches = _guarded(
                    _rebatch(reader, DEFAULT_BATCH_ROWS), f"{name}: cannot read it as arrow"
                )
                return Source(name, batches, streamed=True)
            table = reader.read_all()
            return Source(name, iter(table.to_batches(DEFAULT_BATCH_ROWS)), table.num_rows)
        if fmt == "parquet":
            parquet = pq.ParquetFile(fh)
            batches = parquet.iter_batches(batch_size=DEFAULT_BATCH_ROWS)
            return Source(
                name,
                _guarded(batches, f"{name}: cannot read it as parquet"),
                parquet.metadata.num_rows,
                streamed=streamed,
            )
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{name}: cannot read it as {fmt}: {exc}") from exc
    raise InputError(f"{name}: unknown format {fmt!r}; one of {', '.join(BODY_FORMATS)}")


def _json_lines(path: Path, source: Source) -> Iterator[pa.RecordBatch]:
    with _open_binary(path) as fh:
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
            if nesting(chunk) > MAX_NESTING:  # Arrow's parser recurses without a limit:
                raise pa.ArrowInvalid("nested too deeply")  # deep input would crash it
            table = pajson.read_json(io.BytesIO(chunk))
            yield from table.to_batches()
        except pa.ArrowInvalid:
            rows: list[dict[str, Any]] = []
            for i, line in enumerate(chunk.splitlines(), start=line_no + 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError as exc:  # also a number beyond 4,300 digits
                    text = line.decode("utf-8", "replace")[:10_000]
                    said = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
                    source.rejected.append(Rejected(i, text, f"not valid JSON: {said}"))
                    continue
                except RecursionError:
                    text = line.decode("utf-8", "replace")[:200]
                    source.rejected.append(Rejected(i, text, _TOO_DEEP))
                    continue
                if not isinstance(row, dict):
                    text = line.decode("utf-8", "replace")
                    source.rejected.append(Rejected(i, text, "a line must hold a JSON object"))
                    continue
                if deeper_than(row, MAX_NESTING):
                    text = line.decode("utf-8", "replace")[:200]
                    source.rejected.append(Rejected(i, text, _TOO_DEEP))
                    continue
                rows.append(row)
            if rows:
                yield from _table_of(rows, source).to_batches()
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
