"""Prometheus metrics for the service itself (one registry per app, so tests stay isolated); the
per-model gauges are a collector of their own (api/model_metrics.py) registered here."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.ingested_rows = Counter(
            "loopwatch_ingested_rows", "Prediction rows stored", ["model", "format"], registry=self.registry
        )
        self.duplicate_rows = Counter(
            "loopwatch_duplicate_rows", "Prediction rows dropped as resends", ["model"], registry=self.registry
        )
        self.changed_resends = Counter(
            "loopwatch_changed_resends",
            "Resent predictions whose fields differ from the stored row (the stored row is kept)",
            ["model"],
            registry=self.registry,
        )
        self.rejected_batches = Counter(
            "loopwatch_rejected_batches", "Batches refused as invalid", ["model", "kind"], registry=self.registry
        )
        self.labels = Counter("loopwatch_label_rows", "Label rows applied", ["model"], registry=self.registry)
        self.detector_runs = Counter(
            "loopwatch_detector_runs",
            "Monitor runs by outcome",
            ["model", "detector", "status"],
            registry=self.registry,
        )
        self.detector_seconds = Histogram(
            "loopwatch_detector_run_seconds",
            "Monitor run duration",
            ["detector"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )
        self.notifications = Counter(
            "loopwatch_alert_notifications",
            "Alert group notifications by receiver name (slack, webhook, pagerduty, email, log, or a routing file's) and result (sent, retry, failed)",
            ["receiver", "result"],
            registry=self.registry,
        )
        self.outbox_depth = Gauge("loopwatch_outbox_depth", "Notifications waiting to be sent", registry=self.registry)
        self.labeling_queue = Gauge(
            "loopwatch_labeling_queue_depth",
            "Routed samples by status (queued, pushed, annotated)",
            ["status"],
            registry=self.registry,
        )
        self.ingest_seconds = Histogram(
            "loopwatch_ingest_seconds",
            "Time from body received to durable acknowledgement",
            ["format"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.source_messages = Counter(
            "loopwatch_source_messages",
            "Streaming source messages by result: stored, dead_letter (acknowledged, recorded), "
            "error (store refused; not acknowledged, retried), commit_failed (stored, but the broker "
            "did not take the commit: it will be redelivered and deduplicated)",
            ["source", "result"],
            registry=self.registry,
        )
        self.source_rows = Counter(
            "loopwatch_source_rows",
            "Prediction rows stored from a streaming source",
            ["source"],
            registry=self.registry,
        )
        self.source_last_message = Gauge(
            "loopwatch_source_last_message_timestamp_seconds",
            "When a streaming source's last message was stored or dead-lettered (Unix time)",
            ["source"],
            registry=self.registry,
        )
        self.sealed_mirror_files = Counter(
            "loopwatch_sealed_mirror_files",
            "Sealed files the automatic mirror push (LOOPWATCH_SEALED_MIRROR) copied (pushed) or could "
            "not mirror (failed: damaged here, the copy did not check out, or the mirror unreachable)",
            ["result"],
            registry=self.registry,
        )
        self.sealed_mirror_last_complete = Gauge(
            "loopwatch_sealed_mirror_last_complete_timestamp_seconds",
            "When the automatic push last found every sealed file in the mirror (Unix time)",
            registry=self.registry,
        )
        self.duckdb_wal_bytes = Gauge(
            "loopwatch_duckdb_wal_bytes",
            "Size of DuckDB's write-ahead log, read at scrape time (a checkpoint empties it)",
            registry=self.registry,
        )

    def count_source_message(self, source: str, result: str, rows: int) -> None:
        """A source consumer's listener (monitor/streaming/delivery.py)."""
        self.source_messages.labels(source, result).inc()
        if rows:
            self.source_rows.labels(source).inc(rows)
        if result in ("stored", "dead_letter"):
            self.source_last_message.labels(source).set_to_current_time()

    def watch_sources(self, statuses: Callable[[], dict[str, dict[str, Any]]]) -> None:
        """Export each running source's lag and idle time, read from its consumer at each scrape
        (a restarted app replaces the reader)."""
        previous = getattr(self, "_sources", None)
        if previous is not None:
            self.registry.unregister(previous)
        self._sources = _SourceCollector(statuses)
        self.registry.register(self._sources)

    def watch_models(self, collector: Collector) -> None:
        """Export the per-model gauges (api/model_metrics.py); a restarted app replaces them."""
        previous = getattr(self, "_models", None)
        if previous is not None:
            self.registry.unregister(previous)
        self._models = collector
        self.registry.register(collector)

    def watch_memory(self, source: Callable[[], dict[str, int]]) -> None:
        """Export ``loopwatch_memory_bytes{part=…}``, read from ``source`` at each scrape (a
        restarted app replaces its source)."""
        previous = getattr(self, "_memory", None)
        if previous is not None:
            self.registry.unregister(previous)
        self._memory = _MemoryCollector(source)
        self.registry.register(self._memory)


class _SourceCollector:
    """Per-source lag and idle time (docs/streaming.md): what a counter cannot say."""

    def __init__(self, statuses: Callable[[], dict[str, dict[str, Any]]]) -> None:
        self._statuses = statuses

    def collect(self) -> Iterator[Metric]:
        lag = GaugeMetricFamily(
            "loopwatch_source_lag_messages",
            "Messages behind: kafka = high watermark - committed offset, summed over the assigned "
            "partitions; mqtt = messages received but not yet stored (the broker's queue is not visible)",
            labels=["source"],
        )
        idle = GaugeMetricFamily(
            "loopwatch_source_seconds_since_last_message",
            "Seconds since the source's last message was stored or dead-lettered (since this server started)",
            labels=["source"],
        )
        broker_errors = CounterMetricFamily(
            "loopwatch_source_broker_errors",
            "Errors the broker client reported (kafka: connection, transport, group); since the consumer started",
            labels=["source"],
        )
        for source, status in sorted(self._statuses().items()):
            if status.get("lag_messages") is not None:
                lag.add_metric([source], status["lag_messages"])
            if status.get("seconds_since_last_message") is not None:
                idle.add_metric([source], status["seconds_since_last_message"])
            if status.get("broker_errors") is not None:
                broker_errors.add_metric([source], status["broker_errors"])
        yield lag
        yield idle
        yield broker_errors


class _MemoryCollector:
    """Where the server's memory is, by part (see monitor.memory and docs/operations.md)."""

    def __init__(self, source: Callable[[], dict[str, int]]) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "loopwatch_memory_bytes",
            "Server memory by part: resident pages, C heap, Arrow pool, DuckDB by tag, id index",
            labels=["part"],
        )
        for part, value in sorted(self._source().items()):
            family.add_metric([part], value)
        yield family
