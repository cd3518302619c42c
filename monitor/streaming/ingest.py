"""One message → stored rows, or a dead letter, or "try again later".

A message is decoded, validated and stored exactly as a JSON body of
``POST /v1/models/{model}/predictions`` is (Arrow's JSON reader for a list in the documented
shape, else ``parse_json`` → ``records_to_table``; then the store's ``ingest_predictions``), so a source and the REST endpoint accept the same records and a
redelivered message is deduplicated by its prediction ids. What the caller may acknowledge:

- ``stored``: the rows are durable (the store returned; DuckDB committed);
- ``dead_letter``: the message can never be stored as sent (malformed JSON, invalid records, a
  batch over the row limit, an unknown model); it is recorded durably and may be acknowledged;
- :class:`StoreRefused`: the store could not take it now (disk full, damaged storage, an
  unexpected database error): do not acknowledge, retry later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from monitor.errors import LoopwatchError, PayloadTooLarge, StoreLocked
from monitor.formats import parse_json
from monitor.json_columns import read_prediction_columns
from monitor.validation import records_to_table

if TYPE_CHECKING:
    from monitor.service import Loopwatch
    from monitor.streaming.sources import SourceSpec


class StoreRefused(Exception):
    """The store could not take the rows now; the message must not be acknowledged."""


@dataclass(frozen=True)
class Outcome:
    result: Literal["stored", "dead_letter"]
    rows: int  # rows newly stored (resends deduplicated away are not counted)
    duplicates: int = 0
    reason: str | None = None


def store_payload(service: Loopwatch, model: str, payload: bytes) -> tuple[int, int]:
    """Store one message's records (one record object or a list); (accepted, duplicates).
    Raises the same :class:`LoopwatchError` the REST endpoint would answer with."""
    registered = service.registry.get(model)
    # A list of records in the documented shape is read into columns by Arrow's JSON reader, as a
    # REST body is; anything else (one record object, an unusual body) takes the generic path.
    table = read_prediction_columns(payload, registered.schema)
    if table is None:
        data = parse_json(payload)
        records = [data] if isinstance(data, dict) else data
        table = records_to_table(records, registered.schema)
    limit = service.settings.max_batch_rows
    if table.num_rows > limit:
        raise PayloadTooLarge(f"batch of {table.num_rows} rows exceeds the limit of {limit}; send smaller batches")
    result = service.store.ingest_predictions(model, table)
    return result.accepted, result.duplicates


def handle_message(service: Loopwatch, spec: SourceSpec, topic: str, payload: bytes) -> Outcome:
    """Store the message or dead-letter it; raise :class:`StoreRefused` when it should be retried."""
    try:
        accepted, duplicates = store_payload(service, spec.model, payload)
    except LoopwatchError as exc:
        if exc.status >= 500 or isinstance(exc, StoreLocked):
            raise StoreRefused(str(exc)) from exc
        reason = str(exc)
    except Exception as exc:  # a database or I/O failure: the message itself may be fine
        raise StoreRefused(f"{type(exc).__name__}: {exc}") from exc
    else:
        return Outcome("stored", accepted, duplicates)
    try:
        service.sources.dead_letter(spec.name, topic, reason, payload)
    except Exception as exc:  # recording it failed: keep the message unacknowledged
        raise StoreRefused(f"could not record a dead letter: {type(exc).__name__}: {exc}") from exc
    return Outcome("dead_letter", 0, 0, reason)
