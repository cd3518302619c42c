"""The store: idempotent all-or-nothing writes, labels, sealing to Parquet, windowed reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from monitor.errors import InvalidInput
from monitor.schema import ModelSchema
from monitor.service import Loopwatch
from monitor.settings import Settings
from monitor.validation import records_to_table
from tests.conftest import braking_record, earlier_today

MODEL = "harsh-braking"


def _ingest(service: Loopwatch, spec: ModelSchema, records: list) -> tuple[int, int]:
    result = service.store.ingest_predictions(MODEL, records_to_table(records, spec))
    return result.accepted, result.duplicates


def test_resending_a_batch_never_duplicates(service: Loopwatch, braking_model: ModelSchema) -> None:
    """The same batch twice stores each prediction once; overlapping batches store only new rows."""
    now = datetime.now(UTC)
    batch = [braking_record(i, now - timedelta(minutes=i)) for i in range(100)]
    assert _ingest(service, braking_model, batch) == (100, 0)
    assert _ingest(service, braking_model, batch) == (0, 100)
    overlap = [braking_record(i, now - timedelta(minutes=i)) for i in range(50, 150)]
    assert _ingest(service, braking_model, overlap) == (50, 50)
    assert service.store.stats(MODEL)["predictions"] == 150


def test_duplicates_within_one_batch_keep_the_first(service: Loopwatch, braking_model: ModelSchema) -> None:
    """A prediction_id repeated inside one batch is stored once."""
    now = datetime.now(UTC)
    assert _ingest(service, braking_model, [braking_record(1, now), braking_record(1, now)]) == (1, 1)


def test_a_bad_row_writes_nothing(service: Loopwatch, braking_model: ModelSchema) -> None:
    """All-or-nothing: one invalid row refuses the whole batch."""
    now = datetime.now(UTC)
    batch = [braking_record(i, now) for i in range(10)] + [braking_record(10, now, prediction="maybe")]
    with pytest.raises(InvalidInput):
        _ingest(service, braking_model, batch)
    assert service.store.stats(MODEL)["predictions"] == 0


def test_labels_join_predictions_whenever_they_arrive(service: Loopwatch, braking_model: ModelSchema) -> None:
    """A label sent before its prediction is kept and joined once the prediction arrives."""
    now = datetime.now(UTC)
    service.store.ingest_labels(MODEL, pa.table({"prediction_id": ["p-1"], "label": ["brake"]}))
    assert service.store.stats(MODEL)["labels_without_prediction"] == 1
    _ingest(service, braking_model, [braking_record(1, now), braking_record(2, now)])
    stats = service.store.stats(MODEL)
    assert (stats["predictions"], stats["labels"], stats["label_coverage"]) == (2, 1, 0.5)
    assert stats["labels_without_prediction"] == 0


def test_newer_label_replaces_older_and_history_is_kept(service: Loopwatch, braking_model: ModelSchema) -> None:
    """A newer label wins; an older one (by label timestamp) does not; each change is on record."""
    t0 = datetime.now(UTC) - timedelta(hours=3)
    send = lambda label, ts: service.store.ingest_labels(  # noqa: E731
        MODEL, pa.table({"prediction_id": ["p-1"], "label": [label], "timestamp": [ts.isoformat()]})
    )
    assert send("brake", t0).applied == 1
    assert send("brake", t0).unchanged == 1  # idempotent resend
    assert send("none", t0 + timedelta(hours=1)).applied == 1
    assert send("brake", t0 - timedelta(hours=1)).unchanged == 1  # stale: ignored
    history = service.store.label_history(MODEL, "p-1")
    assert [(h["label"], h["previous_label"]) for h in history] == [("brake", None), ("none", "brake")]


def test_sealing_moves_past_days_to_hive_parquet_and_queries_span_both(
    service: Loopwatch, braking_model: ModelSchema, settings: Settings
) -> None:
    """Past days are sealed into model=/date= Parquet; reads, stats and dedup see sealed and hot rows."""
    now = datetime.now(UTC)
    old_noon = (now - timedelta(days=5)).replace(hour=12, minute=0, second=0, microsecond=0)
    old = [braking_record(i, old_noon - timedelta(minutes=i)) for i in range(20)]
    recent = [braking_record(100 + i, earlier_today(timedelta(minutes=i))) for i in range(5)]
    _ingest(service, braking_model, old + recent)
    sealed = service.store.seal()
    assert len(sealed) == 1 and sealed[0].rows == 20
    path = Path(sealed[0].path)
    assert path.parent.name.startswith("date=") and path.parent.parent.name == f"model={MODEL}"
    # Any Parquet engine can read the partition layout.
    external = (
        duckdb.connect()
        .execute(
            f"SELECT count(*) FROM read_parquet('{settings.sealed_dir}/**/*.parquet', hive_partitioning = true) "
            f"WHERE model = '{MODEL}'"
        )
        .fetchall()
    )
    assert external == [(20,)]
    assert pq.read_table(path).num_rows == 20
    assert service.store.stats(MODEL)["predictions"] == 25
    assert _ingest(service, braking_model, old) == (0, 20)  # dedup reaches sealed files
    window = service.store.scan(MODEL, old_noon - timedelta(days=1), old_noon + timedelta(days=1))
    assert window.num_rows == 20


def test_columns_added_after_sealing_read_as_null(service: Loopwatch, braking_model: ModelSchema) -> None:
    """A feature added after data was sealed reads as null for the sealed rows."""
    now = datetime.now(UTC)
    _ingest(service, braking_model, [braking_record(i, now - timedelta(days=5)) for i in range(3)])
    service.store.seal()
    evolved = ModelSchema.model_validate(
        {**braking_model.model_dump(), "features": {**braking_model.features, "rain": "boolean"}}
    )
    service.registry.register(evolved)
    rec = braking_record(9, now)
    rec["features"]["rain"] = True
    _ingest(service, evolved, [rec])
    table = service.store.scan(MODEL)
    assert table.column("rain").to_pylist() == [None, None, None, True]


def test_unrecorded_sealed_file_is_removed_at_startup(
    settings: Settings, braking_model: ModelSchema, service: Loopwatch
) -> None:
    """A file left by a crash between writing and recording a seal is garbage-collected at start."""
    stray = settings.sealed_dir / f"model={MODEL}" / "date=2026-01-01" / "part-stray.parquet"
    stray.parent.mkdir(parents=True)
    pq.write_table(pa.table({"x": [1]}), stray)
    service.close()
    reopened = Loopwatch(settings)
    try:
        assert not stray.exists()
    finally:
        reopened.close()
        service.__init__(settings)  # the fixture closes it again


def test_paging_walks_every_row_once(service: Loopwatch, braking_model: ModelSchema) -> None:
    """Following next_cursor returns each row exactly once, in time order, across sealed and hot data."""
    now = datetime.now(UTC)
    records = [braking_record(i, now - timedelta(days=4) + timedelta(hours=i)) for i in range(60)]
    _ingest(service, braking_model, records)
    service.store.seal()
    seen: list[str] = []
    cursor = None
    while True:
        rows, cursor = service.store.page(MODEL, limit=7, cursor=cursor)
        seen += [r["prediction_id"] for r in rows]
        if cursor is None:
            break
    assert len(seen) == 60 and len(set(seen)) == 60
    assert seen == [r["prediction_id"] for r in records]


def test_filters_by_version_and_segment(service: Loopwatch, braking_model: ModelSchema) -> None:
    """Scans filter by model_version and segment values; unknown segments are refused."""
    now = datetime.now(UTC)
    records = [
        braking_record(i, now, model_version=["1.0", "2.0"][i % 2], segments={"region": "eu", "firmware": str(i % 3)})
        for i in range(30)
    ]
    _ingest(service, braking_model, records)
    assert service.store.scan(MODEL, model_version="2.0").num_rows == 15
    assert service.store.scan(MODEL, segments={"firmware": "1"}).num_rows == 10
    with pytest.raises(InvalidInput, match="unknown segment"):
        service.store.scan(MODEL, segments={"planet": "mars"})
    versions = service.registry.versions(MODEL)
    assert sorted(v["version"] for v in versions) == ["1.0", "2.0"] and sum(v["rows"] for v in versions) == 30
