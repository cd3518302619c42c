"""The audit log: who did what, when. Acks, silences, key creation and dataset builds land here
so users in regulated settings can reconstruct every action."""

from __future__ import annotations

import json
from typing import Any

from monitor.clock import Clock, utcnow
from monitor.db import Database


class AuditLog:
    def __init__(self, db: Database, now: Clock = utcnow) -> None:
        self._db = db
        self._now = now

    def record(self, actor: str, action: str, target: str | None = None, details: dict[str, Any] | None = None) -> None:
        with self._db.transaction() as cur:
            cur.execute(
                'INSERT INTO audit_log ("at", actor, action, target, details) VALUES (?, ?, ?, ?, ?)',
                [self._now(), actor, action, target, json.dumps(details or {}, default=str)],
            ).fetchall()

    def list(self, limit: int = 100, action: str | None = None) -> list[dict[str, Any]]:
        sql = 'SELECT id, "at", actor, action, target, details FROM audit_log'
        params: list[Any] = []
        if action:
            sql += " WHERE action = ?"
            params.append(action)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        return [
            {
                "id": i,
                "at": at.isoformat(),
                "actor": actor,
                "action": act,
                "target": tgt,
                "details": json.loads(d or "{}"),
            }
            for i, at, actor, act, tgt, d in self._db.query(sql, params)
        ]
