"""The operator's command line: every command works on a free data directory and through the
server holding it, with the same answers (both run the same ``application`` use cases)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from api.cli import app
from application import Application
from monitor.schema import ModelSchema
from monitor.service import Loopwatch
from monitor.settings import Settings
from monitor.version import VERSION
from tests.conftest import BRAKING
from tests.monitor.alerting.test_pipeline import SPEC, T0, World, outcome
from tests.monitor.test_evaluation import NOW, _load

runner = CliRunner()
DRIFT = {
    "name": "feature-drift",
    "detector": "data_drift",
    "every": "1h",
    "window": "1h",
    "reference": {"kind": "trailing", "length": "1d"},
}


def _invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def _prepare(data_dir: Path) -> str:
    """A model, two hours of predictions 30 hours ago, and one firing alert; returns its id."""
    service = Loopwatch(Settings(data_dir=data_dir))
    try:
        service.registry.register(ModelSchema.model_validate(BRAKING))
        _load(service, NOW - timedelta(hours=30), 2, 30, seed=5)
        application = Application.offline(service)
        world = World(service, None, [T0], None)  # type: ignore[arg-type]
        [transition] = application.pipeline.on_run(
            outcome(world, "critical", monitor=SPEC.model_copy(update={"for_": 1}))
        )
        return transition.alert_id
    finally:
        service.close()


@pytest.fixture(params=["direct", "server"])
def where(request: pytest.FixtureRequest, tmp_path: Path, server_factory: Any) -> Iterator[tuple[Path, str, str]]:
    """(data dir, alert id, mode): the CLI opens the store itself, or a server holds it."""
    if request.param == "direct":
        data = tmp_path / "data"
        yield data, _prepare(data), "direct"
        return
    server, _ = server_factory()
    alert_id = _prepare(server.data_dir)
    server.start()
    yield server.data_dir, alert_id, "server"


def test_version_flag_prints_the_version() -> None:
    """`loopwatch --version` prints the package version and exits 0."""
    code, out = _invoke("--version")
    assert code == 0 and out.strip() == f"loopwatch {VERSION}"


def test_keys_and_models_management(where: tuple[Path, str, str]) -> None:
    """keys create / list / revoke and models list work the same with or without a server; the
    listing never shows a key itself, and a revoked key shows when it was revoked."""
    data, _, _ = where
    code, out = _invoke("keys", "create", "--scope", "read", "--name", "grafana", "--data-dir", str(data))
    assert code == 0, out
    plaintext = out.strip().splitlines()[-1]
    code, out = _invoke("keys", "list", "--data-dir", str(data))
    assert code == 0 and "grafana" in out and plaintext not in out, out
    key_id = next(line.split("\t")[0] for line in out.splitlines() if "grafana" in line)
    code, out = _invoke("keys", "revoke", key_id, "--data-dir", str(data))
    assert code == 0 and "revoked" in out, out
    code, out = _invoke("keys", "list", "--data-dir", str(data))
    assert any("grafana" in line and "revoked" in line for line in out.splitlines()), out
    code, out = _invoke("keys", "revoke", "key_nope", "--data-dir", str(data))
    assert code == 1 and "key_nope" in out
    code, out = _invoke("models", "list", "--data-dir", str(data))
    assert code == 0 and out.startswith("harsh-braking\tbinary\tschema v1"), out


def test_monitors_apply_all_or_nothing_then_delete(where: tuple[Path, str, str], tmp_path: Path) -> None:
    """A file with mistakes lists every one and saves nothing; fixed, it saves all; a monitor can
    be deleted by name."""
    data, _, _ = where
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(
            {
                "model": "harsh-braking",
                "monitors": [
                    DRIFT,
                    {**DRIFT, "name": "x", "detector": "nope"},
                    {**DRIFT, "name": "y", "every": "soon"},
                ],
            }
        )
    )
    code, out = _invoke("monitors", "apply", str(bad), "--data-dir", str(data))
    assert code == 1 and "none was saved: 2 errors" in out, out
    assert "monitors[1].detector" in out and "monitors[2].every" in out
    code, out = _invoke("monitors", "list", "--model", "harsh-braking", "--data-dir", str(data))
    assert code == 0 and out.strip() == "", out
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump({"model": "harsh-braking", "monitors": [DRIFT]}))
    code, out = _invoke("monitors", "apply", str(good), "--data-dir", str(data))
    assert code == 0 and "feature-drift created" in out, out
    code, out = _invoke("monitors", "delete", "feature-drift", "--model", "harsh-braking", "--data-dir", str(data))
    assert code == 0 and "deleted" in out, out
    code, out = _invoke("monitors", "delete", "feature-drift", "--model", "harsh-braking", "--data-dir", str(data))
    assert code == 1 and "no monitor" in out


def test_backfill_counts_windows_skips_empty_and_reports(where: tuple[Path, str, str], tmp_path: Path) -> None:
    """`backfill --dry-run` prints the plan and runs nothing; a real backfill runs only windows
    with data (in steps, with progress) and says how many empty windows it skipped."""
    data, _, _ = where
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump({"model": "harsh-braking", "monitors": [DRIFT]}))
    assert _invoke("monitors", "apply", str(good), "--data-dir", str(data))[0] == 0
    start, end = (NOW - timedelta(hours=72)).isoformat(), NOW.isoformat()
    args = ("--model", "harsh-braking", "--from", start, "--to", end, "--data-dir", str(data))
    code, out = _invoke("backfill", *args, "--dry-run")
    assert code == 0 and "2 runs planned: 72 windows of 1 monitors" in out, out
    assert "70 of 72 windows hold no predictions and are skipped" in out
    code, out = _invoke("backfill", *args)
    assert code == 0 and "2 runs (0 failed)" in out and "70 empty windows skipped" in out, out
    old = (NOW - timedelta(hours=24 * 90)).isoformat(), (NOW - timedelta(hours=24 * 60)).isoformat()
    code, out = _invoke(
        "backfill", "--model", "harsh-braking", "--from", old[0], "--to", old[1], "--data-dir", str(data)
    )
    assert code == 0 and "0 runs planned: 720 windows" in out and "all 720 windows are empty" in out, out


def test_alerts_list_ack_silence_and_audit(where: tuple[Path, str, str]) -> None:
    """alerts list shows the firing alert; ack acknowledges it (again: 'already'); an unknown id
    is refused with exit 1; silence and expire work; every action is in `audit list`."""
    data, alert_id, _ = where
    code, out = _invoke("alerts", "list", "--data-dir", str(data))
    assert code == 0 and alert_id in out and "firing" in out and "critical" in out, out
    code, out = _invoke("alerts", "ack", alert_id, "--data-dir", str(data))
    assert code == 0 and f"acknowledged {alert_id}" in out, out
    code, out = _invoke("alerts", "ack", alert_id, "al_nope", "--data-dir", str(data))
    assert code == 1 and "already acknowledged" in out and "al_nope" in out, out
    code, out = _invoke("alerts", "list", "--data-dir", str(data))
    assert "acked by" in out, out
    code, out = _invoke(
        "alerts",
        "silence",
        "model=harsh-braking",
        "monitor=fn-rate",
        "--for",
        "2h",
        "--comment",
        "deploy",
        "--data-dir",
        str(data),
    )
    assert code == 0 and out.startswith("silence si_"), out
    silence_id = out.split()[1]
    code, out = _invoke("alerts", "silences", "--data-dir", str(data))
    assert silence_id in out and "deploy" in out, out
    assert _invoke("alerts", "silence", "model", "--for", "1h", "--data-dir", str(data))[0] == 2
    code, out = _invoke("alerts", "expire", silence_id, "--data-dir", str(data))
    assert code == 0 and "expired" in out, out
    code, out = _invoke("audit", "list", "--action", "alert.", "--data-dir", str(data))
    assert code == 0 and "alert.acknowledged" in out and alert_id in out, out
    code, out = _invoke("audit", "list", "--data-dir", str(data), "--format", "json")
    actions = [e["action"] for e in json.loads(out)]
    assert {"alert.acknowledged", "silence.created", "silence.expired"} <= set(actions), actions


def test_seal_and_datasets_work_while_a_server_holds_the_directory(where: tuple[Path, str, str]) -> None:
    """`seal` and `dataset list|show` no longer fail with "data directory in use": they go
    through the server when one holds it."""
    data, _, _ = where
    code, out = _invoke("seal", "--data-dir", str(data))
    assert code == 0 and ("sealed" in out or "nothing to seal" in out), out
    code, out = _invoke("dataset", "list", "--data-dir", str(data))
    assert code == 0, out
    code, out = _invoke("dataset", "show", "nope", "--data-dir", str(data))
    assert code == 1 and "nope" in out, out
    assert _invoke("dataset", "diff", "a@1", "b@x", "--data-dir", str(data))[0] == 2


def test_a_bad_time_names_its_option(where: tuple[Path, str, str], tmp_path: Path) -> None:
    """`monitors run --at` and `backfill --from` with a time that does not parse exit 1 naming
    the field, on a free directory as through a server (it was a traceback offline)."""
    data, _, _ = where
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump({"model": "harsh-braking", "monitors": [DRIFT]}))
    assert _invoke("monitors", "apply", str(good), "--data-dir", str(data))[0] == 0
    code, out = _invoke("monitors", "run", "--model", "harsh-braking", "--at", "teatime", "--data-dir", str(data))
    assert code == 1 and "at:" in out and "teatime" in out, out
    code, out = _invoke(
        "backfill", "--model", "harsh-braking", "--from", "soon", "--to", "2026-11-02", "--data-dir", str(data)
    )
    assert code == 1 and "from:" in out, out
