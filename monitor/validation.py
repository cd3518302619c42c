"""Turn incoming prediction and label batches into the store's canonical Arrow layout.

Every path (JSON records, Arrow IPC, Parquet, CSV/JSONL files) ends here, so every path
refuses the same bad input with the same message. Checks are vectorised; only when a column
fails do we walk its rows to say exactly which row and why. A batch with any error is
refused whole — nothing is written.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from monitor.errors import FieldError, InvalidInput
from monitor.schema import ModelSchema

MAX_ERRORS = 50
MAX_ID_LENGTH = 256
MAX_STRING_LENGTH = 100_000
EARLIEST_TIMESTAMP = datetime(2000, 1, 1, tzinfo=UTC)
UNVERSIONED = "unversioned"
TS_TYPE = pa.timestamp("us", tz="UTC")
PROBABILITY_SUM_TOLERANCE = 0.01


class RowIds(Protocol):
    """What ``ErrorSink`` needs to name a row's prediction: a length and the id at a row index."""

    def __len__(self) -> int: ...

    def __getitem__(self, row: int, /) -> Any: ...


class _LazyIds:
    """prediction_ids of JSON records, extracted only if an error needs to name one."""

    def __init__(self, records: list[Any]) -> None:
        self._records = records

    def __len__(self) -> int:
        return len(self._records)

    def __getitem__(self, row: int) -> Any:
        record = self._records[row]
        return record.get("prediction_id") if isinstance(record, dict) else None


class _ColumnIds:
    """prediction_ids of an Arrow column, converted only if an error needs to name one (a
    50k-row batch's ``to_pylist`` cost ~2 ms on every valid batch)."""

    def __init__(self, column: pa.ChunkedArray) -> None:
        self._column = column

    def __len__(self) -> int:
        return len(self._column)

    def __getitem__(self, row: int) -> Any:
        try:
            return self._column[row].as_py()
        except (pa.ArrowException, UnicodeDecodeError):  # e.g. invalid UTF-8: the error says so
            return None


class ErrorSink:
    """Collects field errors up to a cap so one bad column cannot produce a huge response."""

    def __init__(self, row_offset: int = 0, ids: RowIds | None = None) -> None:
        self.errors: list[FieldError] = []
        self.total = 0
        self.row_offset = row_offset
        self.ids = ids

    def add(self, field: str, reason: str, row: int | None = None) -> None:
        self.total += 1
        if len(self.errors) >= MAX_ERRORS:
            return
        pid = None
        if row is not None and self.ids is not None and 0 <= row < len(self.ids):
            value = self.ids[row]
            pid = value if isinstance(value, str) else None
        self.errors.append(
            FieldError(
                field=field, reason=reason, row=None if row is None else row + self.row_offset, prediction_id=pid
            )
        )

    def add_rows(self, field: str, mask: pa.Array | np.ndarray, reason: Callable[[int], str] | str) -> None:
        rows = np.flatnonzero(_to_bool_numpy(mask))
        for row in rows[:MAX_ERRORS]:
            self.add(field, reason(int(row)) if callable(reason) else reason, int(row))
        self.total += max(0, len(rows) - MAX_ERRORS)

    def raise_if_any(self, what: str) -> None:
        if self.errors:
            noun = "error" if self.total == 1 else "errors"
            raise InvalidInput(f"{what} refused, nothing was written: {self.total} {noun}", self.errors)


def _to_bool_numpy(mask: pa.Array | np.ndarray) -> np.ndarray:
    if isinstance(mask, np.ndarray):
        return mask.astype(bool)
    if isinstance(mask, pa.ChunkedArray):
        mask = mask.combine_chunks()
    return mask.fill_null(False).to_numpy(zero_copy_only=False).astype(bool)


