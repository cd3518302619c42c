"""On-call over the API: alerts list/ack, silences with audit, and signed Slack button presses
that land in the stored alert state."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from monitor.settings import Settings
from tests.conftest import BRAKING
from tests.fakes.slack_interactions import SIGNING_SECRET, block_actions_body, signed_headers
from tests.monitor.alerting.test_pipeline import SPEC, T0, World, outcome


@pytest.fixture
def client(tmp_path) -> Iterator[tuple[TestClient, dict[str, str], str]]:
    settings = Settings(data_dir=tmp_path / "data", slack_signing_secret=SIGNING_SECRET)
    app = create_app(settings, background=False)
    with TestClient(app) as client:
        service = app.state.service
        _, key = service.keys.create("read", "oncall")
        _, admin = service.keys.create("admin")
        client.post("/v1/models", json=BRAKING, headers={"Authorization": f"Bearer {admin}"}).raise_for_status()
        world = World(service, None, [T0], None)  # type: ignore[arg-type]
        [transition] = app.state.alerts.on_run(outcome(world, "critical", monitor=SPEC.model_copy(update={"for_": 1})))
        yield client, {"Authorization": f"Bearer {key}"}, transition.alert_id


def test_list_show_ack_with_audit(client) -> None:
    """Alerts list and filter; ack records who and when (alert timeline and audit log)."""
    http, headers, alert_id = client
    alerts = http.get("/v1/alerts", params={"active": True}, headers=headers).json()
    assert [a["id"] for a in alerts] == [alert_id] and alerts[0]["state"] == "firing"
    acked = http.post(f"/v1/alerts/{alert_id}/ack", headers=headers).json()
    assert acked["acked_by"].startswith("key_")
    detail = http.get(f"/v1/alerts/{alert_id}", headers=headers).json()
    assert [e["event"] for e in detail["timeline"]][:2] == ["fired", "notification_queued:new"]
    assert "acknowledged" in [e["event"] for e in detail["timeline"]]
    [notification] = detail["notifications"]  # its group's message at the log receiver (no Slack here)
    assert notification["receiver"] == "log" and notification["labels"] == {
        "model": "harsh-braking",
        "monitor": "fn-rate",
    }
    assert notification["alerts"] == 1 and [r["kind"] for r in notification["outbox"]] == ["flush"]
    audit = http.app.state.service.audit.list(action="alert.acknowledged")  # type: ignore[attr-defined]
    assert audit and audit[0]["target"] == alert_id
    assert http.get("/v1/alerts/al_nope", headers=headers).status_code == 404


def test_silence_create_list_expire(client) -> None:
    """Silences are created with matchers and a duration, listed, and expired; bad input is a 422."""
    http, headers, alert_id = client
    created = http.post(
        "/v1/silences",
        json={"matchers": {"model": "harsh-braking"}, "duration": "1h", "comment": "deploy"},
        headers=headers,
    )
    assert created.status_code == 201 and created.json()["active"]
    assert http.get(f"/v1/alerts/{alert_id}", headers=headers).json()["silenced_by"] == created.json()["id"]
    bad = http.post("/v1/silences", json={"matchers": {"planet": "mars"}, "duration": "1h"}, headers=headers)
    assert bad.status_code == 422 and bad.json()["error"]["errors"][0]["field"] == "matchers.planet"
    expired = http.delete(f"/v1/silences/{created.json()['id']}", headers=headers).json()
    assert expired["expired_at"] and not expired["active"]


def group_of(http: TestClient, alert_id: str) -> str:
    return http.app.state.alerts.deliveries(alert_id)[0].group_id  # type: ignore[attr-defined]


def test_slack_ack_button_round_trip(client) -> None:
    """A signed Ack press on a group's message answers 200 at once and acknowledges the group's
    firing alerts as the Slack user."""
    http, headers, alert_id = client
    body = block_actions_body("ack", group_of(http, alert_id))
    response = http.post(
        "/slack/actions",
        content=body,
        headers={
            **signed_headers(body, timestamp=int(time.time())),
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert response.status_code == 200
    alert = http.get(f"/v1/alerts/{alert_id}", headers=headers).json()
    assert alert["acked_by"] and alert["acked_by"].startswith("slack:")


def test_slack_ack_button_of_a_per_alert_message_still_acks_that_alert(client) -> None:
    """Buttons of messages posted before grouping name one alert; pressing them still works."""
    http, headers, alert_id = client
    body = block_actions_body("ack", alert_id, target="alert_id")
    response = http.post(
        "/slack/actions",
        content=body,
        headers={
            **signed_headers(body, timestamp=int(time.time())),
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert response.status_code == 200
    assert http.get(f"/v1/alerts/{alert_id}", headers=headers).json()["acked_by"].startswith("slack:")


def test_slack_silence_button_creates_a_silence(client) -> None:
    """Silence 24h from Slack silences the group's labels (its alerts and any that would join),
    audited as the Slack user."""
    http, headers, alert_id = client
    body = block_actions_body("silence_24h", group_of(http, alert_id))
    http.post(
        "/slack/actions",
        content=body,
        headers={
            **signed_headers(body, timestamp=int(time.time())),
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    [silence] = http.get("/v1/silences", params={"active": True}, headers=headers).json()
    assert silence["matchers"] == {"model": "harsh-braking", "monitor": "fn-rate"}
    assert silence["created_by"].startswith("slack:")
    assert http.get(f"/v1/alerts/{alert_id}", headers=headers).json()["silenced_by"] == silence["id"]


@pytest.mark.parametrize("case", ["wrong_secret", "stale", "tampered", "unsigned"])
def test_bad_slack_signatures_are_401(client, case: str) -> None:
    """Wrong secret, a replay older than 5 minutes, a tampered body or no signature → 401, no effect."""
    http, headers, alert_id = client
    body = block_actions_body("ack", group_of(http, alert_id))
    now = int(time.time())
    if case == "wrong_secret":
        sent_headers = signed_headers(body, "another-secret", timestamp=now)
    elif case == "stale":
        sent_headers = signed_headers(body, timestamp=now - int(timedelta(minutes=6).total_seconds()))
    elif case == "tampered":
        sent_headers = signed_headers(body, timestamp=now)
        body = block_actions_body("ack", "al_other")
    else:
        sent_headers = {}
    response = http.post(
        "/slack/actions", content=body, headers={**sent_headers, "Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 401
    assert http.get(f"/v1/alerts/{alert_id}", headers=headers).json()["acked_by"] is None


def test_slack_samples_button_requests_samples_for_each_alert_of_the_group(client) -> None:
    """Send samples to labeling on a group's message asks the routing policy for every alert of
    the group (recorded on each alert's timeline and in the audit log as the Slack user)."""
    http, headers, alert_id = client
    calls: list[tuple[str, str]] = []
    http.app.state.route_samples = lambda a, actor: calls.append((a, actor))  # type: ignore[attr-defined]
    body = block_actions_body("route_samples", group_of(http, alert_id))
    response = http.post(
        "/slack/actions",
        content=body,
        headers={
            **signed_headers(body, timestamp=int(time.time())),
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert response.status_code == 200
    assert calls == [(alert_id, "slack:alice")]
    timeline = http.get(f"/v1/alerts/{alert_id}", headers=headers).json()["timeline"]
    assert "samples_requested" in [e["event"] for e in timeline]
