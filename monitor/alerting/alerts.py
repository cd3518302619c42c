"""Alerts: identity, persistence of the state machine's records, acknowledgement, timeline.

An alert's identity is the fingerprint of (model, monitor, detector, segment, metric, column):
the same series across windows. How each run's findings move that series' alert (pending →
firing after ``for``, resolved after ``keep_firing_for`` of clearly ok windows, ``warning`` and
``insufficient_data`` neither) is decided by the pure :mod:`monitor.alerting.state`; this store
loads the records, calls it and persists the result. A run that fails is its own alert, so a
broken monitor is never silent. One row per episode: a fingerprint that fires again after
resolving opens a new alert. Only live runs move alerts (see ``RunOutcome.live``).
"""

from __future__ import annotations

import builtins
import dataclasses
import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from monitor.alerting.describe import title, what_changed
from monitor.alerting.state import AlertRecord, LifecycleRule, Observation, Verdict, step
from monitor.clock import Clock, iso_z, utcnow
from monitor.db import Database
from monitor.errors import Conflict, NotFound
from monitor.registry import Registry

if TYPE_CHECKING:
    from monitor.monitors import MonitorSpec
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


# The columns the state machine owns: AlertRecord's fields, in order (``column`` is stored as
# ``column_name``, a reserved-word-safe name), so a field added to the record is persisted too.
STATE_COLUMNS = tuple("column_name" if f.name == "column" else f.name for f in dataclasses.fields(AlertRecord))


