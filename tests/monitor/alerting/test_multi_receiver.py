"""One alert group delivered to several receivers by the pipeline: each (group, receiver) has
its own outbox rows, retries and message, so one receiver's outage or refusal neither blocks
nor duplicates another's delivery. Real DuckDB, the local Slack Web API, a local webhook
endpoint and a local PagerDuty Events v2 endpoint; injected clock."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
import yaml

from monitor.alerting.notify.slack import SlackNotifier
from monitor.alerting.pipeline import AlertPipeline, build_pipeline
from monitor.alerting.routing import RoutingError
from monitor.errors import InvalidInput
from monitor.monitors import MonitorSpec
from monitor.scheduling import RunOutcome
from monitor.schema import ModelSchema
from monitor.service import Loopwatch
from monitor.settings import Settings
from tests.conftest import BRAKING
from tests.fakes.slack_api import FakeSlackApi
from tests.monitor.alerting.helpers import FakeClock
from tests.monitor.alerting.notify.http_receiver import Answer, Endpoint, serve
from tests.monitor.alerting.notify.pagerduty.test_channel import ROUTING_KEY, events_v2
from tests.monitor.alerting.test_grouping import COLUMNS, DRIFT
from tests.monitor.alerting.test_grouping import drift as grouping_drift

T0 = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)


@dataclass
class World:
    """What test_grouping's ``drift`` needs (``now``), plus the receivers' endpoints."""

    slack: FakeSlackApi
    hook: Endpoint
    pd: Endpoint
    tmp: Path
    clock: list[datetime] = field(default_factory=lambda: [T0])
    deliveries: list[tuple[str, str]] = field(default_factory=list)
    services: list[Loopwatch] = field(default_factory=list)

    def now(self) -> datetime:
        return self.clock[0]

    def pipeline(self, **settings: Any) -> AlertPipeline:
        """A service with the webhook and PagerDuty receivers configured besides Slack."""
        values: dict[str, Any] = {
            "data_dir": self.tmp / "data",
            "public_url": "https://loopwatch.example",
            "webhook_url": self.hook.url,
            "webhook_secret": "whsec-1",
            "pagerduty_routing_key": ROUTING_KEY,
            "pagerduty_url": self.pd.url,
        }
        values.update(settings)
        service = Loopwatch(Settings(**values), now=self.now)
        self.services.append(service)
        if not service.registry.list():
            service.registry.register(ModelSchema.model_validate(BRAKING))
        sleeper = FakeClock()
        slack = SlackNotifier(
            self.slack.token, base_url=self.slack.base_url, now=sleeper.now, sleep=sleeper.sleep, max_retry_after=5
        )
        pipeline = build_pipeline(service, slack, now=self.now)
        pipeline.on_delivery = lambda receiver, result: self.deliveries.append((receiver, result))
        return pipeline

    def tick(self, pipeline: AlertPipeline, **delta: float) -> dict[str, int]:
        self.clock[0] += timedelta(**delta)
        return pipeline.dispatch_due()

    def posts(self) -> list[Any]:
        return [c for c in self.slack.calls_to("chat.postMessage", ok_only=True) if not c.params.get("thread_ts")]


def drift(world: World, bad: dict[str, bool], *, monitor: MonitorSpec = DRIFT) -> RunOutcome:
    """test_grouping's data_drift run (it needs only ``world.now``)."""
    return grouping_drift(cast(Any, world), bad, monitor=monitor)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with FakeSlackApi() as slack, serve() as hook, serve(events_v2, path="/v2/enqueue") as pd:
        world = World(slack, hook, pd, tmp_path)
        yield world
        for service in world.services:
            service.close()


