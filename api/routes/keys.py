"""API keys (admin only). A key's plaintext is returned once, at creation."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import AdminKey, ServiceDep

router = APIRouter(prefix="/v1/keys", tags=["keys"])


class KeyCreate(BaseModel):
    scope: Literal["ingest", "read", "admin"]
    name: str | None = Field(default=None, max_length=200)


class KeyPublic(BaseModel):
    id: str
    name: str | None
    scope: str
    created_at: str
    revoked_at: str | None = None


class KeyCreated(KeyPublic):
    key: str


def _public(key: Any) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "scope": key.scope,
        "created_at": key.created_at.isoformat(),
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
    }


@router.post("", status_code=201, response_model=KeyCreated)
def create_key(body: KeyCreate, service: ServiceDep, principal: AdminKey) -> dict[str, Any]:
    key, plaintext = service.keys.create(body.scope, body.name)
    service.audit.record(principal.id, "key.created", key.id, {"scope": key.scope, "name": key.name})
    return {**_public(key), "key": plaintext}


@router.get("", response_model=list[KeyPublic])
def list_keys(service: ServiceDep, _: AdminKey) -> list[dict[str, Any]]:
    return [_public(k) for k in service.keys.list()]


@router.delete("/{key_id}", response_model=KeyPublic)
def revoke_key(key_id: str, service: ServiceDep, principal: AdminKey) -> dict[str, Any]:
    key = service.keys.revoke(key_id)
    service.audit.record(principal.id, "key.revoked", key.id)
    return _public(key)
