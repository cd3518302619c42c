"""The on-call API the console and CLI use: bulk acknowledgement, the audit log, all-or-nothing
monitor files, backfill plans and sealing — each a thin route over ``application``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from monitor.settings import Settings
from tests.conftest import BRAKING
from tests.monitor.alerting.test_pipeline import SPEC, T0, World, outcome
from tests.monitor.test_evaluation import NOW, _load

DRIFT = {
    "name": "feature-drift",
    "detector": "data_drift",
    "every": "1h",
    "window": "1h",
    "reference": {"kind": "trailing", "length": "1d"},
}


@dataclass
class Console:
    http: TestClient
    admin: dict[str, str]
    read: dict[str, str]
    alert_ids: list[str]


@pytest.fixture
def console(tmp_path) -> Iterator[Console]:
    app = create_app(Settings(data_dir=tmp_path / "data"), background=False)
    with TestClient(app) as http:
        service = app.state.service
        _, read = service.keys.create("read", "oncall")
        _, admin = service.keys.create("admin", "ops")
        admin_h = {"Authorization": f"Bearer {admin}"}
        http.post("/v1/models", json=BRAKING, headers=admin_h).raise_for_status()
        world = World(service, None, [T0], None)  # type: ignore[arg-type]
        ids = []
        for metric in ("fnr", "fpr"):
            spec = SPEC.model_copy(update={"for_": 1, "name": f"{metric}-rate"})
            [transition] = app.state.alerts.on_run(outcome(world, "critical", monitor=spec, metric=metric))
            ids.append(transition.alert_id)
        yield Console(http, admin_h, {"Authorization": f"Bearer {read}"}, ids)


def test_bulk_ack_acknowledges_each_and_reports_the_rest(console: Console) -> None:
    """POST /v1/alerts/ack acknowledges every listed alert once; already-acknowledged and unknown
    ids are reported, not fatal; each acknowledgement is audited."""
    first, second = console.alert_ids
    http = console.http
    assert http.post(f"/v1/alerts/{first}/ack", headers=console.read).status_code == 200
    result = http.post("/v1/alerts/ack", json={"alert_ids": [first, second, "al_nope"]}, headers=console.read).json()
    assert result["acknowledged"] == [second] and result["already"] == [first]
    assert list(result["refused"]) == ["al_nope"] and "al_nope" in result["refused"]["al_nope"]
    assert all(a["acked_by"] for a in http.get("/v1/alerts", headers=console.read).json())
    assert http.post("/v1/alerts/ack", json={"alert_ids": []}, headers=console.read).status_code == 422


def test_audit_endpoint_filters_pages_and_needs_admin(console: Console) -> None:
    """GET /v1/audit lists entries newest first, filters by action family, actor and target,
    pages with before_id, and refuses read keys (403)."""
    http = console.http
    for alert_id in console.alert_ids:
        http.post(f"/v1/alerts/{alert_id}/ack", headers=console.read).raise_for_status()
    http.post("/v1/silences", json={"matchers": {"model": "harsh-braking"}, "duration": "1h"}, headers=console.read)
    assert http.get("/v1/audit", headers=console.read).status_code == 403
    entries = http.get("/v1/audit", headers=console.admin).json()
    assert [e["action"] for e in entries[:3]] == ["silence.created", "alert.acknowledged", "alert.acknowledged"]
    alerts_only = http.get("/v1/audit", params={"action": "alert."}, headers=console.admin).json()
    assert {e["target"] for e in alerts_only} == set(console.alert_ids)
    actor = alerts_only[0]["actor"]
    assert all(
        e["actor"] == actor for e in http.get("/v1/audit", params={"actor": actor}, headers=console.admin).json()
    )
    page = http.get("/v1/audit", params={"limit": 1}, headers=console.admin).json()
    older = http.get("/v1/audit", params={"limit": 1, "before_id": page[0]["id"]}, headers=console.admin).json()
    assert older[0]["id"] < page[0]["id"]
    bad = http.get("/v1/audit", params={"start": "yesterday"}, headers=console.admin)
    assert bad.status_code == 422 and bad.json()["error"]["errors"][0]["field"] == "query.start"


def test_monitor_file_with_mistakes_saves_nothing(console: Console) -> None:
    """POSTing a list with two bad monitors answers 422 naming both and saves none of the list."""
    http = console.http
    body = [DRIFT, {**DRIFT, "name": "b", "window": "x"}, {**DRIFT, "name": "c", "segments": ["country"]}]
    answer = http.post("/v1/models/harsh-braking/monitors", json=body, headers=console.admin)
    assert answer.status_code == 422, answer.text
    fields = [e["field"] for e in answer.json()["error"]["errors"]]
    assert fields[0].startswith("monitors[1].window") and fields[1] == "monitors[2].segments"
    assert http.get("/v1/models/harsh-braking/monitors", headers=console.read).json() == []


def test_backfill_dry_run_returns_the_plan_only(console: Console) -> None:
    """A dry run counts windows, runs and skipped empty windows (with each run's window end) and
    records no run; the real backfill runs exactly the planned windows."""
    http = console.http
    _load(http.app.state.service, NOW - timedelta(hours=5), 2, 20, seed=9)  # type: ignore[attr-defined]
    http.post("/v1/models/harsh-braking/monitors", json=[DRIFT], headers=console.admin).raise_for_status()
    body = {"from": (NOW - timedelta(hours=24)).isoformat(), "to": NOW.isoformat()}
    plan = http.post("/v1/models/harsh-braking/backfill", json={**body, "dry_run": True}, headers=console.admin).json()
    assert plan["windows"] == 24 and plan["runs"] == 2 and plan["skipped_empty"] == 22
    assert len(plan["monitors"][0]["ends"]) == 2
    assert http.get("/v1/models/harsh-braking/runs", headers=console.read).json() == []
    done = http.post("/v1/models/harsh-braking/backfill", json=body, headers=console.admin).json()
    assert done["runs"] == 2 and done["skipped_empty"] == 22 and done["plan"]["runs"] == 2


def test_seal_route_moves_past_days(console: Console) -> None:
    """POST /v1/store/seal seals days before today and lists the files; admin only."""
    http = console.http
    _load(http.app.state.service, NOW - timedelta(days=3), 2, 20, seed=4)  # type: ignore[attr-defined]
    assert http.post("/v1/store/seal", headers=console.read).status_code == 403
    sealed = http.post("/v1/store/seal", headers=console.admin).json()["sealed"]
    assert sealed and sealed[0]["model"] == "harsh-braking" and sum(f["rows"] for f in sealed) == 40


def test_json_body_without_content_type_says_so(console: Console) -> None:
    """The README's old silence `curl -d` sent a form: the 422 now says the body must be JSON with
    `Content-Type: application/json` instead of only listing missing fields."""
    body = '{"matchers": {"model": "harsh-braking"}, "duration": "2h"}'
    headers = {**console.read, "Content-Type": "application/x-www-form-urlencoded"}
    answer = console.http.post("/v1/silences", content=body, headers=headers)
    assert answer.status_code == 422
    message = answer.json()["error"]["message"]
    assert "Content-Type: application/json" in message and "application/x-www-form-urlencoded" in message
    ok = console.http.post("/v1/silences", content=body, headers={**console.read, "Content-Type": "application/json"})
    assert ok.status_code == 201