def test_a_transient_failure_at_one_receiver_does_not_hold_or_duplicate_the_others(world: World) -> None:
    """Slack, webhook and PagerDuty each get the group; the webhook answers 503 (Retry-After 60)
    first. Slack and PagerDuty deliver at group_wait exactly once; the webhook delivers once after
    its Retry-After; the resolution then reaches each receiver once. Metrics count per receiver."""
    world.hook.answers.append(Answer(503, {"error": "down"}, (("Retry-After", "60"),)))
    pipeline = world.pipeline()
    [transition] = pipeline.on_run(drift(world, {"speed_kmh": True}))
    assert world.tick(pipeline, seconds=31) == {"sent": 2, "retry": 1, "failed": 0}
    assert len(world.posts()) == 1 and [r.json()["event_action"] for r in world.pd.requests] == ["trigger"]
    assert sorted(world.deliveries) == [("pagerduty", "sent"), ("slack", "sent"), ("webhook", "retry")]

    assert world.tick(pipeline, seconds=30) == {"sent": 0, "retry": 0, "failed": 0}  # Retry-After not over
    assert world.tick(pipeline, seconds=31) == {"sent": 1, "retry": 0, "failed": 0}
    assert [r.json()["status"] for r in world.hook.requests] == ["firing", "firing"]  # the 503, then delivered
    assert len(world.posts()) == 1 and len(world.pd.requests) == 1 and not world.slack.calls_to("chat.update")

    deliveries = {d.receiver: d for d in pipeline.deliveries(transition.alert_id)}
    assert set(deliveries) == {"slack", "webhook", "pagerduty"}
    assert len({d.group_id for d in deliveries.values()}) == 3  # one group (and message) per receiver
    assert deliveries["webhook"].message_state == "firing" and deliveries["webhook"].last_error is None
    assert deliveries["pagerduty"].message_id == f"loopwatch/{deliveries['pagerduty'].group_id}"
    assert deliveries["slack"].channel == "#ml-oncall" and deliveries["webhook"].channel == "webhook"

    world.clock[0] += timedelta(minutes=1)
    [resolved] = pipeline.on_run(drift(world, {"speed_kmh": False}))
    assert resolved.kind == "resolved"
    world.tick(pipeline, minutes=5)
    assert [r.json()["status"] for r in world.hook.requests] == ["firing", "firing", "resolved"]
    assert [r.json()["event_action"] for r in world.pd.requests] == ["trigger", "resolve"]
    assert len(world.posts()) == 1 and len(world.slack.calls_to("chat.update", ok_only=True)) == 1
    assert {d.receiver: d.message_state for d in pipeline.deliveries(transition.alert_id)} == {
        "slack": "resolved",
        "webhook": "resolved",
        "pagerduty": "resolved",
    }
    world.tick(pipeline, hours=5)
    assert len(world.hook.requests) == 3 and len(world.pd.requests) == 2 and len(world.posts()) == 1


def test_a_permanent_failure_at_one_receiver_is_recorded_for_it_alone(world: World) -> None:
    """PagerDuty refuses the event (400): its group is marked failed with the error, once; Slack
    and the webhook deliver as if nothing happened."""
    world.pd.answers.append(Answer(400, {"status": "invalid event", "message": "Event object is invalid"}))
    pipeline = world.pipeline()
    [transition] = pipeline.on_run(drift(world, {"speed_kmh": True}))
    assert world.tick(pipeline, seconds=31) == {"sent": 2, "retry": 0, "failed": 1}
    deliveries = {d.receiver: d for d in pipeline.deliveries(transition.alert_id)}
    assert deliveries["pagerduty"].message_state == "failed" and "400" in (deliveries["pagerduty"].last_error or "")
    assert deliveries["slack"].message_state == "firing" and deliveries["webhook"].message_state == "firing"
    world.tick(pipeline, hours=1)
    assert len(world.pd.requests) == 1 and len(world.hook.requests) == 1 and len(world.posts()) == 1
    failures = [e for e in pipeline.alerts.events(transition.alert_id) if e["event"] == "notification_failed"]
    assert len(failures) == 1 and failures[0]["details"]["group_id"] == deliveries["pagerduty"].group_id


def test_routing_file_sends_critical_alerts_to_pagerduty_and_the_rest_by_the_tree(world: World) -> None:
    """With a routing file, a critical data_drift alert reaches PagerDuty (continue) and the
    webhook (data_drift child); a monitor whose route names receivers gets exactly those."""
    path = world.tmp / "routing.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "route": {
                    "receiver": "slack",
                    "routes": [
                        {"matchers": ['severity="critical"'], "receiver": "pagerduty", "continue": True},
                        {"matchers": ['detector="data_drift"'], "receiver": "webhook"},
                    ],
                }
            }
        )
    )
    pipeline = world.pipeline(routing_file=path)
    pipeline.on_run(drift(world, dict.fromkeys(COLUMNS[:2], True)))
    world.tick(pipeline, seconds=31)
    assert len(world.pd.requests) == 1 and len(world.hook.requests) == 1 and not world.posts()
    assert len(world.hook.requests[0].json()["alerts"]) == 2  # both columns in one group message

    only_slack = DRIFT.model_copy(
        update={"name": "drift-slack", "route": DRIFT.route.model_copy(update={"receivers": ["slack"]})}
    )
    pipeline.on_run(drift(world, {"speed_kmh": True}, monitor=only_slack))
    world.tick(pipeline, seconds=31)
    assert len(world.posts()) == 1 and len(world.pd.requests) == 1 and len(world.hook.requests) == 1


