"""Runs of past windows record their findings but never touch live alert state: a manual run
with an old `at` cannot fire, inhibit or route anything. Real DuckDB, real detectors, injected clock."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from monitor.service import Loopwatch
from monitor.settings import Settings
from tests.conftest import BRAKING
from tests.monitor.test_evaluation import _load

MODEL = "harsh-braking"
NOW = datetime(2026, 11, 20, 14, 7, tzinfo=UTC)
FRESHNESS = {
    "name": "silence",
    "detector": "freshness",
    "every": "15m",
    "window": "1h",
    "params": {"max_silence_minutes": 30},
}
DRIFT = {
    "name": "feature-drift",
    "detector": "data_drift",
    "every": "15m",
    "window": "1h",
    "reference": {"kind": "trailing", "length": "1d"},
    "for": "0s",
    "severity": "critical",
}


@dataclass
class World:
    http: TestClient
    admin: dict[str, str]
    service: Loopwatch
    clock: list[datetime]

    def run(self, monitor: str, at: datetime | None = None) -> dict:
        body = {"at": at.isoformat()} if at else {}
        response = self.http.post(f"/v1/models/{MODEL}/monitors/{monitor}/run", json=body, headers=self.admin)
        response.raise_for_status()
        return response.json()

    def alerts(self) -> list[dict]:
        return self.http.get("/v1/alerts", params={"active": True}, headers=self.admin).json()


@pytest.fixture
def world(tmp_path) -> Iterator[World]:
    clock = [NOW]
    app = create_app(Settings(data_dir=tmp_path / "data"), background=False, now=lambda: clock[0])
    with TestClient(app) as http:
        service: Loopwatch = app.state.service
        _, key = service.keys.create("admin")
        admin = {"Authorization": f"Bearer {key}"}
        http.post("/v1/models", json=BRAKING, headers=admin).raise_for_status()
        # Two quiet days, then the last hour with speed_kmh shifted: a real drift, data up to now.
        _load(service, NOW - timedelta(days=2, hours=1), 48, 100, seed=1)
        _load(service, NOW - timedelta(hours=1), 1, 2000, speed=60.0, seed=2, prefix="drift")
        http.post(f"/v1/models/{MODEL}/monitors", json=[FRESHNESS, DRIFT], headers=admin).raise_for_status()
        yield World(http, admin, service, clock)


def test_past_freshness_run_does_not_fire_no_data_nor_inhibit_real_alerts(world: World) -> None:
    """The issue's bug: `monitors run --at <past>` for a freshness monitor saw no data (the model had
    not started sending yet), fired a no_data alert, and that alert inhibited the model's real drift
    alerts. Now the past run is recorded with its no_data finding, leaves alerts alone and says so;
    the live drift alert that follows is notified, not inhibited."""
    past = world.run("silence", at=NOW - timedelta(days=5))
    assert past["status"] == "succeeded" and past["live"] is False
    assert "left alone" in past["alert_state"]
    assert [f["status"] for f in past["findings"]] == ["no_data"]  # recorded, as found
    assert world.alerts() == []
    assert world.http.app.state.labeling_queue.depth() == {}  # type: ignore[attr-defined]  # nothing routed
    recorded = world.service.runs.get(past["run_id"])
    assert recorded["mode"] == "manual" and recorded["findings"][0]["status"] == "no_data"

    live = world.run("feature-drift")
    assert live["live"] is True and live["alert_state"] == "evaluated"
    drift_alerts = world.alerts()
    assert drift_alerts and {a["detector"] for a in drift_alerts} == {"data_drift"}
    assert all(a["state"] == "firing" for a in drift_alerts)
    pipeline = world.http.app.state.alerts  # type: ignore[attr-defined]
    for alert in drift_alerts:
        events = [e["event"] for e in pipeline.alerts.events(alert["id"])]
        assert "inhibited" not in events and "notification_queued:new" in events


def test_past_run_of_a_firing_monitor_neither_resolves_nor_refires(world: World) -> None:
    """A firing alert is untouched by a manual run of an older window, whatever that window shows."""
    world.run("feature-drift")
    before = {a["id"]: a for a in world.alerts()}
    assert before
    old = world.run("feature-drift", at=NOW - timedelta(hours=6))  # a clean window: all ok
    assert old["live"] is False and not [f for f in old["findings"] if f["status"] == "critical"]
    after = {a["id"]: a for a in world.alerts()}
    assert after.keys() == before.keys()
    assert all(after[i]["state"] == "firing" and after[i]["updated_at"] == before[i]["updated_at"] for i in after)


def test_a_manual_run_within_one_schedule_period_is_live_and_a_future_one_is_not(world: World) -> None:
    """Live = window ends within one schedule period (15m) before now; older or later windows are not."""
    assert world.run("silence", at=NOW - timedelta(minutes=15))["live"] is True
    assert world.run("silence", at=NOW - timedelta(minutes=15, seconds=1))["live"] is False
    assert world.run("silence", at=NOW + timedelta(minutes=5))["live"] is False
    assert world.run("silence")["live"] is True


def test_repeated_manual_runs_of_the_same_window_do_not_fire(world: World) -> None:
    """With `for: 30m`, running the same window by hand again and again leaves the alert pending."""
    spec = {**DRIFT, "for": "30m"}
    world.http.post(f"/v1/models/{MODEL}/monitors", json=spec, headers=world.admin).raise_for_status()
    for _ in range(3):
        assert world.run("feature-drift", at=NOW)["live"] is True
    alerts = world.alerts()
    assert alerts and {a["state"] for a in alerts} == {"pending"}
    world.clock[0] = NOW + timedelta(minutes=30)
    _load(world.service, NOW, 1, 1000, speed=60.0, seed=3, prefix="still")  # the drift goes on
    world.run("feature-drift")  # 30 minutes of data time later: fires
    assert "firing" in {a["state"] for a in world.alerts()}
