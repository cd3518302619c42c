"""A real SMTP server on 127.0.0.1 (aiosmtpd) for the e-mail receiver's tests: records every
accepted message, optionally requires STARTTLS (a self-signed certificate made here) and
AUTH, and can answer DATA with a scripted error code."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.tls_certs import authority, leaf

USER, PASSWORD = "alerts@example.com", "smtp-pass-0123"


@dataclass
class Recorder:
    """The handler: keeps accepted mails; ``reject`` answers the next DATA commands instead."""

    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    reject: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.reject:
            return self.reject.pop(0)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(message_from_bytes(envelope.original_content, policy=policy.default))
        return "250 OK"


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USER.encode()
        and auth_data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def self_signed(directory: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context for 127.0.0.1, client context trusting only the test CA that signed it)."""
    ca = authority(directory, "smtp-ca")
    cert_file, key_file = leaf(ca, directory, "smtp", server=True)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(ca.cert_file))
    return server, client


@contextmanager
def smtp_server(*, tls: ssl.SSLContext | None = None, auth: bool = False) -> Iterator[tuple[Recorder, int]]:
    """Run the server for the ``with`` block: (recorder, port)."""
    recorder = Recorder()
    options: dict[str, Any] = {}
    if tls is not None:
        options.update(tls_context=tls, require_starttls=True)
    if auth:
        options.update(authenticator=_authenticator, auth_required=True, auth_require_tls=tls is not None)
    controller = Controller(recorder, hostname="127.0.0.1", port=_free_port(), ready_timeout=10, **options)
    controller.start()
    try:
        yield recorder, controller.port
    finally:
        controller.stop()
