"""MQTT over TLS with a password, against a real Mosquitto: the broker's certificate is verified
against ``ca_file``, the password comes from the environment, mutual TLS presents
``cert_file``/``key_file``, and each failure is reported on the source, not fatal."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from monitor.service import Loopwatch
from monitor.streaming.runner import SourceRunner
from monitor.streaming.sources import SourceSpec
from tests.conftest import free_port
from tests.monitor.streaming.conftest import Broker, wait_for
from tests.monitor.streaming.test_mqtt import TOPIC, batch, stored
from tests.tls_certs import Authority, authority, leaf

USER, PASSWORD, PASSWORD_ENV = "plant-a", "s3cret-Pa55", "LOOPWATCH_TEST_MQTT_PASSWORD"


@dataclass(frozen=True)
class TlsBroker:
    broker: Broker
    ca: Authority
    other_ca: Authority
    client_cert: Path
    client_key: Path


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[TlsBroker]:
    """Mosquitto with one TLS listener for 127.0.0.1 that requires a password and a client
    certificate signed by the test CA."""
    for tool in ("mosquitto", "mosquitto_passwd"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed: apt-get install -y mosquitto (.ci/run does)")
    directory = tmp_path / "broker"
    directory.mkdir()
    ca, other_ca = authority(directory, "test-ca"), authority(directory, "other-ca")
    server_cert, server_key = leaf(ca, directory, "broker", server=True)
    client_cert, client_key = leaf(ca, directory, "loopwatch", server=False)
    passwords = directory / "passwords"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), USER, PASSWORD], check=True, capture_output=True)
    passwords.chmod(0o600)
    access = (
        f"cafile {ca.cert_file}\ncertfile {server_cert}\nkeyfile {server_key}\n"
        f"require_certificate true\nallow_anonymous false\npassword_file {passwords}\n"
    )
    broker = Broker(free_port(), directory, access=access, tls=True)
    broker.start()
    yield TlsBroker(broker, ca, other_ca, client_cert, client_key)
    broker.stop()


def publish(tls: TlsBroker, payload: Any) -> None:
    """Publish at QoS 1 over TLS as the test user and wait for the broker's PUBACK."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="tls-publisher", protocol=mqtt.MQTTv311)
    client.tls_set(ca_certs=str(tls.ca.cert_file), certfile=str(tls.client_cert), keyfile=str(tls.client_key))
    client.username_pw_set(USER, PASSWORD)
    client.connect("127.0.0.1", tls.broker.port)
    client.loop_start()
    try:
        info = client.publish(TOPIC, json.dumps(payload).encode(), qos=1)
        info.wait_for_publish(timeout=10)
        assert info.is_published()
    finally:
        client.loop_stop()
        client.disconnect()


def spec(tls: TlsBroker, **overrides: Any) -> SourceSpec:
    fields: dict[str, Any] = {
        "name": "plant-a",
        "kind": "mqtt",
        "url": tls.broker.url,
        "topic": TOPIC,
        "model": "harsh-braking",
        "username": USER,
        "password_env": PASSWORD_ENV,
        "ca_file": str(tls.ca.cert_file),
        "cert_file": str(tls.client_cert),
        "key_file": str(tls.client_key),
    }
    return SourceSpec(**{**fields, **overrides})


def consume(service: Loopwatch, source: SourceSpec) -> SourceRunner:
    service.sources.save_all([source])
    runner = SourceRunner(service)
    runner.start(source)
    return runner


def test_tls_with_password_and_client_certificate_stores_rows(
    service: Loopwatch, braking_model: Any, tls_broker: TlsBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An mqtts:// source verifies the broker against ca_file, presents its client certificate,
    logs in with the password from its environment variable, and stores what is published."""
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    source = spec(tls_broker)
    runner = consume(service, source)
    try:
        wait_for(lambda: runner.status(source)["state"] == "connected", what="connected over TLS")
        publish(tls_broker, batch(0, 30))
        wait_for(lambda: stored(service) == 30, what="30 rows over TLS")
        assert PASSWORD not in json.dumps(runner.status(source), default=str)
    finally:
        runner.stop_all()


def test_broker_certificate_from_another_ca_is_refused_and_reported(
    service: Loopwatch, braking_model: Any, tls_broker: TlsBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broker whose certificate the source's CA did not sign is not trusted: the source stays
    disconnected and says the TLS verification failed (it keeps retrying, the server runs on)."""
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    source = spec(tls_broker, ca_file=str(tls_broker.other_ca.cert_file))
    runner = consume(service, source)
    try:
        wait_for(lambda: "TLS handshake" in str(runner.status(source)["last_error"]), what="TLS failure reported")
        assert "certificate verify failed" in str(runner.status(source)["last_error"])
        assert runner.status(source)["state"] == "disconnected"
    finally:
        runner.stop_all()


def test_wrong_password_is_reported(
    service: Loopwatch, braking_model: Any, tls_broker: TlsBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A password the broker refuses is reported on the source (without the password)."""
    monkeypatch.setenv(PASSWORD_ENV, "not-the-password")
    source = spec(tls_broker)
    runner = consume(service, source)
    try:
        wait_for(lambda: "refused" in str(runner.status(source)["last_error"]), what="login refusal reported")
        assert "Not authorized" in str(runner.status(source)["last_error"])
        assert "not-the-password" not in str(runner.status(source)["last_error"])
        assert stored(service) == 0
    finally:
        runner.stop_all()
