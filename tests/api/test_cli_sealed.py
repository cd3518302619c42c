"""`loopwatch sealed push DEST`: every sealed file of the catalog copied to a mirror under its path
in sealed/ — an S3 bucket (a real S3 API server on loopback: s3rver, installed by .ci/run from
.ci/s3rver) or a local directory — skipping what is already there, refusing damaged files."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs
import pytest
from typer.testing import CliRunner

from api.cli import app
from application import Application
from monitor.schema import ModelSchema
from monitor.service import Loopwatch
from monitor.settings import Settings
from tests.conftest import BRAKING, REPO, free_port
from tests.monitor.engines.test_spark import MODEL, MONITORS, START, TODAY, _history

runner = CliRunner()
S3RVER = REPO / ".ci" / "s3rver" / "node_modules" / ".bin" / "s3rver"
BUCKET = "mirror"


def _invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def _sealed_data_dir(tmp_path: Path, days: int = 3) -> tuple[Path, dict[str, bytes]]:
    """A data directory whose ``days`` days of history are sealed (one file a day), and the bytes
    of each file by its path under sealed/."""
    data = tmp_path / "data"
    service = Loopwatch(Settings(data_dir=data))
    try:
        service.registry.register(ModelSchema.model_validate(BRAKING))
        _history(service, days=days, per_day=300)
        service.store.seal(before=TODAY)
        Application.offline(service).monitors.apply("test", MODEL, MONITORS[:1])
        paths = [r.path for r in service.store.sealed_records()]
    finally:
        service.close()
    assert len(paths) == days
    return data, {p: (data / "sealed" / p).read_bytes() for p in paths}


@dataclass
class S3Server:
    endpoint: str
    filesystem: Any  # pyarrow S3FileSystem on the same server: what the test reads back with


@pytest.fixture
def s3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Server]:
    """s3rver on 127.0.0.1 with one bucket, and the dummy credentials it accepts in the environment."""
    if not S3RVER.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{S3RVER} is missing: .ci/run installs it (npm ci --prefix .ci/s3rver)")
        pytest.skip("s3rver not installed: npm ci --prefix .ci/s3rver")
    port = free_port()
    store = tmp_path / "s3rver"
    store.mkdir()
    log = (tmp_path / "s3rver.log").open("ab")
    proc = subprocess.Popen(
        [str(S3RVER), "--address", "127.0.0.1", "--port", str(port), "--directory", str(store),
         "--configure-bucket", BUCKET, "--silent"],
        stdout=log,
        stderr=log,
    )  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    for var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "S3RVER")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "S3RVER")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # s3rver predates the SDK's default request checksums (aws-chunked bodies with a trailing
    # checksum): it would store the chunk framing, which the size check after upload catches.
    monkeypatch.setenv("AWS_REQUEST_CHECKSUM_CALCULATION", "when_required")
    filesystem = pafs.S3FileSystem(endpoint_override=endpoint, region="us-east-1")
    try:
        deadline = time.monotonic() + 30
        while filesystem.get_file_info(BUCKET).type != pafs.FileType.Directory:
            assert proc.poll() is None and time.monotonic() < deadline, "s3rver did not start"
            time.sleep(0.2)
        yield S3Server(endpoint, filesystem)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def _objects(s3: S3Server, prefix: str) -> dict[str, bytes]:
    found = s3.filesystem.get_file_info(pafs.FileSelector(f"{BUCKET}/{prefix}", recursive=True, allow_not_found=True))
    out = {}
    for info in found:
        if info.type == pafs.FileType.File:
            with s3.filesystem.open_input_stream(info.path) as fh:
                out[info.path.removeprefix(f"{BUCKET}/{prefix}/")] = fh.read()
    return out


def test_sealed_push_mirrors_every_file_to_s3_and_skips_them_the_next_time(
    tmp_path: Path, s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every sealed file lands at s3://bucket/prefix/<its path under sealed/> with the same bytes;
    a second push finds each one there with its size and uploads nothing."""
    data, files = _sealed_data_dir(tmp_path)
    dest = f"s3://{BUCKET}/loopwatch/sealed"
    code, out = _invoke("sealed", "push", dest, "--endpoint-url", s3.endpoint, "--data-dir", str(data))
    assert code == 0, out
    assert f"3 pushed ({sum(len(b) for b in files.values())} bytes), 0 already there, 0 failed" in out, out
    assert _objects(s3, "loopwatch/sealed") == files
    assert "S3RVER" not in out  # credentials are never printed
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)  # the standard variable instead of the flag
    code, out = _invoke("sealed", "push", dest, "--data-dir", str(data), "--format", "json")
    assert code == 0, out
    report = json.loads(out)
    assert (report["pushed"], report["skipped"], report["bytes"], report["failures"]) == (0, 3, 0, [])
    assert report["destination"] == dest


