#!/usr/bin/env python3
"""Install, start and stop a local Label Studio for loopwatch (developers, the demo and CI).

Standard library only, so any ``python3`` can run it before any virtual environment exists.

Why a launcher instead of ``pip install label-studio``: Label Studio pins its own dependency set
(Django, pandas, pydantic, ...) that conflicts with loopwatch's, so it lives in its own virtual
environment (``.venv-labelstudio`` at the repository root). Starting it correctly needs several
non-obvious settings that this script owns in one place:

* the first start of a data directory creates the admin user and a *legacy* API token
  (``--username --password --user-token --enable-legacy-api-token``): legacy tokens are off by
  default and loopwatch's client authenticates with one;
* ``LATEST_VERSION_CHECK=false``, analytics and Sentry off: no calls to the internet;
* ``SSRF_PROTECTION_ENABLED=false`` so its webhooks may reach loopwatch on loopback;
* Label Studio silently moves to the next port when its port is taken, so the port is checked
  first and the result verified (health *and* our token accepted);
* migrating a fresh data directory takes ~30-45 s, starting a copy of a migrated one ~3-7 s:
  ``--template DIR`` keeps a migrated directory (created on first use) and copies it.

Commands (each prints one JSON line on stdout; progress goes to stderr)::

    python3 deploy/label-studio/launch.py install
    python3 deploy/label-studio/launch.py start --data-dir DIR [--port P] [--template DIR]
    python3 deploy/label-studio/launch.py status --data-dir DIR
    python3 deploy/label-studio/launch.py stop --data-dir DIR

POSIX only (process groups, ``fcntl`` locks).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
REQUIREMENTS = HERE / "requirements.txt"
LABEL_STUDIO_VERSION = "1.23.2"
UV_VERSION = "0.13.9"  # installer only; see _install_requirements
DEFAULT_VENV = REPO / ".venv-labelstudio"

VENV_STAMP = ".loopwatch-installed"
CREDENTIALS_FILE = "loopwatch-credentials.json"
PID_FILE = "label-studio.pid"
STATE_FILE = "label-studio.json"
LOG_FILE = "label-studio.log"
TEMPLATE_STAMP = ".loopwatch-template.json"
DATABASE_FILE = "label_studio.sqlite3"
# Files that describe one running server, never copied from a template.
RUNTIME_FILES = (PID_FILE, STATE_FILE, LOG_FILE, TEMPLATE_STAMP)

ADMIN_EMAIL = "admin@loopwatch.local"

# Label Studio reads most settings through get_env(NAME), which also accepts the bare NAME and
# LABEL_STUDIO_/HEARTEX_ prefixed forms. A developer's shell may hold bare names such as USERNAME
# or PORT that would silently change what the server does, so the server gets none of these.
CONFLICTING_ENV = frozenset(
    {
        "USERNAME",
        "PASSWORD",
        "USER_TOKEN",
        "PORT",
        "HOST",
        "DEBUG",
        "LOG_LEVEL",
        "DJANGO_DB",
        "DJANGO_SETTINGS_MODULE",
        "DATABASE_NAME",
        "BASE_DATA_DIR",
    }
)


class LaunchError(Exception):
    """A failure the user can act on; printed without a traceback."""


def log(message: str) -> None:
    print(f"[label-studio] {message}", file=sys.stderr, flush=True)


# --- virtual environment ------------------------------------------------------------------


def venv_dir(value: str | None) -> Path:
    """``--venv``, else ``LOOPWATCH_LABEL_STUDIO_VENV``, else ``.venv-labelstudio`` at the repo root."""
    chosen = value or os.environ.get("LOOPWATCH_LABEL_STUDIO_VENV")
    return Path(chosen).resolve() if chosen else DEFAULT_VENV


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def wanted_stamp() -> dict[str, str]:
    """What an up-to-date environment records: a new requirements file means reinstall."""
    return {
        "label_studio": LABEL_STUDIO_VERSION,
        "requirements_sha256": hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest(),
    }


def is_installed(venv: Path) -> bool:
    stamp = venv / VENV_STAMP
    if not venv_python(venv).exists() or not stamp.exists():
        return False
    try:
        recorded = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return False
    return all(recorded.get(key) == value for key, value in wanted_stamp().items())


@contextlib.contextmanager
def file_lock(name: str, timeout: float) -> Iterator[None]:
    """An exclusive lock shared by every launcher on this machine (two terminals, parallel CI).

    Kept in the temp directory, keyed by ``name``, so the work tree gets no lock files. The wait
    is bounded: a stuck holder produces an error instead of a hang.
    """
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"loopwatch-label-studio-{digest}.lock"
    with open(path, "a+") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LaunchError(f"another launcher holds {path} for more than {timeout:.0f} s") from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def install(venv: Path, python: str, timeout: float) -> dict[str, Any]:
    """Create the environment from the pinned requirements; a no-op when the stamp matches."""
    started = time.monotonic()
    with file_lock(f"install:{venv}", timeout):
        if is_installed(venv):
            return {"venv": str(venv), "installed": False, "label_studio": LABEL_STUDIO_VERSION, "seconds": 0.0}
        if venv.exists() and not _runs(venv_python(venv)):
            log(f"removing broken environment {venv}")
            shutil.rmtree(venv)
        if not venv.exists():
            log(f"creating {venv} with {python}")
            _run([python, "-m", "venv", str(venv)], timeout=120, what="python -m venv")
        (venv / VENV_STAMP).unlink(missing_ok=True)
        log(f"installing label-studio=={LABEL_STUDIO_VERSION} (pinned set in {REQUIREMENTS.name})")
        _install_requirements(venv, timeout)
        version = _run(
            [str(venv_python(venv)), "-c", "import importlib.metadata as m; print(m.version('label-studio'))"],
            timeout=60,
            what="version check",
        ).strip()
        if version != LABEL_STUDIO_VERSION:
            raise LaunchError(f"installed label-studio {version}, expected {LABEL_STUDIO_VERSION}")
        (venv / VENV_STAMP).write_text(json.dumps(wanted_stamp(), indent=2) + "\n")
    seconds = round(time.monotonic() - started, 1)
    log(f"installed in {seconds} s")
    return {"venv": str(venv), "installed": True, "label_studio": LABEL_STUDIO_VERSION, "seconds": seconds}


def _install_requirements(venv: Path, timeout: float) -> None:
    """Install the pinned set with uv (measured ~15 s cold vs ~65 s for pip), else with pip.

    uv downloads in parallel; it is itself a pinned wheel from PyPI installed into this
    environment, so nothing outside the package registry is fetched. Any uv failure falls
    back to plain pip, which is slower but has no extra moving part.
    """
    python = str(venv_python(venv))
    pip = [python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input"]
    try:
        _run([*pip, f"uv=={UV_VERSION}"], timeout=300, what="pip install uv", log_to=venv / "install.log")
        uv = [str(venv / "bin" / "uv"), "pip", "install", "--compile-bytecode", "--python", python]
        _run([*uv, "-r", str(REQUIREMENTS)], timeout=timeout, what="uv pip install", log_to=venv / "install.log")
    except LaunchError as exc:
        log(f"uv failed ({str(exc).splitlines()[0]}); falling back to pip (about a minute)")
        _run([*pip, "-r", str(REQUIREMENTS)], timeout=timeout, what="pip install", log_to=venv / "install.log")


def _runs(python: Path) -> bool:
    try:
        return subprocess.run([str(python), "-c", "pass"], timeout=30, capture_output=True).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _run(cmd: list[str], *, timeout: float, what: str, log_to: Path | None = None) -> str:
    """Run a command; on failure raise with the tail of its output (and keep the full log)."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise LaunchError(f"{what} did not finish within {timeout:.0f} s") from exc
    except OSError as exc:
        raise LaunchError(f"{what} could not run: {exc}") from exc
    output = done.stdout + done.stderr
    if log_to is not None:
        log_to.write_text(output)
    if done.returncode != 0:
        tail = "\n".join(line for line in output.splitlines() if "is ignored: it is neither" not in line)[-3000:]
        raise LaunchError(f"{what} failed with exit code {done.returncode}:\n{tail}")
    return done.stdout


