"""The running server consumes its mqtt sources: applied through the CLI (via the server) they
start at once and deleted they stop; a ``kill -9`` loses nothing: what was published while it
was down, and what was in flight when it died, lands once after restart."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml
from typer.testing import CliRunner

from api.cli import app
from monitor.service import Loopwatch
from monitor.settings import Settings
from monitor.streaming.sources import SourceSpec
from tests.conftest import braking_record, earlier_today
from tests.monitor.streaming.conftest import Broker, Publish, wait_for
from tests.monitor.streaming.kafka_mock import MockCluster
from tests.monitor.streaming.test_kafka import TOPIC as FLEET_TOPIC
from tests.monitor.streaming.test_kafka import fleet

TOPIC = "plant/a/predictions"


def batch(start: int, n: int) -> list[dict[str, Any]]:
    return [braking_record(i, earlier_today(timedelta(seconds=i))) for i in range(start, start + n)]


def declare(server: Any, spec: SourceSpec) -> None:
    """Save ``spec`` in the server's data directory before the server starts."""
    svc = Loopwatch(Settings(data_dir=server.data_dir))
    try:
        svc.sources.save_all([spec])
    finally:
        svc.close()


def stored_rows(server: Any, headers: dict[str, str]) -> int:
    """The server's stored predictions, or -1 while it does not answer (down or restarting)."""
    try:
        r = httpx.get(f"{server.url}/v1/models/harsh-braking/stats", headers=headers, timeout=5)
    except httpx.HTTPError:
        return -1
    return int(r.json()["predictions"]) if r.status_code == 200 else -1


def test_kill9_loses_nothing_and_duplicates_nothing(server_factory: Any, broker: Broker, publish: Publish) -> None:
    """Server consumes → kill -9 right after more messages arrive → messages published while it
    is down → restart: every row stored exactly once (persistent session, QoS 1, ack after
    commit, ids dedupe redeliveries); /metrics counts the source's messages and rows."""
    server, key = server_factory()
    declare(server, SourceSpec(name="plant-a", kind="mqtt", url=broker.url, topic=TOPIC, model="harsh-braking"))
    headers = {"Authorization": f"Bearer {key}"}

    def stored() -> int:
        return stored_rows(server, headers)

    def state() -> str:
        listed = httpx.get(f"{server.url}/v1/sources", headers=headers, timeout=5).json()
        return str(listed[0]["status"]["state"])

    server.start()
    wait_for(lambda: state() == "connected", what="server's consumer connected")
    for k in range(5):
        publish(TOPIC, batch(k * 20, 20))
    wait_for(lambda: stored() == 100, what="first 100 rows")
    for k in range(5, 15):  # in flight when the server dies
        publish(TOPIC, batch(k * 20, 20))
    server.kill9()
    for k in range(15, 25):  # published while it is down: queued in its session
        publish(TOPIC, batch(k * 20, 20))
    server.start()
    wait_for(lambda: stored() == 500, timeout=60, what="all 500 rows after the restart")
    metrics = httpx.get(f"{server.url}/metrics", headers=headers, timeout=5).text
    assert 'loopwatch_source_messages_total{result="stored",source="plant-a"}' in metrics
    assert 'loopwatch_source_rows_total{source="plant-a"}' in metrics
    assert 'loopwatch_source_lag_messages{source="plant-a"} 0.0' in metrics  # nothing held unstored
    rows = httpx.get(
        f"{server.url}/v1/models/harsh-braking/predictions", params={"limit": 1000}, headers=headers, timeout=10
    ).json()["rows"]
    ids = [r["prediction_id"] for r in rows]
    assert len(ids) == 500 and len(set(ids)) == 500
    assert stored() == 500


