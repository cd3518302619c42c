"""Model-version counts: tallied per batch in memory, written by the upkeep up to a mark, and exact
across crashes, sealing and upgrades."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from monitor.db import _version_marks
from monitor.schema import ModelSchema
from monitor.service import Loopwatch
from monitor.settings import Settings
from monitor.validation import records_to_table
from tests.conftest import braking_record

MODEL = "harsh-braking"
NOW = datetime.now(UTC).replace(microsecond=0)
OLD_DAY = (NOW - timedelta(days=5)).replace(hour=12, minute=0, second=0)


def _ingest(service: Loopwatch, spec: ModelSchema, records: list[dict]) -> None:
    service.store.ingest_predictions(MODEL, records_to_table(records, spec))


def _rows_by_version(service: Loopwatch) -> dict[str, int]:
    return {v["version"]: v["rows"] for v in service.registry.versions(MODEL)}


def _written(service: Loopwatch) -> dict[str, int]:
    return dict(service.db.query("SELECT version, rows FROM model_versions"))


def test_counts_show_at_once_and_are_written_by_the_upkeep(service: Loopwatch, braking_model: ModelSchema) -> None:
    """Rule: a batch's versions count in ``versions`` as soon as it is acknowledged; the upkeep
    writes the same counts, first/last times included, and nothing is counted twice."""
    _ingest(service, braking_model, [braking_record(i, NOW - timedelta(minutes=i)) for i in range(6)])
    _ingest(
        service,
        braking_model,
        [braking_record(100 + i, NOW - timedelta(minutes=i), model_version="1.1.0") for i in range(4)],
    )
    before = service.registry.versions(MODEL)
    assert _rows_by_version(service) == {"1.0.0": 6, "1.1.0": 4}
    assert _written(service) == {}
    service.registry.write_version_counts()
    assert _written(service) == {"1.0.0": 6, "1.1.0": 4}
    assert service.registry.versions(MODEL) == before
    assert before[0]["first_seen"] == (NOW - timedelta(minutes=5)).isoformat()
    _ingest(service, braking_model, [braking_record(200, NOW)])
    assert _rows_by_version(service) == {"1.0.0": 7, "1.1.0": 4}


def test_counts_a_crash_caught_unwritten_are_recounted_at_start(settings: Settings, braking_model: ModelSchema) -> None:
    """Rule: after a ``kill -9`` the batches whose counts were not yet written are counted again
    from the hot table (rows after the mark), and the written ones are not counted twice."""
    service = Loopwatch(settings)
    _ingest(service, braking_model, [braking_record(i, NOW - timedelta(minutes=i)) for i in range(5)])
    service.registry.write_version_counts()
    _ingest(service, braking_model, [braking_record(50 + i, NOW - timedelta(minutes=i)) for i in range(3)])
    service.store.close_indexes()
    service.db.close()  # the process dies: the tally in memory is gone
    service = Loopwatch(settings)
    try:
        assert _rows_by_version(service) == {"1.0.0": 8}
        service.registry.write_version_counts()
        assert _written(service) == {"1.0.0": 8}
    finally:
        service.close()
    service = Loopwatch(settings)
    try:
        assert _rows_by_version(service) == {"1.0.0": 8}
    finally:
        service.close()


def test_sealing_writes_the_counts_before_the_rows_leave_the_hot_table(
    settings: Settings, braking_model: ModelSchema
) -> None:
    """Rule: rows sealed to Parquet before their counts were written still count after a crash:
    sealing writes the tally in the same locked step."""
    service = Loopwatch(settings)
    _ingest(service, braking_model, [braking_record(i, OLD_DAY - timedelta(minutes=i)) for i in range(7)])
    assert service.store.seal()
    assert _written(service) == {"1.0.0": 7}
    service.store.close_indexes()
    service.db.close()
    service = Loopwatch(settings)
    try:
        assert _rows_by_version(service) == {"1.0.0": 7}
    finally:
        service.close()


def test_an_upgraded_database_starts_its_marks_at_the_newest_ingest(tmp_path: Path) -> None:
    """Rule: the migration trusts counts written by the per-batch upserts of earlier versions
    (they covered every stored row): each model's mark is its newest ingest stamp, and a model
    without rows gets none."""
    con = duckdb.connect(str(tmp_path / "old.duckdb"))
    con.execute("CREATE TABLE models(id INTEGER)")
    con.execute("INSERT INTO models VALUES (1), (2)")
    stamp = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    con.execute("CREATE TABLE predictions_1(ingested_at TIMESTAMPTZ)")
    con.execute("INSERT INTO predictions_1 VALUES (?), (?)", [stamp - timedelta(hours=1), stamp])
    con.execute("CREATE TABLE predictions_2(ingested_at TIMESTAMPTZ)")
    _version_marks(con)
    assert con.execute("SELECT model_id, counted_through FROM model_version_marks").fetchall() == [(1, stamp)]
