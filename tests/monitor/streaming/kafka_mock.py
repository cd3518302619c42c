"""librdkafka's built-in mock cluster, reachable by other clients on loopback.

A client configured with ``test.mock.num.brokers`` starts an in-process mock cluster (a real
Kafka protocol server: produce, fetch, consumer groups, offset commits) and replaces its own
``bootstrap.servers`` with it. confluent-kafka 2.16 does not expose the cluster's address
(``rd_kafka_mock_cluster_bootstraps`` is C-only), but the holder's metadata lists the mock
broker's host and port, and any other client connects there like to a real broker. The cluster
lives as long as the holding producer. It does not implement CreateTopics (an AdminClient call
times out); topics are auto-created, with 4 partitions, by a metadata request naming them.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

QUIET = logging.getLogger("tests.kafka")  # librdkafka's log lines, kept out of stderr
# A restarted consumer (same group) waits for the group to rebalance; the mock cluster honours
# the session timeout, so tests shorten it from 45 s.
FAST_GROUP = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500, "logger": QUIET}


class KafkaClient:
    """What a test does to a broker at ``bootstrap``: produce, and read back offsets."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self._producer = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 0, "logger": QUIET})

    def create_topic(self, topic: str) -> int:
        """Auto-create ``topic``; its number of partitions."""
        return len(self._producer.list_topics(topic, timeout=10).topics[topic].partitions)

    def produce(self, topic: str, payload: Any, partition: int) -> int:
        """Send one message (a JSON-able value, or raw bytes) to ``partition`` and wait for the
        broker's acknowledgement; its offset."""
        body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        delivered: list[Message] = []

        def on_delivery(error: KafkaError | None, message: Message) -> None:
            assert error is None, error
            delivered.append(message)

        self._producer.produce(topic, body, partition=partition, on_delivery=on_delivery)
        assert self._producer.flush(10) == 0 and delivered, "the mock broker did not acknowledge"
        return int(delivered[0].offset() or 0)

    def committed(self, group: str, topic: str, partitions: int) -> dict[int, int]:
        """The group's committed offsets as the broker holds them (read by a client outside the
        group); partitions with nothing committed are left out."""
        reader = Consumer({"bootstrap.servers": self.bootstrap, "group.id": group, "logger": QUIET})
        try:
            found = reader.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        finally:
            reader.close()
        return {tp.partition: tp.offset for tp in found if tp.offset >= 0}

    def high_watermarks(self, topic: str, partitions: int) -> dict[int, int]:
        reader = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "watermarks", "logger": QUIET})
        try:
            return {p: reader.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(partitions)}
        finally:
            reader.close()

    def close(self) -> None:
        self._producer.flush(5)


class MockCluster(KafkaClient):
    """The mock cluster, alive as long as this object (its holder producer)."""

    def __init__(self) -> None:
        self._holder = Producer({"test.mock.num.brokers": 1, "logger": QUIET})
        brokers = self._holder.list_topics(timeout=10).brokers
        broker = brokers[min(brokers)]
        super().__init__(f"{broker.host}:{broker.port}")
