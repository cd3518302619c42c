"""The record of every detector run and the findings it produced.

Each run keeps its window, config hash, data fingerprint, code version, duration and
reference, so any alert can be traced to exactly what was computed and reproduced later —
which users in regulated settings (medical devices) must be able to do.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from detectors import Finding
from monitor.clock import Clock, iso_z, utcnow
from monitor.db import Database
from monitor.errors import NotFound
from monitor.registry import Registry

RunMode = Literal["scheduled", "manual", "backfill", "retry", "rejudge"]
RunStatus = Literal["running", "succeeded", "failed", "interrupted"]  # interrupted: the server stopped mid-run


@dataclass(frozen=True)
class RunRecord:
    id: str
    model: str
    monitor: str
    detector: str
    mode: str
    window_start: datetime
    window_end: datetime
    attempt: int


@dataclass(frozen=True)
class LatestRun:
    """A monitor's newest judged window (see :meth:`RunStore.latest_runs`)."""

    id: str
    model: str
    monitor: str
    detector: str
    window_end: datetime


@dataclass(frozen=True)
class WindowFinding:
    """One whole-window finding of a run (no segment), as read back for current-state views."""

    run_id: str
    metric: str
    column: str | None
    status: str
    value: float | None


class RunStore:
    def __init__(self, db: Database, registry: Registry, code_version: str, now: Clock = utcnow) -> None:
        self._db = db
        self._registry = registry
        self._code_version = code_version
        self._now = now

    def start(
        self,
        model: str,
        monitor: str,
        detector: str,
        mode: RunMode,
        window: tuple[datetime, datetime],
        attempt: int = 1,
        engine: str = "embedded",
    ) -> RunRecord:
        """Record a run as started. ``engine``: what computes it (``embedded`` or ``spark``), kept
        so a reader can tell the two apart when comparing findings."""
        registered = self._registry.get(model)
        run = RunRecord(uuid.uuid4().hex, model, monitor, detector, mode, window[0], window[1], attempt)
        with self._db.transaction() as cur:
            cur.execute(
                "INSERT INTO runs (id, model_id, monitor, detector, mode, window_start, window_end, status, attempt, "
                "started_at, code_version, engine) VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?)",
                [
                    run.id,
                    registered.id,
                    monitor,
                    detector,
                    mode,
                    window[0],
                    window[1],
                    attempt,
                    self._now(),
                    self._code_version,
                    engine,
                ],
            ).fetchall()
        return run

    def succeed(
        self,
        run: RunRecord,
        findings: list[Finding],
        *,
        duration_ms: float,
        config_hash: str,
        data_fingerprint: str,
        reference: str | None,
        rows: int,
        labels: int = 0,
    ) -> None:
        registered = self._registry.get(run.model)
        now = self._now()
        with self._db.transaction() as cur:
            cur.execute(
                "UPDATE runs SET status = 'succeeded', finished_at = ?, duration_ms = ?, config_hash = ?, "
                "data_fingerprint = ?, reference = ?, rows = ?, findings = ?, labels = ? WHERE id = ?",
                [now, duration_ms, config_hash, data_fingerprint, reference, rows, len(findings), labels, run.id],
            ).fetchall()
            for finding in findings:
                cur.execute(
                    "INSERT INTO findings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        uuid.uuid4().hex,
                        run.id,
                        registered.id,
                        run.monitor,
                        finding.detector,
                        run.mode,
                        finding.window_start,
                        finding.window_end,
                        finding.status.value,
                        finding.metric,
                        finding.column,
                        json.dumps(finding.segment) if finding.segment else None,
                        finding.model_version,
                        finding.value,
                        finding.threshold,
                        finding.p_value,
                        finding.p_value_adjusted,
                        finding.effect_size,
                        finding.n_current,
                        finding.n_reference,
                        finding.reference,
                        json.dumps(finding.details),
                        now,
                    ],
                ).fetchall()

    def labels_judged(self, model: str, monitor: str, window_end: datetime) -> int | None:
        """Labels the latest successful run of this window saw (None: never judged)."""
        registered = self._registry.get(model)
        row = self._db.query_one(
            "SELECT labels FROM runs WHERE model_id = ? AND monitor = ? AND window_end = ? AND status = 'succeeded' "
            "AND mode <> 'backfill' ORDER BY started_at DESC LIMIT 1",
            [registered.id, monitor, window_end],
        )
        return None if row is None else int(row[0] or 0)

    def fail(self, run: RunRecord, error: str, *, duration_ms: float) -> None:
        with self._db.transaction() as cur:
            cur.execute(
                "UPDATE runs SET status = 'failed', finished_at = ?, duration_ms = ?, error = ? WHERE id = ?",
                [self._now(), duration_ms, error[:4000], run.id],
            ).fetchall()

    def interrupt(self, run: RunRecord, reason: str) -> None:
        """A run still going when the server stopped: ``interrupted``, never left ``running``. A run
        that finishes before the process exits overwrites this with its real outcome."""
        with self._db.transaction() as cur:
            cur.execute(
                "UPDATE runs SET status = 'interrupted', finished_at = ?, error = ? WHERE id = ? AND status = 'running'",
                [self._now(), reason[:4000], run.id],
            ).fetchall()

    def interrupt_stale(self) -> int:
        """At server start: runs left ``running`` by a process that died without its shutdown
        (kill -9, power loss) become ``interrupted``. Only one process opens the data directory,
        so no run of this one has started yet. Returns how many were marked."""
        with self._db.transaction() as cur:
            rows = cur.execute(
                "UPDATE runs SET status = 'interrupted', finished_at = ?, "
                "error = 'the server stopped during the run (no clean shutdown)' WHERE status = 'running' "
                "RETURNING id",
                [self._now()],
            ).fetchall()
        return len(rows)

    def get(self, run_id: str) -> dict[str, Any]:
        rows = self._db.query_dicts(
            "SELECT r.id, m.name AS model, r.monitor, r.detector, r.mode, r.window_start, r.window_end, r.status, "
            "r.attempt, r.started_at, r.finished_at, r.duration_ms, r.config_hash, r.data_fingerprint, "
            "r.code_version, r.engine, r.reference, r.rows, r.findings AS findings_count, r.error "
            "FROM runs r JOIN models m ON m.id = r.model_id WHERE r.id = ?",
            [run_id],
        )
        if not rows:
            raise NotFound(f"no run with id {run_id!r}")
        out = rows[0]
        for key in ("window_start", "window_end", "started_at", "finished_at"):
            out[key] = iso_z(out[key])
        out["findings"] = self.findings(out["model"], run_id=run_id, limit=10_000)
        return out

    def runs(self, model: str, monitor: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        registered = self._registry.get(model)
        sql = (
            "SELECT id, monitor, detector, mode, engine, window_start, window_end, status, attempt, duration_ms, "
            "rows, findings, error FROM runs WHERE model_id = ?"
        )
        params: list[Any] = [registered.id]
        if monitor:
            sql += " AND monitor = ?"
            params.append(monitor)
        out = self._db.query_dicts(sql + " ORDER BY window_end DESC, started_at DESC LIMIT ?", [*params, limit])
        for item in out:
            item["window_start"], item["window_end"] = iso_z(item["window_start"]), iso_z(item["window_end"])
        return out

    def findings(
        self,
        model: str,
        *,
        run_id: str | None = None,
        monitor: str | None = None,
        status: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        include_backfill: bool = True,
        limit: int = 1000,
        metric: str | None = None,
    ) -> list[dict[str, Any]]:
        registered = self._registry.get(model)
        where = ["model_id = ?"]
        params: list[Any] = [registered.id]
        for column, value in (("run_id", run_id), ("monitor", monitor), ("status", status), ("metric", metric)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if start is not None:
            where.append("window_end > ?")
            params.append(start)
        if end is not None:
            where.append("window_start < ?")
            params.append(end)
        if not include_backfill:
            where.append("mode <> 'backfill'")
        out = self._db.query_dicts(
            "SELECT id, run_id, monitor, detector, mode, window_start, window_end, status, metric, "
            'column_name AS "column", segment, '
            "model_version, value, threshold, p_value, p_value_adjusted, effect_size, n_current, n_reference, "
            f"reference, details FROM findings WHERE {' AND '.join(where)} ORDER BY window_end DESC, id LIMIT ?",
            [*params, limit],
        )
        for item in out:
            item["window_start"], item["window_end"] = iso_z(item["window_start"]), iso_z(item["window_end"])
            item["segment"] = json.loads(item["segment"]) if item["segment"] else None
            item["details"] = json.loads(item["details"]) if item["details"] else {}
        return out

    def latest_runs(self, detectors: Sequence[str]) -> list[LatestRun]:
        """For every monitor that still exists and runs one of ``detectors``: its newest window's
        latest succeeded run, backfills left out (they replay history, they do not say how the
        model is now). Read-only (no write lock), one query: what a metrics scrape reads."""
        # arg_max per monitor (half the time of a row_number() window here). The detector is the
        # latest run's, so a monitor since replaced by one of another detector is left out; a run
        # started before the monitor was created belongs to a deleted namesake and is left out too.
        rows = self._db.query(
            "WITH latest AS (SELECT model_id, monitor, arg_max(id, (window_end, started_at)) AS id, "
            "arg_max(detector, (window_end, started_at)) AS detector, max(window_end) AS window_end, "
            "arg_max(started_at, (window_end, started_at)) AS started_at FROM runs "
            "WHERE status = 'succeeded' AND mode <> 'backfill' GROUP BY model_id, monitor) "
            "SELECT l.id, m.name, l.monitor, l.detector, l.window_end FROM latest l "
            "JOIN monitors mo ON mo.model_id = l.model_id AND mo.name = l.monitor AND l.started_at >= mo.created_at "
            "JOIN models m ON m.id = l.model_id WHERE list_contains(?, l.detector) ORDER BY m.name, l.monitor",
            [list(detectors)],
        )
        return [LatestRun(*row) for row in rows]

    def window_findings(self, runs: Sequence[LatestRun]) -> list[WindowFinding]:
        """The whole-window findings (segment values left out) of ``runs``. A run's findings never
        change once recorded, so callers may keep them by run id."""
        if not runs:
            return []
        ends = [run.window_end for run in runs]
        rows = self._db.query(
            "SELECT run_id, metric, column_name, status, value FROM findings "
            # the window bounds let DuckDB skip old row groups by their min/max (findings are appended in time)
            "WHERE window_end >= ? AND window_end <= ? AND list_contains(?, run_id) AND segment IS NULL "
            "ORDER BY run_id, column_name, metric",
            [min(ends), max(ends), [run.id for run in runs]],
        )
        return [WindowFinding(*row) for row in rows]
