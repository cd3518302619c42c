"""The ingestion API: JSON, Arrow IPC and Parquet bodies; bad input answered with clear 4xx."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from monitor.formats import ARROW_STREAM, table_to_arrow_stream
from tests.conftest import Api, braking_record

PREDICTIONS = "/v1/models/harsh-braking/predictions"


def _flat_table(n: int, start: int = 0) -> pa.Table:
    now = datetime.now(UTC)
    return pa.table(
        {
            "prediction_id": [f"bulk-{start + i}" for i in range(n)],
            "timestamp": pa.array([now - timedelta(seconds=i) for i in range(n)], pa.timestamp("us", tz="UTC")),
            "model_version": ["2.0"] * n,
            "speed_kmh": [float(i) for i in range(n)],
            "road_type": ["urban"] * n,
            "night": [False] * n,
            "prediction": ["none"] * n,
            "score": [0.1] * n,
            "latency_ms": [5.0] * n,
            "region": ["eu"] * n,
            "firmware": ["3.2"] * n,
        }
    )


def test_json_batch_is_stored_and_resend_is_idempotent(api: Api) -> None:
    """A JSON list is acknowledged with counts; re-sending it stores nothing new."""
    batch = [braking_record(i) for i in range(20)]
    first = api.client.post(PREDICTIONS, json=batch, headers=api.ingest)
    counts = ("received", "accepted", "duplicates", "changed")
    assert first.status_code == 200
    assert [first.json()[k] for k in counts] == [20, 20, 0, 0]
    again = api.client.post(PREDICTIONS, json=batch, headers=api.ingest)
    assert [again.json()[k] for k in counts] == [20, 0, 20, 0] and again.json()["changed_ids"] == []
    stats = api.client.get("/v1/models/harsh-braking/stats", headers=api.read).json()
    assert stats["predictions"] == 20


def test_arrow_stream_and_parquet_bodies(api: Api) -> None:
    """Arrow IPC streams and Parquet files with flat columns are accepted."""
    arrow = api.client.post(
        PREDICTIONS,
        content=table_to_arrow_stream(_flat_table(100)),
        headers={**api.ingest, "Content-Type": ARROW_STREAM},
    )
    assert arrow.status_code == 200 and arrow.json()["accepted"] == 100
    buf = io.BytesIO()
    pq.write_table(_flat_table(50, start=1000), buf)
    parquet = api.client.post(
        PREDICTIONS, content=buf.getvalue(), headers={**api.ingest, "Content-Type": "application/x-parquet"}
    )
    assert parquet.status_code == 200 and parquet.json()["accepted"] == 50
    assert api.client.get("/v1/models/harsh-braking/stats", headers=api.read).json()["predictions"] == 150


def test_arrow_struct_columns_are_flattened(api: Api) -> None:
    """Bulk files may nest features and segments as structs, like the JSON record shape."""
    flat = _flat_table(3)
    nested = pa.table(
        {
            "prediction_id": flat["prediction_id"],
            "timestamp": flat["timestamp"],
            "features": pa.StructArray.from_arrays(
                [
                    flat["speed_kmh"].combine_chunks(),
                    flat["road_type"].combine_chunks(),
                    flat["night"].combine_chunks(),
                ],
                ["speed_kmh", "road_type", "night"],
            ),
            "prediction": flat["prediction"],
            "segments": pa.StructArray.from_arrays([flat["firmware"].combine_chunks()], ["firmware"]),
        }
    )
    response = api.client.post(
        PREDICTIONS, content=table_to_arrow_stream(nested), headers={**api.ingest, "Content-Type": ARROW_STREAM}
    )
    assert response.status_code == 200, response.text
    rows = api.client.get(PREDICTIONS, headers=api.read).json()["rows"]
    assert {r["firmware"] for r in rows} == {"3.2"}


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b'[{"prediction_id": ', "application/json", 400, "malformed_body"),
        (b'[{"prediction_id": "\xff\xfe"}]', "application/json", 400, "malformed_body"),
        (b"[NaN]", "application/json", 400, "malformed_body"),
        (b"not arrow", ARROW_STREAM, 400, "malformed_body"),
        (b"not parquet", "application/x-parquet", 400, "malformed_body"),
        (b"a,b\n1,2", "text/csv", 415, "unsupported_media_type"),
        (b'{"records": []}', "application/json", 422, "invalid_input"),
    ],
)
def test_unparseable_bodies_are_4xx(api: Api, body: bytes, content_type: str, status: int, code: str) -> None:
    """Malformed JSON, non-UTF-8, NaN literals, corrupt Arrow/Parquet and unknown media types are refused."""
    response = api.client.post(PREDICTIONS, content=body, headers={**api.ingest, "Content-Type": content_type})
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def test_row_errors_name_row_field_and_reason_and_write_nothing(api: Api) -> None:
    """A batch with bad rows is refused with each row's field and reason; nothing is stored."""
    batch = [braking_record(0), braking_record(1, prediction="skid"), braking_record(2, score="high")]
    response = api.client.post(PREDICTIONS, json=batch, headers=api.ingest)
    assert response.status_code == 422
    errors = response.json()["error"]["errors"]
    assert {(e["row"], e["field"]) for e in errors} >= {(2, "score")}
    assert api.client.get("/v1/models/harsh-braking/stats", headers=api.read).json()["predictions"] == 0


