"""The audit log (admin only): who acknowledged, silenced, created keys, built datasets."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import AdminKey, AppDep
from api.params import parse_window

router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.get("")
def list_audit(
    app: AppDep,
    _: AdminKey,
    action: Annotated[str | None, Query(description="exact, or a family ending in '.' such as 'alert.'")] = None,
    actor: Annotated[str | None, Query(description="key id, 'local-cli', 'slack:<user>', 'policy:…'")] = None,
    target: Annotated[
        str | None, Query(description="exact, or a prefix ending in '/' such as 'harsh-braking/'")
    ] = None,
    start: Annotated[str | None, Query(description="ISO-8601, inclusive")] = None,
    end: Annotated[str | None, Query(description="ISO-8601, exclusive")] = None,
    before_id: Annotated[int | None, Query(description="page back: entries older than this id")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> list[dict[str, Any]]:
    """Entries newest first; page with `before_id` = the last entry's `id`."""
    since, until = parse_window(start, end)
    return app.audit.list(
        limit=limit, action=action, actor=actor, target=target, since=since, until=until, before_id=before_id
    )
