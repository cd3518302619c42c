"""The request guard: an ASGI middleware in front of every route, so no route can forget it.

In this order, before a route (or FastAPI's body parsing) runs:

1. **Authentication before the body.** A request that carries a body (or says it will) must
   present a valid API key or session cookie; otherwise it is answered 401 without reading a
   byte of the body. Routes with their own authentication — ``/login`` and ``/logout`` (a form),
   ``/slack/actions`` (Slack's signature), ``/v1/labeling/webhook`` (a shared-secret header) —
   and ``/healthz`` are exempt, but get a small body limit instead.
2. **Bounded bodies.** A declared ``Content-Length`` above the limit is refused with 413 at
   once; otherwise ``receive`` is wrapped so a body that grows past the limit (chunked, or
   longer than declared) stops with 413 as soon as it crosses it. The limit is
   ``max_body_bytes`` (``SMALL_BODY_BYTES`` for the exempt routes).
3. **Backpressure.** At most ``max_inflight_ingest`` ingest requests (POST predictions or
   labels) run at once; more are answered 503 with ``Retry-After``.

It also clears the "disk full" flag (``/readyz`` answers 503 while it is set) when a write
succeeds again.
"""

from __future__ import annotations

import hmac
import re
from typing import Any

import anyio
import orjson
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_body
from monitor.keys import hash_key

SESSION_COOKIE = "lw_session"
OWN_AUTH_PATHS = frozenset({"/login", "/logout", "/slack/actions", "/v1/labeling/webhook"})
OPEN_PATHS = frozenset({"/healthz"})
SMALL_BODY_BYTES = 1024 * 1024  # login forms, Slack actions, Label Studio webhooks
INGEST_PATH = re.compile(r"^/v1/models/[^/]+/(predictions|labels)/?$")
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name and value:
            return value
    return None


async def _reply(send: Send, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
    body = orjson.dumps(error_body(code, message))
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    # The body was not read: tell the client this connection ends here.
    raw.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _authenticated(state: Any, headers: dict[str, str]) -> bool:
    """A valid API key, the local CLI token or a live session; scopes are checked by the route."""
    service = state.service
    scheme, _, token = headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() == "bearer" and token:
        cli_hash: str | None = getattr(state, "cli_token_hash", None)
        if cli_hash and hmac.compare_digest(hash_key(token), cli_hash):
            return True
        return service.keys.verify(token) is not None
    session = _cookie(headers.get("cookie", ""), SESSION_COOKIE)
    return session is not None and service.sessions.get(session) is not None


class RequestGuard:
    """See the module docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.inflight_ingest = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        service = getattr(state, "service", None)
        if service is None:  # not started (lifespan not run): nothing to check against
            await self.app(scope, receive, send)
            return
        settings = service.settings
        path: str = scope["path"]
        method: str = scope["method"]
        headers = _headers(scope)
        declared_text = headers.get("content-length", "")
        declared = int(declared_text) if declared_text.isdigit() else None
        has_body = (declared or 0) > 0 or "transfer-encoding" in headers or method in WRITE_METHODS
        own_auth = path in OWN_AUTH_PATHS or path in OPEN_PATHS
        limit = min(SMALL_BODY_BYTES, settings.max_body_bytes) if own_auth else settings.max_body_bytes

        if has_body and not own_auth and not await anyio.to_thread.run_sync(_authenticated, state, headers):
            await _reply(
                send,
                401,
                "unauthorized",
                "a valid API key is required: send 'Authorization: Bearer KEY' "
                "(create one with `loopwatch keys create`)",
                {"WWW-Authenticate": "Bearer"},
            )
            return
        if declared is not None and declared > limit:
            await _reply(
                send,
                413,
                "payload_too_large",
                f"body of {declared} bytes exceeds the limit of {limit} bytes; send smaller batches",
            )
            return

        ingest = method == "POST" and INGEST_PATH.match(path) is not None
        if ingest and self.inflight_ingest >= settings.max_inflight_ingest:
            await _reply(
                send,
                503,
                "overloaded",
                f"{self.inflight_ingest} ingest requests are already in progress "
                f"(max_inflight_ingest={settings.max_inflight_ingest}); retry after the delay",
                {"Retry-After": str(settings.overload_retry_after_seconds)},
            )
            return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, f"body exceeds the limit of {limit} bytes; send smaller batches")
            return message

        status = 0

        async def watch_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        if ingest:
            self.inflight_ingest += 1
        try:
            await self.app(scope, limited_receive, watch_send)
        finally:
            if ingest:
                self.inflight_ingest -= 1
        if method in WRITE_METHODS and 200 <= status < 300 and getattr(state, "disk_full", None):
            state.disk_full = None  # a write went through: there is space again
