"""Backpressure: when the store refuses (a real full disk), the consumer acknowledges nothing,
retries with backoff, and once space is freed every published row lands."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.monitor.streaming.conftest import Broker


def test_full_disk_holds_messages_until_space_is_freed(broker: Broker, tmp_path: Path) -> None:
    """On a 24 MiB tmpfs filled to 3 MiB free: publishing until the store refuses gives `error`
    results (not acknowledged, not dead-lettered) and a `store refused` status; messages keep
    arriving meanwhile; after the filler is deleted, all published rows are stored."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("unshare(1) is not installed: cannot mount a tmpfs without privileges")
    probe = subprocess.run(
        [unshare, "-Urm", "mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(tmp_path)],
        capture_output=True,
        timeout=30,
    )
    if probe.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {probe.stderr.decode(errors='replace').strip()}")
    mount = tmp_path / "mnt"
    mount.mkdir()
    run = subprocess.run(
        [
            unshare,
            "-Urm",
            sys.executable,
            "-m",
            "tests.monitor.streaming.tmpfs_backpressure",
            str(mount),
            str(broker.port),
        ],
        capture_output=True,
        timeout=240,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    lines = [line for line in run.stdout.decode().splitlines() if line.startswith("RESULT ")]
    assert run.returncode == 0 and lines, run.stderr.decode(errors="replace")[-3000:]
    result = json.loads(lines[-1].removeprefix("RESULT "))
    assert result["refused"] and result["errors_while_full"] >= 2  # retried, with backoff
    assert "store refused" in result["last_error"] and "disk" in result["last_error"].lower()
    assert result["dead_letters"] == 0
    assert result["stored_while_full"] < result["published"]
    assert result["landed"], result
    assert result["stored"] == result["published"]
