"""Verified storage: sealed Parquet files are checked against their recorded size and sha256;
a damaged or missing file is flagged, never read, and named in a clear error."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.errors import StorageDamaged
from monitor.integrity import Throttle, check_file
from monitor.schema import ModelSchema
from monitor.service import Loopwatch
from monitor.settings import Settings
from monitor.validation import records_to_table
from tests.conftest import braking_record, earlier_today

MODEL = "harsh-braking"
NOW = datetime.now(UTC).replace(microsecond=0)
OLD_DAY = (NOW - timedelta(days=5)).replace(hour=12, minute=0, second=0)


def seal_old_day(service: Loopwatch, spec: ModelSchema, rows: int = 400) -> Path:
    """Ingest ``rows`` predictions on a past day (plus a few recent ones) and seal the past day."""
    old = [braking_record(i, OLD_DAY - timedelta(seconds=i)) for i in range(rows)]
    recent = [braking_record(10_000 + i, earlier_today(timedelta(minutes=i))) for i in range(5)]
    service.store.ingest_predictions(MODEL, records_to_table(old + recent, spec))
    sealed = service.store.seal()
    assert len(sealed) == 1
    return Path(sealed[0].path)


def truncate(path: Path) -> None:
    with path.open("r+b") as fh:
        fh.truncate(path.stat().st_size // 2)


def zero(path: Path) -> None:
    path.write_bytes(b"\0" * path.stat().st_size)


def bit_flip(path: Path) -> None:
    """Flip 256 bytes in the middle of the file, keeping its size and mtime (bit rot)."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    for i in range(mid, mid + 256):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def missing(path: Path) -> None:
    path.unlink()


DAMAGE: dict[str, Callable[[Path], None]] = {
    "truncated": truncate,
    "zeroed": zero,
    "bit-flipped": bit_flip,
    "missing": missing,
}


def rel(path: Path, settings: Settings) -> str:
    return str(path.relative_to(settings.sealed_dir))


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_background_pass_flags_damage_and_reads_name_the_file(
    kind: str, settings: Settings, service: Loopwatch, braking_model: ModelSchema
) -> None:
    """After a restart, verification flags a truncated, zeroed, bit-flipped or missing file; every
    read needing it raises StorageDamaged naming the file and window; other windows still read."""
    path = seal_old_day(service, braking_model)
    service.close()
    DAMAGE[kind](path)
    svc = Loopwatch(settings)
    try:
        report = svc.store.verify_sealed(throttled=True)
        assert [p["path"] for p in report["problems"]] == [rel(path, settings)]
        assert [p.path for p in svc.store.damaged_files()] == [rel(path, settings)]
        lo, hi = OLD_DAY - timedelta(hours=2), OLD_DAY + timedelta(hours=2)
        for read in (
            lambda: svc.store.scan(MODEL, lo, hi),
            lambda: svc.store.stats(MODEL),
            lambda: svc.store.page(MODEL, lo, hi),
            lambda: svc.store.counts(MODEL, lo, hi),
        ):
            with pytest.raises(StorageDamaged) as info:
                read()
            assert info.value.status == 503 and info.value.code == "storage_damaged"
            assert rel(path, settings) in info.value.message
            assert info.value.errors[0].field == rel(path, settings)
        # The hot window does not need the file: it reads normally.
        assert (
            svc.store.scan(MODEL, earlier_today(timedelta(hours=1)), datetime.now(UTC) + timedelta(minutes=1)).num_rows
            == 5
        )
    finally:
        svc.close()


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_a_damaged_file_is_never_read_even_before_the_background_pass(
    kind: str, settings: Settings, service: Loopwatch, braking_model: ModelSchema
) -> None:
    """A file is checked before its first read in a process: no silently different rows, no raw error."""
    path = seal_old_day(service, braking_model)
    service.close()
    DAMAGE[kind](path)
    svc = Loopwatch(settings)
    try:
        with pytest.raises(StorageDamaged):
            svc.store.scan(MODEL, OLD_DAY - timedelta(days=1), OLD_DAY + timedelta(days=1))
        assert [p.path for p in svc.store.damaged_files()] == [rel(path, settings)]
    finally:
        svc.close()


