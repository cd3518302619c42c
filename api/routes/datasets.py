"""Curated, versioned training sets built from annotated samples or a window's labelled predictions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.deps import AdminKey, AppDep, ReadKey
from api.params import parse_window
from labeling.curation import BuildRequest, Source

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])


class DatasetCreate(BaseModel):
    model: str
    name: str
    start: str | None = None
    end: str | None = None
    strategy: str | None = None
    entity_key: str | None = Field(default=None, description="segment/feature naming the entity for splits")
    include_review: bool = False
    source: Source = Field(
        default="routed",
        description="routed: annotated routed samples (default); labelled: every prediction in [start, end) "
        "with a current label, any authority; all: both, one row per prediction. labelled/all need start and end.",
    )


@router.post("", status_code=201)
async def build(body: DatasetCreate, app: AppDep, principal: AdminKey) -> dict[str, Any]:
    """Build the next version of a dataset; returns its manifest."""
    start, end = parse_window(body.start, body.end)
    req = BuildRequest(
        model=body.model,
        name=body.name,
        start=start,
        end=end,
        strategy=body.strategy,
        entity_key=body.entity_key,
        include_review=body.include_review,
        created_by=principal.id,
        source=body.source,
    )
    return await run_in_threadpool(lambda: app.datasets.build(req))


@router.get("")
def list_datasets(app: AppDep, _: ReadKey) -> list[dict[str, Any]]:
    return app.datasets.list()


@router.get("/{name}/versions/{version}")
def show(name: str, version: int, app: AppDep, _: ReadKey) -> dict[str, Any]:
    return app.datasets.show(name, version)


@router.get("/{name}/diff")
def diff(name: str, a: int, b: int, app: AppDep, _: ReadKey) -> dict[str, Any]:
    return app.datasets.diff(name, a, name, b)
