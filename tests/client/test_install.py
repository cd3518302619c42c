"""loopwatch-client is a small distribution of its own: it installs into a fresh virtual
environment with httpx and orjson only, and importing it loads none of loopwatch's server stack."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.client.conftest import Live
from tests.conftest import REPO

# The server's heavy stack and loopwatch's own packages: a model server must not pay for them.
FORBIDDEN = ("duckdb", "pyarrow", "evidently", "plotly", "fastapi", "uvicorn", "pandas", "numpy", "monitor", "api")
# The lower ends of client/pyproject.toml's ranges (the upper ends are requirements.lock's).
LOWER_BOUNDS = {"httpx": "0.27.0", "orjson": "3.9.15"}

PROBE = textwrap.dedent(
    f"""
    import json, sys
    from importlib import metadata
    from pip._vendor.packaging.requirements import Requirement  # pip is in every venv; packaging may not be
    import loopwatch_client

    def name(text):
        return Requirement(text).name.lower().replace("_", "-")

    def needed(text):  # environment markers (python_version, extras) evaluated here
        marker = Requirement(text).marker
        return marker is None or marker.evaluate({{"extra": ""}})

    def closure(dist):
        seen, todo = set(), [dist]
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.add(current)
            todo += [name(r) for r in metadata.requires(current) or [] if needed(r)]
        return seen

    print(json.dumps({{
        "loaded": sorted(m for m in {FORBIDDEN!r} if m in sys.modules),
        "requires": sorted(name(r) for r in metadata.requires("loopwatch-client")),
        "closure": sorted(closure("loopwatch-client")),
        "installed": sorted(name(d.metadata["Name"]) for d in metadata.distributions()),
        "versions": {{n: metadata.version(n) for n in ("httpx", "orjson", "loopwatch-client")}},
        "typed": any(str(f).endswith("loopwatch_client/py.typed") for f in metadata.files("loopwatch-client") or []),
        "version": loopwatch_client.__version__,
    }}))
    """
)


def probe(python: str | Path) -> dict:
    done = subprocess.run([str(python), "-c", PROBE], capture_output=True, text=True, timeout=60, cwd="/")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_importing_the_client_loads_no_server_package() -> None:
    """Even where loopwatch's whole stack is installed (this venv), `import loopwatch_client`
    loads none of duckdb, pyarrow, evidently, plotly, fastapi … nor the monitor package, and the
    distribution requires httpx and orjson only."""
    found = probe(sys.executable)
    assert found["loaded"] == []
    assert found["requires"] == ["httpx", "orjson"]


@pytest.mark.slow
def test_pip_install_client_in_a_fresh_venv_at_the_lower_bounds(tmp_path: Path, live: Live, model: str) -> None:
    """`pip install ./client` into a fresh venv (with the lowest httpx/orjson its ranges allow)
    installs only httpx, orjson and their own dependencies, ships py.typed, and logs to a real
    server from there."""
    source = tmp_path / "client"  # a copy: building must not write into the working tree
    shutil.copytree(REPO / "client", source, ignore=shutil.ignore_patterns("*.egg-info", "__pycache__", "build"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    constraints = tmp_path / "lower-bounds.txt"
    constraints.write_text("".join(f"{n}=={v}\n" for n, v in LOWER_BOUNDS.items()))
    done = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-c",
            str(constraints),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    found = probe(python)
    assert found["loaded"] == []
    assert found["requires"] == ["httpx", "orjson"]
    assert {k: found["versions"][k] for k in LOWER_BOUNDS} == LOWER_BOUNDS
    assert found["typed"] is True and found["version"] == found["versions"]["loopwatch-client"]
    extra = set(found["installed"]) - set(found["closure"]) - {"pip", "setuptools"}
    assert extra == set(), f"installed beyond loopwatch-client's dependencies: {extra}"
    assert not set(FORBIDDEN) & set(found["installed"])

    script = textwrap.dedent(
        f"""
        from loopwatch_client import PredictionLogger
        with PredictionLogger({live.url!r}, api_key={live.key!r}, model={model!r}) as logger:
            assert logger.log("venv-1", prediction="brake", score=0.9, features={{"speed_kmh": 50.0}})
            assert logger.log_label("venv-1", "brake")
            assert logger.flush(timeout=20)
            assert logger.stats.sent == 2, logger.stats
        """
    )
    done = subprocess.run([str(python), "-c", script], capture_output=True, text=True, timeout=60, cwd="/")
    assert done.returncode == 0, done.stderr
    assert live.counts(model) == (1, 1)
