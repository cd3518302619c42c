"""Browser sessions: a person signs in once with an API key and gets a session cookie, so pages
(dashboards, API docs) work in a browser without ever putting a key in a URL.

The cookie holds a random token; only its hash is stored, with the key's id and scope and an
expiry. Revoking the key ends its sessions.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from monitor.clock import Clock, utcnow
from monitor.db import Database
from monitor.keys import ApiKey, hash_key

SESSION_LIFETIME = timedelta(hours=12)


@dataclass(frozen=True)
class Session:
    key_id: str
    scope: str


class SessionStore:
    def __init__(self, db: Database, now: Clock = utcnow, lifetime: timedelta = SESSION_LIFETIME) -> None:
        self._db = db
        self._now = now
        self._lifetime = lifetime

    def create(self, key: ApiKey) -> str:
        token = secrets.token_urlsafe(32)
        now = self._now()
        with self._db.transaction() as cur:
            cur.execute("DELETE FROM sessions WHERE expires_at < ?", [now]).fetchall()
            cur.execute(
                "INSERT INTO sessions VALUES (?, ?, ?, ?, ?)",
                [hash_key(token), key.id, key.scope, now, now + self._lifetime],
            ).fetchall()
        return token

    def get(self, token: str) -> Session | None:
        if not token or len(token) > 100:
            return None
        row = self._db.query_one(
            "SELECT s.key_id, s.scope FROM sessions s JOIN api_keys k ON k.id = s.key_id "
            "WHERE s.token_hash = ? AND s.expires_at > ? AND k.revoked_at IS NULL",
            [hash_key(token), self._now()],
        )
        return Session(*row) if row else None

    def end(self, token: str) -> None:
        with self._db.transaction() as cur:
            cur.execute("DELETE FROM sessions WHERE token_hash = ?", [hash_key(token)]).fetchall()
