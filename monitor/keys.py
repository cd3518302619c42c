"""API keys with scopes. A key is shown once at creation; only its SHA-256 is stored.

Keys are long random tokens, so a fast hash is enough (no password stretching needed) and
verification stays cheap on every request.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from monitor.clock import Clock, utcnow
from monitor.db import Database
from monitor.errors import InvalidInput, NotFound

Scope = Literal["ingest", "read", "admin"]
SCOPES: tuple[Scope, ...] = ("ingest", "read", "admin")
KEY_PREFIX = "lw_"


def scope_allows(have: str, need: Scope) -> bool:
    """``admin`` may do anything; ``read`` and ``ingest`` only their own kind of request."""
    return have == "admin" or have == need


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str | None
    scope: str
    created_at: datetime
    revoked_at: datetime | None = None


class KeyStore:
    def __init__(self, db: Database, now: Clock = utcnow) -> None:
        self._db = db
        self._now = now
        self._cache: dict[str, ApiKey] = {}
        self._lock = threading.Lock()

    def create(self, scope: str, name: str | None = None) -> tuple[ApiKey, str]:
        """Create a key; returns the record and the plaintext, which is never stored."""
        if scope not in SCOPES:
            raise InvalidInput(f"scope must be one of {list(SCOPES)}, got {scope!r}")
        key_id = "key_" + secrets.token_hex(6)
        plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
        now = self._now()
        with self._db.transaction() as cur:
            cur.execute(
                "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, NULL)", [key_id, name, scope, hash_key(plaintext), now]
            ).fetchall()
        return ApiKey(key_id, name, scope, now), plaintext

    def verify(self, plaintext: str) -> ApiKey | None:
        """The live key matching ``plaintext``, or ``None``."""
        if not plaintext.startswith(KEY_PREFIX) or len(plaintext) > 200:
            return None
        digest = hash_key(plaintext)
        if digest in self._cache:
            return self._cache[digest]
        row = self._db.query_one(
            "SELECT id, name, scope, created_at, revoked_at FROM api_keys WHERE hash = ?", [digest]
        )
        key = ApiKey(*row) if row and row[4] is None else None
        if key is not None:  # only hits are cached: random bogus keys must not grow memory
            with self._lock:
                self._cache[digest] = key
        return key

    def list(self) -> list[ApiKey]:
        rows = self._db.query("SELECT id, name, scope, created_at, revoked_at FROM api_keys ORDER BY created_at")
        return [ApiKey(*r) for r in rows]

    def revoke(self, key_id: str) -> ApiKey:
        with self._db.transaction() as cur:
            rows = cur.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL RETURNING id",
                [self._now(), key_id],
            ).fetchall()
        if not rows:
            raise NotFound(f"no active key with id {key_id!r}")
        with self._lock:
            self._cache.clear()
        return next(k for k in self.list() if k.id == key_id)