def test_cli_apply_and_delete_through_the_running_server(
    server_factory: Any, broker: Broker, publish: Publish, tmp_path: Path
) -> None:
    """`loopwatch sources apply` while a server holds the data directory goes through its API
    and the server starts consuming at once; `sources list` shows it connected; `sources delete`
    stops it and ends its broker subscription (later messages are neither stored nor queued).
    A malformed message shows in its dead letters over the API and in /metrics."""
    server, key = server_factory()
    server.start()
    headers = {"Authorization": f"Bearer {key}"}
    spec = {"name": "plant-a", "kind": "mqtt", "url": broker.url, "topic": TOPIC, "model": "harsh-braking"}
    file = tmp_path / "sources.yaml"
    file.write_text(yaml.safe_dump({"sources": [spec]}))
    runner = CliRunner()
    result = runner.invoke(app, ["sources", "apply", str(file), "--data-dir", str(server.data_dir)])
    assert result.exit_code == 0, result.output

    def listed() -> str:
        return runner.invoke(app, ["sources", "list", "--data-dir", str(server.data_dir)]).output

    wait_for(lambda: listed().strip().endswith("\tconnected"), what="consumer connected via the server")
    publish(TOPIC, batch(0, 30))

    def stored() -> int:
        r = httpx.get(f"{server.url}/v1/models/harsh-braking/stats", headers=headers, timeout=5)
        return int(r.json()["predictions"])

    wait_for(lambda: stored() == 30, what="30 rows")
    publish(TOPIC, b"garbage")

    def letters() -> list[dict[str, Any]]:
        r = httpx.get(f"{server.url}/v1/sources/plant-a/dead-letters", headers=headers, timeout=5)
        return list(r.json())

    wait_for(lambda: len(letters()) == 1, what="the dead letter over the API")
    assert letters()[0]["excerpt"] == "garbage" and letters()[0]["topic"] == TOPIC
    metrics = httpx.get(f"{server.url}/metrics", headers=headers, timeout=5).text
    assert 'loopwatch_source_messages_total{result="dead_letter",source="plant-a"} 1.0' in metrics
    assert 'loopwatch_source_rows_total{source="plant-a"} 30.0' in metrics
    result = runner.invoke(app, ["sources", "delete", "plant-a", "--data-dir", str(server.data_dir)])
    assert result.exit_code == 0, result.output
    assert listed().strip() == ""
    publish(TOPIC, batch(30, 10))
    time.sleep(1.0)  # long enough for a running consumer to store 10 rows (it takes milliseconds)
    assert stored() == 30
    # Deleting ended the broker subscription too: declared again, the source does not receive
    # what was published while it did not exist, only what comes next.
    result = runner.invoke(app, ["sources", "apply", str(file), "--data-dir", str(server.data_dir)])
    assert result.exit_code == 0, result.output
    wait_for(lambda: listed().strip().endswith("\tconnected"), what="consumer connected again")
    publish(TOPIC, batch(40, 10))
    wait_for(lambda: stored() >= 40, what="the next 10 rows")
    time.sleep(0.5)
    assert stored() == 40


def test_server_consumes_kafka_and_exports_lag_and_throughput(server_factory: Any, kafka_cluster: MockCluster) -> None:
    """A running server consumes a declared kafka source (librdkafka's mock cluster): its rows
    land, GET /v1/sources reports it connected with rows/s over the last minute and a lag of 0
    once everything is committed, and /metrics exports the source's lag, idle time and counters."""
    server, key = server_factory()
    partitions = kafka_cluster.create_topic(FLEET_TOPIC)
    declare(server, fleet(kafka_cluster))
    for k in range(6):  # produced before the server starts: a new group reads from the beginning
        kafka_cluster.produce(FLEET_TOPIC, batch(k * 20, 20), partition=k % partitions)
    headers = {"Authorization": f"Bearer {key}"}
    server.start()

    def status() -> dict[str, Any]:
        return dict(httpx.get(f"{server.url}/v1/sources", headers=headers, timeout=5).json()[0]["status"])

    wait_for(lambda: status()["rows"] == 120, timeout=40, what="120 rows from kafka")
    wait_for(lambda: status()["lag_messages"] == 0, what="lag 0")
    assert status()["state"] == "connected" and status()["rows_per_second_1m"] > 0
    metrics = httpx.get(f"{server.url}/metrics", headers=headers, timeout=5).text
    assert 'loopwatch_source_lag_messages{source="fleet"} 0.0' in metrics
    assert 'loopwatch_source_rows_total{source="fleet"} 120.0' in metrics
    assert 'loopwatch_source_messages_total{result="stored",source="fleet"} 6.0' in metrics
    assert 'loopwatch_source_seconds_since_last_message{source="fleet"}' in metrics
    assert 'loopwatch_source_broker_errors_total{source="fleet"}' in metrics


def test_kafka_kill9_loses_nothing_and_duplicates_nothing(server_factory: Any, kafka_cluster: MockCluster) -> None:
    """Server consumes a kafka source → kill -9 right after more messages arrive → messages
    produced while it is down → restart: every row stored exactly once (offsets committed only
    after the rows are durable, ids dedupe what is read again) and the group's committed offsets
    reach the high watermarks. The restarted server gets the partitions once the broker expires
    the dead member's session (45 s by default; docs/streaming.md)."""
    server, key = server_factory()
    topic = FLEET_TOPIC
    partitions = kafka_cluster.create_topic(topic)
    declare(server, fleet(kafka_cluster))
    headers = {"Authorization": f"Bearer {key}"}

    def stored() -> int:
        return stored_rows(server, headers)

    server.start()
    for k in range(5):
        kafka_cluster.produce(topic, batch(k * 20, 20), partition=k % partitions)
    wait_for(lambda: stored() == 100, timeout=40, what="first 100 rows")
    for k in range(5, 15):  # in flight when the server dies
        kafka_cluster.produce(topic, batch(k * 20, 20), partition=k % partitions)
    server.kill9()
    for k in range(15, 25):  # produced while it is down
        kafka_cluster.produce(topic, batch(k * 20, 20), partition=k % partitions)
    server.start()
    wait_for(lambda: stored() == 500, timeout=120, what="all 500 rows after the restart")
    rows = httpx.get(
        f"{server.url}/v1/models/harsh-braking/predictions", params={"limit": 1000}, headers=headers, timeout=10
    ).json()["rows"]
    ids = [r["prediction_id"] for r in rows]
    assert len(ids) == 500 and len(set(ids)) == 500
    assert kafka_cluster.committed("loopwatch", topic, partitions) == kafka_cluster.high_watermarks(topic, partitions)
