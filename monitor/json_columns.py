"""JSON prediction batches read straight into columns by Arrow's JSON parser.

The generic JSON path (``parse_json`` → Python dicts → ``records_to_table``) spends most of a
JSON batch's server time creating, transposing and freeing Python objects: 65 ms of a 5,000-record
× 25-feature body against 26 ms for Arrow's C++ reader, which builds the columns from the bytes
(py-spy on a live server: orjson 28 %, the transposition 48 %, freeing the objects 5 % of the
request thread; issue 15). This module is that faster reader for bodies in the documented shape.

It is only ever a shortcut. :func:`read_prediction_columns` returns ``None`` whenever the body
is anything but a non-empty JSON list of record objects whose every value already has its
canonical JSON type (text as strings, numbers as numbers, flags as booleans, probabilities and
embeddings as lists of numbers) with no key the model does not know — and also when Arrow's
reader is laxer than strict JSON (``NaN``/``Infinity`` literals, bytes that are not UTF-8) or
when a number's JSON spelling could matter (``-0``, integers beyond 2**53). The caller then
takes the generic path, which gives the one and only answer for everything else, including
every error message. For a body the shortcut does read, the table may differ from
``records_to_table``'s in column types (a column of integers is float64 here) and in holding
columns of nulls for keys no record sent, but :func:`monitor.validation.normalize_predictions`
turns both into the same stored rows, or refuses both with the same errors (row, field, why):
``tests/monitor/test_json_columns.py`` compares the two on valid, invalid and mutated bodies.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from monitor.formats import Body, parse_json
from monitor.schema import FEATURE_ARROW_TYPES, ModelSchema
from monitor.validation import records_to_table
from monitor.validation import warm_up as validation_warm_up

#: Larger magnitudes fall back: above 2**53 the generic path's integers and this path's
#: doubles could round differently, and past 2**63 the generic path refuses some integers.
_EXACT_MAGNITUDE = 2.0**53
_WRAP_KEY = "r"
#: Record keys that may be absent from every record (the generic path then has no such column).
_OPTIONAL = frozenset({"model_version", "score", "latency_ms", "probabilities", "embedding"})


def prediction_table(body: Body, schema: ModelSchema) -> pa.Table:
    """A JSON prediction body as a flat, not yet validated table: Arrow's reader when the body
    allows it (:func:`read_prediction_columns`), else the generic path (its errors included)."""
    table = read_prediction_columns(body, schema)
    return table if table is not None else generic_prediction_table(body, schema)


def generic_prediction_table(body: Body, schema: ModelSchema) -> pa.Table:
    """The generic path alone (orjson → Python records → columns): the one answer, errors
    included, for every body :func:`read_prediction_columns` declines."""
    return records_to_table(parse_json(body), schema)


def read_prediction_columns(body: Body, schema: ModelSchema) -> pa.Table | None:
    """The body's records as flat columns, or ``None`` when the generic path must decide."""
    try:
        str(body, "utf-8")  # orjson refuses non-UTF-8 bytes anywhere; Arrow's reader does not check
    except UnicodeDecodeError:
        return None
    # Arrow's reader takes JSON objects, not a top-level list: read the body as the value of one
    # key. A body that is not one JSON value could close that object early and add keys or rows;
    # anything but exactly one row with exactly that key is refused below.
    text = b"".join((b'{"' + _WRAP_KEY.encode() + b'":', body, b"}"))
    wrapped = pa.py_buffer(text)
    try:
        read = pajson.read_json(
            pa.BufferReader(wrapped),
            read_options=pajson.ReadOptions(block_size=max(len(wrapped), 1 << 16) + 1, use_threads=False),
            parse_options=pajson.ParseOptions(
                explicit_schema=pa.schema([pa.field(_WRAP_KEY, pa.list_(_record_type(schema)))]),
                unexpected_field_behavior="error",
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None  # not JSON, a value of another type, an unknown or repeated key, …
    if read.num_rows != 1 or read.column_names != [_WRAP_KEY]:
        return None
    batch = read.column(0).chunk(0) if read.column(0).num_chunks == 1 else None
    if batch is None or batch.null_count:
        return None  # the body was `null`
    records = batch.flatten()
    if len(records) == 0 or records.null_count:
        return None  # an empty list, or a `null` where a record belongs
    columns = {name: pc.struct_field(records, [i]) for i, name in enumerate(records.type.names)}
    flat: dict[str, pa.Array] = {}
    for name, column in columns.items():
        if name in _OPTIONAL and column.null_count == len(column):
            # The generic path has this column only if some record has the key, and that can
            # matter (a multiclass score given as null is not derived from the probabilities).
            if b'"' + name.encode() + b'"' in text or b"\\u" in text:
                return None  # the key (maybe spelt with escapes), or a string that spells it
            continue
        if name in ("features", "segments"):
            for j, sub in enumerate(column.type.names):
                flat[sub] = pc.struct_field(column, [j])
        else:
            flat[name] = column
    if not all(_canonical(column) for column in flat.values()):
        return None
    return pa.table(flat)


def _record_type(schema: ModelSchema) -> pa.StructType:
    """A record with every value in its canonical JSON type (anything else: the generic path)."""
    fields = [
        pa.field("prediction_id", pa.string()),
        pa.field("timestamp", pa.string()),
        pa.field("model_version", pa.string()),
        pa.field("prediction", pa.string() if schema.is_classifier else pa.float64()),
        pa.field("score", pa.float64()),
        pa.field("latency_ms", pa.float64()),
        pa.field("features", pa.struct([pa.field(n, FEATURE_ARROW_TYPES[k]) for n, k in schema.features.items()])),
        pa.field("segments", pa.struct([pa.field(n, pa.string()) for n in schema.segments])),
    ]
    if schema.task == "multiclass":  # a binary model's rows have no such column: the generic path refuses it
        fields.append(pa.field("probabilities", pa.list_(pa.float64())))
    if schema.embedding is not None:
        fields.append(pa.field("embedding", pa.list_(pa.float64())))
    return pa.struct(fields)


def _canonical(column: pa.Array) -> bool:
    """No value the generic path would read differently: a null inside a list (it refuses it),
    a non-finite number (only ``NaN``/``Infinity`` literals, which strict JSON refuses), ``-0``
    (an integer 0 there) or a magnitude beyond 2**53."""
    if pa.types.is_list(column.type):
        values = pc.list_flatten(column)
        return values.null_count == 0 and _canonical(values)
    if not pa.types.is_floating(column.type):
        return True
    numbers = np.asarray(column.fill_null(1.0) if column.null_count else column)
    return bool(np.all(np.abs(numbers) < _EXACT_MAGNITUDE) and not np.any(np.signbit(numbers) & (numbers == 0)))


def warm_up() -> None:
    """Run the validators and this reader once, so the first request pays for neither."""
    validation_warm_up()
    spec = ModelSchema(name="warm-up", task="multiclass", classes=["a", "b"], features={"n": "numeric"})
    read_prediction_columns(b'[{"prediction_id": "w", "features": {"n": 1.5}, "probabilities": [0.5, 0.5]}]', spec)
