"""Shared fixtures: a real DuckDB in a temporary data directory, the app in-process, and a real
server subprocess on a free loopback port (for crash and client tests)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from monitor.schema import ModelSchema
from monitor.service import Loopwatch
from monitor.settings import Settings

REPO = Path(__file__).resolve().parent.parent

BRAKING = {
    "name": "harsh-braking",
    "task": "binary",
    "classes": ["none", "brake"],
    "positive_class": "brake",
    "features": {"speed_kmh": "numeric", "road_type": "categorical", "night": "boolean"},
    "segments": ["region", "firmware"],
}


def earlier_today(offset: timedelta = timedelta(0)) -> datetime:
    """``offset`` before now, but never before today's UTC midnight.

    Sealing moves every day before today to Parquet, so a row meant to stay hot must carry
    today's date even when a test runs just after midnight (CI once failed at 00:0x UTC)."""
    now = datetime.now(UTC)
    return max(now - offset, now.replace(hour=0, minute=0, second=0, microsecond=0))


def braking_record(i: int, ts: datetime | None = None, **overrides: Any) -> dict[str, Any]:
    ts = ts or datetime.now(UTC) - timedelta(minutes=i)
    record = {
        "prediction_id": f"p-{i}",
        "timestamp": ts.isoformat(),
        "model_version": "1.0.0",
        "features": {"speed_kmh": 40.0 + i % 50, "road_type": ["urban", "highway"][i % 2], "night": i % 3 == 0},
        "prediction": "brake" if i % 4 == 0 else "none",
        "score": (i % 100) / 100,
        "latency_ms": 10.0 + i % 7,
        "segments": {"region": "eu", "firmware": "3.2"},
    }
    record.update(overrides)
    return record


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", max_body_bytes=2 * 1024 * 1024)


@pytest.fixture
def service(settings: Settings) -> Iterator[Loopwatch]:
    svc = Loopwatch(settings)
    yield svc
    svc.close()


@pytest.fixture
def braking_model(service: Loopwatch) -> ModelSchema:
    spec = ModelSchema.model_validate(BRAKING)
    service.registry.register(spec)
    return spec


@dataclass
class Api:
    """An in-process client plus one key per scope."""

    client: TestClient
    admin: dict[str, str]
    ingest: dict[str, str]
    read: dict[str, str]


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    app = create_app(settings, background=False)
    with TestClient(app) as client:
        keys = app.state.service.keys
        headers = {
            scope: {"Authorization": f"Bearer {keys.create(scope, f'test-{scope}')[1]}"}
            for scope in ("admin", "ingest", "read")
        }
        client.post("/v1/models", json=BRAKING, headers=headers["admin"]).raise_for_status()
        yield Api(client, headers["admin"], headers["ingest"], headers["read"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ServerProcess:
    """``loopwatch serve`` as a real subprocess on loopback."""

    data_dir: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    env: dict[str, str] | None = None

    def start(self, timeout: float = 30) -> None:
        env = {**os.environ, "LOOPWATCH_LOG_LEVEL": "WARNING", **(self.env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve", "--data-dir", str(self.data_dir), "--port", str(self.port)],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(self.data_dir.parent / f"server-{self.port}.log", "ab"),  # noqa: SIM115
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early with {self.proc.returncode}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("server did not become healthy in time")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill9()


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Any]:
    """Prepare a data directory with a model and an admin key, then start/stop servers on it."""
    servers: list[ServerProcess] = []

    def make(data_dir: Path | None = None) -> tuple[ServerProcess, str]:
        data = data_dir or tmp_path / "server-data"
        svc = Loopwatch(Settings(data_dir=data))
        try:
            svc.registry.register(ModelSchema.model_validate(BRAKING))
            _, key = svc.keys.create("admin", "test")
        finally:
            svc.close()
        server = ServerProcess(data, free_port())
        servers.append(server)
        return server, key

    yield make
    for server in servers:
        server.stop()


def pytest_unconfigure(config: pytest.Config) -> None:
    """Free DuckDB objects held in reference cycles before interpreter exit, where DuckDB's
    binding layer (nanobind) would otherwise print leak warnings after pytest's summary."""
    import gc

    gc.collect()
