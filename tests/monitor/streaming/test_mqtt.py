"""The MQTT consumer against a real Mosquitto: rows land once, malformed messages are
dead-lettered without stopping consumption, and a broker restart loses nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from monitor.service import Loopwatch
from monitor.streaming.runner import SourceRunner
from monitor.streaming.sources import SourceSpec
from tests.conftest import braking_record, earlier_today, free_port
from tests.monitor.streaming.conftest import Broker, Publish, wait_for

TOPIC = "plant/a/predictions"


def batch(start: int, n: int) -> list[dict[str, Any]]:
    return [braking_record(i, earlier_today(timedelta(seconds=i))) for i in range(start, start + n)]


def stored(service: Loopwatch) -> int:
    return int(service.store.stats("harsh-braking")["predictions"])


@pytest.fixture
def consuming(service: Loopwatch, braking_model: Any, broker: Broker) -> Iterator[tuple[SourceRunner, list[tuple]]]:
    spec = SourceSpec(name="plant-a", kind="mqtt", url=broker.url, topic=TOPIC, model="harsh-braking")
    service.sources.save_all([spec])
    events: list[tuple] = []
    runner = SourceRunner(service, lambda *e: events.append(e))
    runner.start_all()
    wait_for(lambda: runner.status(spec)["state"] == "connected", what="consumer connected")
    yield runner, events
    runner.stop_all()


def test_batch_lands_exactly_once(service: Loopwatch, consuming: Any, publish: Publish) -> None:
    """Published messages (lists and single records) are stored once; republishing the same
    records (what a redelivery is) stores nothing new."""
    for k in range(10):
        publish(TOPIC, batch(k * 20, 20))
    publish(TOPIC, braking_record(500, earlier_today()))
    wait_for(lambda: stored(service) == 201, what="201 rows")
    for k in range(3):
        publish(TOPIC, batch(k * 20, 20))
    _, events = consuming
    wait_for(lambda: len([e for e in events if e[1] == "stored"]) == 14, what="resends handled")
    assert stored(service) == 201
    assert sum(e[2] for e in events) == 201


def test_malformed_is_dead_lettered_and_consumption_goes_on(
    service: Loopwatch, consuming: Any, publish: Publish
) -> None:
    """Bad JSON and invalid records become dead letters (source, topic, reason, excerpt), are
    acknowledged, and the next good message still lands."""
    publish(TOPIC, b"{not json" + b"x" * 2000)
    publish(TOPIC, [{**braking_record(1, earlier_today()), "score": "high"}])
    publish(TOPIC, batch(0, 5))
    wait_for(lambda: stored(service) == 5, what="the good batch")
    letters = service.sources.dead_letters("plant-a")
    assert len(letters) == 2
    by_reason = sorted(letters, key=lambda d: d.payload_bytes)
    assert by_reason[1].payload_bytes == 2009 and "not valid UTF-8 JSON" in by_reason[1].reason
    assert len(by_reason[1].excerpt) < 600 and by_reason[1].topic == TOPIC
    assert "score" in by_reason[0].reason
    _, events = consuming
    assert [e[1] for e in events] == ["dead_letter", "dead_letter", "stored"]


def test_broker_restart_loses_nothing(service: Loopwatch, consuming: Any, broker: Broker, publish: Publish) -> None:
    """Messages published before a broker restart (some possibly unacknowledged when it went
    down) and after it all land, once: the session and its queue survive the restart."""
    for k in range(10):
        publish(TOPIC, batch(k * 10, 10))
    broker.restart()
    for k in range(10, 20):
        publish(TOPIC, batch(k * 10, 10))
    wait_for(lambda: stored(service) == 200, timeout=40, what="all 200 rows after the restart")
    runner, _ = consuming
    spec = service.sources.get("plant-a")
    wait_for(lambda: runner.status(spec)["state"] == "connected", what="reconnected")
    assert stored(service) == 200


def test_session_queue_survives_broker_restart_while_consumer_away(
    service: Loopwatch, consuming: Any, broker: Broker, publish: Publish
) -> None:
    """With the consumer stopped, messages queue in its persistent session; the broker restarts
    (persistence on) and the restarted consumer still receives every one of them."""
    runner, _ = consuming
    spec = service.sources.get("plant-a")
    runner.stop("plant-a")
    for k in range(5):
        publish(TOPIC, batch(k * 10, 10))
    broker.restart()
    assert stored(service) == 0
    runner.start(spec)
    wait_for(lambda: stored(service) == 50, timeout=40, what="the 50 queued rows")


def test_unreachable_broker_is_reported_not_fatal(service: Loopwatch, braking_model: Any) -> None:
    """A source whose broker is down starts anyway and says why it is not consuming."""
    spec = SourceSpec(
        name="nowhere", kind="mqtt", url=f"mqtt://127.0.0.1:{free_port()}", topic=TOPIC, model="harsh-braking"
    )
    runner = SourceRunner(service)
    runner.start(spec)
    try:
        wait_for(lambda: runner.status(spec)["state"] == "disconnected", what="reported disconnected")
        assert "cannot reach the broker" in str(runner.status(spec)["last_error"])
    finally:
        runner.stop_all()
