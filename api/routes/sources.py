"""Streaming sources: declare (all or nothing), list with each consumer's status, delete, and
read a source's dead letters."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response

from api.deps import AdminKey, AppDep, ReadKey

router = APIRouter(prefix="/v1/sources", tags=["sources"])


@router.post("", status_code=201)
def apply_sources(body: Annotated[Any, Body()], app: AppDep, principal: AdminKey, response: Response) -> dict[str, Any]:
    """Create or replace sources: a list of source objects, or `{"sources": [...]}` (the YAML
    file as JSON). Every source is validated first and every mistake reported at once (422);
    then all are saved together, or none, and the server (re)starts their consumers."""
    items = body.get("sources") if isinstance(body, dict) and "sources" in body else body
    result = app.sources.apply(principal.id, items)
    if not result["created"]:
        response.status_code = 200
    return result


@router.get("")
def list_sources(app: AppDep, _: ReadKey) -> list[dict[str, Any]]:
    """Every declared source with its consumer's `status`: state, last message time, counts, rows,
    rows/s over the last minute, lag (kafka: high watermark − committed offset; mqtt: messages
    received but not stored yet) and the last error."""
    return app.sources.list()


@router.delete("/{name}", status_code=204)
def delete_source(name: str, app: AppDep, principal: AdminKey) -> Response:
    """Stop consuming a source and forget it (its dead letters stay on record)."""
    app.sources.delete(principal.id, name)
    return Response(status_code=204)


@router.get("/{name}/dead-letters")
def dead_letters(
    name: str, app: AppDep, _: ReadKey, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[dict[str, Any]]:
    """Messages the source could not store (newest first): topic, reason, an excerpt of the
    payload (first 512 bytes) and when. They were acknowledged: consumption never stops on them."""
    return app.sources.dead_letters(name, limit)
