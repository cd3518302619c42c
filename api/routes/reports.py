"""The Evidently report for a model's window vs a reference window, as an HTML page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from api.deps import ReadKey, ServiceDep
from api.params import parse_window
from monitor.errors import InvalidInput

router = APIRouter(prefix="/v1/models/{model}", tags=["reports"])


@router.get("/report", response_class=HTMLResponse)
async def evidently_report(
    model: str,
    service: ServiceDep,
    _: ReadKey,
    start: str,
    end: str,
    reference_start: str,
    reference_end: str,
    max_rows: Annotated[int, Query(ge=100, le=1_000_000)] = 100_000,
) -> HTMLResponse:
    """Evidently's data-drift report: features of `[start, end)` against `[reference_start, reference_end)`."""
    from dashboards.evidently_report import window_report

    lo, hi = parse_window(start, end)
    ref_lo, ref_hi = parse_window(reference_start, reference_end)
    if lo is None or hi is None or ref_lo is None or ref_hi is None:
        raise InvalidInput("all four window bounds are required")
    document = await run_in_threadpool(
        lambda: window_report(service, model, (lo, hi), (ref_lo, ref_hi), max_rows=max_rows)
    )
    return HTMLResponse(document)
