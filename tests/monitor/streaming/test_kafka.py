"""The Kafka consumer against librdkafka's mock cluster (a real Kafka protocol server on
loopback, tests/monitor/streaming/kafka_mock.py): rows land once, the group's committed offsets
cover exactly the stored messages, malformed messages are dead-lettered without stopping
consumption, and a new consumer of the same group resumes at the committed offsets."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from monitor.service import Loopwatch
from monitor.streaming.ingest import handle_message
from monitor.streaming.kafka import KafkaConsumer
from monitor.streaming.runner import SourceRunner
from monitor.streaming.sources import SourceSpec
from tests.conftest import braking_record, earlier_today
from tests.monitor.streaming.conftest import wait_for
from tests.monitor.streaming.kafka_mock import FAST_GROUP, MockCluster

TOPIC = "fleet.predictions"
GROUP = "loopwatch"


def batch(start: int, n: int) -> list[dict[str, Any]]:
    return [braking_record(i, earlier_today(timedelta(seconds=i))) for i in range(start, start + n)]


def stored(service: Loopwatch) -> int:
    return int(service.store.stats("harsh-braking")["predictions"])


def fleet(cluster: MockCluster) -> SourceSpec:
    return SourceSpec(
        name="fleet", kind="kafka", bootstrap=cluster.bootstrap, topic=TOPIC, group=GROUP, model="harsh-braking"
    )


@pytest.fixture
def partitions(kafka_cluster: MockCluster) -> int:
    return kafka_cluster.create_topic(TOPIC)


@pytest.fixture
def consuming(
    service: Loopwatch, braking_model: Any, kafka_cluster: MockCluster, partitions: int
) -> Iterator[tuple[SourceRunner, SourceSpec, list[tuple[str, str, int]]]]:
    spec = fleet(kafka_cluster)
    service.sources.save_all([spec])
    events: list[tuple[str, str, int]] = []
    runner = SourceRunner(service, lambda *e: events.append(e), kafka_config=FAST_GROUP)
    runner.start_all()
    wait_for(lambda: runner.status(spec)["state"] == "connected", what="partitions assigned")
    yield runner, spec, events
    runner.stop_all()


def consumer(service: Loopwatch, spec: SourceSpec) -> KafkaConsumer:
    return KafkaConsumer(spec, lambda where, payload: handle_message(service, spec, where, payload), config=FAST_GROUP)


def test_batch_lands_exactly_once_and_commits_every_offset(
    service: Loopwatch, consuming: Any, kafka_cluster: MockCluster, partitions: int
) -> None:
    """Messages (lists and a single record) spread over the partitions are stored once; sending
    the same records again (what a redelivery is) stores nothing new; afterwards the group's
    committed offsets (as the broker holds them) equal the partitions' high watermarks and the
    consumer reports a lag of 0."""
    assert partitions >= 2
    for k in range(10):
        kafka_cluster.produce(TOPIC, batch(k * 20, 20), partition=k % partitions)
    kafka_cluster.produce(TOPIC, braking_record(500, earlier_today()), partition=0)
    wait_for(lambda: stored(service) == 201, what="201 rows")
    for k in range(3):
        kafka_cluster.produce(TOPIC, batch(k * 20, 20), partition=(k + 1) % partitions)
    runner, spec, events = consuming
    wait_for(lambda: len([e for e in events if e[1] == "stored"]) == 14, what="resends handled")
    assert stored(service) == 201
    assert sum(e[2] for e in events) == 201
    ends = {p: h for p, h in kafka_cluster.high_watermarks(TOPIC, partitions).items() if h > 0}
    assert sum(ends.values()) == 14
    wait_for(lambda: kafka_cluster.committed(GROUP, TOPIC, partitions) == ends, what="every offset committed")
    wait_for(lambda: runner.status(spec)["lag_messages"] == 0, what="lag 0")
    status = runner.status(spec)
    assert status["messages"]["stored"] == 14 and status["rows"] == 201 and status["rows_per_second_1m"] > 0


def test_malformed_is_dead_lettered_and_consumption_goes_on(
    service: Loopwatch, consuming: Any, kafka_cluster: MockCluster, partitions: int
) -> None:
    """Bad JSON and invalid records become dead letters whose topic names the partition and offset
    (``topic[p]@offset``); their offsets are committed like stored ones, and the good messages
    behind them on the same partition still land."""
    kafka_cluster.produce(TOPIC, b"{not json" + b"x" * 2000, partition=1)
    kafka_cluster.produce(TOPIC, [{**braking_record(1, earlier_today()), "score": "high"}], partition=1)
    kafka_cluster.produce(TOPIC, batch(0, 5), partition=1)
    kafka_cluster.produce(TOPIC, batch(5, 5), partition=0)
    wait_for(lambda: stored(service) == 10, what="the good batches")
    letters = sorted(service.sources.dead_letters("fleet"), key=lambda d: d.topic)
    assert [d.topic for d in letters] == [f"{TOPIC}[1]@0", f"{TOPIC}[1]@1"]
    assert "not valid UTF-8 JSON" in letters[0].reason and letters[0].payload_bytes == 2009
    assert "score" in letters[1].reason
    wait_for(lambda: kafka_cluster.committed(GROUP, TOPIC, partitions) == {0: 1, 1: 3}, what="offsets committed")
    _, _, events = consuming
    assert sorted(e[1] for e in events) == ["dead_letter", "dead_letter", "stored", "stored"]


def test_new_consumer_resumes_at_the_committed_offsets(
    service: Loopwatch, braking_model: Any, kafka_cluster: MockCluster, partitions: int
) -> None:
    """A consumer stopped mid-stream has committed exactly the messages it stored; a new consumer
    of the same group (a restarted server) starts at those offsets: it reads none of the stored
    messages again and every later one once — nothing lost, nothing read twice."""
    spec = fleet(kafka_cluster)
    first = consumer(service, spec)
    first.start()
    try:
        for k in range(2 * partitions):
            kafka_cluster.produce(TOPIC, batch(k * 10, 10), partition=k % partitions)
        wait_for(lambda: stored(service) == 20 * partitions, what="the first messages")
    finally:
        first.stop()
    assert first.counts["stored"] == 2 * partitions
    assert kafka_cluster.committed(GROUP, TOPIC, partitions) == {p: 2 for p in range(partitions)}
    for k in range(2 * partitions, 5 * partitions):
        kafka_cluster.produce(TOPIC, batch(k * 10, 10), partition=k % partitions)
    second = consumer(service, spec)
    second.start()
    try:
        wait_for(lambda: stored(service) == 50 * partitions, timeout=40, what="the later messages")
        time.sleep(0.5)  # a redelivered message would be counted by now
        assert second.counts["stored"] == 3 * partitions and second.tally.rows == 30 * partitions
    finally:
        second.stop()
    assert kafka_cluster.committed(GROUP, TOPIC, partitions) == {p: 5 for p in range(partitions)}
    assert stored(service) == 50 * partitions


def test_sasl_settings_reach_the_broker_and_a_failed_login_is_reported(
    service: Loopwatch,
    braking_model: Any,
    kafka_cluster: MockCluster,
    partitions: int,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A sasl_plaintext source connects with SASL (the mock cluster has no SASL, so the handshake
    is refused): the source reports the authentication failure, keeps running, and its password
    appears in no status or log line."""
    monkeypatch.setenv("LOOPWATCH_TEST_KAFKA_PASSWORD", "kafka-Pa55word")
    spec = fleet(kafka_cluster).model_copy(
        update={
            "security_protocol": "sasl_plaintext",
            "sasl_mechanism": "SCRAM-SHA-256",
            "username": "loopwatch",
            "password_env": "LOOPWATCH_TEST_KAFKA_PASSWORD",
        }
    )
    runner = SourceRunner(service, kafka_config=FAST_GROUP)
    runner.start(spec)
    try:
        wait_for(lambda: "SASL" in str(runner.status(spec)["last_error"]), what="SASL failure reported")
        status = str(runner.status(spec))
        assert "kafka-Pa55word" not in status and "kafka-Pa55word" not in caplog.text
        assert stored(service) == 0
    finally:
        runner.stop_all()
