"""Monitors over the API and CLI: save, validate, run now, backfill, findings and run records."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from api.cli import app
from monitor.service import Loopwatch
from tests.conftest import BRAKING, Api
from tests.monitor.test_evaluation import NOW, _load

DRIFT = {
    "name": "feature-drift",
    "detector": "data_drift",
    "every": "1h",
    "window": "1h",
    "reference": {"kind": "trailing", "length": "1d"},
    "severity": "critical",
    "route": {"slack_channel": "#ml-oncall", "runbook": "https://runbooks.example/drift"},
}


def _service(api: Api) -> Loopwatch:
    return api.client.app.state.service  # type: ignore[attr-defined]


def test_save_list_run_findings_and_run_record(api: Api) -> None:
    """POST monitors (201 new, 200 replace), run one now, read its findings and run record."""
    service = _service(api)
    _load(service, NOW - timedelta(days=1, hours=2), 24, 100, seed=1)
    _load(service, NOW - timedelta(hours=1), 1, 1000, speed=60, seed=2)
    base = "/v1/models/harsh-braking"
    assert api.client.post(f"{base}/monitors", json=[DRIFT], headers=api.admin).status_code == 201
    assert api.client.post(f"{base}/monitors", json=DRIFT, headers=api.admin).status_code == 200
    listed = api.client.get(f"{base}/monitors", headers=api.read).json()
    assert [m["name"] for m in listed] == ["feature-drift"] and listed[0]["route"]["slack_channel"] == "#ml-oncall"
    run = api.client.post(f"{base}/monitors/feature-drift/run", json={"at": NOW.isoformat()}, headers=api.admin).json()
    assert run["status"] == "succeeded"
    assert any(f["column"] == "speed_kmh" and f["status"] == "critical" for f in run["findings"])
    record = api.client.get(f"/v1/runs/{run['run_id']}", headers=api.read).json()
    assert record["config_hash"] and record["data_fingerprint"] and record["code_version"]
    critical = api.client.get(f"{base}/findings", params={"status": "critical"}, headers=api.read).json()
    assert {f["column"] for f in critical} >= {"speed_kmh"}
    assert api.client.get("/v1/runs/nope", headers=api.read).status_code == 404


def test_invalid_monitor_is_422_with_fields(api: Api) -> None:
    """A monitor with a parameter typo is refused naming the monitor and the parameter."""
    bad = {**DRIFT, "params": {"treshold": 0.3}}
    response = api.client.post("/v1/models/harsh-braking/monitors", json=[DRIFT, bad], headers=api.admin)
    assert response.status_code == 422
    assert "treshold" in response.text and "monitors[1]" in response.text
    assert api.client.get("/v1/models/harsh-braking/monitors", headers=api.read).json() == []


def test_backfill_and_delete(api: Api) -> None:
    """Backfill replays scheduled windows without paging; DELETE removes a monitor."""
    service = _service(api)
    _load(service, NOW - timedelta(days=1, hours=4), 28, 80, seed=3)
    base = "/v1/models/harsh-braking"
    api.client.post(f"{base}/monitors", json=DRIFT, headers=api.admin).raise_for_status()
    body = {"from": (NOW - timedelta(hours=4)).isoformat(), "to": NOW.isoformat()}
    result = api.client.post(f"{base}/backfill", json=body, headers=api.admin).json()
    assert result["runs"] == 4 and result["failed"] == 0
    modes = {f["mode"] for f in api.client.get(f"{base}/findings", headers=api.read).json()}
    assert modes == {"backfill"}
    assert api.client.post(f"{base}/backfill", json={**body, "to": body["from"]}, headers=api.admin).status_code == 422
    assert api.client.delete(f"{base}/monitors/feature-drift", headers=api.admin).status_code == 204
    assert api.client.delete(f"{base}/monitors/feature-drift", headers=api.admin).status_code == 404


def test_cli_apply_run_and_backfill(tmp_path: Path, service: Loopwatch, braking_model) -> None:
    """`monitors apply FILE`, `monitors run --model`, and `backfill --from --to` work on the store."""
    _load(service, NOW - timedelta(days=1, hours=3), 27, 80, seed=4)
    data_dir = str(service.settings.data_dir)
    service.close()
    runner = CliRunner()
    path = tmp_path / "monitors.yaml"
    path.write_text(yaml.safe_dump({"model": BRAKING["name"], "monitors": [DRIFT]}))
    result = runner.invoke(app, ["monitors", "apply", str(path), "--data-dir", data_dir])
    assert result.exit_code == 0 and "feature-drift" in result.output, result.output
    result = runner.invoke(app, ["monitors", "run", "--model", "harsh-braking", "--data-dir", data_dir])
    assert result.exit_code == 0 and "feature-drift: succeeded" in result.output, result.output
    assert "no loopwatch server holds this data directory" in result.output  # no pipeline without a server
    past = (NOW - timedelta(hours=20)).isoformat()
    result = runner.invoke(app, ["monitors", "run", "--model", "harsh-braking", "--at", past, "--data-dir", data_dir])
    assert result.exit_code == 0 and "alert state left alone" in result.output, result.output  # says so plainly
    result = runner.invoke(
        app,
        [
            "backfill",
            "--model",
            "harsh-braking",
            "--from",
            (NOW - timedelta(hours=2)).isoformat(),
            "--to",
            NOW.isoformat(),
            "--data-dir",
            data_dir,
        ],
    )
    assert result.exit_code == 0 and "2 runs (0 failed)" in result.output, result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"model": "harsh-braking", "monitors": [{**DRIFT, "every": None}]}))
    result = runner.invoke(app, ["monitors", "apply", str(bad), "--data-dir", data_dir])
    assert result.exit_code == 1 and "exactly one of every" in result.output
    service.__init__(service.settings)


def test_backfill_engine_spark_without_java_is_503_naming_the_install(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """POST backfill with `engine: spark` on a server that cannot start Spark answers 503 saying
    what to install, runs nothing; `spark_master` without `engine: spark` is a 422; an unknown
    engine is a 422 naming the choices."""
    service = _service(api)
    _load(service, NOW - timedelta(hours=3), 2, 50, seed=3)
    base = "/v1/models/harsh-braking"
    assert api.client.post(f"{base}/monitors", json=[DRIFT], headers=api.admin).status_code == 201
    span = {"from": (NOW - timedelta(hours=3)).isoformat(), "to": NOW.isoformat()}
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    response = api.client.post(f"{base}/backfill", json={**span, "engine": "spark"}, headers=api.admin)
    assert response.status_code == 503 and "openjdk-17-jre-headless" in response.text, response.text
    assert service.runs.runs("harsh-braking") == []
    response = api.client.post(f"{base}/backfill", json={**span, "spark_master": "local[1]"}, headers=api.admin)
    assert response.status_code == 422 and "spark_master" in response.text
    response = api.client.post(f"{base}/backfill", json={**span, "engine": "flink"}, headers=api.admin)
    assert response.status_code == 422 and "spark" in response.text


@pytest.mark.slow
def test_backfill_through_the_server_with_engine_spark_records_the_embedded_findings(api: Api) -> None:
    """POST backfill with `engine: spark` and a `spark_master` runs the server's Spark session over
    the model's rows (here all hot: nothing is sealed yet) and records the findings the embedded
    engine records for the same windows."""
    service = _service(api)
    _load(service, NOW - timedelta(days=1, hours=2), 24, 100, seed=1)
    _load(service, NOW - timedelta(hours=3), 3, 400, speed=60, seed=2)
    base = "/v1/models/harsh-braking"
    assert api.client.post(f"{base}/monitors", json=[DRIFT], headers=api.admin).status_code == 201
    span = {"from": (NOW - timedelta(hours=3)).isoformat(), "to": NOW.isoformat()}
    embedded = api.client.post(f"{base}/backfill", json={**span, "engine": "embedded"}, headers=api.admin).json()
    body = {**span, "engine": "spark", "spark_master": "local[1]"}
    spark = api.client.post(f"{base}/backfill", json=body, headers=api.admin).json()
    assert spark["engine"] == "spark" and spark["spark_master"] == "local[1]", spark
    assert spark["runs"] == embedded["runs"] == 3 and spark["failed"] == 0
    pairs: dict[tuple[str, str | None], list[dict[str, object]]] = {}
    for f in service.runs.findings("harsh-braking", limit=1000):
        pairs.setdefault((f["window_end"], f["column"]), []).append(f)
    assert pairs and all(len(p) == 2 for p in pairs.values())
    for a, b in pairs.values():
        assert (a["status"], a["n_current"], a["n_reference"], a["value"]) == (
            b["status"],
            b["n_current"],
            b["n_reference"],
            b["value"],
        )
