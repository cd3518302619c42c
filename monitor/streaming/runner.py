"""The server's running consumers, one per source: started at startup and when sources are
applied, stopped when deleted and at shutdown. Kafka sources are stored but not consumed yet,
and the status says so."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from monitor.streaming.ingest import Outcome, handle_message
from monitor.streaming.mqtt import Listener, MqttConsumer
from monitor.streaming.sources import SourceSpec

if TYPE_CHECKING:
    from monitor.service import Loopwatch

log = logging.getLogger("loopwatch")

KAFKA_NOT_BUILT = "not running: kafka consumer not built yet"


class SourceRunner:
    def __init__(self, service: Loopwatch, listener: Listener | None = None) -> None:
        self._service = service
        self._listener = listener
        self._consumers: dict[str, MqttConsumer] = {}
        self._lock = threading.Lock()

    def start_all(self) -> None:
        for spec in self._service.sources.list():
            self.start(spec)

    def start(self, spec: SourceSpec) -> None:
        """(Re)start the consumer of ``spec`` (a changed declaration replaces the running one;
        one that now reads another topic or broker, or is no longer mqtt, gives up its old subscription)."""
        with self._lock:
            running = self._consumers.get(spec.name)
        moved = running is not None and (
            spec.kind != "mqtt" or (running.spec.url, running.spec.topic) != (spec.url, spec.topic)
        )
        self.stop(spec.name, forget=moved)
        if spec.kind != "mqtt":
            return

        def handle(topic: str, payload: bytes) -> Outcome:
            return handle_message(self._service, spec, topic, payload)

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
        if spec.kind == "kafka":
            return {"state": KAFKA_NOT_BUILT}
        with self._lock:
            consumer = self._consumers.get(spec.name)
        return consumer.status() if consumer is not None else {"state": "not running: not started"}
