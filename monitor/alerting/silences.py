"""Silences: matchers plus an expiry. A silenced alert still changes state and shows in the API
and dashboards; it only stops notifying. Matchers are exact label matches on ``model``,
``monitor``, ``detector``, ``metric``, ``column``, ``severity``, ``model_version``, ``alert_id``
and ``segment.<name>``; a label the alert does not have matches the empty string (so a
silence of a group's labels — the Slack "Silence 1h" button — matches exactly that group)."""

from __future__ import annotations

import builtins
import json
import uuid
from datetime import datetime
from typing import Any

from monitor.clock import Clock, iso_z, utcnow
from monitor.db import Database
from monitor.errors import FieldError, InvalidInput, NotFound

LABELS = frozenset({"model", "monitor", "detector", "metric", "column", "severity", "model_version", "alert_id"})


def alert_labels(alert: dict[str, Any]) -> dict[str, str]:
    labels = {k: str(alert[k]) for k in ("model", "monitor", "detector", "metric", "severity") if alert.get(k)}
    labels["alert_id"] = alert["id"]
    if alert.get("column"):
        labels["column"] = alert["column"]
    if alert.get("model_version"):
        labels["model_version"] = str(alert["model_version"])
    for name, value in (alert.get("segment") or {}).items():
        labels[f"segment.{name}"] = str(value)
    return labels


def matches(matchers: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key, "") == value for key, value in matchers.items())


class SilenceStore:
    def __init__(self, db: Database, now: Clock = utcnow) -> None:
        self._db = db
        self._now = now

    def create(
        self,
        matchers: dict[str, str],
        ends_at: datetime,
        created_by: str,
        comment: str | None = None,
        starts_at: datetime | None = None,
    ) -> dict[str, Any]:
        errors = [
            FieldError(field=f"matchers.{k}", reason=f"unknown label; use {sorted(LABELS)} or segment.<name>")
            for k in matchers
            if k not in LABELS and not k.startswith("segment.")
        ]
        if not matchers:
            errors.append(FieldError(field="matchers", reason="at least one matcher is required"))
        now = self._now()
        starts = starts_at or now
        if ends_at <= max(starts, now):
            errors.append(FieldError(field="ends_at", reason="must be in the future and after starts_at"))
        if errors:
            raise InvalidInput("silence is not valid", errors)
        silence_id = "si_" + uuid.uuid4().hex[:12]
        with self._db.transaction() as cur:
            cur.execute(
                "INSERT INTO silences VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                [silence_id, json.dumps(matchers, sort_keys=True), starts, ends_at, created_by, comment, now],
            ).fetchall()
        return self.get(silence_id)

    def get(self, silence_id: str) -> dict[str, Any]:
        rows = self._rows("WHERE id = ?", [silence_id])
        if not rows:
            raise NotFound(f"no silence with id {silence_id!r}")
        return rows[0]

    def list(self, active_only: bool = False) -> list[dict[str, Any]]:
        if active_only:
            now = self._now()
            return self._rows("WHERE expired_at IS NULL AND starts_at <= ? AND ends_at > ?", [now, now])
        return self._rows("", [])

    def expire(self, silence_id: str, actor: str) -> dict[str, Any]:
        self.get(silence_id)
        with self._db.transaction() as cur:
            cur.execute(
                "UPDATE silences SET expired_at = ? WHERE id = ? AND expired_at IS NULL", [self._now(), silence_id]
            ).fetchall()
        return self.get(silence_id)

    def silencing(
        self, alert: dict[str, Any], active: builtins.list[dict[str, Any]] | None = None
    ) -> dict[str, Any] | None:
        """The active silence that mutes ``alert``, if any. ``active``: the active silences,
        when the caller already read them (one read for a whole list of alerts)."""
        labels = alert_labels(alert)
        for silence in self.list(active_only=True) if active is None else active:
            if matches(silence["matchers"], labels):
                return silence
        return None

    def _rows(self, where: str, params: builtins.list[Any]) -> builtins.list[dict[str, Any]]:
        rows = self._db.query(
            f"SELECT id, matchers, starts_at, ends_at, created_by, comment, created_at, expired_at FROM silences {where} "
            "ORDER BY created_at DESC",
            params,
        )
        now = self._now()
        out = []
        for sid, matchers, starts, ends, by, comment, created, expired in rows:
            out.append(
                {
                    "id": sid,
                    "matchers": json.loads(matchers),
                    "starts_at": iso_z(starts),
                    "ends_at": iso_z(ends),
                    "created_by": by,
                    "comment": comment,
                    "created_at": iso_z(created),
                    "expired_at": iso_z(expired),
                    "active": expired is None and starts <= now < ends,
                }
            )
        return out
