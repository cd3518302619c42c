"""API keys (admin only). A key's plaintext is returned once, at creation."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import AdminKey, AppDep

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


@router.post("", status_code=201, response_model=KeyCreated)
def create_key(body: KeyCreate, app: AppDep, principal: AdminKey) -> dict[str, Any]:
    return app.keys.create(principal.id, body.scope, body.name)


@router.get("", response_model=list[KeyPublic])
def list_keys(app: AppDep, _: AdminKey) -> list[dict[str, Any]]:
    return app.keys.list()


@router.delete("/{key_id}", response_model=KeyPublic)
def revoke_key(key_id: str, app: AppDep, principal: AdminKey) -> dict[str, Any]:
    return app.keys.revoke(principal.id, key_id)
