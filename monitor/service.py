"""The core service for one data directory: database, registry, store, keys and audit log.

Both the HTTP app and the CLI (when no server holds the data directory) build one of these.
"""

from __future__ import annotations

from datetime import timedelta

from monitor.alerting.alerts import AlertStore
from monitor.audit import AuditLog
from monitor.clock import Clock, utcnow
from monitor.db import Database
from monitor.engines.spark import SparkEngines
from monitor.evaluation import Evaluator
from monitor.keys import KeyStore
from monitor.memory import process_memory
from monitor.monitors import MonitorStore
from monitor.references import ReferenceCache
from monitor.registry import Registry
from monitor.runs import RunStore
from monitor.scheduling import MonitorRunner
from monitor.sessions import SessionStore
from monitor.settings import Settings
from monitor.store import PredictionStore
from monitor.streaming.sources import SourceStore
from monitor.version import VERSION

# Headroom left to concurrent reads while DuckDB's cache is evicted: a dashboard query or label
# sync allocates far less than this in the few milliseconds the lower limit lasts.
CACHE_RELEASE_RESERVE_BYTES = 64 * 1024 * 1024


class Loopwatch:
    def __init__(self, settings: Settings, now: Clock = utcnow) -> None:
        self.settings = settings
        self.now = now
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.db = Database(
            settings.db_path,
            checkpoint_threshold=settings.checkpoint_threshold,
            memory_limit=settings.duckdb_memory_limit,
            threads=settings.duckdb_threads,
        )
        self.registry = Registry(self.db, now)
        self.registry.recount_versions_since_mark()
        self.store = PredictionStore(
            self.db,
            self.registry,
            settings.sealed_dir,
            now=now,
            max_future=timedelta(seconds=settings.max_future_seconds),
            hot_days=settings.hot_days,
            verify_bytes_per_second=settings.verify_bytes_per_second,
        )
        self.keys = KeyStore(self.db, now)
        self.audit = AuditLog(self.db, now)
        self.sessions = SessionStore(self.db, now)
        self.monitors = MonitorStore(self.db, self.registry, now)
        self.sources = SourceStore(self.db, now)
        self.runs = RunStore(self.db, self.registry, VERSION, now)
        self.evaluator = Evaluator(
            self.store,
            self.registry,
            settings.data_dir / "references",
            ReferenceCache(max_bytes=settings.reference_cache_mb * 1024 * 1024),
            reference_sample_rows=settings.reference_sample_rows,
        )
        # A trailing reference is frozen at the start of the monitor's open alert (the alert store
        # answers where); injected so the runner and evaluator never import alerting.
        alerts = AlertStore(self.db, self.registry, now)
        # The Spark engine starts on first use (a backfill --engine spark, or a run of an
        # `engine: spark` monitor); PySpark is imported only then.
        self.spark = SparkEngines(self)
        self.runner = MonitorRunner(
            self.evaluator,
            self.runs,
            self.monitors,
            now,
            reference_freeze=alerts.reference_freeze,
            engines=self._engine_evaluator,
        )

    def _engine_evaluator(self, engine: str) -> Evaluator:
        """The evaluator of a monitor's ``engine`` (other than ``embedded``)."""
        if engine != "spark":
            raise ValueError(f"unknown engine {engine!r}")
        return self.spark.evaluator()

    def memory(self) -> dict[str, int]:
        """Bytes by part (``loopwatch_memory_bytes``): the process's resident pages, C heap and
        Arrow pool, DuckDB's memory by tag, what the id indexes keep resident, and the prepared
        reference statistics."""
        parts = process_memory()
        for tag, used in self.db.memory_by_tag().items():
            parts[f"duckdb_{tag}"] = used
        parts["id_index"] = self.store.id_index_memory()
        parts["reference_cache"] = self.evaluator.cache.bytes
        return parts

    def release_duckdb_cache(self) -> int:
        """Evict DuckDB's cached table blocks while no monitor run is in progress (a run's scan
        may need the pool's headroom); bytes released, 0 when skipped. Ingest and API reads keep
        ``CACHE_RELEASE_RESERVE_BYTES`` of headroom meanwhile."""
        released = self.runner.when_idle(lambda: self.db.release_cache(CACHE_RELEASE_RESERVE_BYTES))
        return released or 0

    def close(self) -> None:
        self.spark.detach()
        self.registry.write_version_counts()
        self.store.close_indexes()
        self.db.close()
