"""Reading prediction/label batches from bytes (HTTP bodies) and files (the CLI).

All readers return Arrow tables in the flat layout; nested ``features``/``segments`` structs
are flattened later by validation, so every format gets the same checks.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.json as pajson
import pyarrow.parquet as pq

from monitor.errors import FieldError, InvalidInput, MalformedBody, UnsupportedMediaType

JSON = "application/json"
ARROW_STREAM = "application/vnd.apache.arrow.stream"
PARQUET_TYPES = ("application/x-parquet", "application/vnd.apache.parquet", "application/parquet")

#: A request body as the readers take it: bytes, or a view of a buffer filled in place.
Body = bytes | bytearray | memoryview


def media_type(content_type: str | None) -> str:
    return (content_type or JSON).split(";")[0].strip().lower()


def parse_json(body: Body) -> Any:
    """Strict JSON (no NaN/Infinity literals); non-UTF-8 bytes are refused."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedBody(f"body is not valid UTF-8 JSON: {exc}") from exc


def read_arrow_stream(body: Body, *, check_text: bool = True) -> pa.Table:
    """An Arrow IPC stream; ``check_text=False`` only for streams this service wrote itself."""
    try:
        table = ipc.open_stream(pa.py_buffer(body)).read_all()
    except (pa.ArrowInvalid, pa.ArrowIOError, OSError) as exc:
        raise MalformedBody(f"body is not a valid Arrow IPC stream: {exc}") from exc
    return check_utf8(table) if check_text else table


def read_parquet_bytes(body: Body) -> pa.Table:
    try:
        table = pq.read_table(pa.BufferReader(pa.py_buffer(body)))  # zero-copy (BytesIO copied it)
    except (pa.ArrowInvalid, pa.ArrowIOError, OSError) as exc:
        raise MalformedBody(f"body is not a valid Parquet file: {exc}") from exc
    return check_utf8(table)


def _has_text(t: pa.DataType) -> bool:
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return True
    if pa.types.is_dictionary(t):
        return _has_text(t.value_type)
    if pa.types.is_struct(t):
        return any(_has_text(t.field(i).type) for i in range(t.num_fields))
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return _has_text(t.value_type)
    return False


def _utf8_problems(arr: pa.Array, name: str) -> list[FieldError]:
    """Fields of ``arr`` whose text is not valid UTF-8 (Arrow and Parquet readers do not check)."""
    t = arr.type
    if pa.types.is_struct(t):  # name the nested field: features.road_type, segments.region
        out: list[FieldError] = []
        for i in range(t.num_fields):
            out += _utf8_problems(arr.field(i), f"{name}.{t.field(i).name}")
        return out
    try:
        arr.validate(full=True)
    except pa.ArrowInvalid as exc:
        where = str(exc).rsplit("Invalid UTF8 sequence at string index ", 1)
        plain = pa.types.is_string(t) or pa.types.is_large_string(t)  # the index is a row only here
        row = int(where[1]) if plain and len(where) == 2 and where[1].isdigit() else None
        return [FieldError(name, "text is not valid UTF-8", row)]
    return []


def check_utf8(table: pa.Table) -> pa.Table:
    """Refuse (422, naming the field and row) text columns holding bytes that are not UTF-8.

    Arrow IPC and Parquet carry strings as raw bytes and neither reader validates them; invalid
    bytes would otherwise fail deep inside validation or DuckDB as a 500."""
    problems: list[FieldError] = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        if not _has_text(column.type):
            continue
        offset = 0
        for chunk in column.chunks:
            for err in _utf8_problems(chunk, name):
                problems.append(FieldError(err.field, err.reason, None if err.row is None else err.row + offset))
            offset += len(chunk)
    if problems:
        raise InvalidInput("batch holds text that is not valid UTF-8", problems[:50])
    return table


def body_kind(content_type: str | None) -> str:
    kind = media_type(content_type)
    if kind in (JSON, "text/json"):
        return "json"
    if kind == ARROW_STREAM:
        return "arrow"
    if kind in PARQUET_TYPES:
        return "parquet"
    raise UnsupportedMediaType(
        f"content type {kind!r} is not supported; send {JSON}, {ARROW_STREAM} or {PARQUET_TYPES[0]}"
    )


def table_to_arrow_stream(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def iter_file_batches(
    path: Path, batch_rows: int = 50_000, string_columns: set[str] | None = None
) -> Iterator[pa.Table]:
    """Stream a Parquet, CSV or JSONL file in batches of about ``batch_rows`` rows.

    Text formats carry no types: ``string_columns`` (from the model schema) are read as text, so
    a firmware "3.10" is not turned into the number 3.1.
    """
    strings = {name: pa.string() for name in string_columns or ()}
    suffix = "".join(path.suffixes[-2:]).lower() if path.suffix == ".gz" else path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        pf = pq.ParquetFile(path)
        for batch in pf.iter_batches(batch_size=batch_rows):
            yield check_utf8(pa.Table.from_batches([batch]))
    elif suffix in (".csv", ".csv.gz"):
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=8 << 20),
            convert_options=pacsv.ConvertOptions(column_types=strings),
        )
        yield from _rebatch((pa.Table.from_batches([b]) for b in reader), batch_rows)
    elif suffix in (".jsonl", ".ndjson", ".jsonl.gz"):
        header = _first_json_keys(path)
        explicit = pa.schema([pa.field(n, t) for n, t in strings.items() if n in header])
        table = pajson.read_json(
            path, parse_options=pajson.ParseOptions(explicit_schema=explicit, unexpected_field_behavior="infer")
        )
        for start in range(0, table.num_rows, batch_rows):
            yield table.slice(start, batch_rows)
    elif suffix == ".arrow" or suffix == ".arrows":
        with ipc.open_stream(pa.memory_map(str(path))) as reader:
            yield from _rebatch((check_utf8(pa.Table.from_batches([b])) for b in reader), batch_rows)
    else:
        raise MalformedBody(f"{path}: unsupported file type {suffix!r}; use .parquet, .csv or .jsonl")


def _first_json_keys(path: Path) -> set[str]:
    opener = __import__("gzip").open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                try:
                    first = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise MalformedBody(f"{path}: first line is not JSON: {exc}") from exc
                return set(first) if isinstance(first, dict) else set()
    return set()


def file_row_count(path: Path) -> int | None:
    """Rows in a file if cheap to know (Parquet metadata), for the progress bar."""
    if path.suffix.lower() in (".parquet", ".pq"):
        return pq.ParquetFile(path).metadata.num_rows
    return None


def _rebatch(tables: Iterator[pa.Table], batch_rows: int) -> Iterator[pa.Table]:
    pending: list[pa.Table] = []
    size = 0
    for table in tables:
        pending.append(table)
        size += table.num_rows
        if size >= batch_rows:
            yield pa.concat_tables(pending)
            pending, size = [], 0
    if pending:
        yield pa.concat_tables(pending)
