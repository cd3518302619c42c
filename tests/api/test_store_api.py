"""Verified storage over HTTP and the CLI: /readyz, reads, ingest and monitor runs name a damaged
sealed file; `loopwatch store verify` exits non-zero listing it; drop-file + re-ingest repairs."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.cli import app as cli
from monitor.schema import ModelSchema
from monitor.service import Loopwatch
from monitor.settings import Settings
from tests.conftest import BRAKING, Api, braking_record
from tests.monitor.test_integrity import DAMAGE, OLD_DAY, rel, seal_old_day

runner = CliRunner()
BASE = "/v1/models/harsh-braking"
OLD_WINDOW = {"start": (OLD_DAY - timedelta(hours=2)).isoformat(), "end": (OLD_DAY + timedelta(hours=2)).isoformat()}


def _service(api: Api) -> Loopwatch:
    return api.client.app.state.service  # type: ignore[attr-defined]


def _sealed_before_start(settings: Settings, scope: str) -> tuple[Path, str]:
    """A sealed day and a key of ``scope``, made in the data directory before a server starts."""
    service = Loopwatch(settings)
    try:
        service.registry.register(ModelSchema.model_validate(BRAKING))
        path = seal_old_day(service, ModelSchema.model_validate(BRAKING))
        _, key = service.keys.create(scope, "t")
    finally:
        service.close()
    return path, key


def _sealed(api: Api) -> Path:
    return seal_old_day(_service(api), ModelSchema.model_validate(BRAKING))


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_readyz_and_reads_answer_storage_damaged(api: Api, settings: Settings, kind: str) -> None:
    """A damaged file makes /readyz 503 naming it; stats and pages needing it answer 503
    storage_damaged naming the file (never a bare 500); windows not needing it answer 200."""
    path = _sealed(api)
    assert api.client.get("/readyz", headers=api.read).status_code == 200
    DAMAGE[kind](path)
    _service(api).store.verify_sealed(throttled=True)
    name = rel(path, settings)
    ready = api.client.get("/readyz", headers=api.read)
    assert ready.status_code == 503
    assert ready.json()["error"]["code"] == "storage_damaged" and name in ready.json()["error"]["message"]
    for url, params in ((f"{BASE}/stats", {}), (f"{BASE}/stats", OLD_WINDOW), (f"{BASE}/predictions", OLD_WINDOW)):
        response = api.client.get(url, params=params, headers=api.read)
        assert response.status_code == 503, response.text
        error = response.json()["error"]
        assert error["code"] == "storage_damaged" and error["errors"][0]["field"] == name
    recent = {"start": (OLD_DAY + timedelta(days=3)).isoformat()}
    assert api.client.get(f"{BASE}/stats", params=recent, headers=api.read).status_code == 200


def test_resend_of_a_row_in_a_damaged_file_is_503(api: Api, settings: Settings) -> None:
    """A resend whose stored row lies in a damaged file cannot be confirmed: 503 storage_damaged
    naming the file (never stored twice); a new id in the same span is stored (201/200)."""
    path = _sealed(api)
    DAMAGE["truncated"](path)
    resend = braking_record(3, OLD_DAY + timedelta(hours=5))
    response = api.client.post(f"{BASE}/predictions", json=[resend], headers=api.ingest)
    assert response.status_code == 503 and rel(path, settings) in response.json()["error"]["message"]
    late = braking_record(70_000, OLD_DAY - timedelta(seconds=50, milliseconds=500))
    response = api.client.post(f"{BASE}/predictions", json=[late], headers=api.ingest)
    assert response.is_success and response.json()["accepted"] == 1


def test_background_verification_flags_damage_after_start(settings: Settings) -> None:
    """With background jobs on, the first verification pass runs shortly after start and /readyz turns 503."""
    path, key = _sealed_before_start(settings, "read")
    DAMAGE["bit-flipped"](path)
    with TestClient(create_app(settings, background=True)) as client:
        deadline = time.monotonic() + 15
        status = 200
        while time.monotonic() < deadline and status == 200:
            status = client.get("/readyz", headers={"Authorization": f"Bearer {key}"}).status_code
            time.sleep(0.1)
        assert status == 503


def test_monitor_run_needing_the_file_fails_with_the_message(api: Api, settings: Settings) -> None:
    """A monitor run whose window needs a damaged file fails, and its run record names the file."""
    path = _sealed(api)
    DAMAGE["zeroed"](path)
    monitor = {
        "name": "volume",
        "detector": "volume",
        "every": "1h",
        "window": "1h",
        "reference": {"kind": "trailing", "length": "1d"},
    }
    assert api.client.post(f"{BASE}/monitors", json=monitor, headers=api.admin).status_code in (200, 201)
    at = (OLD_DAY + timedelta(minutes=30)).isoformat()
    run = api.client.post(f"{BASE}/monitors/volume/run", json={"at": at}, headers=api.admin).json()
    assert run["status"] == "failed" and rel(path, settings) in run["error"]
    record = api.client.get(f"/v1/runs/{run['run_id']}", headers=api.read).json()
    assert rel(path, settings) in record["error"]


def test_verify_endpoint_needs_admin_and_drop_file_repairs(api: Api, settings: Settings) -> None:
    """GET /v1/store/verify (admin) lists damage; POST /v1/store/drop-file (admin, audited) drops the
    file; re-ingesting its window brings /readyz back to 200."""
    path = _sealed(api)
    DAMAGE["missing"](path)
    assert api.client.get("/v1/store/verify", headers=api.read).status_code == 403
    report = api.client.get("/v1/store/verify", headers=api.admin).json()
    assert [p["path"] for p in report["problems"]] == [rel(path, settings)]
    assert api.client.get("/readyz", headers=api.read).status_code == 503
    dropped = api.client.post("/v1/store/drop-file", json={"path": rel(path, settings)}, headers=api.admin)
    assert dropped.status_code == 200 and dropped.json()["rows"] == 400
    assert api.client.post("/v1/store/drop-file", json={"path": "nope"}, headers=api.admin).status_code == 404
    assert api.client.get("/readyz", headers=api.read).status_code == 200
    rows = [braking_record(i, OLD_DAY - timedelta(seconds=i)) for i in range(400)]
    assert api.client.post(f"{BASE}/predictions", json=rows, headers=api.ingest).json()["accepted"] == 400
    assert api.client.get(f"{BASE}/stats", params=OLD_WINDOW, headers=api.read).json()["predictions"] == 400
    audit = _service(api).db.query("SELECT action, target FROM audit_log WHERE action LIKE 'store.%' ORDER BY \"at\"")
    assert ("store.file_dropped", rel(path, settings)) in audit


def _offline_store(settings: Settings) -> Path:
    svc = Loopwatch(settings)
    try:
        spec = ModelSchema.model_validate(BRAKING)
        svc.registry.register(spec)
        return seal_old_day(svc, spec)
    finally:
        svc.close()


def test_cli_store_verify_exit_codes_and_drop_file(settings: Settings) -> None:
    """`loopwatch store verify` exits 0 on a clean store and 1 listing each damaged file;
    `store drop-file PATH` drops it (no server running) and verify is clean again."""
    path = _offline_store(settings)
    data = str(settings.data_dir)
    result = runner.invoke(cli, ["store", "verify", "--data-dir", data])
    assert result.exit_code == 0, result.output
    DAMAGE["truncated"](path)
    result = runner.invoke(cli, ["store", "verify", "--data-dir", data])
    assert result.exit_code == 1 and rel(path, settings) in result.output and "size" in result.output
    result = runner.invoke(cli, ["store", "verify", "--data-dir", data, "--format", "json"])
    assert result.exit_code == 1 and '"problems"' in result.output
    result = runner.invoke(cli, ["store", "drop-file", rel(path, settings), "--data-dir", data])
    assert result.exit_code == 0 and "400 rows" in result.output, result.output
    result = runner.invoke(cli, ["store", "verify", "--data-dir", data])
    assert result.exit_code == 0, result.output


@pytest.mark.slow
def test_cli_store_verify_through_a_running_server(server_factory) -> None:
    """While a server holds the data directory, `store verify` asks it (GET /v1/store/verify)."""
    server, key = server_factory()
    svc = Loopwatch(Settings(data_dir=server.data_dir))
    try:
        path = seal_old_day(svc, ModelSchema.model_validate(BRAKING))
    finally:
        svc.close()
    server.start()
    data = str(server.data_dir)
    assert runner.invoke(cli, ["store", "verify", "--data-dir", data]).exit_code == 0
    DAMAGE["zeroed"](path)
    result = runner.invoke(cli, ["store", "verify", "--data-dir", data])
    assert result.exit_code == 1 and path.name in result.output, result.output
    ready = httpx.get(f"{server.url}/readyz", headers={"Authorization": f"Bearer {key}"})
    assert ready.status_code == 503 and path.name in ready.text


def test_sealed_files_endpoint_needs_admin_and_lists_the_catalog(api: Api, settings: Settings) -> None:
    """GET /v1/store/sealed-files (admin; what `sealed push` reads while a server holds the data
    directory) lists every catalog record with the size and sha256 the push checks copies against."""
    path = _sealed(api)
    assert api.client.get("/v1/store/sealed-files", headers=api.read).status_code == 403
    files = api.client.get("/v1/store/sealed-files", headers=api.admin).json()["files"]
    assert [f["path"] for f in files] == [rel(path, settings)]
    assert files[0]["bytes"] == path.stat().st_size and len(files[0]["sha256"]) == 64
    assert files[0]["model"] == "harsh-braking" and files[0]["rows"] == 400


def test_server_mirrors_sealed_files_on_its_own(settings: Settings, tmp_path: Path) -> None:
    """With LOOPWATCH_SEALED_MIRROR set, the server pushes the sealed files itself shortly after
    start and every interval: the mirror holds each file byte for byte, /metrics counts it and
    time-stamps the complete mirror, and the audit log has one push (later ones copy nothing and
    are not audited)."""
    path, key = _sealed_before_start(settings, "admin")
    mirror = tmp_path / "mirror"
    mirrored = mirror / rel(path, settings)
    update = {"sealed_mirror": str(mirror), "sealed_mirror_interval_seconds": 0.2}
    headers = {"Authorization": f"Bearer {key}"}
    with TestClient(create_app(settings.model_copy(update=update), background=True)) as client:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not mirrored.exists():
            time.sleep(0.1)
        assert mirrored.read_bytes() == path.read_bytes()
        time.sleep(0.6)  # a few more ticks: nothing left to copy
        metrics = client.get("/metrics", headers=headers).text
        assert 'loopwatch_sealed_mirror_files_total{result="pushed"} 1.0' in metrics
        complete = [line for line in metrics.splitlines() if line.startswith("loopwatch_sealed_mirror_last_complete")]
        assert complete and float(complete[0].split()[-1]) > 0
        audit = [e for e in client.get("/v1/audit", headers=headers).json() if e["action"] == "store.pushed"]
        assert len(audit) == 1 and audit[0]["actor"] == "loopwatch-sealed-mirror"
    assert not list(mirror.rglob("*.tmp-*"))


def test_sealed_mirror_setting_refuses_what_could_never_work(settings: Settings) -> None:
    """LOOPWATCH_SEALED_MIRROR takes s3://bucket/prefix, file:///path or an absolute directory;
    credentials in the URI, other schemes, a bucketless s3:// and relative paths are refused."""
    for good in ("s3://bucket/loopwatch", "file:///srv/mirror", "/srv/mirror"):
        assert Settings(data_dir=settings.data_dir, sealed_mirror=good).sealed_mirror == good
    for bad in ("s3://key:secret@bucket/p", "gs://bucket/p", "s3:///p", "mirror"):
        with pytest.raises(ValueError, match="sealed_mirror"):
            Settings(data_dir=settings.data_dir, sealed_mirror=bad)
