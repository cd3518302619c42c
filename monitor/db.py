"""The DuckDB database file: one connection, a write lock, transactions and migrations.

DuckDB allows one writing process per file. Inside the process, reads run concurrently on
cursors while writes are serialised by ``write_lock`` so multi-statement writes (dedup then
insert) are atomic with respect to each other.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from monitor.errors import StoreLocked

log = logging.getLogger("loopwatch")


def _label_authority(con: duckdb.DuckDBPyConnection) -> None:
    """Migration 11: labels carry an authority (ground_truth > review > annotator).

    Existing rows keep their recorded ``source``; the authority is derived from it: Label
    Studio's labels (``label_studio``) become ``annotator``, ``review`` stays ``review``, and
    every other source (``api``, ``demo``, a pipeline's own name, or none) was written by the
    model owner's pipeline through the label endpoints, so it becomes ``ground_truth``.
    A per-model ``conflict`` flag marks labels that a lower authority disagreed with."""
    derive = (
        "CASE WHEN source = 'label_studio' THEN 'annotator' WHEN source = 'review' THEN 'review' "
        "ELSE 'ground_truth' END"
    )
    con.execute("ALTER TABLE label_events ADD COLUMN IF NOT EXISTS authority VARCHAR").fetchall()
    con.execute("ALTER TABLE label_events ADD COLUMN IF NOT EXISTS previous_authority VARCHAR").fetchall()
    con.execute("ALTER TABLE label_events ADD COLUMN IF NOT EXISTS outcome VARCHAR").fetchall()
    con.execute(f"UPDATE label_events SET authority = {derive}, outcome = 'applied'").fetchall()
    con.execute("ALTER TABLE routed_samples ADD COLUMN IF NOT EXISTS blind BOOLEAN").fetchall()
    for (model_id,) in con.execute("SELECT id FROM models").fetchall():
        table = f"labels_{int(model_id)}"
        present = {
            r[0]
            for r in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]
            ).fetchall()
        }
        if "authority" not in present:  # tables created by a newer registry already have both
            con.execute(f"ALTER TABLE {table} ADD COLUMN authority VARCHAR").fetchall()
        if "conflict" not in present:
            con.execute(f"ALTER TABLE {table} ADD COLUMN conflict BOOLEAN NOT NULL DEFAULT FALSE").fetchall()
        con.execute(f"UPDATE {table} SET authority = {derive} WHERE authority IS NULL").fetchall()


def _version_marks(con: duckdb.DuckDBPyConnection) -> None:
    """Migration 12: ``model_versions`` is written by the background upkeep (monitor/versions.py)
    up to a mark per model. Until now it was updated in every ingest transaction, so it has
    counted every stored row: each model's mark starts at its newest ingest stamp."""
    con.execute(
        "CREATE TABLE model_version_marks(model_id INTEGER PRIMARY KEY, counted_through TIMESTAMPTZ NOT NULL)"
    ).fetchall()
    for (model_id,) in con.execute("SELECT id FROM models").fetchall():
        con.execute(
            f"INSERT INTO model_version_marks SELECT ?, max(ingested_at) FROM predictions_{int(model_id)} "
            "HAVING max(ingested_at) IS NOT NULL",
            [model_id],
        ).fetchall()


Migration = str | Callable[[duckdb.DuckDBPyConnection], None]

MIGRATIONS: list[Migration] = [
    # 1: metadata
    """
    CREATE TABLE models(
        id INTEGER PRIMARY KEY, name VARCHAR NOT NULL UNIQUE, task VARCHAR NOT NULL,
        schema_version INTEGER NOT NULL, spec JSON NOT NULL,
        created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL);
    CREATE TABLE model_schemas(
        model_id INTEGER NOT NULL, version INTEGER NOT NULL, spec JSON NOT NULL, changes JSON,
        created_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (model_id, version));
    CREATE TABLE model_versions(
        model_id INTEGER NOT NULL, version VARCHAR NOT NULL, first_seen TIMESTAMPTZ, last_seen TIMESTAMPTZ,
        first_ingested_at TIMESTAMPTZ, rows BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (model_id, version));
    CREATE TABLE sealed_files(
        path VARCHAR PRIMARY KEY, model_id INTEGER NOT NULL, date DATE NOT NULL, rows BIGINT NOT NULL,
        min_ts TIMESTAMPTZ NOT NULL, max_ts TIMESTAMPTZ NOT NULL, bytes BIGINT NOT NULL, sha256 VARCHAR NOT NULL,
        created_at TIMESTAMPTZ NOT NULL);
    CREATE TABLE label_events(
        model_id INTEGER NOT NULL, prediction_id VARCHAR NOT NULL, label VARCHAR, previous_label VARCHAR,
        timestamp TIMESTAMPTZ, received_at TIMESTAMPTZ NOT NULL, source VARCHAR, annotator VARCHAR);
    CREATE TABLE api_keys(
        id VARCHAR PRIMARY KEY, name VARCHAR, scope VARCHAR NOT NULL, hash VARCHAR NOT NULL UNIQUE,
        created_at TIMESTAMPTZ NOT NULL, revoked_at TIMESTAMPTZ);
    CREATE SEQUENCE audit_ids;
    CREATE TABLE audit_log(
        id BIGINT PRIMARY KEY DEFAULT nextval('audit_ids'), "at" TIMESTAMPTZ NOT NULL, actor VARCHAR NOT NULL,
        action VARCHAR NOT NULL, target VARCHAR, details JSON);
    """,
    # 2: browser sessions (sign in with an API key; the cookie carries a random session token)
    """
    CREATE TABLE sessions(
        token_hash VARCHAR PRIMARY KEY, key_id VARCHAR NOT NULL, scope VARCHAR NOT NULL,
        created_at TIMESTAMPTZ NOT NULL, expires_at TIMESTAMPTZ NOT NULL);
    """,
    # 3: monitors, their runs and findings
    """
    CREATE TABLE monitors(
        model_id INTEGER NOT NULL, name VARCHAR NOT NULL, spec JSON NOT NULL,
        created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL, next_run_at TIMESTAMPTZ,
        PRIMARY KEY (model_id, name));
    CREATE TABLE runs(
        id VARCHAR PRIMARY KEY, model_id INTEGER NOT NULL, monitor VARCHAR NOT NULL, detector VARCHAR NOT NULL,
        mode VARCHAR NOT NULL, window_start TIMESTAMPTZ NOT NULL, window_end TIMESTAMPTZ NOT NULL,
        status VARCHAR NOT NULL, attempt INTEGER NOT NULL, started_at TIMESTAMPTZ NOT NULL,
        finished_at TIMESTAMPTZ, duration_ms DOUBLE, config_hash VARCHAR, data_fingerprint VARCHAR,
        code_version VARCHAR, reference VARCHAR, rows BIGINT, findings INTEGER, error VARCHAR);
    CREATE TABLE findings(
        id VARCHAR PRIMARY KEY, run_id VARCHAR NOT NULL, model_id INTEGER NOT NULL, monitor VARCHAR NOT NULL,
        detector VARCHAR NOT NULL, mode VARCHAR NOT NULL, window_start TIMESTAMPTZ NOT NULL,
        window_end TIMESTAMPTZ NOT NULL, status VARCHAR NOT NULL, metric VARCHAR NOT NULL, column_name VARCHAR,
        segment JSON, model_version VARCHAR, value DOUBLE, threshold DOUBLE, p_value DOUBLE,
        p_value_adjusted DOUBLE, effect_size DOUBLE, n_current BIGINT, n_reference BIGINT, reference VARCHAR,
        details JSON, created_at TIMESTAMPTZ NOT NULL);
    """,
    # 4: alerts (one row per episode of a fingerprint), their timeline, silences, notification outbox
    """
    CREATE TABLE alerts(
        id VARCHAR PRIMARY KEY, fingerprint VARCHAR NOT NULL, model_id INTEGER NOT NULL, monitor VARCHAR NOT NULL,
        detector VARCHAR NOT NULL, metric VARCHAR NOT NULL, column_name VARCHAR, segment JSON,
        severity VARCHAR NOT NULL, state VARCHAR NOT NULL, consecutive INTEGER NOT NULL,
        started_at TIMESTAMPTZ NOT NULL, fired_at TIMESTAMPTZ, resolved_at TIMESTAMPTZ,
        last_window_start TIMESTAMPTZ, last_window_end TIMESTAMPTZ, value DOUBLE, threshold DOUBLE,
        model_version VARCHAR, what_changed VARCHAR, finding_status VARCHAR, last_run_id VARCHAR, route JSON,
        acked_by VARCHAR, acked_at TIMESTAMPTZ, slack_channel VARCHAR, slack_ts VARCHAR, notify_error VARCHAR,
        repeats INTEGER NOT NULL DEFAULT 0, last_notified_at TIMESTAMPTZ, updated_at TIMESTAMPTZ NOT NULL);
    CREATE TABLE alert_events(
        alert_id VARCHAR NOT NULL, occurred_at TIMESTAMPTZ NOT NULL, event VARCHAR NOT NULL, actor VARCHAR, details JSON);
    CREATE TABLE silences(
        id VARCHAR PRIMARY KEY, matchers JSON NOT NULL, starts_at TIMESTAMPTZ NOT NULL, ends_at TIMESTAMPTZ NOT NULL,
        created_by VARCHAR NOT NULL, comment VARCHAR, created_at TIMESTAMPTZ NOT NULL, expired_at TIMESTAMPTZ);
    CREATE TABLE outbox(
        id VARCHAR PRIMARY KEY, dedup_key VARCHAR NOT NULL UNIQUE, alert_id VARCHAR NOT NULL,
        group_key VARCHAR NOT NULL, kind VARCHAR NOT NULL, channel VARCHAR NOT NULL, payload JSON NOT NULL,
        status VARCHAR NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, not_before TIMESTAMPTZ NOT NULL,
        next_attempt_at TIMESTAMPTZ NOT NULL, last_error VARCHAR, slack_ts VARCHAR,
        created_at TIMESTAMPTZ NOT NULL, sent_at TIMESTAMPTZ);
    """,
    # 5: labels seen by a run (late labels trigger re-judging of past windows)
    """
    ALTER TABLE runs ADD COLUMN labels BIGINT;
    """,
    # 6: the labeling queue: every routed prediction, why, and what came back
    """
    CREATE TABLE routed_samples(
        model_id INTEGER NOT NULL, prediction_id VARCHAR NOT NULL, strategy VARCHAR NOT NULL, reason VARCHAR,
        priority DOUBLE, finding_id VARCHAR, alert_id VARCHAR, routed_at TIMESTAMPTZ NOT NULL,
        routed_by VARCHAR NOT NULL, status VARCHAR NOT NULL, project_id BIGINT, task_id BIGINT,
        pushed_at TIMESTAMPTZ, push_error VARCHAR, annotated_at TIMESTAMPTZ, label VARCHAR, agreement DOUBLE,
        annotations JSON, needs_review BOOLEAN, PRIMARY KEY (model_id, prediction_id));
    """,
    # 7: the routed prediction's own time (to fetch its row without scanning all history)
    """
    ALTER TABLE routed_samples ADD COLUMN prediction_ts TIMESTAMPTZ;
    """,
    # 8: hourly rollups for the dashboards (counts, labels, latency percentiles per model version;
    # model_version '*' is all versions together) and each model's refresh watermark
    """
    CREATE TABLE rollup_hourly(
        model_id INTEGER NOT NULL, hour TIMESTAMPTZ NOT NULL, model_version VARCHAR NOT NULL,
        predictions BIGINT NOT NULL, labels BIGINT NOT NULL, latency_n BIGINT NOT NULL,
        latency_p50 DOUBLE, latency_p95 DOUBLE, latency_p99 DOUBLE, computed_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (model_id, hour, model_version));
    CREATE TABLE rollup_state(
        model_id INTEGER PRIMARY KEY, ingested_through TIMESTAMPTZ, label_events BIGINT NOT NULL,
        refreshed_at TIMESTAMPTZ NOT NULL);
    """,
    # 9: one notification per alert group. Slack columns leave the alerts; groups (episodes of
    # alerts with equal group_by labels and channel) and their members are the pipeline's; the
    # outbox holds one row per group flush or repeat; group_messages (owned by alerting.notify)
    # records where each group's message landed per receiver. Per-alert outbox rows pending at
    # upgrade are dropped. Each open alert already posted to Slack becomes a one-alert group that
    # owns its message, so its resolution still updates that message in place.
    """
    CREATE TABLE alert_groups(
        id VARCHAR PRIMARY KEY, group_key VARCHAR NOT NULL, receiver VARCHAR NOT NULL, channel VARCHAR NOT NULL,
        labels JSON NOT NULL, route JSON NOT NULL, state VARCHAR NOT NULL, version INTEGER NOT NULL,
        created_at TIMESTAMPTZ NOT NULL, last_flush_at TIMESTAMPTZ, last_notified_at TIMESTAMPTZ,
        repeats INTEGER NOT NULL DEFAULT 0, closed_at TIMESTAMPTZ);
    CREATE TABLE alert_group_members(
        group_id VARCHAR NOT NULL, alert_id VARCHAR NOT NULL, joined_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (group_id, alert_id));
    CREATE TABLE group_messages(
        group_id VARCHAR NOT NULL, receiver VARCHAR NOT NULL, channel VARCHAR NOT NULL, channel_id VARCHAR,
        message_id VARCHAR, state VARCHAR NOT NULL, last_error VARCHAR, posted_at TIMESTAMPTZ,
        updated_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (group_id, receiver));
    INSERT INTO alert_groups
        SELECT 'grp_' || a.id, 'legacy:' || a.id, 'slack', a.slack_channel,
               json_object('model', m.name, 'monitor', a.monitor), coalesce(a.route, '{}'), 'open', 0,
               a.started_at, a.last_notified_at, a.last_notified_at, a.repeats, NULL
        FROM alerts a JOIN models m ON m.id = a.model_id
        WHERE a.state IN ('pending', 'firing') AND a.slack_ts IS NOT NULL AND a.slack_ts NOT LIKE 'log.%'
              AND a.slack_channel IS NOT NULL;
    INSERT INTO alert_group_members
        SELECT 'grp_' || a.id, a.id, coalesce(a.fired_at, a.started_at) FROM alerts a
        WHERE list_contains((SELECT list(id) FROM alert_groups), 'grp_' || a.id);
    INSERT INTO group_messages
        SELECT 'grp_' || a.id, 'slack', a.slack_channel, a.slack_channel, a.slack_ts, 'firing', a.notify_error,
               a.last_notified_at, coalesce(a.last_notified_at, a.updated_at)
        FROM alerts a WHERE list_contains((SELECT list(id) FROM alert_groups), 'grp_' || a.id);
    ALTER TABLE alerts DROP COLUMN slack_channel;
    ALTER TABLE alerts DROP COLUMN slack_ts;
    ALTER TABLE alerts DROP COLUMN notify_error;
    DROP TABLE outbox;
    CREATE TABLE outbox(
        id VARCHAR PRIMARY KEY, dedup_key VARCHAR NOT NULL UNIQUE, group_id VARCHAR NOT NULL, kind VARCHAR NOT NULL,
        status VARCHAR NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, not_before TIMESTAMPTZ NOT NULL,
        next_attempt_at TIMESTAMPTZ NOT NULL, last_error VARCHAR, maybe_delivered BOOLEAN NOT NULL DEFAULT FALSE,
        receipt VARCHAR, created_at TIMESTAMPTZ NOT NULL, sent_at TIMESTAMPTZ);
    """,
    # 10: alert lifecycle in data time: the first bad window's start (a trailing reference is
    # frozen there while the alert is open) and the start of a firing alert's ok streak
    # (keep_firing_for); open episodes from before get their first window from started_at
    """
    ALTER TABLE alerts ADD COLUMN first_window_start TIMESTAMPTZ;
    ALTER TABLE alerts ADD COLUMN ok_since TIMESTAMPTZ;
    UPDATE alerts SET first_window_start = started_at - (last_window_end - last_window_start)
        WHERE first_window_start IS NULL;
    """,
    # 11: label authority and conflicts; blind labelling of routed samples (see _label_authority)
    _label_authority,
    # 12: version counts written by the background upkeep up to a mark (see _version_marks)
    _version_marks,
    # 13: streaming sources (monitor/streaming) and the messages they could not store
    """
    CREATE TABLE sources(
        name VARCHAR PRIMARY KEY, spec JSON NOT NULL, created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL);
    CREATE TABLE source_dead_letters(
        id VARCHAR PRIMARY KEY, source VARCHAR NOT NULL, topic VARCHAR NOT NULL, reason VARCHAR NOT NULL,
        excerpt VARCHAR NOT NULL, payload_bytes BIGINT NOT NULL, received_at TIMESTAMPTZ NOT NULL);
    """,
    # 14: which engine computed a run (embedded or spark); NULL for runs recorded before
    "ALTER TABLE runs ADD COLUMN engine VARCHAR;",
]


class Database:
    """Owns the DuckDB connection for one data directory."""

    def __init__(
        self,
        path: Path,
        *,
        checkpoint_threshold: str = "1GB",
        memory_limit: str | None = None,
        threads: int | None = None,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {
            "checkpoint_threshold": checkpoint_threshold,
            "preserve_insertion_order": False,
        }
        if memory_limit:
            config["memory_limit"] = memory_limit
        if threads:
            config["threads"] = threads
        try:
            self._con = duckdb.connect(str(path), config=config)
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise StoreLocked(
                    f"the data directory {path.parent} is in use by another loopwatch process "
                    f"(usually a running server): {exc}"
                ) from exc
            raise
        # Partition dates and windows are UTC whatever the host's zone (ICU loads after connect).
        self._con.execute("SET GLOBAL TimeZone = 'UTC'").fetchall()
        # Restored after every cache release: the configured limit as given, or DuckDB's default.
        self._memory_limit = memory_limit
        self.path = path
        self.write_lock = threading.RLock()
        self._migrate()

    @property
    def is_open(self) -> bool:
        return self._con is not None

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection for the calling thread; DuckDB cursors are cheap and share the database."""
        return self._con.cursor()

    def query(self, sql: str, params: list[Any] | dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        cur = self.cursor()
        try:
            return cur.execute(sql, params or []).fetchall()
        finally:
            cur.close()

    def query_dicts(self, sql: str, params: list[Any] | dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Rows as dicts keyed by their SQL column names (alias a column to rename it)."""
        cur = self.cursor()
        try:
            cur.execute(sql, params or [])
            names = [d[0] for d in cur.description or []]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        finally:
            cur.close()

    def query_one(self, sql: str, params: list[Any] | dict[str, Any] | None = None) -> tuple[Any, ...] | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One atomic write: everything inside commits together or not at all."""
        with self.write_lock:
            cur = self.cursor()
            cur.execute("BEGIN TRANSACTION").fetchall()
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK").fetchall()
                cur.close()
                raise
            cur.execute("COMMIT").fetchall()
            cur.close()

    def checkpoint(self) -> None:
        with self.write_lock:
            self.query("CHECKPOINT")

    @property
    def wal_path(self) -> Path:
        return self.path.with_name(self.path.name + ".wal")

    def memory_by_tag(self) -> dict[str, int]:
        """DuckDB's own memory by tag (``duckdb_memory()``: buffer pool and allocator use)."""
        rows = self.query("SELECT tag, memory_usage_bytes FROM duckdb_memory() WHERE memory_usage_bytes > 0")
        return {str(tag).lower(): int(used) for tag, used in rows}

    def wal_bytes(self) -> int:
        """The size of the write-ahead log now (0 when there is none: just checkpointed)."""
        try:
            return self.wal_path.stat().st_size
        except FileNotFoundError:
            return 0

    def checkpoint_if_wal_over(self, limit: int) -> bool:
        """Checkpoint when the WAL exceeds ``limit`` bytes (0 = never); True if it checkpointed.

        Run by the background ``loopwatch-wal-checkpoint`` job, never by a request: ingest keeps
        the large automatic ``checkpoint_threshold`` so no request pays for a checkpoint, and this
        bounds the WAL (and the memory DuckDB holds for it) between automatic checkpoints. It takes
        the write lock like sealing, so it runs between ingest commits, never inside one."""
        if limit <= 0 or self.wal_bytes() <= limit:
            return False
        with self.write_lock:
            if self._con is None or self.wal_bytes() <= limit:
                return False
            try:
                self.query("CHECKPOINT")
            except duckdb.TransactionException as exc:
                # Run/alert records, rollups, audit, keys and sessions write in their own short
                # transactions outside write_lock (seen once in the 1-hour soak, at an hour
                # boundary): not a failure, the next tick checkpoints.
                log.info("WAL checkpoint deferred: %s", exc)
                return False
        return True

    def release_cache(self, reserve_bytes: int) -> int:
        """Evict the table blocks DuckDB keeps cached; returns the bytes of them released.

        DuckDB keeps every block it has checkpointed or read (``BASE_TABLE`` in
        ``duckdb_memory()``) until ``memory_limit``, so a 256MB pool swung the server's RSS by
        ±50 MB with where checkpoints and monitor scans fell. Lowering the limit is DuckDB's only
        eviction trigger besides allocation pressure (its buffer pool evicts unpinned blocks to
        fit a new limit): set it to what is in use minus the cached blocks plus
        ``reserve_bytes``, then restore it at once. Under the write lock, so no ingest or
        checkpoint allocates meanwhile; a concurrent read has ``reserve_bytes`` of headroom for
        the few milliseconds the lower limit lasts (the caller also waits for monitor runs to be
        idle). A pinned block (a scan in progress) is simply not evicted."""
        with self.write_lock:
            if self._con is None:
                return 0
            before = self.memory_by_tag()
            cached = before.get("base_table", 0)
            if cached <= reserve_bytes:
                return 0
            target = sum(before.values()) - cached + reserve_bytes
            try:
                self.query(f"SET memory_limit = '{int(target)}B'")
            finally:
                if self._memory_limit:
                    self.query("SET memory_limit = ?", [self._memory_limit])
                else:
                    self.query("RESET memory_limit")
            return max(cached - self.memory_by_tag().get("base_table", 0), 0)

    def close(self) -> None:
        with self.write_lock:
            if self._con is None:
                return
            try:
                self._con.execute("CHECKPOINT").fetchall()
            finally:
                try:
                    self._con.close()
                except duckdb.Error as exc:
                    # A monitor run abandoned after the shutdown grace is still querying: leave the
                    # connection to the process exit. Every commit is already in the WAL, which
                    # DuckDB replays at the next start.
                    log.warning("database left open at shutdown (%s); the WAL is replayed at next start", exc)
                self._con = None  # type: ignore[assignment]  # let the binding object go even if we linger

    def _migrate(self) -> None:
        with self.write_lock:
            self._con.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations(version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ)"
            ).fetchall()
            done = {r[0] for r in self._con.execute("SELECT version FROM schema_migrations").fetchall()}
            for number, sql in enumerate(MIGRATIONS, start=1):
                if number in done:
                    continue
                self._con.execute("BEGIN TRANSACTION").fetchall()
                try:
                    if callable(sql):
                        sql(self._con)
                    else:
                        for statement in [s for s in sql.split(";") if s.strip()]:
                            self._con.execute(statement).fetchall()
                    self._con.execute("INSERT INTO schema_migrations VALUES (?, now())", [number]).fetchall()
                except BaseException:
                    self._con.execute("ROLLBACK").fetchall()
                    raise
                self._con.execute("COMMIT").fetchall()
