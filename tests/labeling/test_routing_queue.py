"""Routing strategies pick the samples they promise; the queue never routes a prediction twice,
keeps a random share, respects the daily budget, and records why each sample was chosen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from labeling.queue import LabelingQueue, RouteRequest
from labeling.routing import drift_region, errors, long_tail, uncertainty
from monitor.errors import InvalidInput
from monitor.schema import ModelSchema
from monitor.service import Loopwatch
from tests.monitor.test_evaluation import NOW, _load

MODEL = "harsh-braking"


def test_uncertainty_prefers_scores_near_the_threshold() -> None:
    """Binary: the score nearest 0.5 comes first."""
    table = pa.table({"prediction_id": ["a", "b", "c"], "score": [0.95, 0.52, 0.1]})
    assert [s.prediction_id for s in uncertainty(table, "binary", [])] == ["b", "c", "a"]


def test_errors_put_confident_confirmed_errors_first() -> None:
    """Confirmed errors (most confident first) precede likely errors near the threshold."""
    table = pa.table(
        {
            "prediction_id": ["ok", "wrong-sure", "wrong-unsure", "unlabelled"],
            "prediction": ["brake", "brake", "none", "none"],
            "label": ["brake", "none", "brake", None],
            "score": [0.9, 0.99, 0.45, 0.51],
        }
    )
    ranked = [s.prediction_id for s in errors(table, "binary", ["none", "brake"])]
    assert ranked[:2] == ["wrong-sure", "wrong-unsure"] and ranked[2] == "unlabelled"


def test_drift_region_picks_rows_in_bins_that_grew() -> None:
    """Rows from the region whose share grew most against the reference are chosen first."""
    rng = np.random.default_rng(0)
    reference = pa.table({"speed": rng.normal(50, 5, 2000)})
    values = np.concatenate([rng.normal(50, 5, 800), rng.normal(80, 2, 200)])
    current = pa.table({"prediction_id": [f"p{i}" for i in range(1000)], "speed": values})
    top = drift_region(current, reference, "speed")[:150]
    assert all(int(s.prediction_id[1:]) >= 800 for s in top) and "above the reference range" in top[0].reason


def test_long_tail_quota_for_rare_segments() -> None:
    """Rare segment values are sampled by quota; common ones are not."""
    table = pa.table({"prediction_id": [f"p{i}" for i in range(100)], "fw": ["3.2"] * 97 + ["0.9"] * 3})
    chosen = long_tail(table, ["fw"], rare_share=0.05, quota=2)
    assert [s.prediction_id for s in chosen] == ["p97", "p98"] and "rare fw 0.9" in chosen[0].reason


def test_queue_never_routes_twice_and_keeps_a_random_share(service: Loopwatch, braking_model: ModelSchema) -> None:
    """Two routings of the same window queue disjoint samples; ~10% of each batch is random;
    each sample records strategy and reason."""
    _load(service, NOW - timedelta(hours=2), 2, 500, seed=1)
    queue = LabelingQueue(service)
    request = RouteRequest(MODEL, "uncertainty", budget=50, start=NOW - timedelta(hours=2), end=NOW)
    first = queue.route(request)
    second = queue.route(request)
    ids1 = {s["prediction_id"] for s in first["samples"]}
    ids2 = {s["prediction_id"] for s in second["samples"]}
    assert len(ids1) == 50 and len(ids2) == 50 and not ids1 & ids2
    assert sum("random sample" in s["reason"] for s in first["samples"]) == 5
    listed = queue.list(MODEL)
    assert len(listed) == 100 and all(s["strategy"] == "uncertainty" and s["status"] == "queued" for s in listed)


def test_queue_list_combines_model_and_status_filters(service: Loopwatch, braking_model: ModelSchema) -> None:
    """Listing by model (its id) and status (text) together returns exactly that model's samples in that status."""
    _load(service, NOW - timedelta(hours=1), 1, 200, seed=3)
    queue = LabelingQueue(service)
    queue.route(RouteRequest(MODEL, "random", budget=20, start=NOW - timedelta(hours=1), end=NOW))
    assert len(queue.list(MODEL, status="queued")) == 20
    assert queue.list(MODEL, status="pushed") == []