def test_saving_a_monitor_naming_an_unknown_receiver_is_refused(world: World) -> None:
    """Once the pipeline is built, a monitor whose route names a receiver that is not configured
    is refused at save time, naming the field and the configured receivers."""
    pipeline = world.pipeline()
    service = world.services[-1]
    spec = MonitorSpec.model_validate(
        {**DRIFT.model_dump(by_alias=True, exclude_none=True), "route": {"receivers": ["pagerduty-prod"]}}
    )
    with pytest.raises(InvalidInput) as caught:
        service.monitors.save("harsh-braking", spec)
    [error] = caught.value.errors
    assert error.field.endswith("route.receivers") and "unknown receiver 'pagerduty-prod'" in error.reason
    assert "pagerduty, slack, webhook" in error.reason
    ok = MonitorSpec.model_validate(
        {**DRIFT.model_dump(by_alias=True, exclude_none=True), "route": {"receivers": ["pagerduty", "slack"]}}
    )
    assert service.monitors.save("harsh-braking", ok)[1] is True
    assert pipeline.receivers.get("pagerduty") is not None


def test_only_slack_configured_behaves_as_before(world: World) -> None:
    """Without webhook/PagerDuty/SMTP settings, the group goes to Slack alone, under receiver
    "slack" — exactly the single-receiver pipeline."""
    pipeline = world.pipeline(webhook_url=None, webhook_secret=None, pagerduty_routing_key=None)
    [transition] = pipeline.on_run(drift(world, {"speed_kmh": True}))
    assert world.tick(pipeline, seconds=31) == {"sent": 1, "retry": 0, "failed": 0}
    assert [d.receiver for d in pipeline.deliveries(transition.alert_id)] == ["slack"]
    assert not world.hook.requests and not world.pd.requests and world.deliveries == [("slack", "sent")]


def test_email_receiver_threads_a_groups_mails_through_the_pipeline(world: World) -> None:
    """With SMTP settings, the group's first mail and its resolution arrive at a real SMTP server
    as one thread (In-Reply-To the first mail's Message-ID)."""
    from tests.monitor.alerting.notify.email.smtp_server import smtp_server

    with smtp_server() as (server, port):
        pipeline = world.pipeline(
            webhook_url=None,
            webhook_secret=None,
            pagerduty_routing_key=None,
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_starttls=False,
            smtp_from="loopwatch@example.com",
            smtp_to="oncall@example.com",
        )
        pipeline.on_run(drift(world, {"speed_kmh": True}))
        assert world.tick(pipeline, seconds=31) == {"sent": 2, "retry": 0, "failed": 0}
        world.clock[0] += timedelta(minutes=1)
        pipeline.on_run(drift(world, {"speed_kmh": False}))
        world.tick(pipeline, minutes=5)
        mails = list(server.messages)
    assert [m["X-Loopwatch-Status"] for m in mails] == ["firing", "resolved"]
    assert mails[1]["In-Reply-To"] == mails[0]["Message-ID"] and mails[0]["Message-ID"].startswith("<loopwatch.grp_")
    assert len(world.posts()) == 1


def test_an_ack_on_the_slack_message_reaches_pagerduty(world: World) -> None:
    """Acknowledging through the Slack group (a button press refreshes that group) also refreshes
    the alert's other open groups: PagerDuty receives acknowledge for the same dedup_key."""
    pipeline = world.pipeline(webhook_url=None, webhook_secret=None)
    [transition] = pipeline.on_run(drift(world, {"speed_kmh": True}))
    world.tick(pipeline, seconds=31)
    slack_group = next(d.group_id for d in pipeline.deliveries(transition.alert_id) if d.receiver == "slack")
    pipeline.alerts.ack(transition.alert_id, "maria")
    assert pipeline.plan_update(group_id=slack_group) == 2
    world.tick(pipeline, seconds=1)
    actions = [r.json()["event_action"] for r in world.pd.requests]
    assert actions == ["trigger", "acknowledge"] and len({r.json()["dedup_key"] for r in world.pd.requests}) == 1
    assert "maria" in str(world.slack.calls_to("chat.update", ok_only=True)[0].params)


def test_a_bad_routing_file_stops_the_pipeline_from_being_built(world: World) -> None:
    """The routing file is checked when the pipeline is assembled (server start): a route naming
    an unknown receiver fails with the file, the route's path and the configured names."""
    path = world.tmp / "routing.yaml"
    path.write_text(yaml.safe_dump({"route": {"routes": [{"matchers": ['severity="critical"'], "receiver": "pd"}]}}))
    with pytest.raises(RoutingError, match=r"routing.yaml: route.routes\[0\]: unknown receiver 'pd' \(configured: "):
        world.pipeline(routing_file=path)
