"""SIGTERM on a real server finishes within the shutdown grace, even with a monitor run stuck."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from monitor.monitors import MonitorSpec
from monitor.schema import ModelSchema
from monitor.service import Loopwatch
from monitor.settings import Settings
from tests.conftest import BRAKING, REPO, free_port

MODEL = "harsh-braking"
GRACE = 1.0

# The server with an injected evaluator that signals it started and then never finishes in time.
STUCK_SERVER = """
import sys, time
from pathlib import Path
import monitor.evaluation as evaluation

def stuck(self, *args, **kwargs):
    Path(MARKER).touch()
    time.sleep(300)

evaluation.Evaluator.evaluate = stuck
from api.cli import main
main()
"""


def test_sigterm_returns_within_the_grace_and_records_the_stuck_run_interrupted(tmp_path: Path) -> None:
    """Rule: at SIGTERM the server waits for monitor runs at most ``shutdown_grace_seconds``, then
    exits; a run still going is recorded as ``interrupted``, not left ``running``."""
    data = tmp_path / "data"
    marker = tmp_path / "run-started"
    service = Loopwatch(Settings(data_dir=data))
    try:
        service.registry.register(ModelSchema.model_validate(BRAKING))
        spec = MonitorSpec.model_validate({"name": "stuck", "detector": "freshness", "every": "1h", "window": "1h"})
        service.monitors.save(MODEL, spec)
        service.monitors.set_next_run(MODEL, "stuck", datetime.now(UTC) - timedelta(minutes=5))  # due at start
    finally:
        service.close()
    port = free_port()
    code = f"MARKER = {str(marker)!r}\n" + STUCK_SERVER
    env = {
        **os.environ,
        "LOOPWATCH_LOG_LEVEL": "WARNING",
        "LOOPWATCH_SHUTDOWN_GRACE_SECONDS": str(GRACE),
        "PYTHONPATH": str(REPO),
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "serve", "--data-dir", str(data), "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "server.log", "ab"),  # noqa: SIM115
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            time.sleep(0.1)
        assert marker.exists(), "the monitor run never started"
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        took = time.monotonic() - began
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert took < GRACE + 10, took  # before: waited for the run (here 300 s)
    service = Loopwatch(Settings(data_dir=data))
    try:
        [run] = service.runs.runs(MODEL, "stuck")
        assert run["status"] == "interrupted"
        assert "grace" in run["error"]
    finally:
        service.close()
