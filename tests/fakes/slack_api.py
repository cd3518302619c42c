"""A local Slack Web API on 127.0.0.1 for ``slack_sdk.WebClient(base_url=…)``.

This is how slack-sdk tests itself (a threaded ``HTTPServer`` answering ``/api/<method>``),
so the real client code — urllib, retry handlers, JSON/form bodies, headers — runs end to
end; only Slack is replaced.

Speaks ``auth.test``, ``chat.postMessage``, ``chat.update`` and ``conversations.history``;
checks the bearer token and the channel; checks blocks against Block Kit limits; records
every call; and injects faults on demand: 429 with ``Retry-After``, 5xx, ``ok: false``
errors, slow answers, dropped connections (optionally after the message was posted — the
"did it go through?" case), and outages (the listening socket is closed, so connections are
refused, then reopened on the same port).

Usage::

    with FakeSlackApi() as slack:
        client = WebClient(token=slack.token, base_url=slack.base_url)
        ...
        assert slack.calls_to("chat.postMessage")[0].params["channel"] == "#ml-oncall"

or the ``slack_api`` pytest fixture below (import it into a ``conftest.py``).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.fakes.block_kit import block_kit_errors

DEFAULT_TOKEN = "xoxb-loopwatch-fake-0000"
DEFAULT_CHANNELS: dict[str, str] = {"#ml-oncall": "C0ONCALL01", "#ml-alerts": "C0ALERTS02", "#ml-team": "C0TEAM0003"}
FIRST_TS_MICROS = 1_700_000_000_000_000
MAX_BODY = 1024 * 1024


@dataclass
class RecordedCall:
    """One request as the fake saw it. ``headers`` never include ``Authorization``."""

    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    token_valid: bool
    status: int
    response: dict[str, Any] | None
    at: float


@dataclass
class _Fault:
    kind: str  # "status" | "error" | "delay" | "drop"
    remaining: int
    methods: frozenset[str] | None
    status: int = 200
    retry_after: float | None = None
    error: str = ""
    messages: tuple[str, ...] = ()
    delay: float = 0.0
    after_processing: bool = False

    def applies(self, method: str) -> bool:
        return self.remaining > 0 and (self.methods is None or method in self.methods)


@dataclass
class _Message:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]] | None
    thread_ts: str | None
    metadata: dict[str, Any] | None
    edits: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    def as_slack(self) -> dict[str, Any]:
        message: dict[str, Any] = {"type": "message", "user": "U0LOOPBOT", "bot_id": "B0LOOPBOT", "ts": self.ts}
        message["text"] = self.text
        if self.blocks is not None:
            message["blocks"] = self.blocks
        if self.thread_ts:
            message["thread_ts"] = self.thread_ts
        if self.metadata:
            message["metadata"] = self.metadata
        if self.edits:
            message["edited"] = {"user": "U0LOOPBOT", "ts": self.ts}
        return message


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        return

    def do_POST(self) -> None:
        self.server.fake._handle(self)

    def do_GET(self) -> None:
        self.server.fake._handle(self)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, fake: FakeSlackApi) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.fake = fake


class FakeSlackApi:
    """Slack's Web API on loopback, with recorded calls and programmable faults."""

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        channels: Mapping[str, str] | None = None,
        archived: Iterable[str] = (),
        not_in_channel: Iterable[str] = (),
        clock: Callable[[], float] = time.monotonic,
        port: int = 0,
    ) -> None:
        self.token = token
        self.clock = clock
        self._channels = dict(DEFAULT_CHANNELS if channels is None else channels)
        self._archived = {self._channels.get(c, c) for c in archived}
        self._not_in = {self._channels.get(c, c) for c in not_in_channel}
        self._revoked: set[str] = set()
        self._lock = threading.RLock()
        self._calls: list[RecordedCall] = []
        self._messages: dict[tuple[str, str], _Message] = {}
        self._faults: deque[_Fault] = deque()
        self._next_ts = FIRST_TS_MICROS
        self._stop = threading.Event()
        self.delay = 0.0
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- lifecycle

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        """What to give ``WebClient(base_url=…)`` / ``LOOPWATCH_SLACK_API_URL``."""
        return f"http://127.0.0.1:{self._port}/api/"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> FakeSlackApi:
        """Listen (on a free port the first time, on the same port after an outage)."""
        if self._server is not None:
            return self
        last_error: OSError | None = None
        for _ in range(50):  # the port may linger briefly after an outage
            try:
                self._server = _Server(self._port, self)
                break
            except OSError as exc:
                last_error = exc
                time.sleep(0.02)
        else:
            raise RuntimeError(f"fake Slack API could not listen on 127.0.0.1:{self._port}: {last_error}")
        self._port = self._server.server_address[1]
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-slack", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening; connections to the port are refused until :meth:`start`."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stop.set()  # wake slow responses
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeSlackApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @contextmanager
    def outage(self) -> Iterator[None]:
        """Slack is unreachable inside the block (connection refused), back afterwards."""
        self.stop()
        try:
            yield
        finally:
            self.start()

    # ---------------------------------------------------------------- faults

    def _add_fault(self, fault: _Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    @staticmethod
    def _methods(methods: Iterable[str] | None) -> frozenset[str] | None:
        return None if methods is None else frozenset(methods)

    def rate_limit(self, times: int, retry_after: float = 1, methods: Iterable[str] | None = None) -> None:
        """The next ``times`` matching calls get HTTP 429 ``ratelimited`` with ``Retry-After``."""
        self._add_fault(_Fault("status", times, self._methods(methods), status=429, retry_after=retry_after))

    def server_error(self, times: int, status: int = 500, methods: Iterable[str] | None = None) -> None:
        """The next ``times`` matching calls get HTTP ``status`` (500/502/503/504)."""
        self._add_fault(_Fault("status", times, self._methods(methods), status=status))

    def slack_error(
        self, times: int, error: str, methods: Iterable[str] | None = None, messages: Iterable[str] = ()
    ) -> None:
        """The next ``times`` matching calls get ``200 {"ok": false, "error": error}`` (plus
        ``response_metadata.messages`` when given, as Slack adds for ``invalid_blocks``)."""
        self._add_fault(_Fault("error", times, self._methods(methods), error=error, messages=tuple(messages)))

    def slow(self, times: int, seconds: float, methods: Iterable[str] | None = None) -> None:
        """The next ``times`` matching calls are answered (normally) after ``seconds``."""
        self._add_fault(_Fault("delay", times, self._methods(methods), delay=seconds))

    def drop(self, times: int, *, after_processing: bool = False, methods: Iterable[str] | None = None) -> None:
        """Close the connection without an answer; with ``after_processing`` the call took effect."""
        self._add_fault(_Fault("drop", times, self._methods(methods), after_processing=after_processing))

    def revoke_token(self) -> None:
        """From now on the token is answered with ``token_revoked``."""
        with self._lock:
            self._revoked.add(self.token)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self, method: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.applies(method):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    # ---------------------------------------------------------------- inspection

    @property
    def calls(self) -> list[RecordedCall]:
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str, *, ok_only: bool = False) -> list[RecordedCall]:
        return [c for c in self.calls if c.method == method and (not ok_only or (c.response or {}).get("ok") is True)]

    def channel_id(self, channel: str) -> str | None:
        """The id for ``#name``/``name``/id, or ``None`` if the workspace has no such channel."""
        if channel in self._channels.values():
            return channel
        name = channel if channel.startswith("#") else f"#{channel}"
        return self._channels.get(name)

    def messages(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Current messages (after updates), oldest first, optionally in one channel."""
        cid = self.channel_id(channel) if channel else None
        with self._lock:
            found = [m for m in self._messages.values() if cid is None or m.channel == cid]
            return [{**m.as_slack(), "channel": m.channel, "edits": m.edits} for m in sorted(found, key=lambda m: m.ts)]

    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        cid = self.channel_id(channel) or channel
        with self._lock:
            found = self._messages.get((cid, ts))
            return None if found is None else {**found.as_slack(), "channel": found.channel, "edits": found.edits}

    # ---------------------------------------------------------------- request handling

    def _handle(self, req: _Handler) -> None:
        path = urlsplit(req.path)
        method = path.path.removeprefix("/api/").strip("/")
        length = int(req.headers.get("Content-Length") or 0)
        raw = req.rfile.read(min(length, MAX_BODY)) if length > 0 else b""
        params = self._parse(req.headers.get("Content-Type", ""), raw, path.query)
        auth = req.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else str(params.pop("token", ""))
        headers = {k: v for k, v in req.headers.items() if k.lower() != "authorization"}

        fault = self._take_fault(method)
        if self.delay or (fault and fault.kind == "delay"):
            self._stop.wait(self.delay + (fault.delay if fault and fault.kind == "delay" else 0.0))
        status, body, extra = 200, None, {}
        if fault and fault.kind == "status":
            status = fault.status
            body = {"ok": False, "error": "ratelimited" if status == 429 else "service_unavailable"}
            if fault.retry_after is not None:
                extra["Retry-After"] = f"{fault.retry_after:g}"
        elif fault and fault.kind == "error":
            body = {"ok": False, "error": fault.error}
            if fault.messages:
                body["response_metadata"] = {"messages": list(fault.messages)}
        elif fault and fault.kind == "drop" and not fault.after_processing:
            body = None
        else:
            body = self._dispatch(method, params, token)
        self._record(method, params, headers, token == self.token, status, body)
        if fault and fault.kind == "drop":
            req.close_connection = True
            return  # no answer at all: the client sees the connection closed
        self._respond(req, status, body, extra)

    @staticmethod
    def _parse(content_type: str, raw: bytes, query: str) -> dict[str, Any]:
        params: dict[str, Any] = {k: v[0] for k, v in parse_qs(query).items()}
        if raw:
            text = raw.decode("utf-8", errors="replace")
            if content_type.startswith("application/json"):
                try:
                    decoded = json.loads(text)
                except json.JSONDecodeError:
                    decoded = {"_invalid_json": text[:200]}
                if isinstance(decoded, dict):
                    params.update(decoded)
            else:
                params.update({k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()})
        for key in ("blocks", "metadata"):
            if isinstance(params.get(key), str):
                with contextlib.suppress(json.JSONDecodeError):  # else left as a string; validation reports it
                    params[key] = json.loads(params[key])
        return params

    def _record(
        self, method: str, params: dict[str, Any], headers: dict[str, str], valid: bool, status: int, body: Any
    ) -> None:
        call = RecordedCall(method, params, headers, valid, status, body, self.clock())
        with self._lock:
            self._calls.append(call)

    @staticmethod
    def _respond(req: _Handler, status: int, body: dict[str, Any] | None, extra: dict[str, str]) -> None:
        payload = json.dumps(body if body is not None else {"ok": False, "error": "unknown"}).encode()
        req.send_response(status)
        req.send_header("Content-Type", "application/json; charset=utf-8")
        req.send_header("Content-Length", str(len(payload)))
        req.send_header("Connection", "close")
        for key, value in extra.items():
            req.send_header(key, value)
        req.end_headers()
        req.wfile.write(payload)
        req.close_connection = True

    def _dispatch(self, method: str, params: dict[str, Any], token: str) -> dict[str, Any]:
        if not token:
            return {"ok": False, "error": "not_authed"}
        if token in self._revoked:
            return {"ok": False, "error": "token_revoked"}
        if token != self.token:
            return {"ok": False, "error": "invalid_auth"}
        handler = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "conversations.history": self._history,
        }.get(method)
        if handler is None:
            return {"ok": False, "error": "unknown_method"}
        return handler(params)

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://loopwatch-test.slack.com/",
            "team": "loopwatch test",
            "user": "loopwatch",
            "team_id": "T0LOOPWATCH",
            "user_id": "U0LOOPBOT",
            "bot_id": "B0LOOPBOT",
        }

    def _channel_error(self, channel: Any) -> tuple[str | None, dict[str, Any] | None]:
        cid = self.channel_id(channel) if isinstance(channel, str) and channel else None
        if cid is None:
            return None, {"ok": False, "error": "channel_not_found"}
        if cid in self._archived:
            return None, {"ok": False, "error": "is_archived"}
        if cid in self._not_in:
            return None, {"ok": False, "error": "not_in_channel"}
        return cid, None

    @staticmethod
    def _content_error(params: dict[str, Any]) -> dict[str, Any] | None:
        text, blocks = params.get("text"), params.get("blocks")
        if not text and not blocks:
            return {"ok": False, "error": "no_text"}
        if isinstance(text, str) and len(text) > 40_000:
            return {"ok": False, "error": "msg_too_long"}
        if blocks is not None:
            errors = block_kit_errors(blocks)
            if errors:
                return {"ok": False, "error": "invalid_blocks", "response_metadata": {"messages": errors}}
        return None

    def _new_ts(self) -> str:
        self._next_ts += 100
        return f"{self._next_ts // 1_000_000}.{self._next_ts % 1_000_000:06d}"

    def _post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        cid, error = self._channel_error(params.get("channel"))
        error = error or self._content_error(params)
        if error or cid is None:
            return error or {"ok": False, "error": "channel_not_found"}
        with self._lock:
            ts = self._new_ts()
            thread_ts = params.get("thread_ts")
            message = _Message(
                cid, ts, str(params.get("text") or ""), params.get("blocks"), thread_ts, params.get("metadata")
            )
            self._messages[(cid, ts)] = message
            return {"ok": True, "channel": cid, "ts": ts, "message": message.as_slack()}

    def _update(self, params: dict[str, Any]) -> dict[str, Any]:
        cid, error = self._channel_error(params.get("channel"))
        error = error or self._content_error(params)
        if error or cid is None:
            return error or {"ok": False, "error": "channel_not_found"}
        with self._lock:
            message = self._messages.get((cid, str(params.get("ts"))))
            if message is None:
                return {"ok": False, "error": "message_not_found"}
            message.history.append({"text": message.text, "blocks": message.blocks})
            message.text = str(params.get("text") or "")
            message.blocks = params.get("blocks")
            message.edits += 1
            return {"ok": True, "channel": cid, "ts": message.ts, "text": message.text, "message": message.as_slack()}

    def _history(self, params: dict[str, Any]) -> dict[str, Any]:
        cid, error = self._channel_error(params.get("channel"))
        if error or cid is None:
            return error or {"ok": False, "error": "channel_not_found"}
        limit = int(params.get("limit") or 100)
        with self._lock:
            top = [m for m in self._messages.values() if m.channel == cid and not m.thread_ts]
            newest_first = sorted(top, key=lambda m: m.ts, reverse=True)[:limit]
            return {"ok": True, "messages": [m.as_slack() for m in newest_first], "has_more": len(top) > limit}


@pytest.fixture
def slack_api() -> Iterator[FakeSlackApi]:
    """A running :class:`FakeSlackApi` (default token and channels), stopped after the test."""
    with FakeSlackApi() as api:
        yield api
