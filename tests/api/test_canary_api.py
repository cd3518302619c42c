"""The canary decision over the API: what a deployment system reads (issue 13)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.conftest import Api, braking_record


def _rollout(api: Api, slow: bool) -> None:
    """50 minutes of traffic: version 2.0 on a fifth of it after the first 300 requests."""
    now = datetime.now(UTC).replace(microsecond=0)
    records = []
    for i in range(2500):
        canary = i % 5 == 0 and i > 300
        records.append(
            braking_record(
                i,
                now - timedelta(minutes=50) + timedelta(seconds=i),
                model_version="2.0" if canary else "1.0",
                latency_ms=(40.0 if canary and slow else 10.0) + i % 7,
            )
        )
    for start in range(0, len(records), 1000):
        api.client.post(
            "/v1/models/harsh-braking/predictions", json=records[start : start + 1000], headers=api.ingest
        ).raise_for_status()


def _declare_canary(api: Api, **params: object) -> None:
    """A version_comparison monitor named `canary` (min_rows 100: the fixture's canary is small)."""
    monitor = {
        "name": "canary",
        "detector": "version_comparison",
        "every": "1h",
        "window": "1h",
        "params": {"min_rows": 100, **params},
    }
    api.client.post("/v1/models/harsh-braking/monitors", json=monitor, headers=api.admin).raise_for_status()


def test_a_deployment_system_reads_roll_back_with_reasons(api: Api) -> None:
    """Rule: GET …/monitors/{name}/decision answers the latest window's decision (roll_back for a
    slow canary) with candidate, baseline, reasons and per-check status; before any run it
    answers decision null; for a monitor of another kind it is a 422."""
    _rollout(api, slow=True)
    _declare_canary(api)
    before = api.client.get("/v1/models/harsh-braking/monitors/canary/decision", headers=api.read).json()
    assert before["decision"] is None
    api.client.post("/v1/models/harsh-braking/monitors/canary/run", json={}, headers=api.admin).raise_for_status()
    answer = api.client.get("/v1/models/harsh-braking/monitors/canary/decision", headers=api.read)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["decision"], body["status"], body["candidate"], body["baseline"]) == (
        "roll_back",
        "critical",
        "2.0",
        "1.0",
    )
    assert body["checks"]["latency"] == "critical" and any("latency:p50" in r for r in body["reasons"])
    assert body["rows_by_version"]["2.0"] > 400 and body["run_id"]
    volume = {"name": "volume", "detector": "volume", "every": "1h", "window": "1h"}
    api.client.post("/v1/models/harsh-braking/monitors", json=volume, headers=api.admin).raise_for_status()
    wrong = api.client.get("/v1/models/harsh-braking/monitors/volume/decision", headers=api.read)
    assert wrong.status_code == 422 and wrong.json()["error"]["errors"][0]["field"] == "monitor"


def test_an_equal_canary_is_promoted(api: Api) -> None:
    """Rule: a canary no different from the baseline in the same window is promoted."""
    _rollout(api, slow=False)
    _declare_canary(api, checks=["latency", "predictions"])
    api.client.post("/v1/models/harsh-braking/monitors/canary/run", json={}, headers=api.admin).raise_for_status()
    body = api.client.get("/v1/models/harsh-braking/monitors/canary/decision", headers=api.read).json()
    assert body["decision"] == "promote" and body["status"] == "ok", body
