"""The Kafka consumer of one source (confluent-kafka / librdkafka): offsets committed only after
the message's rows are durable.

- **Commit after durable.** ``enable.auto.commit`` and ``enable.auto.offset.store`` are off:
  librdkafka never commits on its own. Each message is stored
  (:func:`monitor.streaming.ingest.handle_message`, the REST JSON path) and only then is its
  offset + 1 committed for its partition. A ``kill -9`` between the two means a redelivery, which
  the prediction ids make harmless: at-least-once delivery, each row stored once.
- **Synchronous commit, per message.** A message is already one all-or-nothing batch of records
  (hundreds of rows, one DuckDB commit of milliseconds), so one commit round trip per message is
  a small share of its cost, and a synchronous commit means the committed offset is known
  exactly — the status and lag read it, and a failed commit is seen and counted (the rows are
  stored; the message will be redelivered and deduplicated). Async or batched commits would
  save a round trip per message but make "what is committed" a guess.
- **In order, one thread.** One thread polls, stores and commits, so a partition's messages are
  stored in offset order and a commit never passes a message that is not stored. (Messages of
  different partitions interleave; ordering across partitions is not Kafka's promise either.)
- **Backpressure.** While the store refuses (disk full, damaged storage…), every assigned
  partition is *paused* and the same message is retried with exponential backoff; the consumer
  keeps calling ``poll`` (fetching nothing) so it stays in its group (``max.poll.interval.ms``)
  instead of being expelled and triggering rebalances. A message fetched before the pause took
  effect is rewound (``seek``) so it is fetched again, in order, after ``resume``.
- **Rebalance.** Every stored message was committed before ``poll`` runs the rebalance
  callback, so a revoke has nothing durable left to commit. A message being retried when its
  partition is revoked is given up uncommitted: the partition's next owner starts from the
  committed offset, i.e. at that message. Partitions assigned while a message is retried are
  paused at once; assigned otherwise they are explicitly resumed (a partition paused before a
  revoke would otherwise come back paused and never be read — a rebalance test found that).
- **A new group starts at the beginning** (``auto.offset.reset=earliest``): a source declared
  after predictions were produced should store them rather than silently skip to the end, and
  the ids make reading something twice harmless. (Where the broker already expired old segments,
  it starts at the oldest retained one.)
- **Lag** per partition = high watermark − the group's committed offset (the low watermark while
  the group has committed nothing), read every :data:`LAG_REFRESH_S` by a second client outside
  the group (see :meth:`KafkaConsumer._watch_lag`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from monitor.clock import Clock, utcnow
from monitor.streaming.delivery import BACKOFF_MAX_S, Handler, Listener, SourceTally, store_with_retry
from monitor.streaming.sources import SourceSpec

log = logging.getLogger("loopwatch")


POLL_S = 0.2
LAG_REFRESH_S = 2.0
BROKER_TIMEOUT_S = 2.0
NOTHING_COMMITTED = -1  # the group has no offset for the partition: it starts at the low watermark


def security_config(spec: SourceSpec) -> dict[str, str]:
    """librdkafka's TLS and SASL settings for the source (none for plaintext). The password is
    read from the server's environment here, when the consumer is built, and never logged."""
    out: dict[str, str] = {}
    if spec.security_protocol is not None:
        out["security.protocol"] = spec.security_protocol
    if spec.uses_sasl:
        out["sasl.mechanism"] = spec.sasl_mechanism or ""
        out["sasl.username"] = spec.username or ""
        out["sasl.password"] = spec.password() or ""
    if spec.uses_tls:
        for key, value in (
            ("ssl.ca.location", spec.ca_file),
            ("ssl.certificate.location", spec.cert_file),
            ("ssl.key.location", spec.key_file),
        ):
            if value is not None:
                out[key] = value
    return out


def where(message: Message) -> str:
    """``topic[partition]@offset``: what a dead letter records as its topic."""
    return f"{message.topic()}[{message.partition()}]@{message.offset()}"


