"""The audit log: who did what, when. Acks, silences, key creation and dataset builds land here
so users in regulated settings can reconstruct every action."""

from __future__ import annotations

import json
from datetime import datetime
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

    def list(
        self,
        limit: int = 100,
        action: str | None = None,
        *,
        actor: str | None = None,
        target: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        before_id: int | None = None,
    ) -> list[dict[str, Any]]:
        """Newest first. ``action`` ending in ``.`` or ``*`` matches a family (``alert.`` →
        every alert action); ``target`` matches exactly or as a prefix ending in ``/``
        (``harsh-braking/`` → the model's monitors); ``before_id`` pages back from an entry."""
        where: list[str] = []
        params: list[Any] = []
        if action:
            if action.endswith(("*", ".")):
                where.append("starts_with(action, ?)")
                params.append(action.rstrip("*"))
            else:
                where.append("action = ?")
                params.append(action)
        if actor:
            where.append("actor = ?")
            params.append(actor)
        if target:
            if target.endswith("/"):
                where.append("(target = ? OR starts_with(target, ?))")
                params.extend([target.rstrip("/"), target])
            else:
                where.append("target = ?")
                params.append(target)
        if since is not None:
            where.append('"at" >= ?')
            params.append(since)
        if until is not None:
            where.append('"at" < ?')
            params.append(until)
        if before_id is not None:
            where.append("id < ?")
            params.append(before_id)
        sql = 'SELECT id, "at", actor, action, target, details FROM audit_log'
        if where:
            sql += " WHERE " + " AND ".join(where)
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