def test_daily_budget_caps_routing(service: Loopwatch, braking_model: ModelSchema) -> None:
    """Past the per-model daily budget nothing more is queued."""
    _load(service, NOW - timedelta(hours=1), 1, 300, seed=2)
    queue = LabelingQueue(service, daily_budget=60)
    window = {"start": NOW - timedelta(hours=1), "end": NOW}
    assert queue.route(RouteRequest(MODEL, "random", budget=50, **window))["queued"] == 50
    capped = queue.route(RouteRequest(MODEL, "random", budget=50, **window))
    assert capped["queued"] == 10 and capped["budget_left_today"] == 0
    assert queue.route(RouteRequest(MODEL, "random", budget=5, **window))["queued"] == 0


def test_bad_requests_are_refused(service: Loopwatch, braking_model: ModelSchema) -> None:
    """Unknown strategy, drift routing without a column, unknown alert: 422 with the field."""
    queue = LabelingQueue(service)
    for request, field in [
        (RouteRequest(MODEL, "vibes"), "strategy"),
        (RouteRequest(MODEL, "drift_region"), "column"),
        (RouteRequest(MODEL, "errors", alert_id="al_nope"), "alert_id"),
    ]:
        with pytest.raises(InvalidInput) as err:
            queue.route(request)
        assert err.value.errors[0].field == field


def test_route_api_and_slack_button(api) -> None:
    """POST /v1/labeling/route queues samples; the queue endpoint lists them with their reasons;
    the Slack button routes samples for the alert's window."""
    from tests.monitor.alerting.test_pipeline import SPEC, World, outcome

    service = api.client.app.state.service
    _load(service, NOW - timedelta(hours=1), 1, 200, seed=3)
    response = api.client.post(
        "/v1/labeling/route",
        json={
            "model": MODEL,
            "strategy": "uncertainty",
            "budget": 20,
            "start": (NOW - timedelta(hours=1)).isoformat(),
            "end": NOW.isoformat(),
        },
        headers=api.admin,
    )
    assert response.status_code == 200 and response.json()["queued"] == 20
    queue = api.client.get("/v1/labeling/queue", params={"model": MODEL}, headers=api.read).json()
    assert queue["depth"] == {"queued": 20} and queue["samples"][0]["reason"]
    world = World(service, None, [NOW], None)  # type: ignore[arg-type]
    [t] = api.client.app.state.alerts.on_run(outcome(world, "critical", monitor=SPEC.model_copy(update={"for_": 1})))
    routed = api.client.app.state.route_samples(t.alert_id, "slack:ana")
    assert routed["strategy"] == "errors" and routed["queued"] > 0
    assert {
        s["alert_id"] for s in api.client.app.state.labeling_queue.list(MODEL) if s["routed_by"] == "slack:ana"
    } == {t.alert_id}


def test_firing_alert_routes_samples_by_policy(api) -> None:
    """When a monitor run makes a drift alert fire, samples from the drifted region are queued
    automatically (the routing policy), linked to the alert."""
    from tests.api.test_monitors_api import DRIFT

    service = api.client.app.state.service
    # This hour, not the session's NOW: only a run whose window ends within one schedule period
    # (1h) of now is live and may fire alerts, and a long session can outlive NOW's hour.
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    _load(service, hour - timedelta(days=1, hours=2), 24, 100, seed=21)
    _load(service, hour - timedelta(hours=1), 1, 1000, speed=62, seed=22)
    api.client.post(f"/v1/models/{MODEL}/monitors", json=DRIFT, headers=api.admin).raise_for_status()
    run = api.client.post(
        f"/v1/models/{MODEL}/monitors/feature-drift/run", json={"at": hour.isoformat()}, headers=api.admin
    ).json()
    assert run["status"] == "succeeded"
    [alert] = [a for a in api.client.get("/v1/alerts", headers=api.read).json() if a["column"] == "speed_kmh"]
    samples = api.client.get("/v1/labeling/queue", params={"model": MODEL}, headers=api.read).json()["samples"]
    routed = [s for s in samples if s["alert_id"] == alert["id"]]
    assert len(routed) == 20 and all(s["routed_by"] == "policy:alert-fired" for s in routed)
    assert routed[0]["strategy"] == "drift_region" and "speed_kmh" in routed[0]["reason"]


