"""The server's running consumers, one per source (``MqttConsumer`` or ``KafkaConsumer``):
started at startup and when sources are applied, stopped when deleted and at shutdown."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from monitor.streaming.delivery import Listener
from monitor.streaming.ingest import Outcome, handle_message
from monitor.streaming.kafka import KafkaConsumer
from monitor.streaming.mqtt import MqttConsumer
from monitor.streaming.sources import SourceSpec

if TYPE_CHECKING:
    from monitor.service import Loopwatch

log = logging.getLogger("loopwatch")

Consumer = MqttConsumer | KafkaConsumer


class SourceRunner:
    def __init__(
        self, service: Loopwatch, listener: Listener | None = None, *, kafka_config: Mapping[str, Any] | None = None
    ) -> None:
        """``kafka_config``: extra librdkafka settings for every kafka consumer (tests shorten
        the group session timeout with it)."""
        self._service = service
        self._listener = listener
        self._kafka_config = kafka_config
        self._consumers: dict[str, Consumer] = {}
        self._lock = threading.Lock()

    def start_all(self) -> None:
        for spec in self._service.sources.list():
            self.start(spec)

    def start(self, spec: SourceSpec) -> None:
        """(Re)start the consumer of ``spec`` (a changed declaration replaces the running one;
        one that now reads another topic or broker, or is of another kind, gives up its old subscription)."""
        with self._lock:
            running = self._consumers.get(spec.name)
        moved = running is not None and (
            running.spec.kind != spec.kind or (running.spec.url, running.spec.topic) != (spec.url, spec.topic)
        )
        self.stop(spec.name, forget=moved)

        def handle(topic: str, payload: bytes) -> Outcome:
            return handle_message(self._service, spec, topic, payload)

        consumer: Consumer
        if spec.kind == "kafka":
            consumer = KafkaConsumer(spec, handle, self._listener, now=self._service.now, config=self._kafka_config)
        else:
            consumer = MqttConsumer(spec, handle, self._listener, now=self._service.now)
        with self._lock:
            self._consumers[spec.name] = consumer
        consumer.start()

    def stop(self, name: str, *, forget: bool = False) -> None:
        """Stop consuming ``name``; ``forget`` (a deleted source) also ends its broker subscription,
        so messages stop queueing for it. A server shutting down keeps it: they wait for the restart."""
        with self._lock:
            consumer = self._consumers.pop(name, None)
        if consumer is not None:
            consumer.stop(unsubscribe=forget)

    def stop_all(self) -> None:
        with self._lock:
            names = list(self._consumers)
        for name in names:
            self.stop(name)

    def status(self, spec: SourceSpec) -> dict[str, Any]:
        with self._lock:
            consumer = self._consumers.get(spec.name)
        return consumer.status() if consumer is not None else {"state": "not running: not started"}

    def statuses(self) -> dict[str, dict[str, Any]]:
        """Every running consumer's status by source name (what /metrics reads at each scrape)."""
        with self._lock:
            consumers = dict(self._consumers)
        return {name: consumer.status() for name, consumer in consumers.items()}
