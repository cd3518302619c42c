"""Whatever a client sends, ingestion answers 2xx or a clear 4xx — never a 500."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Api, braking_record

JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
FIELDS = ["prediction_id", "timestamp", "model_version", "features", "prediction", "score", "latency_ms", "segments"]
FEATURES = ["speed_kmh", "road_type", "night", "unknown"]


@st.composite
def mutated_batches(draw: Any) -> list[Any]:
    """Valid records with some fields replaced by arbitrary JSON (or removed)."""
    records = [braking_record(i) for i in range(draw(st.integers(1, 4)))]
    for record in records:
        for _ in range(draw(st.integers(0, 3))):
            field = draw(st.sampled_from(FIELDS))
            if draw(st.booleans()) and field in record:
                del record[field]
            elif field == "features" and draw(st.booleans()):
                features = record.get("features")  # an earlier draw may have made it a scalar
                record["features"] = copy.deepcopy(features) if isinstance(features, dict) else {}
                record["features"][draw(st.sampled_from(FEATURES))] = draw(JSON_VALUES)
            else:
                record[field] = draw(JSON_VALUES)
    return records


def _check(api: Api, path: str, payload: Any) -> None:
    response = api.client.post(path, json=payload, headers=api.ingest)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.json()["error"]["message"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=mutated_batches())
def test_mutated_prediction_batches_never_500(api: Api, batch: list[Any]) -> None:
    """Valid records with fields replaced by arbitrary JSON get 200 or a 4xx with a message."""
    _check(api, "/v1/models/harsh-braking/predictions", batch)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=JSON_VALUES)
def test_arbitrary_json_bodies_never_500(api: Api, payload: Any) -> None:
    """Any JSON document as a predictions or labels body is answered without a 500."""
    _check(api, "/v1/models/harsh-braking/predictions", payload)
    _check(api, "/v1/models/harsh-braking/labels", payload)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.binary(max_size=200),
    content_type=st.sampled_from(
        ["application/json", "application/vnd.apache.arrow.stream", "application/x-parquet", "text/plain"]
    ),
)
def test_arbitrary_bytes_never_500(api: Api, body: bytes, content_type: str) -> None:
    """Random bytes in any supported (or unsupported) media type are a 4xx, not a 500."""
    response = api.client.post(
        "/v1/models/harsh-braking/predictions", content=body, headers={**api.ingest, "Content-Type": content_type}
    )
    assert response.status_code < 500, response.text
