"""The MQTT consumer of one source: a persistent session, QoS 1, and acknowledgement only after
the message's rows are durable.

- **Session.** MQTT 3.1.1 with ``clean_session=False`` and a stable client id per source
  (``loopwatch-NAME``): the broker keeps the subscription and queues QoS 1 messages while the
  consumer is away (a server stopped, killed or restarting), and redelivers any it sent but never
  got a PUBACK for.
- **Acknowledgement.** ``manual_ack=True``: paho hands each message over without acknowledging
  it; a worker thread stores it (:func:`monitor.streaming.ingest.handle_message`) and only then
  calls ``client.ack``. A ``kill -9`` between storing and acknowledging means a redelivery,
  which the prediction ids make harmless. Messages are handled and acknowledged in arrival order,
  as MQTT requires.
- **QoS 2** is subscribed as QoS 1: paho answers a QoS 2 PUBLISH with PUBREC before the
  application sees it, after which the broker never resends it, so a crash before storing would
  lose it. At-least-once plus ids gives exactly-once rows without that risk.
- **Backpressure.** While the store refuses (disk full, damaged storage…), the worker retries the
  same message with exponential backoff and acknowledges nothing; the broker's in-flight window
  then fills and it stops sending, queueing the rest in the session.
"""

from __future__ import annotations

import logging
import queue
import ssl
import sys
import threading
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from monitor.clock import Clock, utcnow
from monitor.streaming.delivery import BACKOFF_MAX_S, Handler, Listener, SourceTally, store_with_retry
from monitor.streaming.ingest import Outcome
from monitor.streaming.sources import SourceSpec

log = logging.getLogger("loopwatch")


QUEUE_BOUND = 1000  # messages handed over but not yet stored (the broker's in-flight window is smaller)


@dataclass
class _Delivery:
    message: mqtt.MQTTMessage
    connection: int  # which connection delivered it: an ack is only valid on that one


