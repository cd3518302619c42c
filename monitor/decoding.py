"""Decode JSON prediction batches in worker processes.

Parsing JSON into Python objects and converting them to columns holds the GIL, so in one
process the JSON path uses one core however many model servers post at once. Large JSON
bodies are therefore decoded and validated in a small pool of spawned processes, which return
the canonical Arrow table as IPC bytes; the server process only stores it.

Workers return plain tuples, never raise: custom exceptions do not always survive pickling.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa

from monitor.errors import FieldError, InvalidInput, LoopwatchError
from monitor.formats import Body, read_arrow_stream, table_to_arrow_stream
from monitor.json_columns import generic_prediction_table, prediction_table, warm_up
from monitor.schema import ModelSchema
from monitor.validation import normalize_predictions

DecodeResult = tuple[str, Any]

_schemas: dict[str, ModelSchema] = {}


def decode_json_predictions(
    body: Body, schema_json: str, now: datetime, max_future_seconds: float, fast_first: bool = True
) -> DecodeResult:
    """Parse + validate a JSON batch: ("ok", Arrow IPC bytes) or ("error", error fields).
    ``fast_first=False``: the caller's Arrow JSON reader declined the body already, so only the
    generic path runs."""
    schema = _schemas.get(schema_json)
    if schema is None:
        schema = _schemas[schema_json] = ModelSchema.model_validate_json(schema_json)
        if len(_schemas) > 64:
            _schemas.clear()
    try:
        flat = prediction_table(body, schema) if fast_first else generic_prediction_table(body, schema)
        table = normalize_predictions(
            flat,
            schema,
            now=now,
            max_future=timedelta(seconds=max_future_seconds),
        )
    except LoopwatchError as exc:
        return "error", (exc.status, exc.code, exc.message, [e.to_dict() for e in exc.errors])
    return "ok", table_to_arrow_stream(table)


def unpack(result: DecodeResult) -> pa.Table:
    """The worker's answer as a table, or the error it found raised here."""
    kind, payload = result
    if kind == "ok":
        return read_arrow_stream(payload, check_text=False)  # validated by the worker (decoded from JSON)
    status, code, message, errors = payload
    fields = [FieldError(e["field"], e["reason"], e.get("row"), e.get("prediction_id")) for e in errors]
    if status == 422:
        raise InvalidInput(message, fields)
    raise LoopwatchError(message, fields, status, code)


def make_pool(workers: int) -> ProcessPoolExecutor | None:
    """A pool of ``workers`` spawned processes (not forked: the server holds DuckDB and threads)."""
    if workers <= 0:
        return None
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=warm_up
    )
