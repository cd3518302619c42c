"""The database file: the background WAL checkpoint keeps the write-ahead log bounded."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from monitor.periodic import Periodic
from monitor.schema import ModelSchema
from monitor.service import Loopwatch
from monitor.validation import records_to_table
from tests.conftest import braking_record

MODEL = "harsh-braking"
LIMIT = 256 * 1024


def _fill_wal(service: Loopwatch, spec: ModelSchema, over: int) -> int:
    """Ingest acknowledged batches until the WAL exceeds ``over`` bytes; returns the rows sent."""
    now = datetime.now(UTC)
    sent = 0
    while service.db.wal_bytes() <= over:
        batch = [braking_record(sent + i, now - timedelta(seconds=sent + i)) for i in range(500)]
        assert service.store.ingest_predictions(MODEL, records_to_table(batch, spec)).accepted == 500
        sent += 500
        assert sent < 200_000, "the WAL never grew: is the automatic checkpoint threshold too low?"
    return sent


def test_one_tick_of_the_wal_job_brings_the_wal_back_under_its_bound(
    service: Loopwatch, braking_model: ModelSchema
) -> None:
    """Rule: once writes push the WAL past ``wal_checkpoint_bytes``, one tick of the background
    checkpoint job brings it back under the bound, and every acknowledged row is still there."""
    sent = _fill_wal(service, braking_model, LIMIT)
    assert service.db.wal_bytes() > LIMIT
    ticked = threading.Event()

    def job() -> None:
        service.db.checkpoint_if_wal_over(LIMIT)
        ticked.set()

    loop = Periodic("test-wal-checkpoint", 3600, job, first_after=0.0)
    loop.start()
    try:
        assert ticked.wait(30)
    finally:
        loop.stop()
    assert service.db.wal_bytes() <= LIMIT
    assert service.store.stats(MODEL)["predictions"] == sent


def test_the_wal_job_leaves_a_small_wal_alone(service: Loopwatch, braking_model: ModelSchema) -> None:
    """Rule: under the bound (or with the bound 0 = off) the job does not checkpoint."""
    _fill_wal(service, braking_model, 1)
    assert service.db.checkpoint_if_wal_over(service.db.wal_bytes() + 1) is False
    assert service.db.checkpoint_if_wal_over(0) is False
    assert service.db.wal_bytes() > 1
    assert service.db.checkpoint_if_wal_over(1) is True


def test_rows_checkpointed_by_the_job_survive_a_restart(service: Loopwatch, braking_model: ModelSchema) -> None:
    """Rule: the background checkpoint loses nothing — rows written before and after it are all
    present after the database is closed and reopened."""
    before = _fill_wal(service, braking_model, LIMIT)
    assert service.db.checkpoint_if_wal_over(LIMIT)
    now = datetime.now(UTC)
    after = [braking_record(10_000_000 + i, now) for i in range(10)]
    service.store.ingest_predictions(MODEL, records_to_table(after, braking_model))
    settings = service.settings
    service.close()
    reopened = Loopwatch(settings)
    try:
        assert reopened.store.stats(MODEL)["predictions"] == before + 10
    finally:
        reopened.close()