class MqttConsumer:
    """Consume one mqtt source until :meth:`stop`."""

    def __init__(
        self,
        spec: SourceSpec,
        handle: Handler,
        listener: Listener | None = None,
        *,
        now: Clock = utcnow,
        backoff_max_s: float = BACKOFF_MAX_S,
    ) -> None:
        self.spec = spec
        self._handle = handle
        self._backoff_max = backoff_max_s
        self._queue: queue.Queue[_Delivery] = queue.Queue(QUEUE_BOUND)
        self._stopping = threading.Event()
        self._unsubscribed = threading.Event()
        self._connection = 0
        self._lock = threading.Lock()
        self.state = "connecting"
        self._refusal: str | None = None
        self.tally = SourceTally(spec.name, listener, now)
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=spec.mqtt_client_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
            manual_ack=True,
        )
        if spec.username is not None:
            self._client.username_pw_set(spec.username, spec.password())
        if spec.uses_tls:  # the broker's certificate and host name are verified (the system's CAs by default)
            self._client.tls_set(ca_certs=spec.ca_file, certfile=spec.cert_file, keyfile=spec.key_file)
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_unsubscribe = lambda *_: self._unsubscribed.set()
        self._worker = threading.Thread(target=self._work, name=f"loopwatch-source-{spec.name}", daemon=True)

    @property
    def subscribed_qos(self) -> int:
        return min(self.spec.mqtt_qos, 1)

    def start(self) -> None:
        """Connect in the background (a broker that is down is retried, never fatal)."""
        host, port = self.spec.host_port()
        self._client.connect_async(host, port, keepalive=30)
        self._client.loop_start()
        self._worker.start()

    def stop(self, timeout: float = 10.0, *, unsubscribe: bool = False) -> None:
        """Disconnect; a message being stored finishes, queued ones stay unacknowledged (redelivered).
        ``unsubscribe`` (the source was deleted or now reads another topic) first ends the
        subscription, so the broker stops queueing the topic's messages for this session."""
        self._stopping.set()
        if unsubscribe and self.state == "connected":
            self._client.unsubscribe(self.spec.topic)
            self._unsubscribed.wait(min(timeout, 3.0))
        self._client.disconnect()
        self._worker.join(timeout)
        self._client.loop_stop()
        self.state = "stopped"

    @property
    def last_error(self) -> str | None:
        return self.tally.last_error

    @last_error.setter
    def last_error(self, value: str | None) -> None:
        self.tally.last_error = value

    @property
    def counts(self) -> dict[str, int]:
        return self.tally.counts

    def status(self) -> dict[str, Any]:
        """State and tally; ``lag_messages`` is what the server holds but has not stored yet (the
        queue): the broker's own queue for the session is not visible to an MQTT client."""
        pending = self._queue.qsize()
        return {
            "state": self.state,
            **self.tally.status(),
            "subscribed_qos": self.subscribed_qos,
            "pending": pending,
            "lag_messages": pending,
        }

    # --- paho callbacks (its network thread) ------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _: Any, flags: Any, reason: Any, __: Any) -> None:
        if reason.is_failure:
            self.state = "disconnected"
            self._refusal = f"broker refused the connection: {reason}"
            self.last_error = self._refusal
            return
        self._refusal = None
        with self._lock:
            self._connection += 1
        self.state = "subscribing"  # "connected" once the broker granted the subscription
        self.last_error = None
        client.subscribe(self.spec.topic, qos=self.subscribed_qos)

    def _on_subscribe(self, _: mqtt.Client, __: Any, ___: int, reasons: list[Any], ____: Any) -> None:
        refused = [r for r in reasons if r.is_failure]
        if refused:
            self.state = "disconnected"
            self.last_error = f"broker refused the subscription to {self.spec.topic!r}: {refused[0]}"
            return
        self.state = "connected"

    def _on_connect_fail(self, _: mqtt.Client, __: Any) -> None:
        host, port = self.spec.host_port()
        self.state = "disconnected"
        # paho calls this inside its `except OSError` around the connect: the error is current.
        failure = sys.exc_info()[1]
        if isinstance(failure, ssl.SSLError):
            if isinstance(failure, ssl.SSLCertVerificationError):
                reason = f"certificate verify failed: {failure.verify_message}"
            else:
                reason = failure.reason or str(failure)
            self.last_error = f"TLS handshake with the broker at {host}:{port} failed ({reason}); retrying"
        else:
            self.last_error = f"cannot reach the broker at {host}:{port}; retrying"

    def _on_disconnect(self, _: mqtt.Client, __: Any, ___: Any, reason: Any, ____: Any) -> None:
        if not self._stopping.is_set():
            self.state = "disconnected"
            # A refused login is followed by the broker closing the connection: keep its reason.
            self.last_error = (
                f"{self._refusal}; retrying" if self._refusal else f"connection lost ({reason}); reconnecting"
            )

    def _on_message(self, _: mqtt.Client, __: Any, message: mqtt.MQTTMessage) -> None:
        delivery = _Delivery(message, self._connection)
        while not self._stopping.is_set():  # a full queue holds the network thread: the broker waits
            try:
                self._queue.put(delivery, timeout=0.5)
                return
            except queue.Full:
                continue

    # --- the worker ------------------------------------------------------------------------------

    def _work(self) -> None:
        while not self._stopping.is_set():
            try:
                delivery = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            outcome = self._store(delivery.message)
            if outcome is None:  # stopping before it was stored: left for redelivery
                return
            with self._lock:
                same_connection = delivery.connection == self._connection
            if same_connection and delivery.message.qos > 0:
                self._client.ack(delivery.message.mid, delivery.message.qos)
            # else: the broker redelivers it on the new connection; the ids dedupe the rows

    def _store(self, message: mqtt.MQTTMessage) -> Outcome | None:
        if self._stopping.is_set():
            return None
        return store_with_retry(
            lambda: self._handle(message.topic, message.payload),
            self.tally,
            lambda delay: not self._stopping.wait(delay),
            self._backoff_max,
        )