def _describe_value(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --------------------------------------------------------------------------------------------
# Column converters: Arrow array in, canonical Arrow array out (or errors recorded).
# --------------------------------------------------------------------------------------------


def _combine(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One contiguous array; a single-chunk column is used as is (combine_chunks would copy it)."""
    if isinstance(arr, pa.ChunkedArray):
        return arr.chunk(0) if arr.num_chunks == 1 else arr.combine_chunks()
    return arr


def to_float(arr: pa.Array, field: str, sink: ErrorSink, *, finite: bool = True) -> pa.Array | None:
    """Numbers only (ints and floats, not booleans or strings); NaN/Inf refused when ``finite``."""
    arr = _combine(arr)
    t = arr.type
    if pa.types.is_null(t):
        return pa.nulls(len(arr), pa.float64())
    if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)):
        _type_errors(arr, field, sink, "a number")
        return None
    out = pc.cast(arr, pa.float64(), safe=False)
    if finite and not _all_finite(out):
        bad = pc.invert(pc.is_finite(out))
        if pc.any(bad).as_py():
            sink.add_rows(
                field, bad, lambda r: f"must be a finite number, got {out[r].as_py()}; send null for a missing value"
            )
    return out


def _all_finite(values: pa.Array) -> bool:
    """Whether every value of a float64 array without nulls is finite (numpy reads the buffer
    in place: 0.05 ms per 245,760 values against 0.34 ms for Arrow's is_finite → invert → any).
    With nulls the answer is False, so the caller's Arrow check decides."""
    if values.null_count:
        return False
    return bool(np.isfinite(values.to_numpy(zero_copy_only=True)).all())


def to_string(arr: pa.Array, field: str, sink: ErrorSink, *, max_length: int = MAX_STRING_LENGTH) -> pa.Array | None:
    """Strings; integers and booleans are accepted and written as their text (e.g. firmware 3)."""
    arr = _combine(arr)
    t = arr.type
    if pa.types.is_null(t):
        return pa.nulls(len(arr), pa.string())
    if pa.types.is_dictionary(t):
        arr = arr.dictionary_decode()
        t = arr.type
    if pa.types.is_integer(t) or pa.types.is_boolean(t):
        out = pc.cast(arr, pa.string())
        if pa.types.is_boolean(t):
            out = pc.if_else(arr, "true", "false")
        return out
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        arr = pc.cast(arr, pa.string())
        t = arr.type
    if not pa.types.is_string(t):
        _type_errors(arr, field, sink, "a string")
        return None
    # A text has at most as many characters as bytes: only when some text has more bytes than
    # the limit are its characters counted (utf8_length reads every byte: ~2-4 ms per 245,760
    # values, paid by each text column of every batch; the byte lengths come from the offsets).
    if len(arr) and (pc.max(pc.binary_length(arr)).as_py() or 0) > max_length:
        too_long = pc.greater(pc.utf8_length(arr), max_length)
        if pc.any(too_long).as_py():
            sink.add_rows(field, too_long, f"is longer than {max_length} characters")
    return arr


def to_bool(arr: pa.Array, field: str, sink: ErrorSink) -> pa.Array | None:
    """Booleans; 0/1 integers are accepted as false/true."""
    arr = _combine(arr)
    t = arr.type
    if pa.types.is_null(t):
        return pa.nulls(len(arr), pa.bool_())
    if pa.types.is_boolean(t):
        return arr
    if pa.types.is_integer(t):
        bad = pc.invert(pc.is_in(arr, pa.array([0, 1], t)))
        bad = pc.and_(bad, pc.is_valid(arr))
        if pc.any(bad).as_py():
            sink.add_rows(field, bad, lambda r: f"must be true/false (or 0/1), got {arr[r].as_py()}")
            return None
        return pc.cast(arr, pa.bool_())
    _type_errors(arr, field, sink, "true or false")
    return None


def to_timestamp(
    arr: pa.Array, field: str, sink: ErrorSink, *, now: datetime, max_future: timedelta
) -> pa.Array | None:
    """ISO-8601 strings or Arrow timestamps; a time without zone is read as UTC.

    Timestamps before 2000 or further ahead than ``max_future`` are refused: they are almost
    always unit mistakes (seconds vs milliseconds) and would land in absurd partitions.
    """
    arr = _combine(arr)
    t = arr.type
    out: pa.Array | None = None
    if pa.types.is_timestamp(t):
        if not _timestamps_in_range(arr, field, sink, now=now, max_future=max_future):
            return None
        # In range, so the cast cannot overflow; sub-microsecond digits are dropped.
        out = pc.cast(arr, pa.timestamp("us", tz=t.tz or "UTC") if t.tz else pa.timestamp("us"), safe=False)
        out = pc.assume_timezone(out, "UTC") if t.tz is None else pc.cast(out, TS_TYPE)
    elif pa.types.is_date(t):
        try:
            out = pc.assume_timezone(pc.cast(pc.cast(arr, pa.date32()), pa.timestamp("us")), "UTC")
        except (pa.ArrowInvalid, OverflowError):
            sink.add(field, "a date is out of range (expected 2000-01-01 or later, not far in the future)")
            return None
    elif pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t):
        strings = arr.dictionary_decode() if pa.types.is_dictionary(t) else pc.cast(arr, pa.string())
        out = _parse_iso(strings, field, sink)
        if out is None:
            return None
    elif pa.types.is_null(t):
        out = pa.nulls(len(arr), TS_TYPE)
    else:
        _type_errors(arr, field, sink, "an ISO-8601 timestamp string such as 2026-11-23T10:00:00Z")
        return None
    lo = pa.scalar(EARLIEST_TIMESTAMP, TS_TYPE)
    hi = pa.scalar(now + max_future, TS_TYPE)
    too_early = pc.less(out, lo)
    too_late = pc.greater(out, hi)
    if pc.any(too_early).as_py():
        sink.add_rows(field, too_early, lambda r: f"{out[r].as_py().isoformat()} is before 2000-01-01; check the unit")
    if pc.any(too_late).as_py():
        sink.add_rows(
            field,
            too_late,
            lambda r: (
                f"{out[r].as_py().isoformat()} is more than {max_future} in the future "
                f"(server time {now.isoformat(timespec='seconds')})"
            ),
        )
    return out


_TICKS_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def _timestamps_in_range(
    arr: pa.Array, field: str, sink: ErrorSink, *, now: datetime, max_future: timedelta
) -> bool:
    """Check Arrow timestamps in their own unit before any cast: a value such as 2**62 ns
    overflows on conversion, so it is refused here, by row, with the raw number."""
    unit = arr.type.unit
    ticks = _TICKS_PER_SECOND[unit]
    raw = arr.view(pa.int64())

    def in_unit(moment: datetime) -> int:
        micros = (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
        return micros * ticks // 1_000_000

    lo, hi = in_unit(EARLIEST_TIMESTAMP), in_unit(now + max_future)
    bad = pc.or_(pc.less(raw, lo), pc.greater(raw, hi))
    if not pc.any(bad).as_py():
        return True
    sink.add_rows(
        field,
        bad,
        lambda r: (
            f"{raw[r].as_py()} {unit} since 1970 is outside 2000-01-01 .. "
            f"{(now + max_future).isoformat(timespec='seconds')}; check the unit"
        ),
    )
    return False


def _parse_iso(strings: pa.Array, field: str, sink: ErrorSink) -> pa.Array | None:
    try:
        return pc.cast(strings, TS_TYPE)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    try:
        return pc.assume_timezone(pc.cast(strings, pa.timestamp("us")), "UTC")
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    # Mixed or invalid: parse row by row to find the bad ones (slow path, errors only).
    values: list[datetime | None] = []
    ok = True
    for row, text in enumerate(strings.to_pylist()):
        if text is None:
            values.append(None)
            continue
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            sink.add(field, f"{_describe_value(text)} is not an ISO-8601 timestamp such as 2026-11-23T10:00:00Z", row)
            ok = False
            values.append(None)
            continue
        values.append(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))
    return pa.array(values, TS_TYPE) if ok else None


def _type_errors(arr: pa.Array, field: str, sink: ErrorSink, expected: str) -> None:
    """Report a column of the wrong type: the first rows that hold a value, with that value."""
    valid = pc.is_valid(arr)
    rows = np.flatnonzero(_to_bool_numpy(valid))
    if len(rows) == 0:
        sink.add(field, f"expected {expected}, got a column of type {arr.type}")
        return
    for row in rows[:3]:
        sink.add(field, f"expected {expected}, got {_describe_value(arr[int(row)].as_py())}", int(row))
    sink.total += max(0, len(rows) - 3)


def require_present(arr: pa.Array, field: str, sink: ErrorSink) -> None:
    missing = pc.is_null(arr)
    if pc.any(missing).as_py():
        sink.add_rows(field, missing, "is required")


# --------------------------------------------------------------------------------------------
# JSON records → flat Arrow table (the JSON path), then the shared Arrow normaliser.
# --------------------------------------------------------------------------------------------


Expect = str  # "number" | "string" | "boolean" | "timestamp" | "any"

_EXPECT_TEXT = {
    "number": "a number",
    "string": "a string",
    "boolean": "true or false",
    "timestamp": "an ISO-8601 timestamp string such as 2026-11-23T10:00:00Z",
}


def _accepts(expect: Expect, value: Any) -> bool:
    kind = type(value)
    if expect == "number":
        return kind is float or (kind is int and abs(value) <= 2**63 - 1)
    if expect == "string":
        return kind is str or kind is int or kind is bool
    if expect == "boolean":
        return kind is bool or (kind is int and value in (0, 1))
    if expect == "timestamp":
        return kind is str
    return True


def _compatible(arr_type: pa.DataType, expect: Expect) -> bool:
    if pa.types.is_null(arr_type) or expect == "any":
        return True
    if expect == "number":
        return pa.types.is_integer(arr_type) or pa.types.is_floating(arr_type)
    if expect == "string":
        return pa.types.is_string(arr_type) or pa.types.is_integer(arr_type) or pa.types.is_boolean(arr_type)
    if expect == "boolean":
        return pa.types.is_boolean(arr_type) or pa.types.is_integer(arr_type)
    if expect == "timestamp":
        return pa.types.is_string(arr_type)
    return False


def infer_array(values: list[Any], field: str, sink: ErrorSink, expect: Expect = "any") -> pa.Array | None:
    """Build an Arrow array from JSON values of one field, naming each row of the wrong type.

    The fast path lets Arrow infer the column; only when that fails or infers the wrong type do
    we walk the values to report exactly which rows hold what.
    """
    try:
        arr = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        arr = None
    # Arrow reads [1.5, true] as doubles: booleans in a number column must be caught explicitly.
    if (
        arr is not None
        and _compatible(arr.type, expect)
        and not (expect == "number" and bool in set(map(type, values)))
    ):
        return arr
    bad = 0
    for row, value in enumerate(values):
        if value is not None and not _accepts(expect, value):
            bad += 1
            if bad <= 3:
                sink.add(field, f"expected {_EXPECT_TEXT.get(expect, 'a value')}, got {_describe_value(value)}", row)
    if bad > 3:
        sink.total += bad - 3
    if bad:
        return None
    if expect == "string":  # mixed strings and integers (e.g. firmware 3 and "3.1"): keep their text
        return pa.array([None if v is None else _as_text(v) for v in values], pa.string())
    if expect == "number":
        return pa.array([None if v is None else float(v) for v in values], pa.float64())
    if expect == "boolean":
        return pa.array([None if v is None else bool(v) for v in values], pa.bool_())
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        sink.add(field, f"holds values that cannot form one column: {exc}")
        return None


def _as_text(value: Any) -> str:
    if type(value) is bool:
        return "true" if value else "false"
    return str(value)


def _json_type(kind: type) -> str:
    return {float: "number", str: "string", bool: "boolean", dict: "object", list: "array"}.get(kind, kind.__name__)


_MISSING = object()
_EMPTY: dict[str, Any] = {}

RECORD_KEYS = frozenset(
    {
        "prediction_id",
        "timestamp",
        "model_version",
        "features",
        "prediction",
        "score",
        "probabilities",
        "latency_ms",
        "segments",
        "embedding",
    }
)


def records_to_table(records: Any, schema: ModelSchema) -> pa.Table:
    """Convert a JSON list of prediction records into a flat Arrow table (not yet validated)."""
    if not isinstance(records, list):
        raise InvalidInput(
            "body must be a JSON list of prediction records",
            [FieldError(field="(body)", reason=f"expected a list, got {_json_type(type(records))}")],
        )
    sink = ErrorSink(ids=_LazyIds(records))
    if set(map(type, records)) - {dict}:
        for row, record in enumerate(records):
            if type(record) is not dict:
                sink.add("(record)", f"expected an object, got {_json_type(type(record))}", row)
        sink.raise_if_any("batch")
    keys_seen = set().union(*map(dict.keys, records)) if records else set()
    for key in sorted(keys_seen - RECORD_KEYS):
        row = next(i for i, r in enumerate(records) if key in r)
        sink.add(key, f"unknown field; a record has {sorted(RECORD_KEYS)}", row)
    columns: dict[str, pa.Array] = {}
    expects = {
        "prediction_id": "string",
        "timestamp": "timestamp",
        "model_version": "string",
        "prediction": "string" if schema.is_classifier else "number",
        "score": "number",
        "latency_ms": "number",
    }
    wanted = [k for k in expects if k in keys_seen or k in ("prediction_id", "timestamp", "prediction")]
    try:  # fast path: every record has every wanted key
        transposed = list(zip(*map(operator.itemgetter(*wanted), records), strict=True)) if records else []
        values_by_key = dict(zip(wanted, transposed, strict=True)) if transposed else {}
    except KeyError:
        values_by_key = {}
    for key in wanted:
        values = list(values_by_key[key]) if key in values_by_key else [r.get(key) for r in records]
        arr = infer_array(values, key, sink, expects[key])
        if arr is not None:
            columns[key] = arr
    kinds = {"numeric": "number", "categorical": "string", "text": "string", "boolean": "boolean"}
    _nested_columns(records, "features", {f: kinds[k] for f, k in schema.features.items()}, columns, sink)
    _nested_columns(records, "segments", dict.fromkeys(schema.segments, "string"), columns, sink)
    if "probabilities" in keys_seen:
        probs = [_probabilities_from_json(r.get("probabilities"), schema, row, sink) for row, r in enumerate(records)]
        columns["probabilities"] = pa.array(probs, pa.list_(pa.float64()))
    if "embedding" in keys_seen:
        emb = [r.get("embedding") for r in records]
        for row, vec in enumerate(emb):
            if vec is not None and (not isinstance(vec, list) or not all(_is_number(x) for x in vec)):
                sink.add("embedding", "must be a list of numbers", row)
        if not sink.errors:
            columns["embedding"] = pa.array(emb, pa.list_(pa.float64()))
    sink.raise_if_any("batch")
    return pa.table(columns) if columns else pa.table({"prediction_id": pa.nulls(len(records), pa.string())})


def _is_number(value: Any) -> bool:
    return type(value) in (int, float)


def _nested_columns(
    records: list[dict[str, Any]], key: str, allowed: dict[str, Expect], columns: dict[str, pa.Array], sink: ErrorSink
) -> None:
    given = [r.get(key) for r in records]
    if set(map(type, given)) - {dict, type(None)}:
        for row, obj in enumerate(given):
            if obj is not None and type(obj) is not dict:
                sink.add(key, f"must be an object of name → value, got {_json_type(type(obj))}", row)
        return
    objs: list[dict[str, Any]] = [o if o is not None else _EMPTY for o in given]
    total_keys = sum(map(len, objs))
    names = list(allowed)
    if names and objs and total_keys == len(objs) * len(names):
        # Fast path (the usual case: every record carries exactly the schema's names): one C call
        # per record fetches all values, zip transposes rows into columns.
        try:
            rows = list(map(operator.itemgetter(*names), objs))
        except KeyError:
            rows = None
        if rows is not None:
            transposed = zip(*rows, strict=True) if len(names) > 1 else (rows,)
            for name, values in zip(names, transposed, strict=True):
                arr = infer_array(list(values), f"{key}.{name}", sink, allowed[name])
                if arr is not None:
                    columns[name] = arr
            return
    known_keys = 0
    for name, expect in allowed.items():
        values = [o.get(name, _MISSING) for o in objs]
        missing = values.count(_MISSING)
        if missing == len(values):
            continue
        known_keys += len(values) - missing
        if missing:
            values = [None if v is _MISSING else v for v in values]
        arr = infer_array(values, f"{key}.{name}", sink, expect)
        if arr is not None:
            columns[name] = arr
    if total_keys != known_keys:  # some record has a key the schema does not know: find it
        seen = set().union(*(o.keys() for o in objs))
        for name in sorted(seen - set(allowed)):
            row = next(i for i, o in enumerate(objs) if name in o)
            noun = "feature" if key == "features" else "segment"
            sink.add(f"{key}.{name}", f"unknown {noun}; the model's {key} are {list(allowed)} (register it first)", row)


def _probabilities_from_json(value: Any, schema: ModelSchema, row: int, sink: ErrorSink) -> list[float] | None:
    if value is None:
        return None
    classes = schema.classes
    if isinstance(value, dict):
        missing = [c for c in classes if c not in value]
        extra = [c for c in value if c not in classes]
        if missing or extra:
            sink.add(
                "probabilities",
                f"must map every class {classes} to a probability (missing {missing}, unknown {extra})",
                row,
            )
            return None
        value = [value[c] for c in classes]
    if not isinstance(value, list) or not all(_is_number(v) for v in value):
        sink.add("probabilities", "must be a list of numbers in class order or an object class → probability", row)
        return None
    return [float(v) for v in value]


# --------------------------------------------------------------------------------------------
# The shared normaliser: any flat table → the model's canonical stored layout.
# --------------------------------------------------------------------------------------------


def flatten_nested(table: pa.Table) -> pa.Table:
    """Bulk files may carry ``features``/``segments`` as struct columns: flatten them to columns."""
    for key in ("features", "segments"):
        if key in table.column_names and pa.types.is_struct(table.schema.field(key).type):
            col = _combine(table.column(key))
            idx = table.column_names.index(key)
            table = table.remove_column(idx)
            for i in range(col.type.num_fields):
                sub = col.type.field(i).name
                child = pc.struct_field(col, [i])
                if sub in table.column_names:
                    raise InvalidInput(
                        "column appears twice", [FieldError(field=sub, reason=f"given both flat and inside '{key}'")]
                    )
                table = table.append_column(sub, child)
    return table


def normalize_predictions(
    table: pa.Table, schema: ModelSchema, *, now: datetime, max_future: timedelta, row_offset: int = 0
) -> pa.Table:
    """Validate and convert a flat prediction table into the stored layout, or raise InvalidInput."""
    table = flatten_nested(table)
    target = schema.arrow_schema()
    ids_col = _ColumnIds(table.column("prediction_id")) if "prediction_id" in table.column_names else None
    sink = ErrorSink(row_offset=row_offset, ids=ids_col)
    names = table.column_names
    if len(set(names)) != len(names):
        for dup in sorted({n for n in names if names.count(n) > 1}):
            sink.add(dup, "column appears more than once")
        sink.raise_if_any("batch")
    allowed = set(target.names) - {"ingested_at"}
    for name in names:
        if name not in allowed:
            sink.add(name, f"not in model '{schema.name}' schema; known columns: {sorted(allowed)}")
    for required in ("prediction_id", "timestamp", "prediction"):
        if required not in names:
            sink.add(required, "required column is missing")
    sink.raise_if_any("batch")
    n = table.num_rows
    out: dict[str, pa.Array | None] = {}

    pid = to_string(table.column("prediction_id"), "prediction_id", sink, max_length=MAX_ID_LENGTH)
    if pid is not None:
        require_present(pid, "prediction_id", sink)
        empty = pc.equal(pc.utf8_length(pid), 0)
        if pc.any(empty).as_py():
            sink.add_rows("prediction_id", empty, "must not be empty")
    out["prediction_id"] = pid
    ts = to_timestamp(table.column("timestamp"), "timestamp", sink, now=now, max_future=max_future)
    if ts is not None:
        require_present(ts, "timestamp", sink)
    out["timestamp"] = ts
    if "model_version" in names:
        mv = to_string(table.column("model_version"), "model_version", sink, max_length=200)
        out["model_version"] = None if mv is None else pc.fill_null(mv, UNVERSIONED)
    else:
        out["model_version"] = pa.array([UNVERSIONED] * n, pa.string())

    for name, kind in schema.features.items():
        col = table.column(name) if name in names else pa.nulls(n)
        if kind == "numeric":
            out[name] = to_float(col, name, sink)
        elif kind == "boolean":
            out[name] = to_bool(col, name, sink)
        else:
            out[name] = to_string(col, name, sink)

    out["prediction"] = _prediction(table.column("prediction"), schema, sink)
    out["score"], probs = _scores(table, schema, sink)
    if schema.task == "multiclass":
        out["probabilities"] = probs
    out["latency_ms"] = None
    if "latency_ms" in names:
        lat = to_float(table.column("latency_ms"), "latency_ms", sink)
        if lat is not None:
            negative = pc.less(lat, 0)
            if pc.any(negative).as_py():
                sink.add_rows("latency_ms", negative, lambda r: f"must be ≥ 0, got {lat[r].as_py()}")
        out["latency_ms"] = lat
    else:
        out["latency_ms"] = pa.nulls(n, pa.float64())
    for seg in schema.segments:
        col = table.column(seg) if seg in names else pa.nulls(n)
        out[seg] = to_string(col, seg, sink, max_length=200)
    if schema.embedding is not None:
        out["embedding"] = _embedding(table.column("embedding") if "embedding" in names else pa.nulls(n), schema, sink)
    elif "embedding" in names:
        sink.add("embedding", "the model declares no embedding")
    sink.raise_if_any("batch")
    ingested = pa.array(np.full(n, np.datetime64(now.replace(tzinfo=None), "us")), TS_TYPE)
    out["ingested_at"] = ingested
    arrays = [out[f.name] for f in target]
    return pa.Table.from_arrays(arrays, schema=target.remove_metadata().with_metadata(None))


def _prediction(col: pa.Array, schema: ModelSchema, sink: ErrorSink) -> pa.Array | None:
    if schema.is_classifier:
        pred = to_string(col, "prediction", sink, max_length=200)
        if pred is None:
            return None
        require_present(pred, "prediction", sink)
        unknown = pc.and_(pc.is_valid(pred), pc.invert(pc.is_in(pred, pa.array(schema.classes))))
        if pc.any(unknown).as_py():
            sink.add_rows(
                "prediction", unknown, lambda r: f"{pred[r].as_py()!r} is not one of the classes {schema.classes}"
            )
        return pred
    number = to_float(col, "prediction", sink)
    if number is not None:
        require_present(number, "prediction", sink)
    return number


def _scores(table: pa.Table, schema: ModelSchema, sink: ErrorSink) -> tuple[pa.Array | None, pa.Array | None]:
    n = table.num_rows
    names = table.column_names
    score = None
    if "score" in names:
        score = given = to_float(table.column("score"), "score", sink)
        if given is not None and schema.is_classifier:
            outside = pc.or_(pc.less(given, 0), pc.greater(given, 1))
            if pc.any(outside).as_py():
                sink.add_rows("score", outside, lambda r: f"must be a probability in [0, 1], got {given[r].as_py()}")
    probs = None
    if "probabilities" in names:
        if not schema.is_classifier:
            sink.add("probabilities", "a regression model has no class probabilities")
            return score, None
        probs = _probabilities(table.column("probabilities"), schema, sink)
        if probs is not None and score is None:
            score = _score_from_probabilities(probs, schema)
    if score is None:
        score = pa.nulls(n, pa.float64())
    if probs is None and schema.task == "multiclass":
        probs = pa.nulls(n, pa.list_(pa.float64()))
    return score, probs


def _probabilities(col: pa.Array, schema: ModelSchema, sink: ErrorSink) -> pa.Array | None:
    col = _combine(col)
    if not (pa.types.is_list(col.type) or pa.types.is_large_list(col.type) or pa.types.is_fixed_size_list(col.type)):
        _type_errors(col, "probabilities", sink, "a list of probabilities in class order")
        return None
    k = len(schema.classes)
    col = pc.cast(col, pa.list_(pa.float64()))
    lengths = pc.list_value_length(col)
    wrong = pc.and_(pc.is_valid(col), pc.not_equal(lengths, k))
    if pc.any(wrong).as_py():
        sink.add_rows(
            "probabilities", wrong, lambda r: f"must hold {k} values (one per class), got {lengths[r].as_py()}"
        )
        return None
    flat = pc.list_flatten(col)
    values = flat.to_numpy(zero_copy_only=False)
    parents = pc.list_parent_indices(col).to_numpy()
    bad_value = ~np.isfinite(values) | (values < 0) | (values > 1)
    if bad_value.any():
        rows = np.unique(parents[bad_value])
        for row in rows[:MAX_ERRORS]:
            sink.add("probabilities", "each probability must be a finite number in [0, 1]", int(row))
        return None
    sums = np.zeros(len(col))
    np.add.at(sums, parents, values)
    off = pc.is_valid(col).to_numpy(zero_copy_only=False) & (np.abs(sums - 1) > PROBABILITY_SUM_TOLERANCE)
    if off.any():
        sink.add_rows(
            "probabilities", off, lambda r: f"must sum to 1 (±{PROBABILITY_SUM_TOLERANCE}), sums to {sums[r]:.4f}"
        )
        return None
    return col


def _score_from_probabilities(probs: pa.Array, schema: ModelSchema) -> pa.Array:
    """Binary: P(positive class). Multiclass: the confidence of the top class."""
    if schema.task == "binary":
        return pc.list_element(probs, schema.classes.index(schema.positive_class or schema.classes[1]))
    flat = pc.list_flatten(probs).to_numpy(zero_copy_only=False)
    valid = pc.is_valid(probs).to_numpy(zero_copy_only=False)
    k = len(schema.classes)
    out = np.full(len(probs), np.nan)
    out[valid] = flat.reshape(-1, k).max(axis=1) if len(flat) else np.array([])
    return pa.array(out, pa.float64(), mask=~valid)


def _embedding(col: pa.Array, schema: ModelSchema, sink: ErrorSink) -> pa.Array | None:
    col = _combine(col)
    dim = schema.embedding.dim if schema.embedding else 0
    if pa.types.is_null(col.type):
        return pa.nulls(len(col), pa.list_(pa.float32()))
    if not (pa.types.is_list(col.type) or pa.types.is_large_list(col.type) or pa.types.is_fixed_size_list(col.type)):
        _type_errors(col, "embedding", sink, f"a list of {dim} numbers")
        return None
    try:
        col = pc.cast(col, pa.list_(pa.float32()))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        sink.add("embedding", f"must be a list of {dim} numbers")
        return None
    lengths = pc.list_value_length(col)
    wrong = pc.and_(pc.is_valid(col), pc.not_equal(lengths, dim))
    if pc.any(wrong).as_py():
        sink.add_rows("embedding", wrong, lambda r: f"must hold {dim} values, got {lengths[r].as_py()}")
        return None
    values = pc.list_flatten(col).to_numpy(zero_copy_only=False)
    if len(values) and not np.isfinite(values).all():
        sink.add("embedding", "values must be finite numbers")
        return None
    return col


def dedupe_batch(table: pa.Table) -> tuple[pa.Table, int]:
    """Keep the first row of each prediction_id within one batch; return (rows, dropped)."""
    ids = table.column("prediction_id")
    unique = pc.unique(ids)
    if len(unique) == table.num_rows:
        return table, 0
    idx = pa.table({"id": ids, "i": pa.array(np.arange(table.num_rows))}).group_by("id").aggregate([("i", "min")])
    keep = pc.sort_indices(idx.column("i_min"))
    rows = pc.take(idx.column("i_min"), keep)
    return table.take(rows), table.num_rows - len(rows)


# --------------------------------------------------------------------------------------------
# Labels.
# --------------------------------------------------------------------------------------------

LABEL_KEYS = frozenset({"prediction_id", "label", "timestamp", "source", "annotator", "authority"})

# Who a label comes from, most authoritative first (see docs/architecture.md, "Labels"): the
# model owner's pipeline (REST / Arrow / Parquet / `loopwatch ingest --labels`), an explicit
# reviewer decision, an annotator in Label Studio. A lower authority never replaces a higher one.
AUTHORITIES: tuple[str, ...] = ("ground_truth", "review", "annotator")


def label_records_to_table(records: Any) -> pa.Table:
    """A JSON list of ``{prediction_id, label, timestamp?}`` → flat Arrow table (unvalidated)."""
    if not isinstance(records, list):
        raise InvalidInput(
            "body must be a JSON list of label records",
            [FieldError(field="(body)", reason=f"expected a list, got {_json_type(type(records))}")],
        )
    sink = ErrorSink(ids=[r.get("prediction_id") if isinstance(r, dict) else None for r in records])
    for row, record in enumerate(records):
        if type(record) is not dict:
            sink.add("(record)", f"expected an object, got {_json_type(type(record))}", row)
            continue
        for key in record:
            if key not in LABEL_KEYS:
                sink.add(key, f"unknown field; a label record has {sorted(LABEL_KEYS)}", row)
    sink.raise_if_any("labels")
    columns = {}
    expects = {
        "prediction_id": "string",
        "label": "any",
        "timestamp": "timestamp",
        "source": "string",
        "annotator": "string",
        "authority": "string",
    }
    for key, expect in expects.items():
        if any(key in r for r in records) or key in ("prediction_id", "label"):
            arr = infer_array([r.get(key) for r in records], key, sink, expect)
            if arr is not None:
                columns[key] = arr
    sink.raise_if_any("labels")
    return pa.table(columns)


def normalize_labels(
    table: pa.Table,
    schema: ModelSchema,
    *,
    now: datetime,
    max_future: timedelta,
    source: str = "api",
    authority: str = "ground_truth",
    row_offset: int = 0,
) -> pa.Table:
    """Validate labels: known id column, label of the model's type (a class, or a finite number),
    an authority from :data:`AUTHORITIES` (rows without one get ``authority``)."""
    names = table.column_names
    ids_col = _ColumnIds(table.column("prediction_id")) if "prediction_id" in names else None
    sink = ErrorSink(row_offset=row_offset, ids=ids_col)
    for name in names:
        if name not in LABEL_KEYS:
            sink.add(name, f"unknown column; labels have {sorted(LABEL_KEYS)}")
    for required in ("prediction_id", "label"):
        if required not in names:
            sink.add(required, "required column is missing")
    sink.raise_if_any("labels")
    n = table.num_rows
    pid = to_string(table.column("prediction_id"), "prediction_id", sink, max_length=MAX_ID_LENGTH)
    if pid is not None:
        require_present(pid, "prediction_id", sink)
    label = (
        to_string(table.column("label"), "label", sink, max_length=200)
        if schema.is_classifier
        else to_float(table.column("label"), "label", sink)
    )
    if label is not None:
        require_present(label, "label", sink)
        if schema.is_classifier:
            unknown = pc.and_(pc.is_valid(label), pc.invert(pc.is_in(label, pa.array(schema.classes))))
            if pc.any(unknown).as_py():
                sink.add_rows(
                    "label", unknown, lambda r: f"{label[r].as_py()!r} is not one of the classes {schema.classes}"
                )
    if "timestamp" in names:
        ts = to_timestamp(table.column("timestamp"), "timestamp", sink, now=now, max_future=max_future)
        if ts is not None:
            ts = pc.fill_null(ts, pa.scalar(now, TS_TYPE))
    else:
        ts = pa.array([now] * n, TS_TYPE)
    src = to_string(table.column("source"), "source", sink, max_length=100) if "source" in names else None
    annot = to_string(table.column("annotator"), "annotator", sink, max_length=200) if "annotator" in names else None
    auth = to_string(table.column("authority"), "authority", sink, max_length=20) if "authority" in names else None
    if auth is not None:
        named = auth
        bad = pc.and_(pc.is_valid(named), pc.invert(pc.is_in(named, pa.array(AUTHORITIES))))
        if pc.any(bad).as_py():
            sink.add_rows("authority", bad, lambda r: f"{named[r].as_py()!r} is not one of {list(AUTHORITIES)}")
    sink.raise_if_any("labels")
    src = pc.fill_null(src, source) if src is not None else pa.array([source] * n, pa.string())
    annot = annot if annot is not None else pa.nulls(n, pa.string())
    auth = pc.fill_null(auth, authority) if auth is not None else pa.array([authority] * n, pa.string())
    return pa.table(
        {
            "prediction_id": pid,
            "label": label,
            "timestamp": ts,
            "received_at": pa.array([now] * n, TS_TYPE),
            "source": src,
            "annotator": annot,
            "authority": auth,
        }
    )


def latest_label_per_id(table: pa.Table) -> pa.Table:
    """Within one label batch, keep per id the row of the highest authority, and among those the
    newest timestamp (last one wins on ties)."""
    if table.num_rows == len(pc.unique(table.column("prediction_id"))):
        return table
    order = pa.array(np.arange(table.num_rows))
    t = table.append_column("_i", order)
    sort = [("prediction_id", "ascending"), ("timestamp", "ascending"), ("_i", "ascending")]
    if "authority" in t.column_names:
        rank = pc.index_in(t.column("authority"), pa.array(AUTHORITIES[::-1]))
        t = t.append_column("_rank", rank)
        sort.insert(1, ("_rank", "ascending"))
    t = t.sort_by(sort)
    ids = t.column("prediction_id").to_numpy(zero_copy_only=False)
    last = np.ones(len(ids), dtype=bool)
    last[:-1] = ids[:-1] != ids[1:]
    return t.filter(pa.array(last)).drop_columns([c for c in ("_i", "_rank") if c in t.column_names])


def warm_up() -> None:
    """Run every converter once so the first real request does not pay for imports and kernel setup."""
    spec = ModelSchema(
        name="warm-up",
        task="multiclass",
        classes=["a", "b"],
        features={"n": "numeric", "c": "categorical", "b": "boolean", "t": "text"},
        segments=["s"],
    )
    now = datetime.now(UTC)
    record = {
        "prediction_id": "w",
        "timestamp": now.isoformat(),
        "model_version": "1",
        "features": {"n": 1.0, "c": "x", "b": True, "t": "y"},
        "prediction": "a",
        "probabilities": [0.5, 0.5],
        "latency_ms": 1.0,
        "segments": {"s": "z"},
    }
    table = normalize_predictions(records_to_table([record], spec), spec, now=now, max_future=timedelta(days=1))
    dedupe_batch(table)
    labels = label_records_to_table([{"prediction_id": "w", "label": "a"}])
    latest_label_per_id(normalize_labels(labels, spec, now=now, max_future=timedelta(days=1)))