class KafkaConsumer:
    """Consume one kafka source until :meth:`stop`; the same interface as ``MqttConsumer``."""

    def __init__(
        self,
        spec: SourceSpec,
        handle: Handler,
        listener: Listener | None = None,
        *,
        now: Clock = utcnow,
        backoff_max_s: float = BACKOFF_MAX_S,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        """``config``: extra librdkafka settings (tests and the benchmark shorten the group's
        session timeout); the delivery settings above cannot be overridden."""
        self.spec = spec
        self._handle = handle
        self._backoff_max = backoff_max_s
        self._config: dict[str, Any] = {
            "bootstrap.servers": spec.bootstrap,
            "group.id": spec.group,
            "client.id": f"loopwatch-{spec.name}",
            "enable.partition.eof": False,
            "logger": logging.getLogger("loopwatch.kafka"),
            **security_config(spec),
            **(config or {}),
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "error_cb": self._on_error,
        }
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self.state = "connecting"
        self.paused = False
        self.broker_errors = 0
        self.tally = SourceTally(spec.name, listener, now)
        self._assigned: set[int] = set()
        self._revoked: set[int] = set()  # partitions revoked while a message was being retried
        self._rewound: set[int] = set()  # partitions rewound while the current message is retried
        self._committed: dict[int, int] = {}  # partition → the next offset, as this consumer committed it
        self._lag: dict[int, int] = {}
        self._thread = threading.Thread(target=self._run, name=f"loopwatch-source-{spec.name}", daemon=True)
        self._lag_thread = threading.Thread(target=self._watch_lag, name=f"loopwatch-lag-{spec.name}", daemon=True)

    def start(self) -> None:
        """Consume in the background (brokers that are down are retried by librdkafka, never fatal)."""
        self._thread.start()
        self._lag_thread.start()

    def stop(self, timeout: float = 10.0, *, unsubscribe: bool = False) -> None:
        """Leave the group; a message being stored finishes and is committed, nothing else is.
        ``unsubscribe`` changes nothing for Kafka: the group's committed offsets stay on the
        broker (until its ``offsets.retention.minutes``), the messages stay in the topic."""
        self._stopping.set()
        self._thread.join(timeout)
        self._lag_thread.join(timeout)
        self.state = "stopped"

    @property
    def last_error(self) -> str | None:
        return self.tally.last_error

    @property
    def counts(self) -> dict[str, int]:
        return self.tally.counts

    def lag(self) -> dict[int, int]:
        with self._lock:
            return dict(self._lag)

    def committed(self) -> dict[int, int]:
        """What this consumer committed, per partition (the next offset the group reads)."""
        with self._lock:
            return dict(self._committed)

    def status(self) -> dict[str, Any]:
        lag = self.lag()
        with self._lock:
            assigned = sorted(self._assigned)
        return {
            "state": self.state,
            **self.tally.status(),
            "partitions": assigned,
            "paused": self.paused,
            "lag_messages": sum(lag.values()) if lag else None,
            "lag_by_partition": {str(p): n for p, n in sorted(lag.items())},
            "broker_errors": self.broker_errors,
        }

    # --- the consuming thread ----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            consumer = Consumer(self._config)
        except KafkaException as exc:
            self.state = "failed"
            self.tally.last_error = f"cannot create the consumer: {exc}"
            log.error("source %s: %s", self.spec.name, self.tally.last_error)
            return
        try:
            consumer.subscribe(
                [self.spec.topic], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_revoke
            )
            while not self._stopping.is_set():
                message = consumer.poll(POLL_S)
                if message is None:
                    continue
                error = message.error()
                if error is not None:
                    self._on_error(error)
                    continue
                self._consume(consumer, message)
        except Exception as exc:  # librdkafka fatal errors: say so instead of dying silently
            self.state = "failed"
            self.tally.last_error = f"consumer stopped: {type(exc).__name__}: {exc}"
            log.exception("source %s: consumer failed", self.spec.name)
        finally:
            consumer.close()  # leaves the group; commits nothing (auto commit is off)

    def _consume(self, consumer: Consumer, message: Message) -> None:
        self.state = "connected"
        partition = int(message.partition() or 0)
        payload = message.value() or b""
        label = where(message)
        self._rewound = set()
        with self._lock:
            self._revoked.discard(partition)
        outcome = store_with_retry(
            lambda: self._handle(label, payload),
            self.tally,
            lambda delay: self._hold(consumer, partition, delay),
            self._backoff_max,
        )
        if self.paused:
            consumer.resume(consumer.assignment())
            self.paused = False
        if outcome is None:  # stopping, or the partition went elsewhere: not stored, not committed
            return
        offset = int(message.offset() or 0) + 1
        try:
            consumer.commit(offsets=[TopicPartition(self.spec.topic, partition, offset)], asynchronous=False)
        except KafkaException as exc:
            self.tally.commit_failed(str(exc))
            return
        with self._lock:
            self._committed[partition] = offset

    def _hold(self, consumer: Consumer, partition: int, delay: float) -> bool:
        """Wait ``delay`` with every partition paused, still polling (group membership, rebalance
        callbacks); False when stopping or when ``partition`` was revoked meanwhile."""
        if not self.paused:
            consumer.pause(consumer.assignment())
            self.paused = True
        deadline = time.monotonic() + delay
        while not self._stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            early = consumer.poll(min(POLL_S, left))
            if early is not None and early.error() is None:
                # fetched before the pause took effect, or from a partition assigned meanwhile:
                # pause its partition too and rewind to it, so it is fetched again, in order,
                # after resuming. Only the first per partition: later ones are behind it.
                early_partition, early_offset = int(early.partition() or 0), int(early.offset() or 0)
                if early_partition not in self._rewound:
                    self._rewound.add(early_partition)
                    rewind = TopicPartition(self.spec.topic, early_partition, early_offset)
                    consumer.pause([rewind])
                    consumer.seek(rewind)
            with self._lock:
                if partition in self._revoked:
                    return False
        return not self._stopping.is_set()

    # --- the lag watcher ------------------------------------------------------------------------------

    def _watch_lag(self) -> None:
        """Every :data:`LAG_REFRESH_S`: the group's committed offsets and the partitions' high
        watermarks, read by a client of its own outside the group. Not on the consuming thread:
        a broker answers one request per connection at a time, and the consumer's fetch request
        is held for up to ``fetch.wait.max.ms`` when there is nothing new, so offset queries on
        its connection would stall consumption."""
        reader_config = {
            k: v for k, v in self._config.items() if k in ("bootstrap.servers", "group.id", "logger") or "." in k
        }
        reader_config.update({"client.id": f"loopwatch-{self.spec.name}-lag", "error_cb": lambda _: None})
        try:
            reader = Consumer(reader_config)
        except KafkaException as exc:
            log.error("source %s: cannot read its lag: %s", self.spec.name, exc)
            return
        try:
            while not self._stopping.wait(LAG_REFRESH_S):
                self._read_lag(reader)
        finally:
            reader.close()

    def _read_lag(self, reader: Consumer) -> None:
        with self._lock:
            partitions = sorted(self._assigned)
        if not partitions:
            with self._lock:
                self._lag = {}
            return
        try:
            found = reader.committed([TopicPartition(self.spec.topic, p) for p in partitions], timeout=BROKER_TIMEOUT_S)
            committed = {tp.partition: tp.offset for tp in found}
            lag: dict[int, int] = {}
            for p in partitions:
                low, high = reader.get_watermark_offsets(
                    TopicPartition(self.spec.topic, p), timeout=BROKER_TIMEOUT_S, cached=False
                )
                start = committed.get(p, NOTHING_COMMITTED)
                lag[p] = max(0, high - (start if start >= 0 else low))
        except KafkaException as exc:  # a broker away: keep the last figures (the error callback says why)
            log.debug("source %s: cannot read offsets: %s", self.spec.name, exc)
            return
        with self._lock:
            self._lag = {p: n for p, n in lag.items() if p in self._assigned}
        if self.state == "disconnected":  # the brokers answer again
            self.state = "connected"
            if self.tally.last_error and self.tally.last_error.startswith("broker:"):
                self.tally.last_error = None

    # --- librdkafka callbacks (called from poll, on the consuming thread) --------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Take the partitions paused while a message is being retried (a rebalance in the
        middle of backpressure must not start fetching), explicitly resumed otherwise: a
        partition paused before it was revoked must not come back paused and stall."""
        consumer.assign(partitions)
        if self.paused:
            consumer.pause(partitions)
        else:
            consumer.resume(partitions)
        with self._lock:
            self._assigned = {tp.partition for tp in partitions}
        self.state = "connected"

    def _on_revoke(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        """Nothing to commit: every stored message already was (synchronously, before this poll)."""
        gone = {tp.partition for tp in partitions}
        with self._lock:
            self._revoked |= gone
            self._assigned -= gone
            for p in gone:
                self._lag.pop(p, None)

    def _on_error(self, error: KafkaError) -> None:
        self.broker_errors += 1
        if error.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT, KafkaError._RESOLVE):
            self.state = "disconnected"
        self.tally.last_error = f"broker: {error.str()}"
        log.warning("source %s: kafka error: %s", self.spec.name, error.str())