def test_infinite_values_in_arrow_are_refused(api: Api) -> None:
    """Inf in a bulk numeric column is a 422 naming the row."""
    table = _flat_table(3).set_column(3, "speed_kmh", pa.array([1.0, float("inf"), 2.0]))
    response = api.client.post(
        PREDICTIONS, content=table_to_arrow_stream(table), headers={**api.ingest, "Content-Type": ARROW_STREAM}
    )
    assert response.status_code == 422 and response.json()["error"]["errors"][0]["row"] == 1


def test_oversized_body_is_413(api: Api) -> None:
    """A body over the configured limit is refused with 413 before it is stored."""
    huge = [braking_record(i) for i in range(12_000)]
    response = api.client.post(PREDICTIONS, json=huge, headers=api.ingest)
    assert response.status_code == 413 and "limit" in response.json()["error"]["message"]


def test_unknown_model_is_404(api: Api) -> None:
    """Ingesting for an unregistered (or unsafe) model name is a 404, not a 500."""
    for name in ("unknown-model", "..%2F..%2Fetc", "DROP%20TABLE"):
        response = api.client.post(f"/v1/models/{name}/predictions", json=[], headers=api.ingest)
        assert response.status_code == 404, name


def test_labels_endpoint_and_coverage(api: Api) -> None:
    """Labels post by prediction_id; stats report label counts and coverage for a window."""
    now = datetime.now(UTC)
    api.client.post(
        PREDICTIONS, json=[braking_record(i, now - timedelta(minutes=i)) for i in range(10)], headers=api.ingest
    )
    labels = [{"prediction_id": f"p-{i}", "label": "brake"} for i in range(4)]
    response = api.client.post("/v1/models/harsh-braking/labels", json=labels, headers=api.ingest)
    assert response.json() == {"received": 4, "applied": 4, "unchanged": 0, "conflicts": 0, "confirmed": 0}
    stats = api.client.get(
        "/v1/models/harsh-braking/stats",
        params={
            "start": (now - timedelta(minutes=5, seconds=30)).isoformat(),
            "end": (now + timedelta(minutes=1)).isoformat(),
        },
        headers=api.read,
    ).json()
    assert stats["predictions"] == 6 and stats["labels"] == 4
    bad = api.client.post(
        "/v1/models/harsh-braking/labels", json=[{"prediction_id": "p-1", "label": "maybe"}], headers=api.ingest
    )
    assert bad.status_code == 422 and bad.json()["error"]["errors"][0]["field"] == "label"


def test_bad_query_parameters_are_422(api: Api) -> None:
    """Unparseable windows, empty windows, bad cursors and limits are 422 with the parameter named."""
    base = "/v1/models/harsh-braking"
    assert api.client.get(f"{base}/stats", params={"start": "soon"}, headers=api.read).status_code == 422
    empty = api.client.get(f"{base}/stats", params={"start": "2026-11-02", "end": "2026-11-01"}, headers=api.read)
    assert empty.status_code == 422 and empty.json()["error"]["errors"][0]["field"] == "query.end"
    assert api.client.get(f"{base}/predictions", params={"cursor": "zzz"}, headers=api.read).status_code == 422
    assert api.client.get(f"{base}/predictions", params={"limit": 0}, headers=api.read).status_code == 422
    assert api.client.get(f"{base}/predictions", params={"segment": "nocolon"}, headers=api.read).status_code == 422


def test_paged_rows_include_labels(api: Api) -> None:
    """GET predictions pages by cursor and joins labels."""
    api.client.post(PREDICTIONS, json=[braking_record(i) for i in range(5)], headers=api.ingest)
    api.client.post(
        "/v1/models/harsh-braking/labels", json=[{"prediction_id": "p-0", "label": "none"}], headers=api.ingest
    )
    page = api.client.get(PREDICTIONS, params={"limit": 3}, headers=api.read).json()
    assert len(page["rows"]) == 3 and page["next_cursor"]
    rest = api.client.get(PREDICTIONS, params={"limit": 3, "cursor": page["next_cursor"]}, headers=api.read).json()
    assert len(rest["rows"]) == 2 and rest["next_cursor"] is None
    labelled = [r for r in page["rows"] + rest["rows"] if r["label"]]
    assert [r["prediction_id"] for r in labelled] == ["p-0"]


