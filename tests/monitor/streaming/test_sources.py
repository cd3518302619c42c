"""Source declarations: credentials and TLS settings are checked when a source is applied, so a
mistake is a 422 naming the field rather than a consumer that silently cannot connect."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from monitor.errors import InvalidInput
from monitor.streaming.kafka import security_config
from monitor.streaming.sources import parse_source

MQTT = {"name": "plant-a", "kind": "mqtt", "url": "mqtts://broker:8883", "topic": "t", "model": "m"}
KAFKA = {"name": "fleet", "kind": "kafka", "bootstrap": "k:9093", "topic": "t", "group": "g", "model": "m"}
ENV = "LOOPWATCH_TEST_SOURCE_PASSWORD"


def fields_of(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InvalidInput) as refused:
        parse_source(data, 0)
    return {e.field.removeprefix("sources[0]."): e.reason for e in refused.value.errors}


@pytest.fixture
def pem(tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\n")
    return str(path)


def test_mqtts_url_defaults_to_port_8883_and_tls(pem: str) -> None:
    """mqtts:// means TLS, on port 8883 unless the URL names one; mqtt:// stays plain on 1883."""
    tls = parse_source({**MQTT, "ca_file": pem}, 0)
    assert tls.uses_tls and tls.host_port() == ("broker", 8883)
    plain = parse_source({**MQTT, "url": "mqtt://broker"}, 0)
    assert not plain.uses_tls and plain.host_port() == ("broker", 1883)


def test_tls_files_need_tls_exist_and_come_in_pairs(pem: str) -> None:
    """A TLS file on a plain connection, a relative or missing path, and a client certificate
    without its key are each refused, naming the field."""
    errors = fields_of({**MQTT, "url": "mqtt://broker:1883", "ca_file": pem})
    assert "is for TLS" in errors["ca_file"]
    errors = fields_of({**MQTT, "ca_file": "ca.pem", "cert_file": "/no/such/cert.pem"})
    assert "absolute path" in errors["ca_file"]
    assert "not a readable file" in errors["cert_file"] and "both cert_file and key_file" in errors["key_file"]


def test_password_variable_must_be_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """password_env names a variable of the applying process's environment; an unset one is
    refused (the consumer could never log in), a set one is read only when connecting."""
    monkeypatch.delenv(ENV, raising=False)
    assert "is not set" in fields_of({**MQTT, "username": "u", "password_env": ENV})["password_env"]
    monkeypatch.setenv(ENV, "pw")
    spec = parse_source({**MQTT, "username": "u", "password_env": ENV}, 0)
    assert spec.password() == "pw" and "pw" not in spec.model_dump_json()


def test_kafka_sasl_needs_mechanism_and_credentials_and_nothing_else_takes_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """sasl_* protocols need a mechanism, a username and a password variable; SASL settings on a
    plaintext or ssl source are refused rather than ignored."""
    assert {"sasl_mechanism", "username"} <= fields_of({**KAFKA, "security_protocol": "sasl_ssl"}).keys()
    errors = fields_of({**KAFKA, "security_protocol": "ssl", "sasl_mechanism": "PLAIN", "username": "u"})
    assert "is for SASL" in errors["sasl_mechanism"] and "is for SASL" in errors["username"]
    assert "is a kafka field" in fields_of({**MQTT, "security_protocol": "ssl"})["security_protocol"]


def test_kafka_security_settings_reach_librdkafka(pem: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sasl_ssl source becomes librdkafka's security.protocol, sasl.* and ssl.* settings, with
    the password read from the environment; a plaintext source adds none."""
    monkeypatch.setenv(ENV, "kafka-pw")
    spec = parse_source(
        {
            **KAFKA,
            "security_protocol": "sasl_ssl",
            "sasl_mechanism": "SCRAM-SHA-512",
            "username": "loopwatch",
            "password_env": ENV,
            "ca_file": pem,
        },
        0,
    )
    assert security_config(spec) == {
        "security.protocol": "sasl_ssl",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "loopwatch",
        "sasl.password": "kafka-pw",
        "ssl.ca.location": pem,
    }
    assert security_config(parse_source(KAFKA, 0)) == {}
