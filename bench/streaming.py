"""Sustained rows/s through MQTT and through Kafka into the store, and publish → queryable latency.

``--mode mqtt``: Debian's Mosquitto on a free loopback port (persistence on, unbounded session
queue) and one ``monitor.streaming.mqtt.MqttConsumer``; one publisher at QoS 1.
``--mode kafka``: librdkafka's built-in mock cluster (one broker, in this process — no real
Kafka broker is available on this machine) and one ``monitor.streaming.kafka.KafkaConsumer``
(commit after durable, a synchronous commit per message); one producer (``acks=all``) spreading
messages round-robin over the topic's 4 partitions. ``--mode both`` runs one after the other.

Either consumer uses the server's handler (``handle_message`` → the REST JSON path → DuckDB)
over a fresh data directory, in this process (no HTTP: what is measured is broker → consumer →
durable rows). Messages carry ``--rows`` records:

* ``saturated``: ``--saturated-messages`` sent as fast as the broker accepts them (Kafka: at most
  ``MOCK_MAX_AHEAD`` messages ahead of the consumer, the mock broker's retention); rows/s = rows
  stored / time from the first publish to the last message stored (its latencies are queueing);
* ``paced``: at ``--paced-fraction`` of the saturated message rate for ``--seconds``; latency
  per message = time it was handed to the publisher → its rows committed (queryable).

MQTT messages are handled in order on one worker, so the k-th handled message is the k-th
published; Kafka messages are matched by (partition, offset), known from the producer's
delivery reports. The results file keeps the other mode's last figures (MQTT at the top level,
Kafka under ``kafka``).

    .venv/bin/python bench/streaming.py [--mode both --seconds 15 --rows 500]
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import confluent_kafka
import orjson
import paho.mqtt.client as mqtt
from confluent_kafka import KafkaError, Message, Producer
from paho.mqtt.enums import CallbackAPIVersion

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from monitor.schema import ModelSchema  # noqa: E402
from monitor.service import Loopwatch  # noqa: E402
from monitor.settings import Settings  # noqa: E402
from monitor.streaming.ingest import Outcome, handle_message  # noqa: E402
from monitor.streaming.kafka import LAG_REFRESH_S, KafkaConsumer  # noqa: E402
from monitor.streaming.mqtt import MqttConsumer  # noqa: E402
from monitor.streaming.sources import SourceSpec  # noqa: E402

MODEL = {
    "name": "harsh-braking",
    "task": "binary",
    "classes": ["none", "brake"],
    "positive_class": "brake",
    "features": {"speed_kmh": "numeric", "road_type": "categorical", "night": "boolean"},
    "segments": ["region", "firmware"],
}
TOPIC = "bench/predictions"
# The mock broker keeps only about 5 MB per partition and deletes older messages (a retention
# limit: a consumer that falls further behind loses them, as with a real broker's retention), so
# the Kafka producer stays at most this many messages (~150 kB each) ahead of the consumer.
MOCK_MAX_AHEAD = 80
QUIET = logging.getLogger("bench.kafka")  # librdkafka log lines, kept off stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_broker(directory: Path, port: int) -> subprocess.Popen[bytes]:
    conf = directory / "mosquitto.conf"
    conf.write_text(
        f"user {getpass.getuser()}\nlistener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
        f"persistence_location {directory}/\nmax_queued_messages 0\nmax_inflight_messages 100\n"
    )
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("mosquitto did not start")


def message(seq: int, rows: int, base: datetime) -> bytes:
    records = []
    for j in range(rows):
        i = seq * rows + j
        records.append(
            {
                "prediction_id": f"b-{i}",
                "timestamp": (base - timedelta(microseconds=i)).isoformat(),
                "model_version": "1.0.0",
                "features": {"speed_kmh": 40.0 + i % 50, "road_type": ["urban", "highway"][i % 2], "night": i % 3 == 0},
                "prediction": "brake" if i % 4 == 0 else "none",
                "score": (i % 100) / 100,
                "latency_ms": 10.0 + i % 7,
                "segments": {"region": "eu", "firmware": "3.2"},
            }
        )
    return orjson.dumps(records)


def start_with_bodies(consumer: Any, seq: int, rows: int, seconds: float, rate: float | None) -> list[bytes]:
    """Start ``consumer``, wait until it is connected, and build the message bodies a run cycles
    through (at most 200; each send rewrites the ids so every message is new)."""
    consumer.start()
    while consumer.state != "connected":
        time.sleep(0.01)
    base = datetime.now(UTC)
    return [message(seq + k, rows, base) for k in range(min(200, int(seconds * (rate or 200)) + 1))]


class Run:
    """One phase: publish for a while (optionally paced), wait until every message is stored."""

    def __init__(self, service: Loopwatch, port: int, rows: int, first_seq: int) -> None:
        self.service, self.rows, self.seq = service, rows, first_seq
        self.published: list[float] = []
        self.stored: list[float] = []
        self.done = threading.Event()
        self.expected = -1
        spec = SourceSpec(name="bench", kind="mqtt", url=f"mqtt://127.0.0.1:{port}", topic=TOPIC, model="harsh-braking")

        def handle(topic: str, payload: bytes) -> Outcome:
            outcome = handle_message(service, spec, topic, payload)
            self.stored.append(time.perf_counter())
            if len(self.stored) == self.expected:
                self.done.set()
            return outcome

        self.consumer = MqttConsumer(spec, handle)
        self.publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-publisher")
        self.publisher.max_inflight_messages_set(100)
        self.publisher.connect("127.0.0.1", port)
        self.publisher.loop_start()

    def go(self, seconds: float, rate: float | None, max_messages: int | None = None) -> dict[str, Any]:
        bodies = start_with_bodies(self.consumer, self.seq, self.rows, seconds, rate)
        started = time.perf_counter()
        pending: list[mqtt.MQTTMessageInfo] = []
        k = 0
        while time.perf_counter() - started < seconds and (max_messages is None or k < max_messages):
            if rate is not None:
                due = started + k / rate
                if due > time.perf_counter():
                    time.sleep(due - time.perf_counter())
            body = bodies[k % len(bodies)]
            body = body.replace(b'"b-', f'"b{self.seq + k}-'.encode())  # unique ids per message
            self.published.append(time.perf_counter())
            pending.append(self.publisher.publish(TOPIC, body, qos=1))
            k += 1
            if len(pending) >= 200:
                pending.pop(0).wait_for_publish(30)
        for info in pending:
            info.wait_for_publish(30)
        self.expected = k
        if len(self.stored) >= k:
            self.done.set()
        self.done.wait(600)
        finished = time.perf_counter()
        self.consumer.stop()
        self.publisher.loop_stop()
        self.publisher.disconnect()
        latencies = sorted(s - p for p, s in zip(self.published, self.stored, strict=False))

        def pct(q: float) -> float:
            return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 1)

        return {
            "messages": k,
            "rows": k * self.rows,
            "publish_seconds": round(self.published[-1] - started, 2),
            "drain_seconds": round(finished - started, 2),
            "rows_per_second": round(k * self.rows / (self.stored[-1] - started)),
            "latency_ms_p50": pct(0.5),
            "latency_ms_p99": pct(0.99),
            "latency_ms_max": pct(1.0),
            "dead_letters": self.consumer.counts["dead_letter"],
        }


def percentiles(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)

    def pct(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)

    return {"latency_ms_p50": pct(0.5), "latency_ms_p99": pct(0.99), "latency_ms_max": pct(1.0)}


class KafkaRun:
    """One phase against the mock cluster: produce for a while (optionally paced) to a topic of
    its own, wait until every message is stored (and committed)."""

    def __init__(
        self,
        service: Loopwatch,
        bootstrap: str,
        rows: int,
        first_seq: int,
        topic: str,
        config: dict[str, Any] | None = None,
    ) -> None:
        self.service, self.rows, self.seq, self.topic = service, rows, first_seq, topic
        self.published: dict[int, float] = {}  # message number → when it was handed to the producer
        self.delivered: dict[tuple[int, int], int] = {}  # (partition, offset) → message number
        self.stored: dict[tuple[int, int], float] = {}
        self.done = threading.Event()
        self.expected = -1
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all", "logger": QUIET})
        self.partitions = len(self.producer.list_topics(topic, timeout=10).topics[topic].partitions)
        spec = SourceSpec(
            name="bench", kind="kafka", bootstrap=bootstrap, topic=topic, group=f"bench-{topic}", model="harsh-braking"
        )

        def handle(where: str, payload: bytes) -> Outcome:
            outcome = handle_message(service, spec, where, payload)
            partition, offset = where.removeprefix(f"{topic}[").split("]@")
            self.stored[(int(partition), int(offset))] = time.perf_counter()
            if len(self.stored) == self.expected:
                self.done.set()
            return outcome

        self.consumer = KafkaConsumer(spec, handle, config={"logger": QUIET, **(config or {})})

    def go(self, seconds: float, rate: float | None, max_messages: int | None = None) -> dict[str, Any]:
        bodies = start_with_bodies(self.consumer, self.seq, self.rows, seconds, rate)

        def delivered(k: int) -> Any:
            def report(error: KafkaError | None, msg: Message) -> None:
                assert error is None, error
                self.delivered[(int(msg.partition() or 0), int(msg.offset() or 0))] = k

            return report

        started = time.perf_counter()
        k = 0
        while time.perf_counter() - started < seconds and (max_messages is None or k < max_messages):
            if rate is not None:
                due = started + k / rate
                if due > time.perf_counter():
                    time.sleep(due - time.perf_counter())
            while k - len(self.stored) >= MOCK_MAX_AHEAD:  # stay inside the mock broker's retention
                self.producer.poll(0.005)
            body = bodies[k % len(bodies)].replace(b'"b-', f'"k{self.seq + k}-'.encode())  # unique ids per message
            self.published[k] = time.perf_counter()
            while True:
                try:
                    self.producer.produce(self.topic, body, partition=k % self.partitions, on_delivery=delivered(k))
                    break
                except BufferError:  # the producer's queue is full: let it drain
                    self.producer.poll(0.05)
            self.producer.poll(0)
            k += 1
        assert self.producer.flush(60) == 0
        self.expected = k
        if len(self.stored) >= k:
            self.done.set()
        self.done.wait(600)
        finished = time.perf_counter()
        commit_deadline = time.monotonic() + 10  # the last message's commit follows its rows
        while sum(self.consumer.committed().values()) < k and time.monotonic() < commit_deadline:
            time.sleep(0.05)
        committed = sum(self.consumer.committed().values())
        time.sleep(LAG_REFRESH_S + 0.5)  # a lag refresh after the last commit
        final_lag = self.consumer.status()["lag_messages"]
        self.consumer.stop()
        latencies = [self.stored[key] - self.published[n] for key, n in self.delivered.items() if key in self.stored]
        return {
            "messages": k,
            "rows": k * self.rows,
            "partitions": self.partitions,
            "publish_seconds": round(max(self.published.values()) - started, 2),
            "drain_seconds": round(finished - started, 2),
            "rows_per_second": round(k * self.rows / (max(self.stored.values()) - started)),
            **percentiles(latencies),
            "dead_letters": self.consumer.counts["dead_letter"],
            "committed_messages": committed,
            "lag_after": final_lag,
        }


def mock_cluster() -> tuple[Producer, str]:
    """librdkafka's mock cluster, alive as long as the returned holder; its bootstrap address
    (read from the holder's metadata: confluent-kafka does not expose it otherwise)."""
    holder = Producer({"test.mock.num.brokers": 1, "logger": QUIET})
    brokers = holder.list_topics(timeout=10).brokers
    broker = brokers[min(brokers)]
    return holder, f"{broker.host}:{broker.port}"


def run_mqtt(args: argparse.Namespace, directory: Path) -> dict[str, Any]:
    (directory / "broker").mkdir()
    port = free_port()
    broker = start_broker(directory / "broker", port)
    service = Loopwatch(Settings(data_dir=directory / "mqtt-data"))
    try:
        service.registry.register(ModelSchema.model_validate(MODEL))
        saturated = Run(service, port, args.rows, 0).go(600, None, args.saturated_messages)
        print("mqtt saturated", json.dumps(saturated), flush=True)
        rate = args.paced_fraction * saturated["rows_per_second"] / args.rows
        paced = Run(service, port, args.rows, 10_000_000).go(args.seconds, rate)
        paced["messages_per_second"] = round(rate, 1)
        print("mqtt paced", json.dumps(paced), flush=True)
        stored = int(service.store.stats("harsh-braking")["predictions"])
    finally:
        service.close()
        broker.send_signal(signal.SIGTERM)
        broker.wait(10)
    return {
        "what": "MQTT (Mosquitto, loopback, QoS 1) → consumer (manual ack after commit) → DuckDB, one source, in process",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "rows_per_message": args.rows,
        "paced_seconds": args.seconds,
        "saturated": saturated,
        "paced": paced,
        "stored_rows_total": stored,
        "exactly_once": stored == saturated["rows"] + paced["rows"],
        "note": "the machine's 2 cores are shared with another engineer's work; broker, publisher and consumer share them",
    }


def run_kafka(args: argparse.Namespace, directory: Path) -> dict[str, Any]:
    load_before = [round(x, 2) for x in os.getloadavg()]
    holder, bootstrap = mock_cluster()
    service = Loopwatch(Settings(data_dir=directory / "kafka-data"))
    try:
        service.registry.register(ModelSchema.model_validate(MODEL))
        saturated = KafkaRun(service, bootstrap, args.rows, 0, "bench.saturated").go(600, None, args.saturated_messages)
        print("kafka saturated", json.dumps(saturated), flush=True)
        rate = args.paced_fraction * saturated["rows_per_second"] / args.rows
        paced = KafkaRun(service, bootstrap, args.rows, 10_000_000, "bench.paced").go(args.seconds, rate)
        paced["messages_per_second"] = round(rate, 1)
        print("kafka paced", json.dumps(paced), flush=True)
        # The mock broker answers a fetch only when fetch.wait.max.ms (500 ms by default) runs out
        # (a real broker answers as soon as data arrives): the same paced run with a 10 ms wait
        # shows loopwatch's own publish → queryable latency.
        short_wait = KafkaRun(
            service, bootstrap, args.rows, 20_000_000, "bench.paced-short-fetch-wait", {"fetch.wait.max.ms": 10}
        ).go(args.seconds, rate)
        short_wait["messages_per_second"] = round(rate, 1)
        print("kafka paced, fetch.wait.max.ms=10", json.dumps(short_wait), flush=True)
        stored = int(service.store.stats("harsh-braking")["predictions"])
    finally:
        service.close()
        holder.flush(5)
    return {
        "what": "Kafka (librdkafka mock cluster, 1 broker in process, 4 partitions) → consumer (commit after durable, "
        "synchronous per message) → DuckDB, one source, in process; no real Kafka broker could be run here",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "librdkafka": confluent_kafka.libversion()[0],
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_average_before_after": [load_before, [round(x, 2) for x in os.getloadavg()]],
        "rows_per_message": args.rows,
        "paced_seconds": args.seconds,
        "saturated": saturated,
        "paced": paced,
        "paced_fetch_wait_10ms": short_wait,
        "stored_rows_total": stored,
        "exactly_once": stored == saturated["rows"] + paced["rows"] + short_wait["rows"],
        "note": "the mock broker runs in the bench's own process and answers fetches only after fetch.wait.max.ms "
        "(500 ms default), which sets the default-config latency; the 2 cores are shared with another engineer's work",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["mqtt", "kafka", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rows", type=int, default=500, help="records per message")
    parser.add_argument("--paced-fraction", type=float, default=0.5)
    parser.add_argument("--saturated-messages", type=int, default=1500, help="messages sent as fast as possible")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "streaming.json")
    args = parser.parse_args()
    result: dict[str, Any] = json.loads(args.out.read_text()) if args.out.exists() else {}
    with tempfile.TemporaryDirectory(prefix="lw-bench-stream-") as tmp:
        if args.mode in ("mqtt", "both"):
            result = {**run_mqtt(args, Path(tmp)), **({"kafka": result["kafka"]} if "kafka" in result else {})}
        if args.mode in ("kafka", "both"):
            result["kafka"] = run_kafka(args, Path(tmp))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
