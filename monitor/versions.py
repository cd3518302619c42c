"""Per model version: first and last prediction time, first ingest and row count, tallied in
memory per batch and written to ``model_versions`` by the background upkeep.

Why not one upsert per batch (the first release): every UPDATE of a DuckDB row kept ~2.5 KB of
C heap that no checkpoint returned (4,000 upserts of a 2-row table: +2.7 MB; 4,000 plain
one-row inserts: +0.6 MB; ``docs/architecture.md``, "Flat memory"). At 5 batches a second that
was ~45 MB an hour, most of the soak's unexplained growth, and ~3 % of the Arrow ingest path.

Exactness is kept the way the id index keeps it (a *watermark*): ``model_version_marks`` records,
per model, the ingest stamp up to which ``model_versions`` has counted, written in the same
transaction as the counts. Rows ingested after it — the batches a ``kill -9`` caught before the
next write — are counted again from the hot table at start-up. Sealing writes the tally inside
its own transaction first, so no counted-but-unwritten row leaves the hot table.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa


@dataclass(frozen=True)
class VersionCount:
    first_seen: datetime
    last_seen: datetime
    first_ingested_at: datetime
    rows: int

    def plus(self, other: VersionCount) -> VersionCount:
        return VersionCount(
            min(self.first_seen, other.first_seen),
            max(self.last_seen, other.last_seen),
            min(self.first_ingested_at, other.first_ingested_at),
            self.rows + other.rows,
        )


class VersionTally:
    """Counts not yet written to ``model_versions``, by model id and version (thread-safe).

    ``add`` is called by the store after a batch commits (under the database write lock);
    ``write`` + ``clear`` must run under that lock too, so no batch is counted in between."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[int, dict[str, VersionCount]] = {}
        self._stamps: dict[int, datetime] = {}  # newest ingest stamp counted, per model

    def add(self, model_id: int, rows: pa.Table, ingested_at: datetime) -> None:
        """Count a committed batch (its ``model_version`` and ``timestamp`` columns)."""
        if rows.num_rows == 0:
            return
        grouped = rows.group_by("model_version").aggregate(
            [("timestamp", "min"), ("timestamp", "max"), ("timestamp", "count")]
        )
        counts = {
            str(g["model_version"]): VersionCount(
                g["timestamp_min"], g["timestamp_max"], ingested_at, int(g["timestamp_count"])
            )
            for g in grouped.to_pylist()
        }
        self.merge(model_id, counts, ingested_at)

    def merge(self, model_id: int, counts: dict[str, VersionCount], stamp: datetime) -> None:
        with self._lock:
            pending = self._pending.setdefault(model_id, {})
            for version, count in counts.items():
                pending[version] = pending[version].plus(count) if version in pending else count
            self._stamps[model_id] = max(self._stamps.get(model_id, stamp), stamp)

    def has_pending(self) -> bool:
        with self._lock:
            return any(self._pending.values())

    def pending(self, model_id: int) -> dict[str, VersionCount]:
        with self._lock:
            return dict(self._pending.get(model_id, {}))

    def write(self, cur: duckdb.DuckDBPyConnection) -> bool:
        """Add the pending counts to ``model_versions`` and advance each model's mark, inside the
        caller's transaction (call :meth:`clear` once it has committed). False if none pending."""
        with self._lock:
            pending = {m: dict(v) for m, v in self._pending.items() if v}
            stamps = dict(self._stamps)
        if not pending:
            return False
        rows: list[list[Any]] = [
            [model_id, version, c.first_seen, c.last_seen, c.first_ingested_at, c.rows]
            for model_id, counts in pending.items()
            for version, c in counts.items()
        ]
        cur.executemany(
            "INSERT INTO model_versions VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (model_id, version) DO UPDATE SET "
            "first_seen = least(model_versions.first_seen, excluded.first_seen), "
            "last_seen = greatest(model_versions.last_seen, excluded.last_seen), "
            "first_ingested_at = least(model_versions.first_ingested_at, excluded.first_ingested_at), "
            "rows = model_versions.rows + excluded.rows",
            rows,
        )
        cur.executemany(
            "INSERT INTO model_version_marks VALUES (?, ?) ON CONFLICT (model_id) DO UPDATE SET "
            "counted_through = greatest(model_version_marks.counted_through, excluded.counted_through)",
            [[model_id, stamps[model_id]] for model_id in pending],
        )
        return True

    def clear(self) -> None:
        """Forget what :meth:`write` wrote (after its transaction committed)."""
        with self._lock:
            self._pending.clear()


def with_pending(stored: list[dict[str, Any]], pending: dict[str, VersionCount]) -> list[dict[str, Any]]:
    """``model_versions`` rows (version, first_seen, last_seen, first_ingested_at, rows) with
    the counts not yet written added, oldest first."""
    merged: dict[str, VersionCount] = {
        r["version"]: VersionCount(r["first_seen"], r["last_seen"], r["first_ingested_at"], int(r["rows"]))
        for r in stored
    }
    for version, count in pending.items():
        merged[version] = merged[version].plus(count) if version in merged else replace(count)
    ordered = sorted(merged.items(), key=lambda item: (item[1].first_seen, item[0]))
    return [
        {
            "version": version,
            "first_seen": c.first_seen.isoformat(),
            "last_seen": c.last_seen.isoformat(),
            "first_ingested_at": c.first_ingested_at.isoformat(),
            "rows": c.rows,
        }
        for version, c in ordered
    ]
