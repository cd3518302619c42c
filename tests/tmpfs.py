"""Run a test scenario on a real small tmpfs, mounted without privileges in a private user and
mount namespace (``unshare -Urm``): how the full-disk tests get a disk that really fills up."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
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


# --- inside the namespace (the scenario modules run by run_on_tmpfs) ------------------------------

FREE_AFTER_FILL = 3 * 1024 * 1024  # what fill_disk leaves: room to start, not to keep writing


def mount_tmpfs(mount: Path, size: str = "24m") -> None:
    """Mount a ``size`` tmpfs on ``mount`` (only inside the private mount namespace)."""
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], check=True)


def fill_disk(mount: Path, leave: int = FREE_AFTER_FILL) -> Path:
    """Fill the filesystem at ``mount`` up to ``leave`` free bytes; the filler file (unlink it to
    free the space again)."""
    filler = mount / "filler"
    stat = os.statvfs(mount)
    filler.write_bytes(b"\0" * (stat.f_bavail * stat.f_frsize - leave))
    return filler


def wait(check: Callable[[], bool], timeout: float) -> bool:
    """Whether ``check`` came true within ``timeout`` seconds (polled every 50 ms)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False
