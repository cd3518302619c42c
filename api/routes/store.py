"""Sealed-file integrity (admin only): verify every file now, drop a damaged one from the catalog.

``loopwatch store verify`` / ``store drop-file`` use these while a server holds the data directory.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import AdminKey, ServiceDep

router = APIRouter(prefix="/v1/store", tags=["store"])


class DropFile(BaseModel):
    path: str = Field(min_length=1, max_length=1000, description="Sealed file path, as `store verify` lists it.")


@router.get("/verify")
def verify(service: ServiceDep, principal: AdminKey) -> dict[str, Any]:
    """Hash every sealed file against its recorded size and sha256 now (unthrottled). Damage is
    recorded (readiness turns 503) and files found sound again are cleared."""
    report = service.store.verify_sealed()
    service.audit.record(principal.id, "store.verified", None, {"problems": len(report["problems"])})
    return report


@router.post("/drop-file")
def drop_file(body: DropFile, service: ServiceDep, principal: AdminKey) -> dict[str, Any]:
    """Remove one sealed file from the catalog (moved to ``quarantine/``); re-ingest its window."""
    dropped = service.store.drop_sealed_file(body.path)
    service.audit.record(principal.id, "store.file_dropped", dropped["path"], dropped)
    return dropped
