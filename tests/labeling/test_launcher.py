"""deploy/label-studio/launch.py: the launcher developers, the demo and CI share."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.labeling.conftest import LAUNCHER


def load_launcher() -> ModuleType:
    spec = importlib.util.spec_from_file_location("label_studio_launcher", LAUNCHER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


launcher = load_launcher()


def run(*args: str) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, str(LAUNCHER), *args], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )
    return done.returncode, json.loads(done.stdout.strip().splitlines()[-1])


def test_launcher_uses_only_the_standard_library() -> None:
    """The launcher runs before any venv exists, so it may import nothing outside the standard library."""
    source = LAUNCHER.read_text()
    imported = {
        line.split()[1].split(".")[0]
        for line in source.splitlines()
        if line.startswith(("import ", "from ")) and not line.startswith("from __future__")
    }
    assert imported <= set(sys.stdlib_module_names)


def test_server_environment_is_isolated_from_the_shell(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Shell variables Label Studio would read (USERNAME, PORT, LABEL_STUDIO_*) never reach the server;
    version checks, analytics and Sentry are off and SSRF protection is off for loopback webhooks."""
    for name, value in {"USERNAME": "me", "PORT": "1", "LABEL_STUDIO_HOST": "x", "SENTRY_DSN": "https://x"}.items():
        monkeypatch.setenv(name, value)
    env = launcher.server_env(tmp_path, None)
    assert "USERNAME" not in env and "PORT" not in env and "LABEL_STUDIO_HOST" not in env
    assert env["SENTRY_DSN"] == "" and env["FRONTEND_SENTRY_DSN"] == ""
    assert env["LATEST_VERSION_CHECK"] == "false" and env["COLLECT_ANALYTICS"] == "false"
    assert env["SSRF_PROTECTION_ENABLED"] == "false"
    assert env["LABEL_STUDIO_BASE_DATA_DIR"] == str(tmp_path)
    assert env["LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED"] == "false"
    served = launcher.server_env(tmp_path, tmp_path / "files")
    assert served["LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED"] == "true"


def test_port_check_sees_a_listener() -> None:
    """A port somebody listens on is reported taken (Label Studio itself would silently move on)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        assert not launcher.port_is_free("127.0.0.1", sock.getsockname()[1])
    assert launcher.port_is_free("127.0.0.1", launcher.free_port("127.0.0.1"))


def test_status_and_stop_of_a_directory_without_server(tmp_path: Path) -> None:
    """status exits 1 with running=false; stop is a harmless no-op."""
    assert run("status", "--data-dir", str(tmp_path)) == (1, {"running": False})
    code, result = run("stop", "--data-dir", str(tmp_path))
    assert code == 0 and result["stopped"] is False


@pytest.mark.slow
def test_a_taken_port_is_refused_before_starting(label_studio_info: dict[str, Any], tmp_path: Path) -> None:
    """Asking for a port in use fails at once with the reason and leaves no server or pid file behind."""
    code, result = run("start", "--data-dir", str(tmp_path / "d"), "--port", str(label_studio_info["port"]))
    assert code == 1
    assert "in use" in result["error"]
    assert not (tmp_path / "d" / launcher.PID_FILE).exists()


@pytest.mark.slow
def test_start_on_a_running_directory_reports_the_running_server(label_studio_info: dict[str, Any]) -> None:
    """Starting twice is idempotent: the second call returns the running server (same pid, url, token)."""
    code, result = run("start", "--data-dir", label_studio_info["data_dir"])
    assert code == 0 and result["already_running"] is True
    assert (result["pid"], result["url"], result["token"]) == (
        label_studio_info["pid"],
        label_studio_info["url"],
        label_studio_info["token"],
    )
    code, status = run("status", "--data-dir", label_studio_info["data_dir"])
    assert code == 0 and status["pid"] == label_studio_info["pid"]
    assert oct(os.stat(Path(label_studio_info["data_dir"]) / launcher.CREDENTIALS_FILE).st_mode)[-3:] == "600"


@pytest.mark.slow
def test_install_is_idempotent(label_studio_installed: None) -> None:
    """A second install with an unchanged requirements file does nothing (stamp file)."""
    code, result = run("install")
    assert code == 0 and result["installed"] is False
