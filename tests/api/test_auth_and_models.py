"""API keys and scopes on every endpoint but /healthz; the model registry API."""

from __future__ import annotations

from tests.conftest import BRAKING, Api


def test_only_healthz_is_open(api: Api) -> None:
    """Without a key every endpoint answers 401; /healthz answers 200."""
    assert api.client.get("/healthz").status_code == 200
    for method, path in [
        ("GET", "/readyz"),
        ("GET", "/metrics"),
        ("GET", "/v1/models"),
        ("POST", "/v1/models"),
        ("GET", "/v1/models/harsh-braking"),
        ("POST", "/v1/models/harsh-braking/predictions"),
        ("POST", "/v1/models/harsh-braking/labels"),
        ("GET", "/v1/models/harsh-braking/stats"),
        ("GET", "/v1/models/harsh-braking/predictions"),
        ("POST", "/v1/keys"),
        ("GET", "/docs"),
        ("GET", "/openapi.json"),
        ("GET", "/assets/swagger/swagger-ui.css"),
    ]:
        response = api.client.request(method, path)
        assert response.status_code == 401, (method, path)
        assert response.headers["www-authenticate"] == "Bearer"


def test_wrong_key_is_401_and_wrong_scope_is_403(api: Api) -> None:
    """An unknown key is 401; a key of another scope is 403 naming the scope needed."""
    bogus = {"Authorization": "Bearer lw_not-a-real-key"}
    assert api.client.get("/v1/models", headers=bogus).status_code == 401
    forbidden = api.client.post("/v1/models/harsh-braking/predictions", json=[], headers=api.read)
    assert forbidden.status_code == 403 and "ingest" in forbidden.json()["error"]["message"]
    assert api.client.get("/v1/models", headers=api.ingest).status_code == 403
    assert api.client.post("/v1/models", json=BRAKING, headers=api.ingest).status_code == 403
    assert api.client.get("/v1/models", headers=api.admin).status_code == 200


def test_revoked_key_stops_working(api: Api) -> None:
    """A revoked key is refused on its next request."""
    created = api.client.post("/v1/keys", json={"scope": "read", "name": "temp"}, headers=api.admin).json()
    headers = {"Authorization": f"Bearer {created['key']}"}
    assert api.client.get("/v1/models", headers=headers).status_code == 200
    assert api.client.delete(f"/v1/keys/{created['id']}", headers=api.admin).status_code == 200
    assert api.client.get("/v1/models", headers=headers).status_code == 401
    listed = api.client.get("/v1/keys", headers=api.admin).json()
    assert all("key" not in k for k in listed)  # plaintext is shown only once


def test_register_evolve_and_refuse(api: Api) -> None:
    """POST /v1/models creates (201), evolves (200, new schema version) and refuses kind changes (409)."""
    spec = {**BRAKING, "name": "lane-keeping"}
    assert api.client.post("/v1/models", json=spec, headers=api.admin).status_code == 201
    evolved = {**spec, "features": {**spec["features"], "rain": "boolean"}}
    response = api.client.post("/v1/models", json=evolved, headers=api.admin)
    assert response.status_code == 200 and response.json()["schema_version"] == 2
    refused = api.client.post(
        "/v1/models", json={**evolved, "features": {**evolved["features"], "rain": "numeric"}}, headers=api.admin
    )
    assert refused.status_code == 409 and "rain" in refused.json()["error"]["errors"][0]["reason"]
    detail = api.client.get("/v1/models/lane-keeping", headers=api.read).json()
    assert detail["features"]["rain"] == "boolean" and len(detail["schema_history"]) == 2
    bad = api.client.post("/v1/models", json={**spec, "name": "Bad/Name"}, headers=api.admin)
    assert bad.status_code == 422 and bad.json()["error"]["errors"][0]["field"] == "name"


def test_metrics_count_ingested_rows(api: Api) -> None:
    """Prometheus metrics expose ingested and rejected counts."""
    from tests.conftest import braking_record

    api.client.post("/v1/models/harsh-braking/predictions", json=[braking_record(1)], headers=api.ingest)
    api.client.post(
        "/v1/models/harsh-braking/predictions", json=[braking_record(2, prediction="x")], headers=api.ingest
    )
    text = api.client.get("/metrics", headers=api.read).text
    assert 'loopwatch_ingested_rows_total{format="json",model="harsh-braking"} 1.0' in text
    assert 'loopwatch_rejected_batches_total{kind="predictions",model="harsh-braking"} 1.0' in text


def test_metrics_report_labeling_queue_depth(api: Api) -> None:
    """The labeling queue depth per status is exported at scrape time."""
    text = api.client.get("/metrics", headers=api.read).text
    assert 'loopwatch_labeling_queue_depth{status="queued"} 0.0' in text


def test_metrics_report_memory_by_part(api: Api) -> None:
    """loopwatch_memory_bytes breaks the server's memory down at scrape time: resident anonymous
    pages, the C heap, DuckDB by tag and the id indexes (positive once a model has ingested)."""
    import re

    from tests.conftest import braking_record

    api.client.post("/v1/models/harsh-braking/predictions", json=[braking_record(1)], headers=api.ingest)
    text = api.client.get("/metrics", headers=api.read).text
    parts = {m[0]: float(m[1]) for m in re.findall(r'loopwatch_memory_bytes\{part="([^"]+)"\} (\S+)', text)}
    assert parts["rss_anonymous"] > 10e6 and parts["c_heap_in_use"] > 0
    assert parts["id_index"] > 0  # the model's filter
    assert any(p.startswith("duckdb_") for p in parts)
