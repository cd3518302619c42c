"""The request guard (api/guard.py) and resource exhaustion: bodies are bounded and
authenticated before they are read, overload and a full disk are answers the client can retry."""

from __future__ import annotations

import errno
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import duckdb
import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.routes import (
    alerts,
    dashboards,
    datasets,
    health,
    keys,
    labeling,
    models,
    monitors,
    predictions,
    reports,
    session,
    sources,
    store,
)
from monitor.settings import Settings
from tests.conftest import BRAKING, Api, braking_record
from tests.tmpfs import run_on_tmpfs

MODEL = "/v1/models/harsh-braking"
BIG = 64 * 1024 * 1024


def _scope(app: Any, method: str, path: str, headers: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")] + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


class EndlessBody:
    """An ASGI ``receive`` that would deliver a 64 MiB body in 64 KiB chunks, counting the calls."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> dict[str, Any]:
        self.calls += 1
        more = self.calls * 65536 < BIG
        return {"type": "http.request", "body": b"[" * 65536, "more_body": more}


def _call(api: Api, method: str, path: str, headers: dict[str, str], receive: Any) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    app = api.client.app
    api.client.portal.call(app, _scope(app, method, path, headers), receive, send)  # type: ignore[union-attr]
    return sent


@pytest.mark.parametrize(
    "headers",
    [
        {"content-type": "application/json", "content-length": str(BIG)},
        {"content-type": "application/json", "transfer-encoding": "chunked"},
        {"content-type": "application/json", "transfer-encoding": "chunked", "authorization": "Bearer not-a-key"},
        {"content-type": "application/json", "content-length": "10", "cookie": "lw_session=forged"},
    ],
    ids=["declared", "chunked", "wrong-key", "forged-session"],
)
@pytest.mark.parametrize("path", ["/v1/models", f"{MODEL}/predictions", "/v1/silences", "/v1/keys"])
def test_unauthenticated_body_is_refused_before_it_is_read(api: Api, headers: dict[str, str], path: str) -> None:
    """A request with a body but no valid key or session is answered 401 without a single
    ``receive`` call: the server never buffers an unauthenticated body."""
    receive = EndlessBody()
    sent = _call(api, "POST", path, headers, receive)
    assert sent[0]["status"] == 401
    assert receive.calls == 0


def test_unauthenticated_64_mib_body_is_answered_before_it_is_sent(server_factory: Any) -> None:
    """Against a real server: headers announcing 64 MiB without a key get a 401 while only the
    first 256 KiB have been sent, so the body is neither awaited nor buffered."""
    server, _ = server_factory()
    server.start()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            f"POST /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {BIG}\r\n\r\n".encode()
        )
        sock.sendall(b"[" * 256 * 1024)
        reply = b""
        deadline = time.monotonic() + 10
        while b"\r\n\r\n" not in reply and time.monotonic() < deadline:
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 401"), reply[:200]


def _body_routes() -> list[tuple[str, str]]:
    """Every (method, path) that may carry a body, from the routers the app mounts."""
    out = []
    for module in (
        alerts, datasets, health, keys, labeling, models, monitors, predictions, reports, session, store, dashboards, sources
    ):
        for route in module.router.routes:
            for method in sorted(getattr(route, "methods", None) or ()):
                if method in ("POST", "PUT", "PATCH", "DELETE"):
                    path = route.path.replace("{model}", "harsh-braking")
                    while "{" in path:
                        start = path.index("{")
                        path = path[:start] + "x" + path[path.index("}", start) + 1 :]
                    out.append((method, path))
    return out


def test_oversized_bodies_get_413_on_every_route(api: Api) -> None:
    """Every route that takes a body answers 413 (not 422, not 500) to a body over the limit,
    whether the length is declared or the body is chunked."""
    routes = _body_routes()
    assert len(routes) >= 15
    limit = 2 * 1024 * 1024  # the test settings' max_body_bytes
    body = b"[" + b"0," * (limit // 2) + b"0]"
    for method, path in routes:
        response = api.client.request(
            method, path, content=body, headers={**api.admin, "Content-Type": "application/json"}
        )
        assert response.status_code == 413, (method, path, response.status_code, response.text[:200])
        assert response.json()["error"]["code"] == "payload_too_large"

    def chunks() -> Iterator[bytes]:
        yield from (body[i : i + 65536] for i in range(0, len(body), 65536))

    for path in ("/v1/models", f"{MODEL}/predictions", f"{MODEL}/monitors"):
        response = api.client.post(path, content=chunks(), headers={**api.admin, "Content-Type": "application/json"})
        assert response.status_code == 413, (path, response.text[:200])


def test_own_auth_routes_still_work(api: Api) -> None:
    """/healthz needs no key; /login and /slack/actions keep their own authentication (a form
    key, Slack's signature) rather than the API-key check, but are size-bounded too."""
    assert api.client.get("/healthz").status_code == 200
    assert api.client.post("/login", data={"key": "wrong"}).status_code == 401
    assert api.client.post("/slack/actions", content=b"payload=%7B%7D").status_code == 503  # not configured
    huge = b"key=" + b"a" * (1024 * 1024 + 1)
    assert api.client.post("/login", content=huge).status_code == 413


@pytest.fixture
def small_app(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    settings = Settings(data_dir=tmp_path / "data", max_inflight_ingest=1, overload_retry_after_seconds=2)
    app = create_app(settings, background=False)
    with TestClient(app) as client:
        _, key = app.state.service.keys.create("admin", "t")
        headers = {"Authorization": f"Bearer {key}"}
        client.post("/v1/models", json=BRAKING, headers=headers).raise_for_status()
        yield client, headers


def test_overload_answers_503_with_retry_after(small_app: tuple[TestClient, dict[str, str]]) -> None:
    """With max_inflight_ingest=1 and one ingest request in progress, the next gets 503 with
    Retry-After (the client backs off); once the first finishes, ingest is accepted again."""
    client, headers = small_app
    release = anyio.Event()
    started = anyio.Event()
    body = httpx.Request("POST", "/", json=[braking_record(1)]).content

    async def slow_receive() -> dict[str, Any]:
        started.set()
        await release.wait()
        return {"type": "http.request", "body": body, "more_body": False}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    app = client.app
    hdrs = {**{k.lower(): v for k, v in headers.items()}, "content-type": "application/json"}
    portal = client.portal
    assert portal is not None
    future = portal.start_task_soon(app, _scope(app, "POST", f"{MODEL}/predictions", hdrs), slow_receive, send)
    portal.call(started.wait)
    try:
        busy = client.post(f"{MODEL}/predictions", json=[braking_record(2)], headers=headers)
        assert busy.status_code == 503
        assert busy.headers["Retry-After"] == "2"
        assert busy.json()["error"]["code"] == "overloaded"
        assert client.post(f"{MODEL}/labels", json=[], headers=headers).status_code == 503
        assert client.get(f"{MODEL}/stats", headers=headers).status_code == 200  # reads are not ingest
    finally:
        portal.call(release.set)
        future.result(timeout=30)
    assert sent[0]["status"] == 200
    assert client.post(f"{MODEL}/predictions", json=[braking_record(3)], headers=headers).status_code == 200


@pytest.mark.parametrize(
    "error",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        duckdb.IOException("IO Error: Could not write all bytes to file \"x.wal\": No space left on device"),
    ],
    ids=["enospc", "duckdb-io"],
)
def test_full_disk_is_507_then_recovers(api: Api, monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    """A write that fails for lack of space answers 507 with Retry-After and a JSON error that
    says the disk is full; /readyz answers 503 until a write succeeds again; nothing is lost."""
    service = api.client.app.state.service  # type: ignore[union-attr]
    assert api.client.post(f"{MODEL}/predictions", json=[braking_record(1)], headers=api.ingest).status_code == 200

    def full(*args: Any, **kwargs: Any) -> Any:
        raise error

    monkeypatch.setattr(service.store, "ingest_predictions", full)
    monkeypatch.setattr(service.store, "ingest_labels", full)
    refused = api.client.post(f"{MODEL}/predictions", json=[braking_record(2)], headers=api.ingest)
    assert refused.status_code == 507
    assert int(refused.headers["Retry-After"]) > 0
    assert refused.json()["error"]["code"] == "disk_full"
    assert "disk is full" in refused.json()["error"]["message"]
    labels = api.client.post(f"{MODEL}/labels", json=[{"prediction_id": "p-1", "label": "none"}], headers=api.ingest)
    assert labels.status_code == 507
    ready = api.client.get("/readyz", headers=api.read)
    assert ready.status_code == 503 and "Retry-After" in ready.headers
    assert ready.json()["error"]["code"] == "disk_full"

    monkeypatch.undo()
    assert api.client.post(f"{MODEL}/predictions", json=[braking_record(2)], headers=api.ingest).status_code == 200
    assert api.client.get("/readyz", headers=api.read).status_code == 200
    assert api.client.get(f"{MODEL}/stats", headers=api.read).json()["predictions"] == 2


def test_a_background_job_on_a_full_disk_turns_readiness_503_until_it_succeeds(api: Api) -> None:
    """Sealing, WAL checkpoints and id-index upkeep run outside requests: when one fails for lack
    of space, /readyz answers 503 disk_full naming it; its next success makes /readyz 200."""
    from api.app import watch_disk

    app = api.client.app
    fail = [True]

    def seal() -> None:
        if fail[0]:
            raise OSError(errno.ENOSPC, "No space left on device")

    job = watch_disk(app, "sealing", seal)  # type: ignore[arg-type]
    with pytest.raises(OSError):
        job()
    ready = api.client.get("/readyz", headers=api.read)
    assert ready.status_code == 503 and ready.json()["error"]["code"] == "disk_full"
    assert "sealing" in ready.json()["error"]["message"] and "Retry-After" in ready.headers
    fail[0] = False
    job()
    assert api.client.get("/readyz", headers=api.read).status_code == 200


def test_full_disk_on_a_real_small_tmpfs(tmp_path: Path) -> None:
    """On a real 24 MiB tmpfs filled to 3 MiB of free space: ingest until the disk is full gets
    507 (disk_full, Retry-After) and readiness 503; after space is freed, ingest succeeds,
    readiness recovers, and every acknowledged row is stored."""
    result = run_on_tmpfs(tmp_path, "tests.api.tmpfs_disk_full")
    assert result["refused"]["status"] == 507
    assert int(result["refused"]["retry_after"]) > 0
    assert result["refused"]["body"]["error"]["code"] == "disk_full"
    assert result["acked"] > 0
    assert result["ready_when_full"] == 503
    assert result["after_free"] == 200 and result["ready_after"] == 200
    assert result["stored"] == result["acked"] + 10  # nothing acknowledged was lost
