"""The notification outbox: every notification is a row first and a Slack message second.

A row is written in the same process step that decides to notify; a dispatcher delivers due
rows, retrying transient failures with backoff for as long as it takes, and records the posted
message's ``ts`` so resolutions update the original message and repeats go in its thread. A
Slack outage therefore delays notifications but loses none; ``dedup_key`` (unique) makes
re-planning the same notification after a restart a no-op, so none is sent twice.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from monitor.alerting.notice import AlertNotice
from monitor.clock import Clock, utcnow
from monitor.db import Database

MAX_BACKOFF = timedelta(minutes=5)


def notice_to_json(notice: AlertNotice) -> str:
    return json.dumps(
        dataclasses.asdict(notice), default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v)
    )


def notice_from_json(text: str) -> AlertNotice:
    data = json.loads(text)
    for key in ("window_start", "window_end", "started_at", "silenced_until"):
        if data.get(key):
            data[key] = datetime.fromisoformat(data[key])
    return AlertNotice(**data)


def backoff(attempts: int) -> timedelta:
    """1 s, 2 s, 4 s … capped at 5 minutes."""
    return min(MAX_BACKOFF, timedelta(seconds=2 ** max(0, attempts - 1)))


class Outbox:
    def __init__(self, db: Database, now: Clock = utcnow) -> None:
        self._db = db
        self._now = now

    def enqueue(
        self,
        *,
        dedup_key: str,
        alert_id: str,
        group_key: str,
        kind: str,
        channel: str,
        notice: AlertNotice,
        not_before: datetime,
    ) -> bool:
        """Add a notification; False if one with the same dedup key exists (already planned or sent)."""
        now = self._now()
        try:
            with self._db.transaction() as cur:
                cur.execute(
                    "INSERT INTO outbox (id, dedup_key, alert_id, group_key, kind, channel, payload, status, attempts, "
                    "not_before, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)",
                    [
                        "ob_" + uuid.uuid4().hex[:12],
                        dedup_key,
                        alert_id,
                        group_key,
                        kind,
                        channel,
                        notice_to_json(notice),
                        not_before,
                        not_before,
                        now,
                    ],
                ).fetchall()
        except duckdb.ConstraintException:
            return False
        return True

    def due(self, now: datetime, limit: int = 100) -> list[dict[str, Any]]:
        return self._db.query_dicts(
            "SELECT id, alert_id, group_key, kind, channel, payload, attempts, last_error FROM outbox "
            "WHERE status = 'pending' AND not_before <= ? AND next_attempt_at <= ? ORDER BY not_before, created_at "
            "LIMIT ?",
            [now, now, limit],
        )

    def pending_flush(self, group_key: str) -> datetime | None:
        """When the group's next batch goes out, if one is already waiting (new alerts join it)."""
        row = self._db.query_one(
            "SELECT min(not_before) FROM outbox WHERE group_key = ? AND status = 'pending' AND attempts = 0 "
            "AND kind IN ('new', 'resolved')",
            [group_key],
        )
        return row[0] if row else None

    def last_sent(self, group_key: str) -> datetime | None:
        row = self._db.query_one(
            "SELECT max(sent_at) FROM outbox WHERE group_key = ? AND kind IN ('new', 'resolved')", [group_key]
        )
        return row[0] if row else None

    def mark_sent(self, row_id: str, ts: str | None) -> None:
        with self._db.transaction() as cur:
            cur.execute(
                "UPDATE outbox SET status = 'sent', sent_at = ?, slack_ts = ?, attempts = attempts + 1 WHERE id = ?",
                [self._now(), ts, row_id],
            ).fetchall()

    def mark_retry(self, row_id: str, error: str, attempts: int, retry_after: float | None = None) -> datetime:
        delay = timedelta(seconds=retry_after) if retry_after else backoff(attempts + 1)
        at = self._now() + delay
        with self._db.transaction() as cur:
            cur.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE id = ?",
                [error[:2000], at, row_id],
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

    def rows(self, alert_id: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT id, alert_id, kind, channel, status, attempts, not_before, last_error, slack_ts, sent_at FROM outbox"
        params: list[Any] = []
        if alert_id:
            sql += " WHERE alert_id = ?"
            params.append(alert_id)
        out = self._db.query_dicts(sql + " ORDER BY created_at", params)
        for item in out:
            for key in ("not_before", "sent_at"):
                item[key] = item[key].astimezone(UTC).isoformat() if item[key] else None
        return out
