"""Source declarations (validated, every mistake reported at once) and their DuckDB records:
the declared sources and the dead letters (messages that could not be stored, kept for a person)."""

from __future__ import annotations

import builtins
import json
import os
import re
import uuid
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from monitor.clock import Clock, iso_z, utcnow
from monitor.db import Database
from monitor.errors import FieldError, InvalidInput, NotFound

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
ENV_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Bytes of a dead-lettered payload kept for a person to read (payloads may be large).
EXCERPT_BYTES = 512
# Fields only one kind has (both have name, kind, model, format, topic, and the credentials and
# TLS files below).
MQTT_FIELDS = ("url", "qos", "client_id")
KAFKA_FIELDS = ("bootstrap", "group", "security_protocol", "sasl_mechanism")
TLS_FILES = ("ca_file", "cert_file", "key_file")
MQTT_PORT, MQTTS_PORT = 1883, 8883


class SourceSpec(BaseModel):
    """One streaming source as written in YAML (``sources:`` entries) or sent as JSON.

    Which fields a source needs depends on its ``kind``; :func:`parse_source` checks them all."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="lowercase letters, digits, '.', '_' or '-'; keys the source")
    kind: Literal["mqtt", "kafka"]
    model: str = Field(description="the registered model the messages' predictions belong to")
    format: Literal["json"] = "json"
    topic: str
    # mqtt
    url: str | None = Field(default=None, description="mqtt://host:port, or mqtts://host:port for TLS")
    qos: Literal[0, 1, 2] | None = None
    client_id: str | None = Field(default=None, description="MQTT client id (default loopwatch-NAME); keys the session")
    # kafka
    bootstrap: str | None = Field(default=None, description="host:port[,host:port…]")
    group: str | None = None
    security_protocol: Literal["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"] | None = Field(
        default=None, description="librdkafka's security.protocol (default plaintext)"
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    # both: credentials (the password is read from the server's environment, never stored) and TLS
    username: str | None = None
    password_env: str | None = Field(default=None, description="environment variable holding the password")
    ca_file: str | None = Field(
        default=None, description="PEM file of the CAs that sign the broker's certificate (default: the system's)"
    )
    cert_file: str | None = Field(default=None, description="PEM client certificate, for mutual TLS")
    key_file: str | None = Field(default=None, description="PEM private key of cert_file")

    @property
    def mqtt_qos(self) -> int:
        return 1 if self.qos is None else self.qos

    @property
    def mqtt_client_id(self) -> str:
        return self.client_id or f"loopwatch-{self.name}"

    def host_port(self) -> tuple[str, int]:
        parts = urlsplit(self.url or "")
        return parts.hostname or "", parts.port or (MQTTS_PORT if parts.scheme == "mqtts" else MQTT_PORT)

    @property
    def uses_tls(self) -> bool:
        """Whether the connection to the broker is TLS (mqtts://, or kafka's ssl / sasl_ssl)."""
        if self.kind == "mqtt":
            return urlsplit(self.url or "").scheme == "mqtts"
        return self.security_protocol in ("ssl", "sasl_ssl")

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol in ("sasl_plaintext", "sasl_ssl")

    def password(self) -> str | None:
        """The password, read from the server's environment at connect time (never stored)."""
        return os.environ.get(self.password_env) if self.password_env else None

    def field_errors(self, where: str) -> list[FieldError]:
        """What the kind needs that pydantic's types cannot say."""
        errors: list[FieldError] = []

        def bad(name: str, reason: str) -> None:
            errors.append(FieldError(field=f"{where}.{name}", reason=reason))

        name, topic = getattr(self, "name", None), getattr(self, "topic", None)  # unset in a partial spec
        if isinstance(name, str) and not NAME_PATTERN.match(name):
            bad("name", "must be 1-63 lowercase letters, digits, '.', '_' or '-' (starting with a letter or digit)")
        if isinstance(topic, str) and not topic.strip():
            bad("topic", "must not be empty")
        if self.kind == "mqtt":
            for name in KAFKA_FIELDS:
                if getattr(self, name) is not None:
                    bad(name, "is a kafka field; an mqtt source has url, topic, qos, client_id, credentials, TLS files")
            if self.url is None:
                bad("url", "an mqtt source needs url: mqtt://host:port (or mqtts://host:port for TLS)")
            else:
                parts = urlsplit(self.url)
                try:
                    port = parts.port
                except ValueError:
                    port = -1
                if (
                    parts.scheme not in ("mqtt", "mqtts")
                    or not parts.hostname
                    or port == -1
                    or parts.path not in ("", "/")
                ):
                    bad("url", f"must look like mqtt://host:port or mqtts://host:port (got {self.url!r})")
            if isinstance(topic, str) and any(c in topic for c in "+#"):
                bad("topic", "wildcards (+, #) are not supported: one source reads one topic")
            if self.password_env is not None and self.username is None:
                bad("username", "password_env is set but username is not")
        else:
            for name in MQTT_FIELDS:
                if getattr(self, name) is not None:
                    bad(name, "is an mqtt field; a kafka source has bootstrap, topic, group, security settings")
            if not self.bootstrap:
                bad("bootstrap", "a kafka source needs bootstrap: host:port[,host:port…]")
            if not self.group:
                bad("group", "a kafka source needs a consumer group")
            if self.uses_sasl:
                if self.sasl_mechanism is None:
                    bad(
                        "sasl_mechanism",
                        f"security_protocol {self.security_protocol} needs PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
                    )
                if self.username is None or self.password_env is None:
                    bad("username" if self.username is None else "password_env", "SASL needs username and password_env")
            else:
                for name in ("sasl_mechanism", "username", "password_env"):
                    if getattr(self, name) is not None:
                        bad(name, "is for SASL: set security_protocol to sasl_ssl (or sasl_plaintext)")
        errors.extend(self._credential_errors(where))
        return errors

    def _credential_errors(self, where: str) -> list[FieldError]:
        """The password's variable and the TLS files must exist for the server (which checks
        them when the source is applied, in its own environment and file system)."""
        errors: list[FieldError] = []
        if self.password_env is not None:
            if not ENV_PATTERN.match(self.password_env):
                errors.append(
                    FieldError(
                        field=f"{where}.password_env", reason="must name an environment variable (letters, digits, '_')"
                    )
                )
            elif self.password_env not in os.environ:
                errors.append(
                    FieldError(
                        field=f"{where}.password_env",
                        reason=f"{self.password_env} is not set in the environment of the process applying the source "
                        "(the server's, through the API)",
                    )
                )
        tls_hint = "mqtts://" if self.kind == "mqtt" else "security_protocol ssl or sasl_ssl"
        for name in TLS_FILES:
            path = getattr(self, name)
            if path is None:
                continue
            if not self.uses_tls:
                errors.append(FieldError(field=f"{where}.{name}", reason=f"is for TLS: use {tls_hint}"))
            elif not os.path.isabs(path):
                errors.append(FieldError(field=f"{where}.{name}", reason="must be an absolute path on the server"))
            elif not os.path.isfile(path) or not os.access(path, os.R_OK):
                errors.append(
                    FieldError(field=f"{where}.{name}", reason=f"{path} is not a readable file on the server")
                )
        if (self.cert_file is None) != (self.key_file is None):
            missing = "key_file" if self.key_file is None else "cert_file"
            errors.append(FieldError(field=f"{where}.{missing}", reason="mutual TLS needs both cert_file and key_file"))
        return errors

    def summary(self) -> dict[str, Any]:
        out = self.model_dump(exclude_none=True)
        if self.kind == "mqtt":
            out["qos"] = self.mqtt_qos
        return out


def parse_source(data: Any, index: int) -> SourceSpec:
    """Validate one source, naming it (``sources[i].field``) in every error."""
    where = f"sources[{index}]"
    try:
        spec = SourceSpec.model_validate(data)
    except ValidationError as exc:
        errors = [
            FieldError(field=".".join([where, *(str(p) for p in e["loc"])]), reason=e["msg"]) for e in exc.errors()
        ]
        # The kind's own rules still run over the fields that did validate: every mistake at once.
        failed = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
        if isinstance(data, dict) and "kind" not in failed and data.get("kind") in ("mqtt", "kafka"):
            fields = {k: v for k, v in data.items() if k in SourceSpec.model_fields and k not in failed}
            partial = SourceSpec.model_construct(**fields)
            errors += [e for e in partial.field_errors(where) if e.field.removeprefix(where + ".") not in failed]
        raise InvalidInput(f"source {index} is not valid", errors) from None
    errors = spec.field_errors(where)
    if errors:
        raise InvalidInput(f"source {spec.name} is not valid", errors)
    return spec


@dataclass(frozen=True)
class DeadLetter:
    """A message that could not be stored: why, and enough of it for a person to see the problem."""

    id: str
    source: str
    topic: str
    reason: str
    excerpt: str
    payload_bytes: int
    received_at: str | None

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


class SourceStore:
    """The declared sources and their dead letters, in the data directory's DuckDB file."""

    def __init__(self, db: Database, now: Clock = utcnow) -> None:
        self._db = db
        self._now = now

    def save_all(self, specs: list[SourceSpec]) -> list[bool]:
        """Create or replace the sources in one transaction (all or none); per source, whether it was new."""
        now = self._now()
        created: list[bool] = []
        with self._db.transaction() as cur:
            for spec in specs:
                existed = cur.execute("SELECT 1 FROM sources WHERE name = ?", [spec.name]).fetchall()
                cur.execute(
                    "INSERT INTO sources VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
                    "spec = excluded.spec, updated_at = excluded.updated_at",
                    [spec.name, spec.model_dump_json(exclude_none=True), now, now],
                ).fetchall()
                created.append(not existed)
        return created

    def list(self) -> list[SourceSpec]:
        rows = self._db.query("SELECT spec FROM sources ORDER BY name")
        return [SourceSpec.model_validate_json(r[0]) for r in rows]

    def get(self, name: str) -> SourceSpec:
        row = self._db.query_one("SELECT spec FROM sources WHERE name = ?", [name])
        if row is None:
            raise NotFound(f"no source {name!r}")
        return SourceSpec.model_validate_json(row[0])

    def delete(self, name: str) -> None:
        """Forget a source (its dead letters stay on record)."""
        self.get(name)
        with self._db.transaction() as cur:
            cur.execute("DELETE FROM sources WHERE name = ?", [name]).fetchall()

    def dead_letter(self, source: str, topic: str, reason: str, payload: bytes) -> DeadLetter:
        """Record a message that cannot be stored (durably: the caller acknowledges it after this)."""
        excerpt = payload[:EXCERPT_BYTES].decode("utf-8", errors="replace")
        if len(payload) > EXCERPT_BYTES:
            excerpt += f"… ({len(payload)} bytes)"
        letter_id = "dl_" + uuid.uuid4().hex[:16]
        now = self._now()
        with self._db.transaction() as cur:
            cur.execute(
                "INSERT INTO source_dead_letters VALUES (?, ?, ?, ?, ?, ?, ?)",
                [letter_id, source, topic, reason[:2000], excerpt, len(payload), now],
            ).fetchall()
        return DeadLetter(letter_id, source, topic, reason[:2000], excerpt, len(payload), iso_z(now))

    def dead_letters(self, source: str, limit: int = 100) -> builtins.list[DeadLetter]:
        rows = self._db.query(
            "SELECT id, source, topic, reason, excerpt, payload_bytes, received_at FROM source_dead_letters "
            "WHERE source = ? ORDER BY received_at DESC, id LIMIT ?",
            [source, limit],
        )
        return [DeadLetter(r[0], r[1], r[2], r[3], r[4], int(r[5]), iso_z(r[6])) for r in rows]


def describe(spec: SourceSpec) -> str:
    """One line for the CLI."""
    where = spec.url if spec.kind == "mqtt" else spec.bootstrap
    return json.dumps({"name": spec.name, "kind": spec.kind, "at": where, "topic": spec.topic, "model": spec.model})