def test_json_decoded_in_worker_processes_behaves_the_same(tmp_path) -> None:
    """With offloading on, a JSON body Arrow's reader declines (here: a key sent only as null)
    is decoded by the generic path in a worker process and stores the same rows and reports the
    same row-level errors as in-process decoding; a body in the documented shape is read by
    Arrow's reader in the server process and never shipped to a worker."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from monitor.json_columns import read_prediction_columns
    from monitor.schema import ModelSchema
    from monitor.settings import Settings
    from tests.conftest import BRAKING

    declined = [braking_record(i, latency_ms=None) for i in range(50)]
    schema = ModelSchema.model_validate(BRAKING)
    assert read_prediction_columns(orjson.dumps(declined), schema) is None
    settings = Settings(data_dir=tmp_path / "data", json_offload="always", json_worker_min_bytes=0, json_workers=1)
    app = create_app(settings, background=False)
    with TestClient(app) as client:
        _, key = app.state.service.keys.create("admin")
        headers = {"Authorization": f"Bearer {key}"}
        client.post("/v1/models", json=BRAKING, headers=headers).raise_for_status()
        canonical = client.post(PREDICTIONS, json=[braking_record(i) for i in range(200, 210)], headers=headers)
        assert canonical.status_code == 200 and canonical.json()["accepted"] == 10
        # ProcessPoolExecutor starts its processes on the first task: none yet
        assert not app.state.json_pool._processes
        ok = client.post(PREDICTIONS, json=declined, headers=headers)
        assert ok.status_code == 200 and ok.json()["accepted"] == 50
        assert app.state.json_pool._processes  # the declined body went to a worker
        bad_records = [braking_record(100, latency_ms=None), braking_record(101, score=7, latency_ms=None)]
        bad = client.post(PREDICTIONS, json=bad_records, headers=headers)
        assert bad.status_code == 422
        assert bad.json()["error"]["errors"][0] | {"reason": ""} == {
            "row": 1,
            "field": "score",
            "reason": "",
            "prediction_id": "p-101",
        }
        rows = client.get(PREDICTIONS, params={"limit": 100}, headers=headers).json()["rows"]
        assert len(rows) == 60 and rows[0]["road_type"] in ("urban", "highway")


def _body(fmt: str, table: pa.Table) -> tuple[bytes, str]:
    if fmt == "arrow":
        return table_to_arrow_stream(table), ARROW_STREAM
    if fmt == "parquet":
        buf = io.BytesIO()
        pq.write_table(table, buf)
        return buf.getvalue(), "application/x-parquet"
    import orjson

    rows = [{**r, "timestamp": r["timestamp"].isoformat()} for r in table.to_pylist()]
    records = [
        {
            "prediction_id": r["prediction_id"],
            "timestamp": r["timestamp"],
            "model_version": r["model_version"],
            "features": {"speed_kmh": r["speed_kmh"], "road_type": r["road_type"], "night": r["night"]},
            "prediction": r["prediction"],
            "score": r["score"],
            "latency_ms": r["latency_ms"],
            "segments": {"region": r["region"], "firmware": r["firmware"]},
        }
        for r in rows
    ]
    return orjson.dumps(records), "application/json"


@pytest.mark.parametrize("fmt", ["json", "arrow", "parquet"])
def test_resend_with_new_timestamps_is_recognised_on_every_format(api: Api, fmt: str) -> None:
    """The same prediction_ids sent again with timestamps two hours later store nothing: the
    answer counts them as duplicates and as changed (their timestamp differs), with their ids."""
    table = _flat_table(40)
    body, content_type = _body(fmt, table)
    first = api.client.post(PREDICTIONS, content=body, headers={**api.ingest, "Content-Type": content_type})
    assert first.status_code == 200 and first.json()["accepted"] == 40
    shifted = table.set_column(
        1,
        "timestamp",
        pa.array(
            [t.as_py() - timedelta(hours=2) for t in table.column("timestamp")], table.schema.field("timestamp").type
        ),
    )
    body, content_type = _body(fmt, shifted)
    again = api.client.post(PREDICTIONS, content=body, headers={**api.ingest, "Content-Type": content_type})
    assert again.status_code == 200
    assert (again.json()["accepted"], again.json()["duplicates"], again.json()["changed"]) == (0, 40, 40)
    assert len(again.json()["changed_ids"]) == 20
    stats = api.client.get("/v1/models/harsh-braking/stats", headers=api.read).json()
    assert stats["predictions"] == 40
