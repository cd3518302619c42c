"""A local HTTP endpoint on 127.0.0.1 that records POSTs and answers from a script — the
webhook consumer and the PagerDuty Events API the receivers are tested against.

``answers`` is consumed first-in first-out (status, headers, JSON body); when it is empty the
``default`` answer is used. Every request is recorded with its raw body and headers, so tests
check exactly what went over the wire."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BODY = 1024 * 1024


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: Any = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Endpoint:
    """The server's script and record."""

    def __init__(self, default: Answer | Callable[[Request], Answer]) -> None:
        self.default = default
        self.answers: deque[Answer] = deque()
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self.url = ""

    def answer(self, request: Request) -> Answer:
        with self.lock:
            self.requests.append(request)
            if self.answers:
                return self.answers.popleft()
        return self.default(request) if callable(self.default) else self.default


def _handler(endpoint: Endpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY)
            request = Request(self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length))
            answer = endpoint.answer(request)
            raw = b"" if answer.body is None else json.dumps(answer.body).encode()
            self.send_response(answer.status)
            for name, value in answer.headers:
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            return

    return Handler


@contextmanager
def serve(default: Answer | Callable[[Request], Answer] = Answer(200), path: str = "/hook") -> Iterator[Endpoint]:
    """Run an endpoint on an ephemeral loopback port for the ``with`` block."""
    endpoint = Endpoint(default)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(endpoint))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    endpoint.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    try:
        yield endpoint
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def closed_port_url(path: str = "/hook") -> str:
    """A loopback URL nobody listens on (the port was bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"
