"""Run a test scenario on a real small tmpfs, mounted without privileges in a private user and
mount namespace (``unshare -Urm``): how the full-disk tests get a disk that really fills up."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO


def run_on_tmpfs(tmp_path: Path, module: str, *args: str, timeout: float = 240) -> dict[str, Any]:
    """``python -m MODULE MOUNT ARGS…`` inside the namespace (the module mounts its tmpfs on
    MOUNT and prints ``RESULT {json}``); returns that result. Skips where unshare or an
    unprivileged mount is not available."""
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
        [unshare, "-Urm", sys.executable, "-m", module, str(mount), *args],
        capture_output=True,
        timeout=timeout,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    lines = [line for line in run.stdout.decode().splitlines() if line.startswith("RESULT ")]
    assert run.returncode == 0 and lines, run.stderr.decode(errors="replace")[-3000:]
    result: dict[str, Any] = json.loads(lines[-1].removeprefix("RESULT "))
    return result
