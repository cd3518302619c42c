"""Alert groups (Alertmanager's aggregation groups): the unit that gets one notification.

A group is one *episode* of alerts that share their route's ``group_by`` labels and go to the
same receiver and channel. It opens when its first alert fires, collects every alert of the
same labels that fires while it is open, and closes once a notification has shown every one
of them resolved; the next alert with those labels opens a new group (a new message).

``version`` counts changes to what the group's message should show (an alert joined,
resolved, was acknowledged or silenced). A delivery remembers the version it rendered; if
the version moved while the message was in flight, the delivery is not the last word and the
group is flushed again (see :meth:`GroupStore.flushed`).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from monitor.clock import Clock, utcnow
from monitor.db import Database
from monitor.errors import NotFound
from monitor.monitors import RouteSpec

GroupState = Literal["open", "closed"]
_FIELDS = (
    "id, group_key, receiver, channel, labels, route, state, version, created_at, last_flush_at, "
    "last_notified_at, repeats, closed_at"
)


def group_labels(alert: dict[str, Any], group_by: list[str]) -> dict[str, str]:
    """The alert's values for ``group_by`` (in that order); a label it lacks is ``""``."""
    out: dict[str, str] = {}
    for label in group_by:
        if label.startswith("segment."):
            value = (alert.get("segment") or {}).get(label.removeprefix("segment."))
        else:
            value = alert.get(label)
        out[label] = "" if value is None else str(value)
    return out


def group_key(receiver: str, channel: str, labels: dict[str, str]) -> str:
    """Stable identity of a group across episodes: receiver, channel and grouping labels."""
    raw = json.dumps([receiver, channel, sorted(labels.items())])
    return hashlib.sha256(raw.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class AlertGroup:
    """One episode of a group, with its member alert ids (in the order they joined)."""

    id: str
    key: str
    receiver: str
    channel: str
    labels: dict[str, str]
    route: RouteSpec
    state: GroupState
    version: int
    created_at: datetime
    last_flush_at: datetime | None
    last_notified_at: datetime | None
    repeats: int
    closed_at: datetime | None
    alert_ids: tuple[str, ...]


@dataclass(frozen=True)
class Joined:
    """What :meth:`GroupStore.join` did: the group, and whether it was new / the alert new in it."""

    group: AlertGroup
    created: bool
    joined: bool


class GroupStore:
    """Persists groups and their members (tables ``alert_groups``, ``alert_group_members``)."""

    def __init__(self, db: Database, now: Clock = utcnow) -> None:
        self._db = db
        self._now = now

    def join(self, *, receiver: str, channel: str, labels: dict[str, str], route: RouteSpec, alert_id: str) -> Joined:
        """Add a firing alert to the open group of its labels, opening one if there is none."""
        key = group_key(receiver, channel, labels)
        now = self._now()
        with self._db.transaction() as cur:
            row = cur.execute(
                "SELECT id FROM alert_groups WHERE group_key = ? AND state = 'open' ORDER BY created_at DESC LIMIT 1",
                [key],
            ).fetchall()
            created = not row
            group_id = "grp_" + uuid.uuid4().hex[:12] if created else row[0][0]
            if created:
                cur.execute(
                    "INSERT INTO alert_groups (id, group_key, receiver, channel, labels, route, state, version, "
                    "created_at, repeats) VALUES (?, ?, ?, ?, ?, ?, 'open', 0, ?, 0)",
                    [group_id, key, receiver, channel, json.dumps(labels), route.model_dump_json(), now],
                ).fetchall()
            member = cur.execute(
                "SELECT 1 FROM alert_group_members WHERE group_id = ? AND alert_id = ?", [group_id, alert_id]
            ).fetchall()
            joined = not member
            if joined:
                cur.execute("INSERT INTO alert_group_members VALUES (?, ?, ?)", [group_id, alert_id, now]).fetchall()
                cur.execute(
                    "UPDATE alert_groups SET version = version + 1, route = ? WHERE id = ?",
                    [route.model_dump_json(), group_id],
                ).fetchall()
        return Joined(self.get(group_id), created, joined)

    def touch(self, group_id: str) -> AlertGroup:
        """Something its message shows changed (a member resolved, was acked or silenced)."""
        with self._db.transaction() as cur:
            cur.execute("UPDATE alert_groups SET version = version + 1 WHERE id = ?", [group_id]).fetchall()
        return self.get(group_id)

    def flushed(self, group_id: str, version: int, *, close: bool) -> bool:
        """A notification rendering ``version`` was delivered. Returns False (and closes
        nothing) when the group changed meanwhile: it must be flushed again."""
        now = self._now()
        with self._db.transaction() as cur:
            current = cur.execute("SELECT version FROM alert_groups WHERE id = ?", [group_id]).fetchall()
            unchanged = bool(current) and current[0][0] == version
            cur.execute(
                "UPDATE alert_groups SET last_flush_at = ?, last_notified_at = coalesce(last_notified_at, ?), "
                "state = CASE WHEN ? THEN 'closed' ELSE state END, closed_at = CASE WHEN ? THEN ? ELSE closed_at END "
                "WHERE id = ?",
                [now, now, close and unchanged, close and unchanged, now, group_id],
            ).fetchall()
        return unchanged

    def repeated(self, group_id: str) -> None:
        """A repeat went out: the next one is due ``repeat_interval`` from now."""
        with self._db.transaction() as cur:
            cur.execute(
                "UPDATE alert_groups SET last_notified_at = ?, repeats = repeats + 1 WHERE id = ?",
                [self._now(), group_id],
            ).fetchall()

    def get(self, group_id: str) -> AlertGroup:
        groups = self._select("WHERE id = ?", [group_id])
        if not groups:
            raise NotFound(f"no alert group with id {group_id!r}")
        return groups[0]

    def open_groups(self) -> list[AlertGroup]:
        return self._select("WHERE state = 'open'", [])

    def of_alert(self, alert_id: str, *, open_only: bool = False) -> list[AlertGroup]:
        """The groups an alert belongs to (newest first)."""
        where = "WHERE id IN (SELECT group_id FROM alert_group_members WHERE alert_id = ?)"
        if open_only:
            where += " AND state = 'open'"
        return self._select(where, [alert_id])

    def _select(self, where: str, params: list[Any]) -> list[AlertGroup]:
        rows = self._db.query_dicts(f"SELECT {_FIELDS} FROM alert_groups {where} ORDER BY created_at DESC", params)
        if not rows:
            return []
        members: dict[str, list[str]] = {}
        for group_id, alert_id in self._db.query(
            "SELECT group_id, alert_id FROM alert_group_members WHERE list_contains(?, group_id) "
            "ORDER BY joined_at, alert_id",
            [[r["id"] for r in rows]],
        ):
            members.setdefault(group_id, []).append(alert_id)
        return [
            AlertGroup(
                id=r["id"],
                key=r["group_key"],
                receiver=r["receiver"],
                channel=r["channel"],
                labels=json.loads(r["labels"]),
                route=RouteSpec.model_validate_json(r["route"]),
                state=r["state"],
                version=int(r["version"]),
                created_at=r["created_at"],
                last_flush_at=r["last_flush_at"],
                last_notified_at=r["last_notified_at"],
                repeats=int(r["repeats"]),
                closed_at=r["closed_at"],
                alert_ids=tuple(members.get(r["id"], [])),
            )
            for r in rows
        ]
