"""Hourly rollups of the prediction log, maintained incrementally for the dashboards.

Dashboards must never rescan raw logs per page view. ``rollup_hourly`` holds, per model,
hour and model version (and ``'*'`` = all versions), the prediction count, the labelled
count and latency p50/p95/p99 (DuckDB's ``approx_quantile``, a t-digest: bounded memory
whatever the hour's volume, within ~0.1 % of the exact quantile on latency-like data).
``Rollups.refresh`` recomputes only what changed since the
model's watermark (``rollup_state``):

* **new predictions**: the hours of hot-table rows with ``ingested_at`` after the watermark
  (every batch gets a distinct, increasing ingest stamp), each recomputed on its own. (Whole
  days were recomputed before: at 5k rows/s that rescanned millions of rows every minute,
  holding the write lock, and the exact quantiles of a day ran out of the 256MB DuckDB pool in
  the 1-hour soak.)
* **new labels** (the model's ``label_events`` count changed): every day within
  ``label_horizon`` (default 7 days) is recomputed. Labels for predictions older than the
  horizon are counted only by :meth:`Rollups.rebuild`;
* **first refresh** of a model (or after :meth:`rebuild`): all history, once.

``RollupMaintainer`` refreshes every model in a daemon thread; pages call
:meth:`Rollups.ensure` which refreshes inline only when a model was never rolled up or the
maintainer has fallen behind (so tests and servers without the thread still show data).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from monitor.clock import Clock
from monitor.periodic import Periodic

if TYPE_CHECKING:
    from monitor.service import Loopwatch

log = logging.getLogger("loopwatch.rollups")

ALL_VERSIONS = "*"
QUANTILES = (0.5, 0.95, 0.99)


@dataclass(frozen=True)
class HourRow:
    hour: datetime
    model_version: str
    predictions: int
    labels: int
    latency_n: int
    p50: float | None
    p95: float | None
    p99: float | None


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


class Rollups:
    """``now`` defaults to the service's injected clock: it decides which days the label horizon
    covers and when a rollup is stale, so tests control it like every other timer."""

    def __init__(
        self, service: Loopwatch, *, label_horizon: timedelta = timedelta(days=7), now: Clock | None = None
    ) -> None:
        self._service = service
        self._db = service.db
        self._label_horizon = label_horizon
        self._now: Clock = now or service.now
        self._lock = threading.Lock()

    # -- maintenance ----------------------------------------------------------------------

    def refresh(self, model: str) -> int:
        """Bring one model's rollups up to date; returns the number of spans (hours, or days for
        new labels) recomputed, -1 for all history."""
        registered = self._service.registry.get(model)
        # Not under the store's write lock: the watermark is the newest *committed* ingest stamp,
        # and every later commit gets a larger one, so rows committed during the recompute are
        # picked up by the next refresh (recomputing an hour twice is harmless). Holding the lock
        # stalled ingest for the whole recompute.
        with self._lock:
            state = self._db.query_one(
                "SELECT ingested_through, label_events FROM rollup_state WHERE model_id = ?", [registered.id]
            )
            high = self._db.query_one(f"SELECT max(ingested_at) FROM {registered.predictions_table}")
            ingested_through = high[0] if high else None
            events = self._db.query_one("SELECT count(*) FROM label_events WHERE model_id = ?", [registered.id])
            label_events = int(events[0]) if events else 0
            spans: set[tuple[datetime, datetime]] | None
            if state is None:
                spans = None  # everything
            else:
                spans = set()
                if label_events != int(state[1]):
                    today = self._now().astimezone(UTC).date()
                    span = max(1, self._label_horizon.days)
                    for i in range(span + 1):
                        start = _day_start(today - timedelta(days=i))
                        spans.add((start, start + timedelta(days=1)))
                if state[0] is None or (ingested_through is not None and ingested_through > state[0]):
                    rows = self._db.query(
                        f"SELECT DISTINCT date_trunc('hour', timestamp) FROM {registered.predictions_table} "
                        "WHERE ingested_at > ?",
                        [state[0] or datetime(1970, 1, 1, tzinfo=UTC)],
                    )
                    days = {lo for lo, _ in spans}
                    for (hour,) in rows:
                        if _day_start(hour.astimezone(UTC).date()) not in days:  # else its day is recomputed
                            spans.add((hour, hour + timedelta(hours=1)))
            recomputed = self._recompute(model, registered.id, spans)
            with self._db.transaction() as cur:
                cur.execute("DELETE FROM rollup_state WHERE model_id = ?", [registered.id]).fetchall()
                cur.execute(
                    "INSERT INTO rollup_state VALUES (?, ?, ?, ?)",
                    [registered.id, ingested_through, label_events, self._now()],
                ).fetchall()
        return recomputed

    def rebuild(self, model: str) -> int:
        """Forget the watermark and recompute all history (e.g. after labels for old predictions)."""
        registered = self._service.registry.get(model)
        with self._db.transaction() as cur:
            cur.execute("DELETE FROM rollup_state WHERE model_id = ?", [registered.id]).fetchall()
        return self.refresh(model)

    def refresh_all(self) -> dict[str, int]:
        return {m.name: self.refresh(m.name) for m in self._service.registry.list()}

    def ensure(self, model: str, max_age: timedelta = timedelta(minutes=5)) -> None:
        """Refresh inline only if the model was never rolled up or its rollup is older than ``max_age``."""
        registered = self._service.registry.get(model)
        row = self._db.query_one("SELECT refreshed_at FROM rollup_state WHERE model_id = ?", [registered.id])
        if row is None or row[0] < self._now() - max_age:
            self.refresh(model)

    def _recompute(self, model: str, model_id: int, wanted: set[tuple[datetime, datetime]] | None) -> int:
        store = self._service.store
        registered = self._service.registry.get(model)
        spans: list[tuple[datetime | None, datetime | None]]
        spans = [(None, None)] if wanted is None else sorted(wanted)
        if not spans:
            return 0
        now = self._now()
        for lo, hi in spans:
            sql, params = store._window_sql(registered, lo, hi, ["model_version", "latency_ms"], None, None, True)
            quantiles = ", ".join(str(q) for q in QUANTILES)
            rows = self._db.query(
                "SELECT date_trunc('hour', timestamp) AS hour, coalesce(model_version, '') AS version, "
                "GROUPING(coalesce(model_version, '')) AS all_versions, count(*), count(label), count(latency_ms), "
                f"approx_quantile(latency_ms, [{quantiles}]) FROM ({sql}) "
                "GROUP BY GROUPING SETS ((hour, version), (hour))",
                params,
            )
            with self._db.transaction() as cur:
                if lo is None:
                    cur.execute("DELETE FROM rollup_hourly WHERE model_id = ?", [model_id]).fetchall()
                else:
                    cur.execute(
                        "DELETE FROM rollup_hourly WHERE model_id = ? AND hour >= ? AND hour < ?", [model_id, lo, hi]
                    ).fetchall()
                records = [
                    (
                        model_id,
                        hour,
                        ALL_VERSIONS if grouped else version,
                        n,
                        labels,
                        lat_n,
                        *(qs if qs else (None, None, None)),
                        now,
                    )
                    for hour, version, grouped, n, labels, lat_n, qs in rows
                ]
                if records:
                    cur.executemany("INSERT INTO rollup_hourly VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", records)
        return len(spans) if wanted is not None else -1

    # -- reads ----------------------------------------------------------------------------

    def hourly(self, model: str, start: datetime, end: datetime, *, versions: bool = False) -> list[HourRow]:
        """Rows of ``[start, end)``: all versions together, or (``versions=True``) one row per version."""
        registered = self._service.registry.get(model)
        cond = "model_version <> ?" if versions else "model_version = ?"
        rows = self._db.query(
            "SELECT hour, model_version, predictions, labels, latency_n, latency_p50, latency_p95, latency_p99 "
            f"FROM rollup_hourly WHERE model_id = ? AND hour >= ? AND hour < ? AND {cond} ORDER BY hour, model_version",
            [registered.id, start, end, ALL_VERSIONS],
        )
        return [HourRow(*r) for r in rows]

    def totals(self, model: str, start: datetime, end: datetime) -> dict[str, Any]:
        """Predictions and labels in ``[start, end)`` (whole hours), and the label coverage."""
        registered = self._service.registry.get(model)
        row = self._db.query_one(
            "SELECT coalesce(sum(predictions), 0), coalesce(sum(labels), 0) FROM rollup_hourly "
            "WHERE model_id = ? AND hour >= ? AND hour < ? AND model_version = ?",
            [registered.id, start, end, ALL_VERSIONS],
        )
        predictions, labels = (int(row[0]), int(row[1])) if row else (0, 0)
        return {
            "predictions": predictions,
            "labels": labels,
            "label_coverage": labels / predictions if predictions else None,
        }

    def totals_all(self, start: datetime, end: datetime) -> dict[str, dict[str, Any]]:
        """:meth:`totals` of every model with rolled-up rows in ``[start, end)``, by model name, in
        one query (a metrics scrape reads all models at once)."""
        rows = self._db.query(
            "SELECT m.name, sum(r.predictions), sum(r.labels) FROM rollup_hourly r JOIN models m ON m.id = r.model_id "
            "WHERE r.hour >= ? AND r.hour < ? AND r.model_version = ? GROUP BY m.name",
            [start, end, ALL_VERSIONS],
        )
        return {
            str(name): {
                "predictions": int(n),
                "labels": int(labelled),
                "label_coverage": int(labelled) / int(n) if n else None,
            }
            for name, n, labelled in rows
        }


class RollupMaintainer:
    """Refreshes every model's rollups every ``interval`` seconds in the background (if ``enabled``);
    the app stops it with its other background jobs, before the database closes."""

    def __init__(
        self, service: Loopwatch, enabled: bool = True, interval: float = 60.0, now: Clock | None = None
    ) -> None:
        self.rollups = Rollups(service, now=now)
        self._job = Periodic("loopwatch-rollups", interval, self.rollups.refresh_all) if enabled else None
        if self._job is not None:
            self._job.start()

    def stop(self) -> None:
        if self._job is not None:
            self._job.stop()
