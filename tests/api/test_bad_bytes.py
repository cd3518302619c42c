"""Bad input is a 4xx naming the field, always: invalid UTF-8 in Arrow/Parquet text columns,
timestamps out of range in any unit, deeply nested JSON anywhere (Slack actions included)."""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from monitor.formats import table_to_arrow_stream
from monitor.settings import Settings
from tests.conftest import Api
from tests.fakes.slack_interactions import SIGNING_SECRET, signed_headers

MODEL = "/v1/models/harsh-braking"
ARROW = "application/vnd.apache.arrow.stream"
PARQUET = "application/x-parquet"
BAD_TEXT = pa.array([b"ok\xff\xfe"], pa.binary()).view(pa.string())


def _table(**columns: pa.Array) -> pa.Table:
    cols: dict[str, pa.Array] = {
        "prediction_id": pa.array(["p-1"]),
        "timestamp": pa.array([datetime.now(UTC)], pa.timestamp("us", tz="UTC")),
        "model_version": pa.array(["1.0.0"]),
        "speed_kmh": pa.array([42.0]),
        "road_type": pa.array(["urban"]),
        "night": pa.array([True]),
        "prediction": pa.array(["brake"]),
        "score": pa.array([0.5]),
        "region": pa.array(["eu"]),
        "firmware": pa.array(["3.2"]),
    }
    cols.update(columns)
    return pa.table(cols)


def _encode(table: pa.Table, content_type: str) -> bytes:
    if content_type == ARROW:
        return table_to_arrow_stream(table)
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _post(api: Api, path: str, table: pa.Table, content_type: str) -> Any:
    return api.client.post(
        path, content=_encode(table, content_type), headers={**api.ingest, "Content-Type": content_type}
    )


@pytest.mark.parametrize("content_type", [ARROW, PARQUET])
@pytest.mark.parametrize("field", ["prediction_id", "model_version", "road_type", "region", "prediction"])
def test_invalid_utf8_in_a_prediction_column_is_a_422_naming_it(api: Api, field: str, content_type: str) -> None:
    """Invalid UTF-8 in any text column (id, version, feature, segment, prediction) is refused
    with 422 naming that field and row, and nothing is stored."""
    response = _post(api, f"{MODEL}/predictions", _table(**{field: BAD_TEXT}), content_type)
    assert response.status_code == 422, response.text
    errors = response.json()["error"]["errors"]
    assert errors[0]["field"] == field and "UTF-8" in errors[0]["reason"] and errors[0]["row"] == 0
    assert api.client.get(f"{MODEL}/stats", headers=api.read).json()["predictions"] == 0


@pytest.mark.parametrize("content_type", [ARROW, PARQUET])
def test_invalid_utf8_inside_a_nested_struct_names_the_nested_field(api: Api, content_type: str) -> None:
    """Nested features/segments structs: the error names e.g. ``segments.region``."""
    segments = pa.StructArray.from_arrays([BAD_TEXT, pa.array(["3.2"])], ["region", "firmware"])
    table = _table().drop_columns(["region", "firmware"]).append_column("segments", segments)
    response = _post(api, f"{MODEL}/predictions", table, content_type)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["errors"][0]["field"] == "segments.region"


@pytest.mark.parametrize("content_type", [ARROW, PARQUET])
@pytest.mark.parametrize("field", ["prediction_id", "label"])
def test_invalid_utf8_in_labels_is_a_422_naming_the_field(api: Api, field: str, content_type: str) -> None:
    """Label batches too: a bad prediction_id or label is a 422 naming it."""
    columns = {"prediction_id": pa.array(["p-1"]), "label": pa.array(["brake"])}
    columns[field] = BAD_TEXT
    response = _post(api, f"{MODEL}/labels", pa.table(columns), content_type)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["errors"][0]["field"] == field


@pytest.mark.parametrize("content_type", [ARROW, PARQUET])
@pytest.mark.parametrize("unit", ["ns", "us", "ms"])
def test_timestamp_out_of_range_in_any_unit_is_a_422(api: Api, unit: str, content_type: str) -> None:
    """A timestamp of 2**62 (or -2**62) in its unit overflows any conversion: refused by row with
    the raw value, never a 500."""
    for value in (2**62, -(2**62)):
        table = _table(timestamp=pa.array([value], pa.timestamp(unit, tz="UTC")))
        response = _post(api, f"{MODEL}/predictions", table, content_type)
        assert response.status_code == 422, response.text
        error = response.json()["error"]["errors"][0]
        assert error["field"] == "timestamp" and str(value) in error["reason"]


def test_seconds_timestamp_out_of_range_over_arrow_is_a_422(api: Api) -> None:
    """Unit ``s`` (Arrow only: Parquet stores seconds as milliseconds) and naive timestamps too."""
    for arr in (pa.array([2**62], pa.timestamp("s", tz="UTC")), pa.array([2**62], pa.timestamp("s"))):
        response = _post(api, f"{MODEL}/predictions", _table(timestamp=arr), ARROW)
        assert response.status_code == 422, response.text


def test_nanosecond_timestamps_in_range_are_accepted(api: Api) -> None:
    """In-range nanosecond timestamps with sub-microsecond digits are stored (truncated to µs)."""
    now_ns = time.time_ns() - 123
    table = _table(timestamp=pa.array([now_ns], pa.timestamp("ns", tz="UTC")))
    response = _post(api, f"{MODEL}/predictions", table, PARQUET)
    assert response.status_code == 200, response.text


DEEP = b"[" * 50_000 + b"]" * 50_000


def test_deeply_nested_json_is_a_4xx_on_every_json_route(api: Api) -> None:
    """50,000 nested arrays as the body of any JSON route is a 4xx, never a 500."""
    paths = [
        "/v1/models",
        f"{MODEL}/predictions",
        f"{MODEL}/labels",
        f"{MODEL}/monitors",
        f"{MODEL}/backfill",
        "/v1/silences",
        "/v1/keys",
        "/v1/labeling/route",
        "/v1/datasets",
    ]
    for path in paths:
        response = api.client.post(path, content=DEEP, headers={**api.admin, "Content-Type": "application/json"})
        assert 400 <= response.status_code < 500, (path, response.status_code, response.text[:200])


def test_deeply_nested_signed_slack_payload_is_a_4xx(tmp_path: Path) -> None:
    """A correctly signed Slack action whose payload (or button value) is 50,000 levels deep is a
    422, not a 500."""
    settings = Settings(data_dir=tmp_path / "data", slack_signing_secret=SIGNING_SECRET)
    with TestClient(create_app(settings, background=False)) as client:
        deep_value = "[" * 50_000 + "]" * 50_000
        button = (
            '{"type": "block_actions", "user": {"id": "U1"}, "actions": [{"action_id": "ack", "value": '
            + '"' + deep_value + '"}]}'
        )
        for payload in (deep_value, button):
            body = urlencode({"payload": payload}).encode()
            response = client.post("/slack/actions", content=body, headers=signed_headers(body, timestamp=int(time.time())))
            assert response.status_code == 422, response.text[:200]