# --- data directories and credentials -------------------------------------------------------


def load_credentials(data_dir: Path) -> dict[str, str] | None:
    path = data_dir / CREDENTIALS_FILE
    if not path.exists():
        return None
    return json.loads(path.read_text())


def new_credentials(data_dir: Path) -> dict[str, str]:
    """Random admin password and a 40-character legacy token (the length Label Studio stores)."""
    creds = {"username": ADMIN_EMAIL, "password": secrets.token_urlsafe(18), "token": secrets.token_hex(20)}
    path = data_dir / CREDENTIALS_FILE
    path.write_text(json.dumps(creds, indent=2) + "\n")
    path.chmod(0o600)
    return creds


def is_initialized(data_dir: Path) -> bool:
    return (data_dir / DATABASE_FILE).exists() and load_credentials(data_dir) is not None


def ensure_template(template: Path, venv: Path, host: str, timeout: float) -> None:
    """Create a migrated data directory once; later starts copy it instead of migrating again."""
    with file_lock(f"template:{template}", timeout + 60):
        stamp = template / TEMPLATE_STAMP
        if stamp.exists() and json.loads(stamp.read_text()).get("label_studio") == LABEL_STUDIO_VERSION:
            return
        log(f"creating migrated template {template} (first time only, ~30-45 s)")
        if template.exists():
            stop_server(template, timeout=20)
            shutil.rmtree(template)
        template.mkdir(parents=True)
        started = time.monotonic()
        info = start_server(template, venv=venv, host=host, port=None, timeout=timeout, local_files_root=None)
        stop_server(template, timeout=30)
        for name in (PID_FILE, STATE_FILE, LOG_FILE):
            (template / name).unlink(missing_ok=True)
        seconds = round(time.monotonic() - started, 1)
        stamp.write_text(json.dumps({"label_studio": LABEL_STUDIO_VERSION, "seconds": seconds}) + "\n")
        log(f"template ready in {seconds} s (admin {info['username']})")


