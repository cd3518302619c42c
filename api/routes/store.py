"""The sealed store (admin only): seal past days now, verify every file, drop a damaged one,
list the catalog.

``loopwatch seal`` / ``store verify`` / ``store drop-file`` / ``sealed push`` use these while a
server holds the data directory (``sealed push`` lists the catalog here and copies the files from
the CLI's own process, with the CLI's credentials: the server never receives any).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.deps import AdminKey, AppDep

router = APIRouter(prefix="/v1/store", tags=["store"])


class DropFile(BaseModel):
    path: str = Field(min_length=1, max_length=1000, description="Sealed file path, as `store verify` lists it.")


@router.post("/seal")
async def seal(app: AppDep, principal: AdminKey) -> dict[str, Any]:
    """Move past days from DuckDB into sealed Parquet now (the server also does this hourly)."""
    return await run_in_threadpool(lambda: app.store.seal(principal.id))


@router.get("/verify")
def verify(app: AppDep, principal: AdminKey) -> dict[str, Any]:
    """Hash every sealed file against its recorded size and sha256 now (unthrottled). Damage is
    recorded (readiness turns 503) and files found sound again are cleared."""
    return app.store.verify(principal.id)


@router.post("/drop-file")
def drop_file(body: DropFile, app: AppDep, principal: AdminKey) -> dict[str, Any]:
    """Remove one sealed file from the catalog (moved to ``quarantine/``); re-ingest its window."""
    return app.store.drop_file(principal.id, body.path)


@router.get("/sealed-files")
def sealed_files(app: AppDep, principal: AdminKey) -> dict[str, Any]:
    """Every sealed file's catalog record (path under ``sealed/``, size, sha256 …)."""
    return {"files": app.store.catalog()}
