"""What the dashboard pages read: findings, run records, alerts, the labeling queue and the
hourly rollups — all precomputed. Nothing here scans the prediction log.

Re-judged windows (delayed labels) produce several findings for one window and series; the
latest one wins (``LATEST``). When a model has several monitors of one detector, pages show
one of them (the first by name unless the URL names another); a feature page instead picks
the drift monitor that watches that feature, preferring one with an open alert on it
(:meth:`DashboardData.feature_drift_monitors`), and lists the others so the page can switch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from monitor.clock import parse_time
from monitor.errors import InvalidInput

if TYPE_CHECKING:
    from monitor.rollups import Rollups
    from monitor.service import Loopwatch

LATEST = (
    "QUALIFY row_number() OVER (PARTITION BY window_end, metric, column_name, CAST(segment AS VARCHAR) "
    "ORDER BY created_at DESC, id) = 1"
)
# Drift methods whose score is a p-value (lower = more drift); the others are distances.
P_VALUE_METHODS = frozenset({"ks", "chisquare", "z", "anderson", "fisher_exact", "mannw", "t_test", "cramer_von_mises"})
MAX_DAYS = 400


@dataclass(frozen=True)
class MonitorCandidate:
    """A drift monitor that could back a feature page, and why it would (or would not)."""

    name: str
    configured: bool  # still defined (findings of a deleted monitor stay readable)
    covers: bool  # watches the feature (no ``columns`` param, or the feature is listed)
    findings: int  # all-traffic findings for the feature in the page's range
    firing: int  # firing alerts on the feature
    pending: int  # pending alerts on the feature


@dataclass(frozen=True)
class FeatureMonitors:
    """The drift monitor a feature page shows (``chosen``) and the ones it can switch to."""

    chosen: str | None
    candidates: list[MonitorCandidate]


@dataclass(frozen=True)
class TimeRange:
    start: datetime
    end: datetime

    @property
    def days(self) -> float:
        return (self.end - self.start).total_seconds() / 86400


def parse_range(
    start: str | None, end: str | None, days: float | None, now: datetime, default_days: float = 14
) -> TimeRange:
    """A time range from the URL: ``start``/``end`` (ISO times) or the last ``days`` days."""
    try:
        hi = parse_time(end) if end else now
        lo = parse_time(start) if start else hi - timedelta(days=days or default_days)
    except ValueError as exc:
        raise InvalidInput(f"bad time in the URL: {exc}") from None
    if lo >= hi:
        raise InvalidInput("start must be before end")
    if hi - lo > timedelta(days=MAX_DAYS):
        raise InvalidInput(f"at most {MAX_DAYS} days per page")
    return TimeRange(lo.astimezone(UTC), hi.astimezone(UTC))


def parse_segment(value: str | None) -> dict[str, str] | None:
    """``firmware:3.2`` → ``{"firmware": "3.2"}`` (the value may contain ':')."""
    if not value:
        return None
    name, sep, val = value.partition(":")
    if not sep or not name:
        raise InvalidInput("segment must look like name:value, e.g. firmware:3.2")
    return {name: val}


def segment_text(segment: dict[str, Any] | None) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(segment.items())) if segment else "all traffic"


def segment_param(segment: dict[str, Any] | None) -> str | None:
    if not segment:
        return None
    (name, value), *_ = sorted(segment.items())
    return f"{name}:{value}"


def drift_ratio(metric: str, value: float | None, threshold: float | None) -> float | None:
    """A comparable drift strength: 1.0 at the threshold, higher = more drift (capped at 5)."""
    if value is None or threshold is None or threshold <= 0:
        return None
    if metric in P_VALUE_METHODS:
        import math

        if threshold >= 1:
            return None
        return min(5.0, math.log(max(value, 1e-300)) / math.log(threshold))
    return min(5.0, value / threshold)


class DashboardData:
    def __init__(self, service: Loopwatch, rollups: Rollups) -> None:
        self.service = service
        self.rollups = rollups
        self._db = service.db

    # -- models -----------------------------------------------------------------------------

    def model_id(self, model: str) -> int:
        return self.service.registry.get(model).id

    def monitor_for(self, model: str, detector: str, wanted: str | None = None) -> str | None:
        names = sorted(spec.name for _, spec in self.service.monitors.list(model) if spec.detector == detector)
        if wanted:
            return wanted if wanted in names else None
        if names:
            return names[0]
        # monitors may have been deleted while their findings remain
        row = self._db.query_one(
            "SELECT min(monitor) FROM findings WHERE model_id = ? AND detector = ?", [self.model_id(model), detector]
        )
        return row[0] if row else None

    def feature_drift_monitors(
        self, model: str, feature: str, span: TimeRange, wanted: str | None = None
    ) -> FeatureMonitors:
        """The drift monitors that can back the page of ``feature``, best first, and the chosen one.

        Taking the first ``data_drift`` monitor by name showed "no drift findings" for a feature
        that monitor does not watch while another monitor's alert on it fired. Candidates are the
        monitors that watch the feature or hold findings for it; they rank by open alerts on the
        feature (firing, then pending), then by having findings in the range, then by watching
        it, then by name. ``wanted`` (from the URL) wins when it is a candidate."""
        model_id = self.model_id(model)
        configured = {
            spec.name: spec for _, spec in self.service.monitors.list(model) if spec.detector == "data_drift"
        }
        findings = dict(  # every monitor that ever judged the feature: its findings in the range
            self._db.query(
                "SELECT monitor, count(*) FILTER (WHERE segment IS NULL AND window_end > ? AND window_start < ?) "
                "FROM findings WHERE model_id = ? AND detector = 'data_drift' AND column_name = ? GROUP BY monitor",
                [span.start, span.end, model_id, feature],
            )
        )
        ever = set(findings)
        alerts = {
            name: (int(firing), int(pending))
            for name, firing, pending in self._db.query(
                "SELECT monitor, count(*) FILTER (WHERE state = 'firing'), count(*) FILTER (WHERE state = 'pending') "
                "FROM alerts WHERE model_id = ? AND detector = 'data_drift' AND column_name = ? "
                "AND state IN ('pending', 'firing') GROUP BY monitor",
                [model_id, feature],
            )
        }
        candidates = []
        for name in sorted(set(configured) | ever | set(alerts)):
            spec = configured.get(name)
            columns = spec.params.get("columns") if spec is not None else None
            covers = spec is not None and (not columns or feature in columns)
            if not (covers or name in ever or name in alerts):
                continue
            firing, pending = alerts.get(name, (0, 0))
            candidates.append(
                MonitorCandidate(name, spec is not None, covers, int(findings.get(name, 0)), firing, pending)
            )
        candidates.sort(key=lambda c: (-c.firing, -c.pending, c.findings == 0, not c.covers, c.name))
        names = [c.name for c in candidates]
        if wanted is not None:
            return FeatureMonitors(wanted if wanted in names else None, candidates)
        return FeatureMonitors(names[0] if names else None, candidates)

    def models_health(self, now: datetime) -> list[dict[str, Any]]:
        alerts = {
            name: (firing, pending, critical)
            for name, firing, pending, critical in self._db.query(
                "SELECT m.name, count(*) FILTER (WHERE a.state = 'firing'), count(*) FILTER (WHERE a.state = 'pending'), "
                "count(*) FILTER (WHERE a.state = 'firing' AND a.severity = 'critical') "
                "FROM alerts a JOIN models m ON m.id = a.model_id WHERE a.state IN ('pending', 'firing') GROUP BY m.name"
            )
        }
        runs = {
            model_id: (finished, status)
            for model_id, finished, status in self._db.query(
                "SELECT model_id, max(coalesce(finished_at, started_at)), arg_max(status, started_at) FROM runs "
                "GROUP BY model_id"
            )
        }
        out = []
        for registered in self.service.registry.list():
            self.rollups.ensure(registered.name)
            day = self.rollups.totals(registered.name, now - timedelta(days=1), now + timedelta(hours=1))
            week = self.rollups.totals(registered.name, now - timedelta(days=7), now + timedelta(hours=1))
            firing, pending, critical = alerts.get(registered.name, (0, 0, 0))
            last_run, run_status = runs.get(registered.id, (None, None))
            health = "critical" if critical else "warning" if (firing or pending) else "ok"
            out.append(
                {
                    "name": registered.name,
                    "task": registered.schema.task,
                    "description": registered.schema.description,
                    "features": len(registered.schema.features),
                    "firing": firing,
                    "pending": pending,
                    "health": health,
                    "last_run": last_run,
                    "last_run_status": run_status,
                    "volume_24h": day["predictions"],
                    "label_coverage_7d": week["label_coverage"],
                }
            )
        return out

    def versions(self, model: str) -> list[dict[str, Any]]:
        return self.service.registry.versions(model)

    # -- findings ---------------------------------------------------------------------------

    def drift_grid(self, model: str, monitor: str | None, span: TimeRange, max_columns: int = 120) -> dict[str, Any]:
        """Overall per-feature drift as a features × time grid, aggregated in DuckDB.

        More than ``max_columns`` windows are grouped into longer buckets; a cell keeps its
        strongest window (score / threshold, see :func:`drift_ratio`) and its worst status.
        Returns ``{"step_hours", "cells": [(feature, bucket_epoch, ratio, window_epoch, value, rank)],
        "columns": [(bucket_epoch, first_window_start_epoch, last_window_end_epoch)]}`` with rank
        3 = critical, 2 = warning, 1 = ok, 0 = insufficient data. ``columns`` is the time each
        column's windows cover, so the heatmap draws cells over exactly that time (plotly would
        otherwise guess a width and stretch the last column past the last window's end)."""
        if monitor is None:
            return {"step_hours": 0, "cells": [], "columns": []}
        cond = (
            "model_id = ? AND monitor = ? AND detector = 'data_drift' AND column_name IS NOT NULL "
            "AND segment IS NULL AND window_end > ? AND window_start < ?"
        )
        params = [self.model_id(model), monitor, span.start, span.end]
        stats = self._db.query_one(
            f"SELECT count(DISTINCT window_end), min(epoch(window_end)) FROM findings WHERE {cond}", params
        )
        if not stats or not stats[0]:
            return {"step_hours": 0, "cells": [], "columns": []}
        step = 0
        if stats[0] > max_columns:
            need = span.days * 24 / max_columns
            step = next((h for h in (1, 2, 3, 6, 12, 24, 48, 72, 168) if h >= need), int(-(-need // 24) * 24))
        origin = int(stats[1] // 3600 * 3600)
        bucket = (
            f"{origin} + floor((epoch(window_end) - {origin}) / {step * 3600}) * {step * 3600}"
            if step
            else "epoch(window_end)"
        )
        p_values = ", ".join(f"'{m}'" for m in sorted(P_VALUE_METHODS))
        ratio = (
            f"CASE WHEN threshold IS NULL OR threshold <= 0 OR value IS NULL THEN NULL "
            f"WHEN metric IN ({p_values}) THEN CASE WHEN threshold >= 1 THEN NULL "
            f"ELSE least(5.0, ln(greatest(value, 1e-300)) / ln(threshold)) END "
            f"ELSE least(5.0, value / threshold) END"
        )
        rank = "CASE status WHEN 'critical' THEN 3 WHEN 'warning' THEN 2 WHEN 'ok' THEN 1 ELSE 0 END"
        rows = self._db.query(
            "SELECT column_name, bucket, max(ratio), arg_max(window_epoch, coalesce(ratio, -1)), "
            "arg_max(value, coalesce(ratio, -1)), max(rank) FROM ("
            f"SELECT column_name, {bucket} AS bucket, {ratio} AS ratio, epoch(window_end) AS window_epoch, value, "
            f"{rank} AS rank FROM findings WHERE {cond} {LATEST}) GROUP BY column_name, bucket ORDER BY 1, 2",
            params,
        )
        columns = self._db.query(
            f"SELECT {bucket} AS bucket, min(epoch(window_start)), max(epoch(window_end)) FROM findings "
            f"WHERE {cond} GROUP BY bucket ORDER BY bucket",
            params,
        )
        return {"step_hours": step, "cells": rows, "columns": columns}

    def series(
        self,
        model: str,
        monitor: str | None,
        span: TimeRange,
        *,
        metrics: list[str] | None = None,
        column: str | None = None,
        segment: dict[str, Any] | None = None,
        details: bool = True,
    ) -> list[dict[str, Any]]:
        """One finding per window (the latest), oldest first, for a monitor's metric/column/segment."""
        if monitor is None:
            return []
        where = ["model_id = ?", "monitor = ?", "window_end > ?", "window_start < ?"]
        params: list[Any] = [self.model_id(model), monitor, span.start, span.end]
        if metrics:
            where.append(f"metric IN ({', '.join('?' for _ in metrics)})")
            params.extend(metrics)
        if column is None:
            where.append("column_name IS NULL")
        else:
            where.append("column_name = ?")
            params.append(column)
        if segment:
            where.append("CAST(segment AS VARCHAR) = ?")
            params.append(json.dumps(segment))
        else:
            where.append("segment IS NULL")
        rows = self._db.query(
            "SELECT id, window_start, window_end, status, metric, column_name, segment, value, threshold, "
            f"n_current, n_reference, model_version, {'details' if details else 'NULL'}, reference FROM findings "
            f"WHERE {' AND '.join(where)} {LATEST} ORDER BY window_end, metric",
            params,
        )
        return [_finding(r) for r in rows]

    def segment_breakdown(
        self, model: str, monitor: str | None, column: str, window_end: datetime
    ) -> list[dict[str, Any]]:
        if monitor is None:
            return []
        rows = self._db.query(
            "SELECT id, window_start, window_end, status, metric, column_name, segment, value, threshold, n_current, "
            "n_reference, model_version, NULL, reference FROM findings WHERE model_id = ? AND monitor = ? AND column_name = ? "
            f"AND window_end = ? AND segment IS NOT NULL {LATEST} ORDER BY CAST(segment AS VARCHAR)",
            [self.model_id(model), monitor, column, window_end],
        )
        return [_finding(r) for r in rows]

    def finding_for_alert(self, alert: dict[str, Any]) -> dict[str, Any] | None:
        """The finding of the alert's series in the window that last moved it."""
        if not alert.get("last_window_end"):
            return None
        where = ["model_id = ?", "monitor = ?", "detector = ?", "metric = ?", "window_end = ?"]
        params: list[Any] = [
            self.model_id(alert["model"]),
            alert["monitor"],
            alert["detector"],
            alert["metric"],
            parse_time(alert["last_window_end"]),
        ]
        if alert.get("column"):
            where.append("column_name = ?")
            params.append(alert["column"])
        else:
            where.append("column_name IS NULL")
        if alert.get("segment"):
            where.append("CAST(segment AS VARCHAR) = ?")
            params.append(json.dumps(alert["segment"]))
        else:
            where.append("segment IS NULL")
        rows = self._db.query(
            "SELECT id, window_start, window_end, status, metric, column_name, segment, value, threshold, n_current, "
            f"n_reference, model_version, details, reference FROM findings WHERE {' AND '.join(where)} "
            "ORDER BY created_at DESC LIMIT 1",
            params,
        )
        return _finding(rows[0]) if rows else None

    def last_runs(self, model: str, limit: int = 10) -> list[dict[str, Any]]:
        return self.service.runs.runs(model, limit=limit)

    def model_alerts(self, pipeline: Any, model: str, limit: int = 20) -> list[dict[str, Any]]:
        return pipeline.alerts.list(model=model, limit=limit) if pipeline is not None else []

    # -- labeling ---------------------------------------------------------------------------

    def labeling_summary(
        self, model: str | None, alert_id: str | None, now: datetime, days: int = 14
    ) -> dict[str, Any]:
        where = ["TRUE"]
        params: list[Any] = []  # SQL parameters: model ids and text values alike
        if model:
            where.append("r.model_id = ?")
            params.append(self.model_id(model))
        if alert_id:
            where.append("r.alert_id = ?")
            params.append(alert_id)
        cond = " AND ".join(where)
        depth = dict(
            self._db.query(f"SELECT status, count(*) FROM routed_samples r WHERE {cond} GROUP BY status", params)
        )
        since = now - timedelta(days=days)
        routed = self._db.query(
            f"SELECT date_trunc('day', routed_at) d, count(*) FROM routed_samples r WHERE {cond} AND routed_at >= ? "
            "GROUP BY d ORDER BY d",
            [*params, since],
        )
        annotated = self._db.query(
            f"SELECT date_trunc('day', annotated_at) d, count(*), avg(agreement) FROM routed_samples r WHERE {cond} "
            "AND annotated_at >= ? GROUP BY d ORDER BY d",
            [*params, since],
        )
        agreement = self._db.query(
            f"SELECT agreement FROM routed_samples r WHERE {cond} AND agreement IS NOT NULL", params
        )
        strategies = self._db.query(
            f"SELECT strategy, count(*) FROM routed_samples r WHERE {cond} GROUP BY strategy ORDER BY 2 DESC", params
        )
        recent = self._db.query(
            "SELECT m.name, r.prediction_id, r.strategy, r.reason, r.status, r.routed_at, r.label, r.agreement, "
            f"r.alert_id, coalesce(r.blind, FALSE) FROM routed_samples r JOIN models m ON m.id = r.model_id WHERE {cond} "
            "ORDER BY r.routed_at DESC, r.priority DESC LIMIT 50",
            params,
        )
        names = [model] if model else [m.name for m in self.service.registry.list()]
        conflicts = [{"model": name, **c} for name in names for c in self.service.store.label_conflicts(name, limit=50)]
        return {
            "conflicts": conflicts,
            "depth": {str(k): int(v) for k, v in depth.items()},
            "routed_per_day": routed,
            "annotated_per_day": annotated,
            "agreement": [float(a[0]) for a in agreement],
            "strategies": strategies,
            "recent": recent,
            "days": days,
        }


def _finding(row: tuple[Any, ...]) -> dict[str, Any]:
    keys = (
        "id",
        "window_start",
        "window_end",
        "status",
        "metric",
        "column",
        "segment",
        "value",
        "threshold",
        "n_current",
        "n_reference",
        "model_version",
        "details",
        "reference",  # what the detector compared against, e.g. "model version 2.2.0 (…)"
    )
    item = dict(zip(keys, row, strict=True))
    item["segment"] = json.loads(item["segment"]) if item["segment"] else None
    item["details"] = json.loads(item["details"]) if item["details"] else {}
    return item
