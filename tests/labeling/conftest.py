"""A real Label Studio on loopback for the labeling tests, started by the project's own launcher.

The session fixture installs Label Studio into its own environment if needed (the first run of
a fresh clone, as in CI), starts it from a cached migrated template (``.cache/`` at the repo
root: ~30 s the first time, ~3 s after), yields its URL and token, and stops it at the end.
If Label Studio cannot be installed or started the tests fail with the launcher's reason;
``LOOPWATCH_SKIP_LABEL_STUDIO=1`` turns that into a skip, for machines that cannot run it.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from monitor.schema import ModelSchema

REPO = Path(__file__).resolve().parents[2]
LAUNCHER = REPO / "deploy" / "label-studio" / "launch.py"
TEMPLATE = REPO / ".cache" / "label-studio-template"
SKIP_ENV = "LOOPWATCH_SKIP_LABEL_STUDIO"
INSTALL_TIMEOUT = 1500  # seconds: uv takes ~25 s, the pip fallback ~65 s; generous for slow mirrors
START_TIMEOUT = 240  # seconds: the first start migrates a template (~30-45 s)


class LabelStudioServer(NamedTuple):
    """What the fixture yields: unpack as ``url, token = label_studio``."""

    url: str
    token: str


def _unavailable(reason: str) -> None:
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"{SKIP_ENV}=1: {reason}")
    pytest.fail(f"{reason}\n(set {SKIP_ENV}=1 to skip the Label Studio tests on this machine)", pytrace=False)


def run_launcher(*args: str, timeout: float) -> dict[str, Any]:
    """Run ``launch.py`` with this interpreter; its JSON line, or a test failure with its reason."""
    try:
        done = subprocess.run(
            [sys.executable, str(LAUNCHER), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            cwd=REPO,
        )
    except subprocess.TimeoutExpired:
        _unavailable(f"`launch.py {args[0]}` did not finish within {timeout:.0f} s")
        raise AssertionError("unreachable") from None
    lines = done.stdout.strip().splitlines()
    result = json.loads(lines[-1]) if lines else {}
    if done.returncode != 0:
        reason = result.get("error") or done.stderr[-2000:]
        _unavailable(f"Label Studio could not be {'installed' if args[0] == 'install' else 'started'}: {reason}")
    return result


def launch(data_dir: Path, *extra: str) -> dict[str, Any]:
    """Start a server on ``data_dir`` (copied from the cached template); the launcher's JSON."""
    return run_launcher(
        "start",
        "--data-dir",
        str(data_dir),
        "--template",
        str(TEMPLATE),
        "--timeout",
        str(START_TIMEOUT),
        *extra,
        timeout=START_TIMEOUT * 2 + 60,
    )


def stop(data_dir: Path) -> None:
    subprocess.run(
        [sys.executable, str(LAUNCHER), "stop", "--data-dir", str(data_dir)],
        capture_output=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="session")
def label_studio_installed() -> None:
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"{SKIP_ENV}=1 is set: Label Studio tests skipped")
    run_launcher("install", timeout=INSTALL_TIMEOUT)


@pytest.fixture(scope="session")
def label_studio_info(
    label_studio_installed: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """The launcher's JSON for the session's server (url, token, pid, port, data_dir, ...)."""
    data_dir = tmp_path_factory.mktemp("label-studio")
    info = launch(data_dir)
    try:
        yield info
    finally:
        stop(data_dir)


@pytest.fixture(scope="session")
def label_studio(label_studio_info: dict[str, Any]) -> LabelStudioServer:
    """One Label Studio for the session: (url, token) of an admin with a legacy token."""
    return LabelStudioServer(label_studio_info["url"], label_studio_info["token"])


@pytest.fixture
def schema_factory() -> Any:
    """Schemas with unique model names, so each test gets its own project on the shared server."""

    def make(**overrides: Any) -> ModelSchema:
        spec: dict[str, Any] = {
            "name": f"t-{uuid.uuid4().hex[:12]}",
            "task": "binary",
            "classes": ["none", "brake"],
            "positive_class": "brake",
            "features": {"speed_kmh": "numeric", "road_type": "categorical", "night": "boolean"},
            "segments": ["region", "firmware"],
        }
        if overrides.get("task", "binary") != "binary":
            spec["positive_class"] = None
        spec.update(overrides)
        return ModelSchema.model_validate(spec)

    return make


@dataclass
class WebhookReceiver:
    """A local HTTP endpoint that records every POST (headers, JSON body) it receives."""

    url: str
    received: queue.Queue[tuple[dict[str, str], Any]]

    def next(self, timeout: float = 10.0) -> tuple[dict[str, str], Any]:
        """The next delivery, waiting at most ``timeout`` seconds (bounded wait)."""
        try:
            return self.received.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no webhook arrived at {self.url} within {timeout} s") from None


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    received: queue.Queue[tuple[dict[str, str], Any]] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = min(int(self.headers.get("Content-Length") or 0), 10_000_000)
            body = self.rfile.read(length)
            try:
                payload: Any = json.loads(body)
            except ValueError:
                payload = body
            received.put(({k.lower(): v for k, v in self.headers.items()}, payload))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield WebhookReceiver(f"http://127.0.0.1:{server.server_address[1]}/v1/labeling/webhook", received)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
