"""A prediction is its id: a resend is recognised with any timestamp, hot or sealed, across
restarts and crashes; the stored row is kept (first write wins) and changed resends are counted."""

from __future__ import annotations

import json
import logging
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.schema import ModelSchema
from monitor.service import Loopwatch
from monitor.settings import Settings
from monitor.validation import records_to_table
from tests.conftest import braking_record, earlier_today

MODEL = "harsh-braking"
NOW = datetime.now(UTC).replace(microsecond=0)
OLD_DAY = (NOW - timedelta(days=5)).replace(hour=12, minute=0, second=0)


def _ingest(service: Loopwatch, spec: ModelSchema, records: list[dict]) -> dict:
    return service.store.ingest_predictions(MODEL, records_to_table(records, spec)).to_dict()


def _ids(service: Loopwatch) -> list[str]:
    table = service.store.scan(MODEL, columns=["prediction_id"], with_labels=False)
    return table.column("prediction_id").to_pylist()


def test_resend_with_a_new_timestamp_is_not_stored_and_the_first_write_wins(
    service: Loopwatch, braking_model: ModelSchema
) -> None:
    """The same ids sent an hour later (and with another score) store nothing: duplicates counts
    them, changed counts those whose fields differ, the stored rows keep their first values."""
    first = [braking_record(i, NOW - timedelta(minutes=i)) for i in range(10)]
    assert _ingest(service, braking_model, first)["accepted"] == 10
    later = [braking_record(i, NOW - timedelta(minutes=i) + timedelta(hours=1)) for i in range(10)]
    later[3]["score"] = 0.99
    result = _ingest(service, braking_model, later)
    assert (result["accepted"], result["duplicates"], result["changed"]) == (0, 10, 10)
    assert set(result["changed_ids"]) == {f"p-{i}" for i in range(10)}
    stored = service.store.rows_by_ids(MODEL, ["p-3"], NOW - timedelta(hours=1), NOW)
    assert stored.column("score").to_pylist() == [0.03]
    assert stored.column("timestamp")[0].as_py() == NOW - timedelta(minutes=3)
    identical = _ingest(service, braking_model, first)
    assert (identical["duplicates"], identical["changed"]) == (10, 0)
    assert sorted(_ids(service)) == sorted(f"p-{i}" for i in range(10))


def test_a_mixed_batch_stores_only_its_new_rows_and_counts_versions_once(
    service: Loopwatch, braking_model: ModelSchema
) -> None:
    """New and resent rows in one batch: only the new ones are stored and counted in the model
    version's row count."""
    _ingest(service, braking_model, [braking_record(i, NOW - timedelta(minutes=i)) for i in range(5)])
    mixed = [braking_record(i, NOW - timedelta(seconds=i)) for i in range(3, 8)]  # p-3, p-4 resent
    result = _ingest(service, braking_model, mixed)
    assert (result["accepted"], result["duplicates"]) == (3, 2)
    assert len(_ids(service)) == 8
    assert sum(v["rows"] for v in service.registry.versions(MODEL)) == 8
    service.registry.write_version_counts()
    assert sum(r[0] for r in service.db.query("SELECT rows FROM model_versions")) == 8


def test_resends_into_and_out_of_sealed_days_are_recognised(service: Loopwatch, braking_model: ModelSchema) -> None:
    """An id stored on a day now sealed in Parquet, resent with today's timestamp, is not stored;
    a today id resent with a timestamp on the sealed day is not stored either."""
    _ingest(service, braking_model, [braking_record(i, OLD_DAY - timedelta(seconds=i)) for i in range(50)])
    _ingest(service, braking_model, [braking_record(1000 + i, earlier_today(timedelta(seconds=i))) for i in range(5)])
    assert len(service.store.seal()) == 1
    into_today = _ingest(service, braking_model, [braking_record(i, NOW - timedelta(seconds=30)) for i in range(50)])
    assert (into_today["accepted"], into_today["duplicates"]) == (0, 50)
    into_sealed_day = _ingest(
        service, braking_model, [braking_record(1000 + i, OLD_DAY + timedelta(hours=1)) for i in range(5)]
    )
    assert (into_sealed_day["accepted"], into_sealed_day["duplicates"]) == (0, 5)
    assert len(_ids(service)) == 55


def test_resends_are_recognised_after_a_restart(settings: Settings, braking_model: ModelSchema) -> None:
    """Ids stored before a clean restart are recognised after it, with any timestamp."""
    service = Loopwatch(settings)
    _ingest(service, braking_model, [braking_record(i, NOW - timedelta(minutes=i)) for i in range(20)])
    service.close()
    service = Loopwatch(settings)
    try:
        result = _ingest(service, braking_model, [braking_record(i, NOW - timedelta(days=1)) for i in range(20)])
        assert result["accepted"] == 0 and len(_ids(service)) == 20
    finally:
        service.close()


def test_ids_committed_after_the_last_index_flush_come_back_after_a_crash(
    settings: Settings, braking_model: ModelSchema
) -> None:
    """A crash loses the index's in-memory entries but not the rows: at start-up every hot row
    ingested after the index's watermark is added again, so its resends are still recognised."""
    service = Loopwatch(settings)
    _ingest(service, braking_model, [braking_record(i, NOW - timedelta(minutes=i)) for i in range(10)])
    service.store.close_indexes()  # flushed: the watermark covers p-0..p-9
    _ingest(service, braking_model, [braking_record(100 + i, NOW - timedelta(minutes=i)) for i in range(10)])
    service.store._indexes.clear()  # the process dies: the index's memory table is gone…
    service.db.close()  # …and nothing else is flushed
    service = Loopwatch(settings)
    try:
        resend = [braking_record(i, NOW - timedelta(hours=3)) for i in [*range(10), *range(100, 110)]]
        result = _ingest(service, braking_model, resend)
        assert (result["accepted"], result["duplicates"]) == (0, 20)
        fresh = _ingest(service, braking_model, [braking_record(500, NOW)])
        assert fresh["accepted"] == 1
    finally:
        service.close()


