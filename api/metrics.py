"""Prometheus metrics for the service itself (one registry per app, so tests stay isolated); the
per-model gauges are a collector of their own (api/model_metrics.py) registered here."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
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
            "error (store refused; not acknowledged, retried)",
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
        self.duckdb_wal_bytes = Gauge(
            "loopwatch_duckdb_wal_bytes",
            "Size of DuckDB's write-ahead log, read at scrape time (a checkpoint empties it)",
            registry=self.registry,
        )

    def count_source_message(self, source: str, result: str, rows: int) -> None:
        """A source consumer's listener (monitor/streaming/mqtt.py)."""
        self.source_messages.labels(source, result).inc()
        if rows:
            self.source_rows.labels(source).inc(rows)
        if result != "error":
            self.source_last_message.labels(source).set_to_current_time()

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
