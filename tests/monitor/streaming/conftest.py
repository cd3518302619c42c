"""A real Mosquitto broker on loopback (Debian's ``mosquitto``), with persistence on so a
restarted broker keeps the consumer's session and its queued messages, and a QoS 1 publisher."""

from __future__ import annotations

import getpass
import json
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import free_port
from tests.monitor.streaming.kafka_mock import MockCluster


@dataclass
class Broker:
    port: int
    directory: Path
    proc: subprocess.Popen[bytes] | None = None
    # The listener's access settings: anonymous by default; TLS files and a password file for
    # the TLS tests (then ``tls`` is set and the URL is mqtts://).
    access: str = "allow_anonymous true\n"
    tls: bool = False

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10) -> None:
        conf = self.directory / "mosquitto.conf"
        conf.write_text(
            # run as the test's user (as root, mosquitto would switch to user `mosquitto`, which
            # cannot write the persistence file in the test's directory)
            f"user {getpass.getuser()}\nlistener {self.port} 127.0.0.1\n{self.access}persistence true\n"
            f"persistence_location {self.directory}/\nautosave_interval 1\nmax_queued_messages 100000\n"
        )
        log = open(self.directory / "mosquitto.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        """SIGTERM: mosquitto writes its persistence file (sessions, queued messages) and exits."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=10)

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    if shutil.which("mosquitto") is None:
        pytest.fail("mosquitto is not installed: apt-get install -y mosquitto (.ci/run does)")
    directory = tmp_path / "broker"
    directory.mkdir()
    b = Broker(free_port(), directory)
    b.start()
    yield b
    b.stop()


Publish = Callable[[str, Any], None]


@pytest.fixture
def publish(broker: Broker) -> Iterator[Callable[[str, Any], None]]:
    """Publish at QoS 1 and wait for the broker's PUBACK (a JSON-able value, or raw bytes).
    Reconnects after a broker restart."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-publisher", protocol=mqtt.MQTTv311)

    def connect() -> None:
        client.connect("127.0.0.1", broker.port)
        client.loop_start()

    connect()

    def send(topic: str, payload: Any) -> None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        for _ in range(50):
            info = client.publish(topic, body, qos=1)
            try:
                info.wait_for_publish(timeout=5)
                if info.is_published():
                    return
            except RuntimeError:  # not connected (a restarted broker): reconnect
                client.loop_stop()
                time.sleep(0.1)
                try:
                    client.reconnect()
                except OSError:
                    continue
                client.loop_start()
        raise AssertionError("publish was not acknowledged by the broker")

    yield send
    client.loop_stop()
    client.disconnect()


def wait_for(check: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def kafka_cluster() -> Iterator[MockCluster]:
    """librdkafka's mock cluster on loopback (tests/monitor/streaming/kafka_mock.py)."""
    cluster = MockCluster()
    yield cluster
    cluster.close()