def test_only_alerts_labels_can_help_with_route() -> None:
    """Latency, volume, freshness, data-quality and run-error alerts never route (each with a
    reason); performance and drift alerts route with the strategy that fits; an unknown
    detector does not route until someone decides labels help with it."""
    from labeling.routing import LABEL_STRATEGY_BY_DETECTOR, strategy_for_alert, why_labels_cannot_help

    for detector in ("latency", "volume", "freshness", "data_quality", "run_error"):
        assert strategy_for_alert(detector) is None and why_labels_cannot_help(detector)
    assert strategy_for_alert("performance") == "errors"
    assert strategy_for_alert("data_drift", "speed_kmh") == "drift_region"
    assert strategy_for_alert("data_drift", None) == "uncertainty"
    assert all(why_labels_cannot_help(d) is None for d in LABEL_STRATEGY_BY_DETECTOR)
    assert strategy_for_alert("shiny_new_detector") is None and why_labels_cannot_help("shiny_new_detector")


def _latency_alert(api) -> str:
    """A latency alert fired by a real monitor run: p95 latency ×4 in the last hour."""
    service = api.client.app.state.service
    _load(service, NOW - timedelta(days=1, hours=1), 24, 100, seed=31)
    _load(service, NOW - timedelta(hours=1), 1, 500, latency=80.0, seed=32)
    monitor = {
        "name": "latency",
        "detector": "latency",
        "every": "1h",
        "window": "1h",
        "reference": {"kind": "trailing", "length": "1d"},
        "severity": "critical",
        "route": {"slack_channel": "#ml-oncall"},
    }
    api.client.post(f"/v1/models/{MODEL}/monitors", json=monitor, headers=api.admin).raise_for_status()
    # A scheduled run is live whenever the test runs (a manual run at the import-time, hour-aligned
    # NOW stops being live once the clock passes the next hour, and would leave alerts alone).
    outcome = service.runner.run(MODEL, "latency", window_end=NOW, mode="scheduled")
    assert outcome is not None and outcome.error is None
    alerts = [a for a in api.client.get("/v1/alerts", headers=api.read).json() if a["detector"] == "latency"]
    assert alerts, "the latency regression should fire an alert"
    return alerts[0]["id"]


def test_latency_alert_routes_nothing_by_policy_button_or_api(api) -> None:
    """A firing latency alert queues no samples: not by the automatic policy, not by the Slack
    button (which records why on the alert's timeline), and POST /v1/labeling/route with its
    alert_id is refused with 422 naming alert_id and the reason."""
    from api.routes.alerts import handle_slack_action
    from monitor.alerting.notify.slack.signature import SlackAction

    alert_id = _latency_alert(api)
    queue = api.client.app.state.labeling_queue
    assert [s for s in queue.list(MODEL) if s["alert_id"] == alert_id] == []

    routed = api.client.app.state.route_samples(alert_id, "slack:ana")
    assert routed["queued"] == 0 and "latency" in routed["reason"]
    button = SlackAction("route_samples", None, alert_id, "U1", "ana", channel=None, message_ts=None, response_url=None)
    handle_slack_action(api.client.app, button)
    assert all(s["alert_id"] != alert_id for s in queue.list(MODEL))
    events = api.client.app.state.alerts.alerts.events(alert_id)
    assert any(e["event"] == "samples_not_routed" and "latency" in e["details"]["reason"] for e in events)
    pipeline = api.client.app.state.alerts
    [group] = pipeline.groups.of_alert(alert_id)
    assert pipeline.notice(group, "new").labels_can_help is False  # the message offers no such button

    response = api.client.post(
        "/v1/labeling/route",
        json={"model": MODEL, "strategy": "uncertainty", "alert_id": alert_id},
        headers=api.admin,
    )
    assert response.status_code == 422
    [error] = response.json()["error"]["errors"]
    assert error["field"] == "alert_id" and "latency" in error["reason"]
    assert all(s["alert_id"] != alert_id for s in queue.list(MODEL))