def test_a_missing_index_is_rebuilt_from_hot_and_sealed_rows(settings: Settings, braking_model: ModelSchema) -> None:
    """A data directory without an index (an upgrade, or the directory deleted) gets one built
    from every stored row, hot and sealed, before the first ingest is answered."""
    service = Loopwatch(settings)
    _ingest(service, braking_model, [braking_record(i, OLD_DAY - timedelta(seconds=i)) for i in range(30)])
    _ingest(service, braking_model, [braking_record(100 + i, earlier_today(timedelta(seconds=i))) for i in range(10)])
    service.store.seal()
    service.close()
    shutil.rmtree(settings.data_dir / "ids")
    service = Loopwatch(settings)
    try:
        resend = [braking_record(i, NOW - timedelta(minutes=1)) for i in [*range(30), *range(100, 110)]]
        assert _ingest(service, braking_model, resend)["accepted"] == 0
        assert service.store.id_index_stats(MODEL)["entries"] == 40
    finally:
        service.close()


def test_an_index_keyed_by_duckdbs_hash_is_rebuilt_with_xxh64(settings: Settings, braking_model: ModelSchema) -> None:
    """An index written by an earlier version (format 1: DuckDB's ``hash`` as the key) is not
    trusted after an upgrade: it is rebuilt from the stored rows, so resends are still
    recognised and new ids are still stored."""
    service = Loopwatch(settings)
    _ingest(service, braking_model, [braking_record(i, NOW - timedelta(seconds=i)) for i in range(25)])
    service.close()
    for meta_path in (settings.data_dir / "ids").glob("model-*/index.json"):
        meta = json.loads(meta_path.read_text())
        meta_path.write_text(json.dumps({**meta, "format": 1, "hash": "hash"}))
    service = Loopwatch(settings)
    try:
        assert (
            _ingest(service, braking_model, [braking_record(i, NOW - timedelta(hours=2)) for i in range(25)])[
                "accepted"
            ]
            == 0
        )
        assert _ingest(service, braking_model, [braking_record(99, NOW)])["accepted"] == 1
        meta = json.loads(next((settings.data_dir / "ids").glob("model-*/index.json")).read_text())
        assert (meta["format"], meta["hash"]) == (2, "xxh64")
    finally:
        service.close()


def test_an_id_whose_row_was_dropped_can_be_stored_again(service: Loopwatch, braking_model: ModelSchema) -> None:
    """The index only says where to look: after `store drop-file` removes a damaged day, the
    documented recovery (re-ingest that window) stores its ids again instead of calling them
    resends."""
    _ingest(service, braking_model, [braking_record(i, OLD_DAY - timedelta(seconds=i)) for i in range(20)])
    _ingest(service, braking_model, [braking_record(100, earlier_today())])
    sealed = service.store.seal()
    path = Path(sealed[0].path)
    service.store.drop_sealed_file(str(path.relative_to(service.settings.sealed_dir)))
    again = _ingest(service, braking_model, [braking_record(i, OLD_DAY - timedelta(seconds=i)) for i in range(20)])
    assert (again["accepted"], again["duplicates"]) == (20, 0)
    assert len(_ids(service)) == 21


def test_an_id_repeated_within_one_batch_keeps_its_first_row(service: Loopwatch, braking_model: ModelSchema) -> None:
    """Two rows with one id in a batch: the first is stored, the second counts as a duplicate."""
    rows = [braking_record(1, NOW, score=0.1), braking_record(2, NOW), braking_record(1, NOW, score=0.9)]
    result = _ingest(service, braking_model, rows)
    assert (result["accepted"], result["duplicates"]) == (2, 1)
    stored = service.store.rows_by_ids(MODEL, ["p-1"], NOW - timedelta(minutes=1), NOW)
    assert stored.column("score").to_pylist() == [0.1]


def test_a_long_index_build_reports_its_progress(
    settings: Settings, braking_model: ModelSchema, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Rule: building an index from history says so when it starts (how many sealed files) and
    logs the ids read every PROGRESS_SECONDS, so an operator waiting on start-up knows why."""
    from monitor import store as store_module

    service = Loopwatch(settings)
    _ingest(service, braking_model, [braking_record(i, OLD_DAY - timedelta(seconds=i)) for i in range(30)])
    service.store.seal()
    _ingest(service, braking_model, [braking_record(100 + i, earlier_today(timedelta(seconds=i))) for i in range(10)])
    service.close()
    shutil.rmtree(settings.data_dir / "ids")
    monkeypatch.setattr(store_module, "PROGRESS_SECONDS", 0.0)
    with caplog.at_level(logging.INFO, logger="monitor.store"):
        service = Loopwatch(settings)
        try:
            service.store.open_indexes()
        finally:
            service.close()
    messages = [r.getMessage() for r in caplog.records]
    assert any("building the id index of harsh-braking from the hot table and 1 sealed files" in m for m in messages)
    assert any("ids read (source 2 of 2)" in m for m in messages)
    assert any(m.startswith("built the id index of harsh-braking: 40 ids") for m in messages)
