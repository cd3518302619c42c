"""The feedback loop's API: route samples to annotators and see the queue."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.deps import AdminKey, ReadKey, ServiceDep
from api.params import parse_window
from labeling.queue import LabelingQueue, RouteRequest

router = APIRouter(prefix="/v1/labeling", tags=["labeling"])


class RouteCreate(BaseModel):
    model: str
    strategy: str = Field(description="uncertainty | errors | drift_region | long_tail | random")
    budget: int = Field(default=50, ge=1, le=10_000)
    finding_id: str | None = None
    alert_id: str | None = None
    start: str | None = None
    end: str | None = None
    column: str | None = Field(default=None, description="drift_region: the drifted feature")
    random_share: float = Field(default=0.1, ge=0, le=1)


def queue_of(request: Request) -> LabelingQueue:
    return request.app.state.labeling_queue


@router.post("/route")
async def route(body: RouteCreate, request: Request, service: ServiceDep, principal: AdminKey) -> dict[str, Any]:
    """Select samples by strategy (within the per-model daily budget) and queue them for annotators."""
    start, end = parse_window(body.start, body.end)
    result = await run_in_threadpool(
        lambda: queue_of(request).route(
            RouteRequest(
                model=body.model,
                strategy=body.strategy,
                budget=body.budget,
                start=start,
                end=end,
                finding_id=body.finding_id,
                alert_id=body.alert_id,
                column=body.column,
                random_share=body.random_share,
                requested_by=principal.id,
            )
        )
    )
    service.audit.record(
        principal.id,
        "labeling.routed",
        body.model,
        {"strategy": body.strategy, "queued": result["queued"], "alert_id": body.alert_id},
    )
    return result


@router.get("/queue")
def queue(
    request: Request,
    _: ReadKey,
    model: str | None = None,
    status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> dict[str, Any]:
    q = queue_of(request)
    return {"depth": q.depth(), "samples": q.list(model, status, limit)}
