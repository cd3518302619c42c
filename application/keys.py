"""API keys: create (the plaintext is returned once), list, revoke."""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monitor.keys import ApiKey
    from monitor.service import Loopwatch


def key_public(key: ApiKey) -> dict[str, Any]:
    """A key as shown to people: never its hash or plaintext."""
    return {
        "id": key.id,
        "name": key.name,
        "scope": key.scope,
        "created_at": key.created_at.isoformat(),
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
    }


class KeyOps:
    def __init__(self, service: Loopwatch) -> None:
        self._service = service

    def create(self, actor: str, scope: str, name: str | None) -> dict[str, Any]:
        key, plaintext = self._service.keys.create(scope, name)
        self._service.audit.record(actor, "key.created", key.id, {"scope": key.scope, "name": key.name})
        return {**key_public(key), "key": plaintext}

    def list(self) -> builtins.list[dict[str, Any]]:
        return [key_public(k) for k in self._service.keys.list()]

    def revoke(self, actor: str, key_id: str) -> dict[str, Any]:
        key = self._service.keys.revoke(key_id)
        self._service.audit.record(actor, "key.revoked", key.id)
        return key_public(key)