def test_a_read_that_fails_rechecks_the_file(
    service: Loopwatch, braking_model: ModelSchema, settings: Settings
) -> None:
    """Damage that keeps size and mtime after the file was verified surfaces on the failed read as
    StorageDamaged (the failure triggers a hash check), not as a raw DuckDB error."""
    path = seal_old_day(service, braking_model)
    lo, hi = OLD_DAY - timedelta(hours=2), OLD_DAY + timedelta(hours=2)
    assert service.store.scan(MODEL, lo, hi).num_rows == 400  # verified on first use
    st = path.stat()
    zero(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(StorageDamaged) as info:
        service.store.scan(MODEL, lo, hi)
    assert rel(path, settings) in info.value.message
    assert service.store.damaged_files()[0].reason.startswith("sha256")


def test_ingest_into_a_damaged_day_refuses_only_resends_it_cannot_confirm(
    service: Loopwatch, braking_model: ModelSchema, settings: Settings
) -> None:
    """A new id is stored even inside a damaged file's span (the id index knows it was never
    stored, so the file is not read); a resend of an id stored in the damaged file is refused
    with StorageDamaged naming the file (it could not be confirmed, so it is neither stored twice
    nor silently dropped); other days are stored normally."""
    path = seal_old_day(service, braking_model)
    truncate(path)
    late = [braking_record(50_000, OLD_DAY - timedelta(seconds=100, milliseconds=500))]
    assert service.store.ingest_predictions(MODEL, records_to_table(late, braking_model)).accepted == 1
    resend = [braking_record(7, OLD_DAY + timedelta(hours=3))]  # p-7 lives in the damaged file
    with pytest.raises(StorageDamaged) as info:
        service.store.ingest_predictions(MODEL, records_to_table(resend, braking_model))
    assert rel(path, settings) in info.value.message
    fresh = [braking_record(60_000, NOW - timedelta(seconds=5))]
    assert service.store.ingest_predictions(MODEL, records_to_table(fresh, braking_model)).accepted == 1


def test_restoring_the_file_from_backup_restores_health(
    service: Loopwatch, braking_model: ModelSchema, settings: Settings, tmp_path: Path
) -> None:
    """Putting the original bytes back clears the damage on the next verification; reads return the rows."""
    path = seal_old_day(service, braking_model)
    backup = tmp_path / "backup.parquet"
    shutil.copy2(path, backup)
    bit_flip(path)
    assert service.store.verify_sealed()["problems"]
    shutil.copy2(backup, path)
    assert service.store.verify_sealed()["problems"] == []
    assert service.store.damaged_files() == []
    assert service.store.stats(MODEL)["predictions"] == 405


def test_damage_survives_a_restart_until_repaired(
    service: Loopwatch, braking_model: ModelSchema, settings: Settings
) -> None:
    """Recorded damage is known at start-up (readiness is right before the first pass)."""
    path = seal_old_day(service, braking_model)
    missing(path)
    service.store.verify_sealed()
    service.close()
    svc = Loopwatch(settings)
    try:
        assert [p.path for p in svc.store.damaged_files()] == [rel(path, settings)]
    finally:
        svc.close()


def test_drop_file_then_reingest_restores_the_window(
    service: Loopwatch, braking_model: ModelSchema, settings: Settings
) -> None:
    """Dropping a damaged file removes it from the catalog (moved to quarantine/, damage cleared);
    re-ingesting its window brings the rows back and reads work again."""
    path = seal_old_day(service, braking_model)
    zero(path)
    service.store.verify_sealed()
    dropped = service.store.drop_sealed_file("sealed/" + rel(path, settings))
    assert dropped["rows"] == 400 and dropped["path"] == rel(path, settings)
    assert Path(dropped["moved_to"]).exists() and not path.exists()
    assert service.store.damaged_files() == []
    assert service.store.stats(MODEL)["predictions"] == 5
    old = [braking_record(i, OLD_DAY - timedelta(seconds=i)) for i in range(400)]
    assert service.store.ingest_predictions(MODEL, records_to_table(old, braking_model)).accepted == 400
    assert service.store.stats(MODEL)["predictions"] == 405
    assert service.store.verify_sealed()["problems"] == []


def test_check_file_reasons_and_throttle(tmp_path: Path) -> None:
    """check_file names the problem (missing / size / sha256); the throttle caps bytes per second."""
    import hashlib
    import time

    path = tmp_path / "f.bin"
    data = os.urandom(3 << 20)
    path.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    assert check_file(path, len(data), digest) is None
    assert (check_file(path, len(data) + 1, digest) or "").startswith("size")
    assert (check_file(path, len(data), "0" * 64) or "").startswith("sha256")
    assert (check_file(tmp_path / "nope", 1, digest) or "").startswith("missing")
    started = time.monotonic()
    assert check_file(path, len(data), digest, Throttle(10 << 20)) is None  # 3 MiB at 10 MiB/s
    assert time.monotonic() - started >= 0.2


def test_a_background_pass_stops_promptly_at_shutdown(
    service: Loopwatch, braking_model: ModelSchema, settings: Settings
) -> None:
    """The throttled pass stops between chunks when the store stops verification (bounded shutdown)."""
    import threading
    import time

    seal_old_day(service, braking_model)
    svc_store = service.store
    svc_store._verify_rate = 1  # 1 byte/s: the pass would take hours
    result: dict[str, object] = {}
    worker = threading.Thread(target=lambda: result.update(svc_store.verify_sealed(throttled=True)))
    worker.start()
    time.sleep(0.2)
    started = time.monotonic()
    svc_store.stop_verification()
    worker.join(timeout=5)
    assert not worker.is_alive() and time.monotonic() - started < 2
    assert result["checked"] == 0 and result["problems"] == []
