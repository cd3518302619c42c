"""Failures are classified: an outage is LabelStudioUnavailable (retry later), a refusal is LabelStudioError."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from labeling.label_studio import LabelStudioBackend, LabelStudioError, LabelStudioUnavailable, TaskIn
from labeling.label_studio import client as client_module
from monitor.schema import ModelSchema
from tests.labeling.conftest import LabelStudioServer, launch, stop

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def test_a_stopped_label_studio_is_unavailable_quickly(label_studio_installed: None, tmp_path: Path) -> None:
    """After the server stops, every call raises LabelStudioUnavailable within seconds (no hang, no 4xx class)."""
    info = launch(tmp_path / "short-lived")
    backend = LabelStudioBackend(info["url"], info["token"], timeout=5)
    backend.ping()
    stop(tmp_path / "short-lived")

    calls = [
        lambda: backend.ping(),
        lambda: backend.fetch_annotations(1),
        lambda: backend.import_tasks(1, [TaskIn("p-1", {}, "x")], schema=_schema()),
        lambda: backend.ensure_webhook(1, "http://127.0.0.1:9/hook", "s"),
    ]
    for call in calls:
        started = time.monotonic()
        with pytest.raises(LabelStudioUnavailable):
            call()
        assert time.monotonic() - started < 5  # connection refused, one quick retry for reads


def test_a_silent_server_times_out_as_unavailable() -> None:
    """A server that accepts connections but never answers is Unavailable after the configured timeout."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        backend = LabelStudioBackend(url, "token", timeout=0.5, max_retries=0)
        started = time.monotonic()
        with pytest.raises(LabelStudioUnavailable, match="timed out"):
            backend.ping()
        assert time.monotonic() - started < 5


def test_a_bad_token_is_an_error_not_an_outage(label_studio: LabelStudioServer) -> None:
    """HTTP 401 is a LabelStudioError naming the token: retrying will not help."""
    backend = LabelStudioBackend(label_studio.url, "0" * 40)
    with pytest.raises(LabelStudioError, match="token") as caught:
        backend.ping()
    assert caught.value.status == 401
    assert not isinstance(caught.value, LabelStudioUnavailable)


def test_a_refused_request_is_an_error(label_studio: LabelStudioServer) -> None:
    """A 4xx from Label Studio (here: a project that does not exist) is a LabelStudioError with the status."""
    backend = LabelStudioBackend(*label_studio)
    with pytest.raises(LabelStudioError) as caught:
        backend.ensure_webhook(987654, "http://127.0.0.1:9/hook", "secret")
    assert caught.value.status is not None and 400 <= caught.value.status < 500


@pytest.fixture
def web_page() -> Iterator[str]:
    """A local server answering every GET with an HTML page (a wrong URL in the settings)."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<html><body>not Label Studio</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_something_that_is_not_label_studio_is_an_error(web_page: str) -> None:
    """A URL that answers but is not Label Studio gives a LabelStudioError, not an outage to retry forever."""
    with pytest.raises(LabelStudioError, match="unexpected response"):
        LabelStudioBackend(web_page, "token", max_retries=0).ping()


def _schema() -> ModelSchema:
    return ModelSchema.model_validate({"name": "x", "task": "binary", "classes": ["x", "y"]})


def test_a_push_interrupted_by_a_stop_resumes_without_loss_or_duplicates(
    label_studio_installed: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Label Studio stops between two import chunks: the push fails as Unavailable; after a restart the
    same push imports only what is missing, and every prediction ends up in exactly one task."""
    data_dir = tmp_path / "restarted"
    info = launch(data_dir)
    try:
        backend = LabelStudioBackend(info["url"], info["token"], timeout=5)
        project = backend.ensure_project(_schema())
        tasks = [TaskIn(f"p-{i}", {}, "x", 0.5, "1", "random") for i in range(25)]
        monkeypatch.setattr(client_module, "IMPORT_CHUNK", 10)
        real_import = backend.sdk.projects.import_tasks
        calls = 0

        def import_then_stop(*args: Any, **kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            if calls == 2:  # the server goes away after the first chunk was accepted
                stop(data_dir)
            return real_import(*args, **kwargs)

        monkeypatch.setattr(backend.sdk.projects, "import_tasks", import_then_stop)
        with pytest.raises(LabelStudioUnavailable):
            backend.import_tasks(project, tasks)

        launch(data_dir, "--port", str(info["port"]))  # same URL, same data
        ids = backend.import_tasks(project, tasks)
        assert len(set(ids)) == len(tasks)
        stored = [t.data["prediction_id"] for t in backend.sdk.tasks.list(project=project, include="id,data")]
        assert sorted(stored) == sorted(t.prediction_id for t in tasks)
    finally:
        stop(data_dir)