def copy_template(template: Path, data_dir: Path) -> None:
    ignore = shutil.ignore_patterns(*RUNTIME_FILES)
    shutil.copytree(template, data_dir, ignore=ignore, dirs_exist_ok=True)


# --- ports, processes, health -----------------------------------------------------------------


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(host: str, port: int) -> bool:
    """Free means nobody listens (Label Studio's own check) and we can bind it ourselves."""
    with socket.socket() as probe:
        probe.settimeout(1)
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            return False
    try:
        with socket.socket() as sock:
            # Like the server itself (Django's runserver): a port whose last connections sit in
            # TIME_WAIT after a stop is free to reuse at once.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError:
        return False
    return True


def pid_alive(pid: int) -> bool:
    """True for a running process (a zombie waiting to be reaped counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def is_label_studio(pid: int) -> bool:
    """Guard against a recycled pid: only signal a process that is a Label Studio server."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return pid_alive(pid)  # no /proc (macOS): trust the pid file
    return b"label-studio\0start\0" in cmdline  # argv as this launcher starts it


def read_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


def http_get(url: str, token: str | None = None, timeout: float = 2.0) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Authorization": f"Token {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except (urllib.error.URLError, OSError):
        return 0, ""


def healthy(url: str) -> bool:
    status, body = http_get(f"{url}/health")
    return status == 200 and "UP" in body


def server_env(data_dir: Path, local_files_root: Path | None) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in CONFLICTING_ENV and not key.startswith(("LABEL_STUDIO_", "HEARTEX_", "SENTRY_"))
    }
    env.update(
        {
            "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
            "LATEST_VERSION_CHECK": "false",
            "SSRF_PROTECTION_ENABLED": "false",
            "COLLECT_ANALYTICS": "false",
            "SENTRY_DSN": "",
            "FRONTEND_SENTRY_DSN": "",
            "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if local_files_root is not None:
        env["LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED"] = "true"
        env["LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT"] = str(local_files_root)
    else:
        # Explicitly off: otherwise it guesses a document root from the environment.
        env["LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED"] = "false"
    return env


def running_info(data_dir: Path) -> dict[str, Any] | None:
    """The state of a server started from ``data_dir`` that is still alive and healthy."""
    pid = read_pid(data_dir)
    state_path = data_dir / STATE_FILE
    if pid is None or not state_path.exists() or not pid_alive(pid) or not is_label_studio(pid):
        return None
    state = json.loads(state_path.read_text())
    return state if state.get("pid") == pid and healthy(state["url"]) else None


def start_server(
    data_dir: Path,
    *,
    venv: Path,
    host: str,
    port: int | None,
    timeout: float,
    local_files_root: Path | None,
) -> dict[str, Any]:
    """Start Label Studio on ``data_dir`` and wait (bounded) until it serves our token."""
    started = time.monotonic()
    if not is_installed(venv):
        raise LaunchError(f"Label Studio is not installed in {venv}: run `{Path(__file__).name} install` first")
    data_dir.mkdir(parents=True, exist_ok=True)
    already = running_info(data_dir)
    if already is not None:
        return {**already, "already_running": True}
    stale = read_pid(data_dir)
    if stale is not None and pid_alive(stale) and is_label_studio(stale):
        raise LaunchError(f"a Label Studio (pid {stale}) holds {data_dir} but is not healthy; run stop first")

    first_start = not is_initialized(data_dir)
    if first_start and (data_dir / DATABASE_FILE).exists():
        raise LaunchError(f"{data_dir} has a Label Studio database but no {CREDENTIALS_FILE}; use another directory")
    if port is None:
        port = free_port(host)
    elif not port_is_free(host, port):
        raise LaunchError(f"port {port} is in use (Label Studio would silently move to another port)")
    creds = new_credentials(data_dir) if first_start else load_credentials(data_dir)
    assert creds is not None
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"

    cmd = [str(venv / "bin" / "label-studio"), "start", "--no-browser"]
    cmd += ["--internal-host", host, "--port", str(port), "--data-dir", str(data_dir)]
    if first_start:
        # `--opt=value`: a random password may start with "-", which argparse would take for an option
        cmd += [f"--username={creds['username']}", f"--password={creds['password']}"]
        cmd += [f"--user-token={creds['token']}", "--enable-legacy-api-token"]
    log_path = data_dir / LOG_FILE
    with open(log_path, "ab") as log_file:
        log_file.write(f"\n--- start {time.strftime('%Y-%m-%dT%H:%M:%S')} port {port} ---\n".encode())
        log_file.flush()
        proc = subprocess.Popen(  # a server outliving this launcher: its own session, stopped by `stop`
            cmd,
            cwd=data_dir,
            env=server_env(data_dir, local_files_root),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    (data_dir / PID_FILE).write_text(f"{proc.pid}\n")
    try:
        _wait_until_serving(proc, url, creds["token"], log_path, timeout)
    except BaseException:
        stop_server(data_dir, timeout=10)
        raise
    state = {
        "url": url,
        "token": creds["token"],
        "pid": proc.pid,
        "port": port,
        "username": creds["username"],
        "password": creds["password"],
        "data_dir": str(data_dir),
        "log": str(log_path),
        "label_studio": LABEL_STUDIO_VERSION,
    }
    (data_dir / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")
    (data_dir / STATE_FILE).chmod(0o600)
    return {**state, "migrated": first_start, "seconds": round(time.monotonic() - started, 1)}


def _wait_until_serving(proc: subprocess.Popen[bytes], url: str, token: str, log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / 0.25) + 1):  # bounded in count and (below) in time
        if proc.poll() is not None:
            raise LaunchError(f"Label Studio exited with code {proc.returncode}:\n{_tail(log_path)}")
        if healthy(url):
            break
        if time.monotonic() > deadline:
            raise LaunchError(f"Label Studio did not answer {url}/health within {timeout:.0f} s:\n{_tail(log_path)}")
        time.sleep(0.25)
    else:
        raise LaunchError(f"Label Studio did not answer {url}/health within {timeout:.0f} s:\n{_tail(log_path)}")
    text = log_path.read_text(errors="replace")
    if "Trying to start at" in text.rsplit("--- start", 1)[-1]:
        raise LaunchError("Label Studio moved to another port (ours was taken after the check)")
    status, _ = http_get(f"{url}/api/current-user/whoami", token=token, timeout=10)
    if status != 200:
        raise LaunchError(f"Label Studio at {url} refused our token (HTTP {status}); is another server on that port?")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop_server(data_dir: Path, timeout: float) -> dict[str, Any]:
    """SIGTERM the server's process group, SIGKILL after ``timeout``; remove the pid file."""
    pid = read_pid(data_dir)
    result: dict[str, Any] = {"data_dir": str(data_dir), "pid": pid, "stopped": False}
    if pid is not None and pid_alive(pid) and is_label_studio(pid):
        _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid_alive(pid):
            log(f"pid {pid} ignored SIGTERM for {timeout:.0f} s; sending SIGKILL")
            _signal(pid, signal.SIGKILL)
            for _ in range(50):
                if not pid_alive(pid):
                    break
                time.sleep(0.1)
        result["stopped"] = not pid_alive(pid)
    for name in (PID_FILE, STATE_FILE):
        (data_dir / name).unlink(missing_ok=True)
    return result


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        if os.getpgid(pid) == pid:  # started with its own session: take any children along
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


# --- command line -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--venv", help="Label Studio's environment (default: .venv-labelstudio at the repo root)")
    sub = parser.add_subparsers(dest="command", required=True)

    p_install = sub.add_parser("install", help="create the environment (idempotent)")
    p_install.add_argument("--python", default=sys.executable, help="interpreter for the venv (default: this one)")
    p_install.add_argument("--timeout", type=float, default=1200, help="seconds allowed for pip")

    p_start = sub.add_parser("start", help="start a server on a data directory")
    p_start.add_argument("--data-dir", required=True, type=Path)
    p_start.add_argument("--port", type=int, help="default: a free port")
    p_start.add_argument("--host", default="127.0.0.1", help="interface to bind (default: loopback)")
    p_start.add_argument("--template", type=Path, help="migrated data dir to copy (created on first use)")
    p_start.add_argument("--timeout", type=float, default=180, help="seconds to wait for /health")
    p_start.add_argument("--local-files-root", type=Path, help="serve local files under this directory")

    for name, text in (("status", "print the running server's details"), ("stop", "stop the server")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--data-dir", required=True, type=Path)
        p.add_argument("--timeout", type=float, default=20, help="seconds to wait before SIGKILL (stop)")

    args = parser.parse_args(argv)
    venv = venv_dir(args.venv)
    try:
        if args.command == "install":
            result = install(venv, args.python, args.timeout)
        elif args.command == "start":
            data_dir = args.data_dir.resolve()
            if args.port is not None and running_info(data_dir) is None and not port_is_free(args.host, args.port):
                raise LaunchError(f"port {args.port} is in use (Label Studio would silently move to another port)")
            if args.template is not None and not is_initialized(data_dir):
                template = args.template.resolve()
                ensure_template(template, venv, args.host, args.timeout)
                copy_template(template, data_dir)
            root = args.local_files_root.resolve() if args.local_files_root else None
            result = start_server(
                data_dir, venv=venv, host=args.host, port=args.port, timeout=args.timeout, local_files_root=root
            )
        elif args.command == "status":
            info = running_info(args.data_dir.resolve())
            result = info if info is not None else {"running": False}
            if info is None:
                print(json.dumps(result), flush=True)
                return 1
        else:
            result = stop_server(args.data_dir.resolve(), args.timeout)
    except LaunchError as exc:
        log(f"error: {exc}")
        print(json.dumps({"error": str(exc)[-2000:]}), flush=True)
        return 1
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
