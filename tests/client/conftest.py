"""One real loopwatch server (a subprocess on loopback) shared by this package's tests; each test
registers its own model on it, so counts never mix and only one server start is paid for."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from monitor.schema import ModelSchema
from monitor.service import Loopwatch
from monitor.settings import Settings
from tests.conftest import BRAKING, ServerProcess, free_port

_numbers = itertools.count(1)


@dataclass(frozen=True)
class Live:
    """A running server and an admin key for it."""

    server: ServerProcess
    key: str

    @property
    def url(self) -> str:
        return self.server.url

    def counts(self, model: str) -> tuple[int, int]:
        """(predictions, labels) the server has stored for ``model``, all time."""
        response = httpx.get(f"{self.url}/v1/models/{model}/stats", headers={"Authorization": f"Bearer {self.key}"})
        response.raise_for_status()
        body = response.json()
        return body["predictions"], body["labels"]


def prepare(data_dir: Path) -> str:
    """A data directory with the braking model registered and an admin key (returned)."""
    svc = Loopwatch(Settings(data_dir=data_dir))
    try:
        svc.registry.register(ModelSchema.model_validate(BRAKING))
        _, key = svc.keys.create("admin", "client-tests")
    finally:
        svc.close()
    return key


@pytest.fixture(scope="package")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    data_dir = tmp_path_factory.mktemp("client-server") / "data"
    key = prepare(data_dir)
    server = ServerProcess(data_dir, free_port())
    server.start()
    try:
        yield Live(server, key)
    finally:
        server.stop()


@pytest.fixture
def model(live: Live) -> str:
    """A fresh model (the braking schema under a new name) registered on the shared server."""
    name = f"braking-{next(_numbers)}"
    response = httpx.post(
        f"{live.url}/v1/models", json={**BRAKING, "name": name}, headers={"Authorization": f"Bearer {live.key}"}
    )
    response.raise_for_status()
    return name
