"""Alerts: identity, the pending → firing → resolved state machine, acknowledgement, timeline.

An alert's identity is the fingerprint of (model, monitor, detector, segment, metric, column):
the same series across windows. Each run's findings move that series' alert: a bad finding
(a status the monitor fires on) counts a consecutive bad window — ``for`` of them make a
pending alert fire; a finding that is no longer bad resolves it; ``insufficient_data`` leaves
it alone (a quiet window is not a recovery). A run that fails is its own alert, so a broken
monitor is never silent. One row per episode: a fingerprint that fires again after resolving
opens a new alert.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from monitor.alerting.describe import title, what_changed
from monitor.clock import Clock, iso_z, utcnow
from monitor.db import Database
from monitor.errors import Conflict, NotFound
from monitor.registry import Registry

if TYPE_CHECKING:
    from monitor.scheduling import RunOutcome

ACTIVE = ("pending", "firing")
COLUMNS = (
    "id",
    "fingerprint",
    "model_id",
    "monitor",
    "detector",
    "metric",
    "column_name",
    "segment",
    "severity",
    "state",
    "consecutive",
    "started_at",
    "fired_at",
    "resolved_at",
    "last_window_start",
    "last_window_end",
    "value",
    "threshold",
    "model_version",
    "what_changed",
    "finding_status",
    "last_run_id",
    "route",
    "acked_by",
    "acked_at",
    "repeats",
    "last_notified_at",
    "updated_at",
)


def fingerprint(
    model: str, monitor: str, detector: str, segment: dict[str, Any] | None, metric: str, column: str | None
) -> str:
    key = json.dumps([model, monitor, detector, sorted((segment or {}).items()), metric, column])
    return hashlib.sha256(key.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Transition:
    """An alert that started firing or resolved in this run (what the notification stages act on)."""

    alert_id: str
    kind: Literal["new", "resolved"]


class AlertStore:
    def __init__(self, db: Database, registry: Registry, now: Clock = utcnow) -> None:
        self._db = db
        self._registry = registry
        self._now = now

    # -- the state stage --------------------------------------------------------------------

    def observe(self, outcome: RunOutcome) -> list[Transition]:
        """Apply one run's findings to the alert state; returns the alerts that fired or resolved."""
        run, spec = outcome.run, outcome.monitor
        model = self._registry.get(run.model)
        observations: list[tuple[dict[str, Any], bool | None]] = []
        error_finding = {
            "detector": "run_error",
            "metric": "run_error",
            "model": run.model,
            "column": None,
            "segment": None,
            "status": "critical" if outcome.error else "ok",
            "value": None,
            "threshold": None,
            "details": {},
            "reference": None,
            "model_version": None,
        }
        observations.append((error_finding, bool(outcome.error)))
        for finding in outcome.findings:
            data = finding.to_dict()
            status = data["status"]
            bad: bool | None = status in spec.fire_on
            if status == "insufficient_data":
                bad = None  # not evidence either way
            observations.append((data, bad))
        transitions: list[Transition] = []
        now = self._now()
        with self._db.transaction() as cur:
            for data, bad in observations:
                fp = fingerprint(
                    run.model, spec.name, data["detector"], data.get("segment"), data["metric"], data.get("column")
                )
                rows = cur.execute(
                    f"SELECT {', '.join(COLUMNS)} FROM alerts WHERE fingerprint = ? AND state IN ('pending', 'firing')",
                    [fp],
                ).fetchall()
                current = dict(zip(COLUMNS, rows[0], strict=True)) if rows else None
                if bad is None:
                    continue
                if current is not None and current["last_window_end"] and run.window_end < current["last_window_end"]:
                    continue  # a re-judged older window must not move an alert backwards in time
                if bad:
                    line = f"run failed: {outcome.error}" if data["detector"] == "run_error" else what_changed(data)
                    if current is None:
                        alert_id = "al_" + uuid.uuid4().hex[:12]
                        fires = spec.for_ <= 1
                        cur.execute(
                            "INSERT INTO alerts (id, fingerprint, model_id, monitor, detector, metric, column_name, "
                            "segment, severity, state, consecutive, started_at, fired_at, last_window_start, "
                            "last_window_end, value, threshold, model_version, what_changed, finding_status, "
                            "last_run_id, route, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, "
                            "?, ?, ?, ?, ?, ?)",
                            [
                                alert_id,
                                fp,
                                model.id,
                                spec.name,
                                data["detector"],
                                data["metric"],
                                data.get("column"),
                                json.dumps(data["segment"]) if data.get("segment") else None,
                                spec.severity,
                                "firing" if fires else "pending",
                                run.window_end,
                                now if fires else None,
                                run.window_start,
                                run.window_end,
                                data.get("value"),
                                data.get("threshold"),
                                data.get("model_version"),
                                line,
                                data["status"],
                                run.id,
                                spec.route.model_dump_json(),
                                now,
                            ],
                        ).fetchall()
                        self._event(
                            cur, alert_id, "fired" if fires else "pending", None, {"run_id": run.id, "line": line}
                        )
                        if fires:
                            transitions.append(Transition(alert_id, "new"))
                    else:
                        consecutive = current["consecutive"] + 1
                        fires = current["state"] == "pending" and consecutive >= spec.for_
                        cur.execute(
                            "UPDATE alerts SET consecutive = ?, state = ?, fired_at = coalesce(fired_at, ?), "
                            "last_window_start = ?, last_window_end = ?, value = ?, threshold = ?, what_changed = ?, "
                            "finding_status = ?, last_run_id = ?, severity = ?, route = ?, updated_at = ? WHERE id = ?",
                            [
                                consecutive,
                                "firing" if fires or current["state"] == "firing" else "pending",
                                now if fires else None,
                                run.window_start,
                                run.window_end,
                                data.get("value"),
                                data.get("threshold"),
                                line,
                                data["status"],
                                run.id,
                                spec.severity,
                                spec.route.model_dump_json(),
                                now,
                                current["id"],
                            ],
                        ).fetchall()
                        if fires:
                            self._event(cur, current["id"], "fired", None, {"run_id": run.id, "line": line})
                            transitions.append(Transition(current["id"], "new"))
                elif current is not None:
                    was_firing = current["state"] == "firing"
                    cur.execute(
                        "UPDATE alerts SET state = 'resolved', resolved_at = ?, consecutive = 0, last_run_id = ?, "
                        "finding_status = ?, value = ?, updated_at = ? WHERE id = ?",
                        [now, run.id, data["status"], data.get("value"), now, current["id"]],
                    ).fetchall()
                    self._event(cur, current["id"], "resolved" if was_firing else "cleared", None, {"run_id": run.id})
                    if was_firing:
                        transitions.append(Transition(current["id"], "resolved"))
        return transitions

    # -- reads and on-call actions -----------------------------------------------------------

    def get(self, alert_id: str) -> dict[str, Any]:
        rows = self._db.query(
            f"SELECT {', '.join('a.' + c for c in COLUMNS)}, m.name FROM alerts a JOIN models m ON m.id = a.model_id "
            "WHERE a.id = ?",
            [alert_id],
        )
        if not rows:
            raise NotFound(f"no alert with id {alert_id!r}")
        return self._public(rows[0])

    def list(
        self,
        *,
        state: str | None = None,
        model: str | None = None,
        severity: str | None = None,
        active: bool | None = None,
        limit: int = 200,
    ) -> list[dict[str, Any]]:
        where, params = ["TRUE"], []
        if state:
            where.append("a.state = ?")
            params.append(state)
        if active is True:
            where.append("a.state IN ('pending', 'firing')")
        if active is False:
            where.append("a.state = 'resolved'")
        if model:
            where.append("m.name = ?")
            params.append(model)
        if severity:
            where.append("a.severity = ?")
            params.append(severity)
        rows = self._db.query(
            f"SELECT {', '.join('a.' + c for c in COLUMNS)}, m.name FROM alerts a JOIN models m ON m.id = a.model_id "
            f"WHERE {' AND '.join(where)} ORDER BY a.updated_at DESC LIMIT ?",
            [*params, limit],
        )
        return [self._public(r) for r in rows]

    def events(self, alert_id: str) -> list[dict[str, Any]]:
        rows = self._db.query(
            "SELECT occurred_at, event, actor, details FROM alert_events WHERE alert_id = ? ORDER BY occurred_at, event",
            [alert_id],
        )
        return [
            {"at": iso_z(at), "event": ev, "actor": actor, "details": json.loads(d or "{}")}
            for at, ev, actor, d in rows
        ]

    def ack(self, alert_id: str, actor: str) -> dict[str, Any]:
        """Acknowledge: repeats stop; the alert still resolves when the condition clears."""
        alert = self.get(alert_id)
        if alert["state"] == "resolved":
            raise Conflict(f"alert {alert_id} is already resolved")
        if alert["acked_by"]:
            return alert
        now = self._now()
        with self._db.transaction() as cur:
            cur.execute(
                "UPDATE alerts SET acked_by = ?, acked_at = ?, updated_at = ? WHERE id = ?", [actor, now, now, alert_id]
            ).fetchall()
            self._event(cur, alert_id, "acknowledged", actor, {})
        return self.get(alert_id)

    def record_event(
        self, alert_id: str, event: str, actor: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        with self._db.transaction() as cur:
            self._event(cur, alert_id, event, actor, details or {})

    def mark_notified(self, alert_ids: Sequence[str], *, repeat: bool = False) -> None:
        """Record that on-call was told about these alerts now (their group's message was
        posted, updated or repeated). Where and how is the notifier's business, not the alert's."""
        if not alert_ids:
            return
        now = self._now()
        with self._db.transaction() as cur:
            cur.execute(
                "UPDATE alerts SET last_notified_at = ?, repeats = repeats + CASE WHEN ? THEN 1 ELSE 0 END "
                "WHERE list_contains(?, id)",
                [now, repeat, list(alert_ids)],
            ).fetchall()

    @staticmethod
    def _event(cur: Any, alert_id: str, event: str, actor: str | None, details: dict[str, Any]) -> None:
        cur.execute(
            "INSERT INTO alert_events VALUES (?, now(), ?, ?, ?)",
            [alert_id, event, actor, json.dumps(details, default=str)],
        ).fetchall()

    @staticmethod
    def _public(row: tuple[Any, ...]) -> dict[str, Any]:
        data = dict(zip((*COLUMNS, "model"), row, strict=True))
        data.pop("model_id")
        data["column"] = data.pop("column_name")
        data["segment"] = json.loads(data["segment"]) if data["segment"] else None
        data["route"] = json.loads(data["route"]) if data["route"] else {}
        for key in (
            "started_at",
            "fired_at",
            "resolved_at",
            "last_window_start",
            "last_window_end",
            "acked_at",
            "last_notified_at",
            "updated_at",
        ):
            data[key] = iso_z(data[key])
        data["title"] = title(
            {
                "model": data["model"],
                "detector": data["detector"],
                "metric": data["metric"],
                "column": data["column"],
                "segment": data["segment"],
            }
        )
        return data