def test_sealed_push_refuses_a_damaged_file_and_names_it(tmp_path: Path, s3: S3Server) -> None:
    """A sealed file that no longer matches its catalog hash (same size, one byte changed) is not
    mirrored: the push exits 1 naming it and why, the other files are pushed, the bucket never
    holds the damaged bytes."""
    data, files = _sealed_data_dir(tmp_path)
    damaged = sorted(files)[1]
    full = data / "sealed" / damaged
    raw = bytearray(full.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    full.write_bytes(bytes(raw))
    code, out = _invoke("sealed", "push", f"s3://{BUCKET}/p", "--endpoint-url", s3.endpoint, "--data-dir", str(data))
    assert code == 1, out
    assert f"FAILED  {damaged}" in out and "damaged here" in out and "sha256" in out, out
    assert "2 pushed" in out and "1 failed" in out, out
    assert _objects(s3, "p") == {p: b for p, b in files.items() if p != damaged}


def test_sealed_push_names_what_is_wrong_with_a_bad_destination(tmp_path: Path, s3: S3Server) -> None:
    """A destination push cannot use is a usage error (exit 2) saying why, before anything is
    copied: an unsupported scheme, no bucket, a bucket that does not exist, credentials in the
    URI (refused without echoing them), an endpoint for a local directory, a relative file URI."""
    data, _ = _sealed_data_dir(tmp_path, days=1)
    cases = {
        ("ftp://host/dir",): "ftp:// is not supported",
        ("s3:///prefix", "--endpoint-url", s3.endpoint): "no bucket",
        ("s3://no-such-bucket/p", "--endpoint-url", s3.endpoint): "no bucket named 'no-such-bucket'",
        ("s3://AKIAXXXX:hunter2@mirror/p",): "credentials do not belong",
        (str(tmp_path / "dir"), "--endpoint-url", s3.endpoint): "s3:// destinations only",
        ("file://relative/dir",): "absolute path",
    }
    for args, reason in cases.items():
        code, out = _invoke("sealed", "push", *args, "--data-dir", str(data))
        assert code == 2 and reason in out, (args, out)
        assert "hunter2" not in out
    assert _objects(s3, "") == {}


def test_sealed_push_to_a_directory_checks_each_copy_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    """Pushed to a local directory (a path or file:// URI), each file is written under a temporary
    name, renamed, and its sha256 checked against the catalog; a copy truncated later is pushed
    again (its size differs) while the others are skipped; each push is audited."""
    data, files = _sealed_data_dir(tmp_path)
    mirror = tmp_path / "mirror"
    code, out = _invoke("sealed", "push", str(mirror), "--data-dir", str(data))
    assert code == 0 and "3 pushed" in out, out
    copied = {str(p.relative_to(mirror)): p.read_bytes() for p in mirror.rglob("*") if p.is_file()}
    assert copied == files
    assert {hashlib.sha256(b).hexdigest() for b in copied.values()} == {
        hashlib.sha256(b).hexdigest() for b in files.values()
    }
    first = sorted(files)[0]
    (mirror / first).write_bytes(files[first][:100])
    code, out = _invoke("sealed", "push", f"file://{mirror}", "--data-dir", str(data))
    assert code == 0 and "1 pushed" in out and "2 already there" in out, out
    assert (mirror / first).read_bytes() == files[first]
    assert not [p for p in mirror.rglob("*.tmp-*")]
    service = Loopwatch(Settings(data_dir=data))
    try:  # each push on a free data directory is audited, with counts (no failures list, no credentials)
        pushes = [a["details"] for a in service.audit.list(action="store.pushed")]
    finally:
        service.close()
    assert sorted((d["pushed"], d["skipped"], d["failed"]) for d in pushes) == [(1, 2, 0), (3, 0, 0)]


@pytest.mark.slow
def test_sealed_push_while_a_server_holds_the_data_directory(tmp_path: Path, server_factory: Any) -> None:
    """With a running server holding the data directory, the CLI lists the catalog through the
    server's admin API and copies the files itself: the mirror gets every file; and a backfill
    asking that server for another sealed-file mirror is refused (the server's setting applies)."""
    data, files = _sealed_data_dir(tmp_path)
    server, _ = server_factory(data)
    server.start()
    mirror = tmp_path / "mirror"
    code, out = _invoke("sealed", "push", str(mirror), "--data-dir", str(data))
    assert code == 0 and "3 pushed" in out, out
    assert {str(p.relative_to(mirror)): p.read_bytes() for p in mirror.rglob("*") if p.is_file()} == files
    code, out = _invoke(
        "backfill", "--model", MODEL, "--from", START.isoformat(), "--to", (START + timedelta(days=1)).isoformat(),
        "--engine", "spark", "--spark-sealed-uri", f"file://{mirror}", "--data-dir", str(data),
    )  # fmt: skip
    assert code == 1 and "LOOPWATCH_SPARK_SEALED_URI" in out, out


def test_backfill_checks_its_spark_sealed_uri_before_starting(tmp_path: Path) -> None:
    """--spark-sealed-uri needs --engine spark, and a URI without a scheme is a usage error (exit 2)
    before Spark or the store is started."""
    args = ["backfill", "--model", "m", "--from", "2026-01-01", "--to", "2026-01-02", "--data-dir", str(tmp_path)]
    code, out = _invoke(*args, "--spark-sealed-uri", "s3a://bucket/p")
    assert code == 2 and "need --engine spark" in out, out
    code, out = _invoke(*args, "--engine", "spark", "--spark-sealed-uri", "/srv/mirror")
    assert code == 2 and "not a URI with a scheme" in out, out
    assert not (tmp_path / "loopwatch.duckdb").exists()  # the store was never opened