def lifecycle_rule(spec: MonitorSpec) -> LifecycleRule:
    """A monitor's ``for``, ``keep_firing_for`` and ``fire_on`` as the state machine's rule."""
    return LifecycleRule(
        for_=spec.for_duration(), keep_firing_for=spec.keep_firing_duration(), fire_on=frozenset(spec.fire_on)
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
        """Apply one live run's findings to the alert state; returns the alerts that fired or resolved.

        The decisions are :func:`monitor.alerting.state.step`'s; this method loads each series'
        open episode, calls it, and persists what it returns. A run that is not live (a past
        window) changes nothing.
        """
        if not outcome.live:
            return []
        spec = outcome.monitor
        rule = lifecycle_rule(spec)
        observations = self._observations(outcome, rule)
        transitions: list[Transition] = []
        now = self._now()
        with self._db.transaction() as cur:
            for obs in observations:
                current = self._open_episode(cur, obs.fingerprint)
                result = step(current, obs, rule, now, new_id="al_" + uuid.uuid4().hex[:12])
                if result.record is None:
                    continue
                self._persist(cur, result.record, created=result.created)
                record = result.record
                if result.change in ("pending", "fired"):
                    self._event(cur, record.id, result.change, None, {"run_id": obs.run_id, "line": obs.what_changed})
                elif result.change in ("resolved", "cleared"):
                    self._event(cur, record.id, result.change, None, {"run_id": obs.run_id})
                if result.change == "fired":
                    transitions.append(Transition(record.id, "new"))
                elif result.change == "resolved":
                    transitions.append(Transition(record.id, "resolved"))
        return transitions

    def reference_freeze(self, model: str, monitor: str) -> datetime | None:
        """Where a monitor's trailing reference must end while it has an open alert: the start of
        the earliest first bad window among its pending or firing episodes (``None``: no open
        alert). Run-error alerts say nothing about the data and do not freeze anything."""
        row = self._db.query_one(
            "SELECT min(a.first_window_start) FROM alerts a JOIN models m ON m.id = a.model_id "
            "WHERE m.name = ? AND a.monitor = ? AND a.state IN ('pending', 'firing') AND a.detector <> 'run_error'",
            [model, monitor],
        )
        return row[0] if row else None

    def _observations(self, outcome: RunOutcome, rule: LifecycleRule) -> list[Observation]:
        """One observation per series the run speaks about: its findings, and the run itself
        (a failed run is a bad ``run_error`` window; a successful one an ok one)."""
        run, spec = outcome.run, outcome.monitor
        model_id = self._registry.get(run.model).id
        route = spec.route.model_dump_json()

        def observation(data: dict[str, Any], verdict: Verdict, line: str) -> Observation:
            segment = data.get("segment") or None
            return Observation(
                fingerprint=fingerprint(
                    run.model, spec.name, data["detector"], segment, data["metric"], data.get("column")
                ),
                verdict=verdict,
                status=data["status"],
                window_start=run.window_start,
                window_end=run.window_end,
                run_id=run.id,
                model_id=model_id,
                monitor=spec.name,
                detector=data["detector"],
                metric=data["metric"],
                column=data.get("column"),
                segment=segment,
                severity=spec.severity,
                route=route,
                value=data.get("value"),
                threshold=data.get("threshold"),
                model_version=data.get("model_version"),
                what_changed=line,
            )

        error = {"detector": "run_error", "metric": "run_error", "status": "critical" if outcome.error else "ok"}
        result = [observation(error, "bad" if outcome.error else "ok", f"run failed: {outcome.error}")]
        for finding in outcome.findings:
            data = finding.to_dict()
            verdict = rule.verdict(data["status"])
            result.append(observation(data, verdict, what_changed(data) if verdict == "bad" else ""))
        return result

    def _open_episode(self, cur: Any, fp: str) -> AlertRecord | None:
        cur.execute(
            f"SELECT {', '.join(STATE_COLUMNS)} FROM alerts WHERE fingerprint = ? AND state IN ('pending', 'firing') "
            "ORDER BY started_at DESC LIMIT 1",
            [fp],
        )
        rows = cur.fetchall()
        if not rows:
            return None
        data = dict(zip(STATE_COLUMNS, rows[0], strict=True))
        data["column"] = data.pop("column_name")
        data["segment"] = json.loads(data["segment"]) if data["segment"] else None
        data["what_changed"] = data["what_changed"] or ""
        if data["first_window_start"] is None:  # an episode opened before the column existed
            data["first_window_start"] = data["last_window_start"] or data["started_at"]
        return AlertRecord(**data)

    @staticmethod
    def _persist(cur: Any, record: AlertRecord, *, created: bool) -> None:
        values = {name: getattr(record, "column" if name == "column_name" else name) for name in STATE_COLUMNS}
        values["segment"] = json.dumps(dict(record.segment)) if record.segment else None
        if created:
            cur.execute(
                f"INSERT INTO alerts ({', '.join(STATE_COLUMNS)}) VALUES ({', '.join('?' for _ in STATE_COLUMNS)})",
                list(values.values()),
            ).fetchall()
            return
        changing = [c for c in STATE_COLUMNS if c != "id"]
        cur.execute(
            f"UPDATE alerts SET {', '.join(f'{c} = ?' for c in changing)} WHERE id = ?",
            [values[c] for c in changing] + [record.id],
        ).fetchall()

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
    ) -> builtins.list[dict[str, Any]]:
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

    def firing_counts(self) -> dict[tuple[str, str], int]:
        """Firing alerts per (model name, severity), in one grouped read (the per-model metrics)."""
        rows = self._db.query(
            "SELECT m.name, a.severity, count(*) FROM alerts a JOIN models m ON m.id = a.model_id "
            "WHERE a.state = 'firing' GROUP BY m.name, a.severity"
        )
        return {(str(model), str(severity)): int(n) for model, severity, n in rows}

    def events(self, alert_id: str) -> builtins.list[dict[str, Any]]:
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

    def _event(self, cur: Any, alert_id: str, event: str, actor: str | None, details: dict[str, Any]) -> None:
        """One timeline entry, stamped with the injected clock (not the database's ``now()``)."""
        cur.execute(
            "INSERT INTO alert_events VALUES (?, ?, ?, ?, ?)",
            [alert_id, self._now(), event, actor, json.dumps(details, default=str)],
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
