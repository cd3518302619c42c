"""Prediction and label ingestion (JSON, Arrow IPC, Parquet), window stats and paged rows."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Annotated, Any, Literal

import pyarrow as pa
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.body import read_limited_body
from api.deps import IngestKey, MetricsDep, ReadKey, ServiceDep
from api.params import parse_segments, parse_window
from monitor.decoding import decode_json_predictions, unpack
from monitor.errors import LoopwatchError, NotFound, PayloadTooLarge
from monitor.formats import Body, body_kind, parse_json, read_arrow_stream, read_parquet_bytes
from monitor.json_columns import generic_prediction_table, prediction_table, read_prediction_columns
from monitor.service import Loopwatch
from monitor.validation import label_records_to_table

router = APIRouter(prefix="/v1/models/{model}", tags=["predictions"])


class IngestPublic(BaseModel):
    received: int
    accepted: int
    duplicates: int = Field(description="rows not stored: their prediction_id is already stored (any timestamp)")
    changed: int = Field(0, description="of the duplicates, how many differ from the stored row (which is kept)")
    changed_ids: list[str] = Field(default_factory=list, description="up to 20 of the changed resends' ids")


class LabelsPublic(BaseModel):
    received: int
    applied: int
    unchanged: int
    conflicts: int = 0
    confirmed: int = Field(0, description="reviews that agreed with a higher-authority label and settled its conflict")


class PredictionPage(BaseModel):
    rows: list[dict[str, Any]]
    next_cursor: str | None


def _decode(kind: str, body: Body, json_table: Callable[[Body], pa.Table]) -> pa.Table:
    if kind == "json":
        return json_table(body)
    if kind == "arrow":
        return read_arrow_stream(body)
    return read_parquet_bytes(body)


def _check_rows(service: Loopwatch, table: pa.Table) -> None:
    if table.num_rows > service.settings.max_batch_rows:
        raise PayloadTooLarge(
            f"batch of {table.num_rows} rows exceeds the limit of {service.settings.max_batch_rows}; send smaller batches"
        )


@router.post("/predictions", response_model=IngestPublic)
async def ingest_predictions(
    model: str, request: Request, service: ServiceDep, metrics: MetricsDep, _: IngestKey
) -> dict[str, Any]:
    """Store a batch of predictions: a JSON list of records, an Arrow IPC stream
    (`application/vnd.apache.arrow.stream`) or a Parquet file (`application/x-parquet`).
    All-or-nothing; re-sending a batch never duplicates rows; a 200 means the rows are durable."""
    registered = service.registry.get(model)  # 404 before reading a large body
    kind = body_kind(request.headers.get("content-type"))
    body = await read_limited_body(request, service.settings.max_body_bytes)
    started = time.perf_counter()
    pool = request.app.state.json_pool
    settings = service.settings

    def store(rows: pa.Table) -> dict[str, Any]:
        _check_rows(service, rows)
        return service.store.store_normalized(model, rows).to_dict()

    def ingest(table: pa.Table) -> dict[str, Any]:
        _check_rows(service, table)
        return service.store.ingest_predictions(model, table).to_dict()

    def work() -> dict[str, Any]:
        return ingest(_decode(kind, body, lambda json_body: prediction_table(json_body, registered.schema)))

    state = request.app.state
    offloadable = (
        kind == "json"
        and pool is not None
        and len(body) >= settings.json_worker_min_bytes
        and settings.json_offload != "never"
    )
    state.json_inflight += kind == "json"
    try:
        if offloadable:
            # Arrow's JSON reader first, here: it releases the GIL, so concurrent bodies in the
            # documented shape decode in parallel in this process, and shipping them to a worker
            # (the body pickled there, the table back) cost more than it saved (two senders,
            # idle machine: 131-167k rows/s here vs 99-130k through the workers; docs/architecture.md).
            # Only a body it declines takes the generic path, which holds the GIL: that one goes
            # to a worker when another JSON batch is being decoded here.
            fast = await run_in_threadpool(read_prediction_columns, body, registered.schema)
            if fast is not None:
                result = await run_in_threadpool(ingest, fast)
            elif settings.json_offload == "always" or state.json_inflight > 1:
                decoded = await asyncio.get_running_loop().run_in_executor(
                    pool,
                    decode_json_predictions,
                    bytes(body),  # pickled to the worker process (a view of Arrow's buffer is not picklable)
                    registered.schema.model_dump_json(),
                    service.now(),
                    float(settings.max_future_seconds),
                    False,  # the fast reader declined it already
                )
                result = await run_in_threadpool(lambda: store(unpack(decoded)))
            else:
                result = await run_in_threadpool(lambda: ingest(generic_prediction_table(body, registered.schema)))
        else:
            result = await run_in_threadpool(work)
    except LoopwatchError as exc:
        metrics.rejected_batches.labels(model, "predictions").inc()
        raise exc from None
    finally:
        state.json_inflight -= kind == "json"
    metrics.ingest_seconds.labels(kind).observe(time.perf_counter() - started)
    metrics.ingested_rows.labels(model, kind).inc(result["accepted"])
    metrics.duplicate_rows.labels(model).inc(result["duplicates"])
    if result["changed"]:
        metrics.changed_resends.labels(model).inc(result["changed"])
    return result


@router.post("/labels", response_model=LabelsPublic)
async def ingest_labels(
    model: str,
    request: Request,
    service: ServiceDep,
    metrics: MetricsDep,
    _: IngestKey,
    authority: Annotated[
        Literal["ground_truth", "review", "annotator"],
        Query(description="authority of rows that do not carry their own `authority` field"),
    ] = "ground_truth",
) -> dict[str, int]:
    """Store labels by `prediction_id` (`{prediction_id, label, timestamp?, source?, annotator?,
    authority?}` records, or Arrow/Parquet with those columns). Labels may arrive before their
    predictions. Authorities rank `ground_truth` (the default here: the model owner's pipeline) >
    `review` (an explicit reviewer decision) > `annotator` (Label Studio). A higher authority
    replaces a lower one; within one authority the newer label wins; a lower authority that
    disagrees is recorded as a conflict (`conflicts` in the answer) and never replaces the label.
    Every change is kept on record."""
    service.registry.get(model)
    kind = body_kind(request.headers.get("content-type"))
    body = await read_limited_body(request, service.settings.max_body_bytes)

    def work() -> dict[str, Any]:
        table = _decode(kind, body, lambda json_body: label_records_to_table(parse_json(json_body)))
        _check_rows(service, table)
        return service.store.ingest_labels(model, table, authority=authority).to_dict()

    try:
        result = await run_in_threadpool(work)
    except LoopwatchError as exc:
        metrics.rejected_batches.labels(model, "labels").inc()
        raise exc from None
    metrics.labels.labels(model).inc(result["applied"])
    return result


@router.get("/stats")
def stats(
    model: str, service: ServiceDep, _: ReadKey, start: str | None = None, end: str | None = None
) -> dict[str, Any]:
    """Prediction and label counts and label coverage for a window (all time without bounds)."""
    lo, hi = parse_window(start, end)
    return service.store.stats(model, lo, hi)


@router.get("/predictions", response_model=PredictionPage)
def list_predictions(
    model: str,
    service: ServiceDep,
    _: ReadKey,
    start: str | None = None,
    end: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    cursor: str | None = None,
    model_version: str | None = None,
    segment: Annotated[list[str] | None, Query(description="name:value, repeatable")] = None,
) -> dict[str, Any]:
    """Rows in a window ordered by time, with their labels; follow `next_cursor` for more."""
    lo, hi = parse_window(start, end)
    rows, next_cursor = service.store.page(
        model, lo, hi, limit=limit, cursor=cursor, model_version=model_version, segments=parse_segments(segment)
    )
    return {"rows": rows, "next_cursor": next_cursor}


@router.get("/labels/conflicts")
def label_conflicts(
    model: str, service: ServiceDep, _: ReadKey, limit: Annotated[int, Query(ge=1, le=10_000)] = 500
) -> dict[str, Any]:
    """Labels flagged for review: a lower authority (e.g. an annotator) disagreed with the kept,
    higher-authority label. Each item has the kept label and the `conflicting` labels on record."""
    return {"conflicts": service.store.label_conflicts(model, limit=limit)}


@router.get("/labels/{prediction_id}")
def current_label(model: str, prediction_id: str, service: ServiceDep, _: ReadKey) -> dict[str, Any]:
    """The current label of one prediction with its `authority`, `source` and `conflict` flag."""
    found = service.store.label(model, prediction_id)
    if found is None:
        raise NotFound(f"no label for prediction_id {prediction_id!r} of model {model!r}")
    return found


@router.get("/labels/{prediction_id}/history")
def label_history(model: str, prediction_id: str, service: ServiceDep, _: ReadKey) -> list[dict[str, Any]]:
    """Every label change for one prediction: value, previous value, source, annotator, time,
    authority, previous authority and outcome (`applied`, `overridden` = a higher authority
    replaced a lower one, `conflict` = a lower authority disagreed and was not applied)."""
    return service.store.label_history(model, prediction_id)
