"""FastAPI dependencies: the service, the metrics, and API-key authentication with scopes."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.errors import ApiError, LoginRequired
from api.metrics import Metrics
from application import Application
from monitor.keys import Scope, hash_key, scope_allows
from monitor.service import Loopwatch

bearer = HTTPBearer(auto_error=False, description="An API key: `loopwatch keys create --scope read|ingest|admin`")


@dataclass(frozen=True)
class Principal:
    """Who is calling: an API key id (or ``local-cli``) and its scope."""

    id: str
    scope: str


def get_service(request: Request) -> Loopwatch:
    return request.app.state.service


def get_application(request: Request) -> Application:
    """The use cases (``application``) every route calls."""
    return request.app.state.application


def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


SESSION_COOKIE = "lw_session"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _same_origin(request: Request) -> bool:
    """Cookie-authenticated writes must come from our own pages (CSRF defence with SameSite)."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin:
        return False
    from urllib.parse import urlsplit

    return urlsplit(origin).netloc == request.headers.get("host")


def _authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    if credentials is None:
        token = request.cookies.get(SESSION_COOKIE)
        session = request.app.state.service.sessions.get(token) if token else None
        if session is not None:
            if request.method in UNSAFE_METHODS and not _same_origin(request):
                raise ApiError(403, "forbidden", "cross-site request refused; use an API key for scripted calls")
            return Principal(session.key_id, session.scope)
        if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
            raise LoginRequired(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise ApiError(
            401,
            "unauthorized",
            "an API key is required: send 'Authorization: Bearer KEY' (create one with `loopwatch keys create`)",
            {"WWW-Authenticate": "Bearer"},
        )
    token = credentials.credentials
    cli_hash: str | None = getattr(request.app.state, "cli_token_hash", None)
    if cli_hash and hmac.compare_digest(hash_key(token), cli_hash):
        return Principal("local-cli", "admin")
    key = request.app.state.service.keys.verify(token)
    if key is None:
        raise ApiError(401, "unauthorized", "the API key is not valid or was revoked", {"WWW-Authenticate": "Bearer"})
    return Principal(key.id, key.scope)


def require(scope: Scope) -> Callable[..., Principal]:
    """A dependency that admits keys with ``scope`` (or ``admin``)."""

    def dependency(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> Principal:
        principal = _authenticate(request, credentials)
        if not scope_allows(principal.scope, scope):
            raise ApiError(403, "forbidden", f"this endpoint needs a key with scope '{scope}' (or 'admin')")
        return principal

    return dependency


ServiceDep = Annotated[Loopwatch, Depends(get_service)]
AppDep = Annotated[Application, Depends(get_application)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
ReadKey = Annotated[Principal, Depends(require("read"))]
IngestKey = Annotated[Principal, Depends(require("ingest"))]
AdminKey = Annotated[Principal, Depends(require("admin"))]
