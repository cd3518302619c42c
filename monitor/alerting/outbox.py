"""The notification outbox: every notification is a row first and a message second.

A row is written in the same process step that decides to notify; the dispatcher delivers
due rows, retrying transient failures with backoff for as long as it takes. Rows name a
*group* and what to do — ``flush`` (post or rewrite the group's message to show its current
state) or ``repeat`` (a note in its thread) — never a rendered message: a flush delivered
after an outage renders the group as it is *then*, so a resolution that happened while the
receiver was down is what arrives. A group has at most one pending flush (later changes
coalesce into it), and repeats carry a unique ``dedup_key``, so re-planning after a restart
sends nothing twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import duckdb

from monitor.clock import Clock, utcnow
from monitor.db import Database

MAX_BACKOFF = timedelta(minutes=5)
RowKind = Literal["flush", "repeat"]


def backoff(attempts: int) -> timedelta:
    """1 s, 2 s, 4 s … capped at 5 minutes."""
    return min(MAX_BACKOFF, timedelta(seconds=2 ** max(0, attempts - 1)))


@dataclass(frozen=True)
class OutboxRow:
    """One due notification."""

    id: str
    group_id: str
    kind: RowKind
    attempts: int
    last_error: str | None
    maybe_delivered: bool


class Outbox:
    def __init__(self, db: Database, now: Clock = utcnow) -> None:
        self._db = db
        self._now = now

    def schedule_flush(self, group_id: str, not_before: datetime) -> bool:
        """Make sure the group is flushed at ``not_before`` at the latest. Joins a pending flush
        (moving it earlier if needed); returns True only when a new row was added."""
        now = self._now()
        with self._db.transaction() as cur:
            pending = cur.execute(
                "SELECT id, not_before, attempts FROM outbox WHERE group_id = ? AND kind = 'flush' "
                "AND status = 'pending' LIMIT 1",
                [group_id],
            ).fetchall()
            if pending:
                row_id, current, attempts = pending[0]
                if not_before < current and attempts == 0:
                    cur.execute(
                        "UPDATE outbox SET not_before = ?, next_attempt_at = ? WHERE id = ?",
                        [not_before, not_before, row_id],
                    ).fetchall()
                return False
            cur.execute(
                "INSERT INTO outbox (id, dedup_key, group_id, kind, status, attempts, not_before, next_attempt_at, "
                "created_at) VALUES (?, ?, ?, 'flush', 'pending', 0, ?, ?, ?)",
                [
                    "ob_" + uuid.uuid4().hex[:12],
                    f"{group_id}:flush:{uuid.uuid4().hex[:12]}",
                    group_id,
                    not_before,
                    not_before,
                    now,
                ],
            ).fetchall()
        return True

    def schedule_repeat(self, group_id: str, number: int, at: datetime) -> bool:
        """The group's ``number``-th repeat; False if it was already planned (or sent)."""
        try:
            with self._db.transaction() as cur:
                cur.execute(
                    "INSERT INTO outbox (id, dedup_key, group_id, kind, status, attempts, not_before, "
                    "next_attempt_at, created_at) VALUES (?, ?, ?, 'repeat', 'pending', 0, ?, ?, ?)",
                    ["ob_" + uuid.uuid4().hex[:12], f"{group_id}:repeat:{number}", group_id, at, at, self._now()],
                ).fetchall()
        except duckdb.ConstraintException:
            return False
        return True

    def pending_flush(self, group_id: str) -> datetime | None:
        """When the group's next flush goes out, if one is waiting."""
        row = self._db.query_one(
            "SELECT min(not_before) FROM outbox WHERE group_id = ? AND kind = 'flush' AND status = 'pending'",
            [group_id],
        )
        return row[0] if row else None

    def due(self, now: datetime, limit: int = 100) -> list[OutboxRow]:
        rows = self._db.query_dicts(
            "SELECT id, group_id, kind, attempts, last_error, maybe_delivered FROM outbox "
            "WHERE status = 'pending' AND not_before <= ? AND next_attempt_at <= ? ORDER BY not_before, created_at "
            "LIMIT ?",
            [now, now, limit],
        )
        return [OutboxRow(**row) for row in rows]

    def mark_sent(self, row_id: str, receipt: str | None) -> None:
        with self._db.transaction() as cur:
            cur.execute(
                "UPDATE outbox SET status = 'sent', sent_at = ?, receipt = ?, attempts = attempts + 1, "
                "maybe_delivered = FALSE WHERE id = ?",
                [self._now(), receipt, row_id],
            ).fetchall()

    def mark_retry(
        self, row_id: str, error: str, attempts: int, retry_after: float | None = None, *, maybe_delivered: bool
    ) -> datetime:
        delay = timedelta(seconds=retry_after) if retry_after else backoff(attempts + 1)
        at = self._now() + delay
        with self._db.transaction() as cur:
            cur.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, "
                "maybe_delivered = maybe_delivered OR ? WHERE id = ?",
                [error[:2000], at, maybe_delivered, row_id],
            ).fetchall()
        return at

    def mark_failed(self, row_id: str, error: str) -> None:
        with self._db.transaction() as cur:
            cur.execute(
                "UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = ? WHERE id = ?",
                [error[:2000], row_id],
            ).fetchall()

    def depth(self) -> int:
        row = self._db.query_one("SELECT count(*) FROM outbox WHERE status = 'pending'")
        return int(row[0]) if row else 0

    def rows(self, group_ids: list[str] | None = None) -> list[dict[str, Any]]:
        """Rows for the API (times as ISO strings), optionally only these groups'."""
        sql = "SELECT id, group_id, kind, status, attempts, not_before, last_error, receipt, sent_at FROM outbox"
        params: list[Any] = []
        if group_ids is not None:
            sql += " WHERE list_contains(?, group_id)"
            params.append(group_ids)
        out = self._db.query_dicts(sql + " ORDER BY created_at", params)
        for item in out:
            for key in ("not_before", "sent_at"):
                item[key] = item[key].astimezone(UTC).isoformat() if item[key] else None
        return out
