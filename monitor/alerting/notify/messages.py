"""Where each group's message landed, per receiver (table ``group_messages``, owned here).

The pipeline asks this store whether a group already has a message (then it updates it
instead of posting) and records the outcome of every delivery: the destination id and
message id a receiver returned, the state the message now shows, and the last delivery
error (shown on the alert's page and in ``GET /v1/alerts/{id}``). Receiver-neutral names:
for Slack ``channel_id`` is the channel id and ``message_id`` the message ``ts``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from monitor.alerting.notify import MessageRef
from monitor.clock import Clock, utcnow
from monitor.db import Database

MessageState = Literal["pending", "firing", "resolved", "failed"]


@dataclass(frozen=True)
class GroupMessage:
    """A group's message at one receiver."""

    group_id: str
    receiver: str
    channel: str
    channel_id: str | None
    message_id: str | None
    state: MessageState
    last_error: str | None
    posted_at: datetime | None
    updated_at: datetime

    @property
    def ref(self) -> MessageRef | None:
        """Where to update/thread, once the message exists."""
        if not self.message_id:
            return None
        return MessageRef(channel=self.channel_id or self.channel, message_id=self.message_id)


class MessageStore:
    def __init__(self, db: Database, now: Clock = utcnow) -> None:
        self._db = db
        self._now = now

    def get(self, group_id: str, receiver: str) -> GroupMessage | None:
        found = self.of_groups([group_id], receiver)
        return found[0] if found else None

    def of_groups(self, group_ids: list[str], receiver: str | None = None) -> list[GroupMessage]:
        sql = (
            "SELECT group_id, receiver, channel, channel_id, message_id, state, last_error, posted_at, updated_at "
            "FROM group_messages WHERE list_contains(?, group_id)"
        )
        params: list[object] = [group_ids]
        if receiver is not None:
            sql += " AND receiver = ?"
            params.append(receiver)
        return [GroupMessage(**row) for row in self._db.query_dicts(sql + " ORDER BY updated_at DESC", params)]

    def posted(self, group_id: str, receiver: str, channel: str, ref: MessageRef) -> None:
        """The group's message exists now (posted, or found after a lost answer)."""
        now = self._now()
        self._upsert(group_id, receiver, channel)
        with self._db.transaction() as cur:
            cur.execute(
                "UPDATE group_messages SET channel_id = ?, message_id = ?, state = 'firing', last_error = NULL, "
                "posted_at = ?, updated_at = ? WHERE group_id = ? AND receiver = ?",
                [ref.channel, ref.message_id, now, now, group_id, receiver],
            ).fetchall()

    def shown(self, group_id: str, receiver: str, state: Literal["firing", "resolved"]) -> None:
        """The message was rewritten and now shows ``state``."""
        with self._db.transaction() as cur:
            cur.execute(
                "UPDATE group_messages SET state = ?, last_error = NULL, updated_at = ? "
                "WHERE group_id = ? AND receiver = ?",
                [state, self._now(), group_id, receiver],
            ).fetchall()

    def failed(self, group_id: str, receiver: str, channel: str, error: str, *, permanent: bool) -> None:
        """A delivery failed; a permanent failure of a message never posted marks it failed."""
        self._upsert(group_id, receiver, channel)
        with self._db.transaction() as cur:
            cur.execute(
                "UPDATE group_messages SET last_error = ?, updated_at = ?, "
                "state = CASE WHEN ? AND message_id IS NULL THEN 'failed' ELSE state END "
                "WHERE group_id = ? AND receiver = ?",
                [error[:2000], self._now(), permanent, group_id, receiver],
            ).fetchall()

    def _upsert(self, group_id: str, receiver: str, channel: str) -> None:
        with self._db.transaction() as cur:
            cur.execute(
                "INSERT INTO group_messages (group_id, receiver, channel, state, updated_at) "
                "VALUES (?, ?, ?, 'pending', ?) ON CONFLICT DO NOTHING",
                [group_id, receiver, channel, self._now()],
            ).fetchall()
