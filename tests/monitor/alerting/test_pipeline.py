"""The alert pipeline end to end against a local Slack Web API: state, grouping timers, dedup
across restarts, resolution and repeats in the thread, outages and rate limits, silences and
inhibition. Time is injected; nothing waits for real. (Grouping into one message per group
and in-place updates: ``test_grouping.py``.)"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from detectors import Finding
from monitor.alerting.notify.slack import SlackNotifier
from monitor.alerting.pipeline import AlertPipeline, Delivery, build_pipeline
from monitor.monitors import MonitorSpec
from monitor.runs import RunRecord
from monitor.scheduling import RunOutcome
from monitor.service import Loopwatch
from monitor.settings import Settings
from tests.conftest import BRAKING
from tests.fakes.slack_api import FakeSlackApi
from tests.monitor.alerting.helpers import FakeClock

T0 = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
SPEC = MonitorSpec.model_validate(
    {
        "name": "fn-rate",
        "detector": "performance",
        "every": "15m",
        "window": "1h",
        "for": 2,
        "severity": "critical",
        "reference": {"kind": "trailing", "length": "7d"},
        "route": {
            "slack_channel": "#ml-oncall",
            "runbook": "https://runbooks.example/fn",
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
        },
    }
)


@dataclass
class World:
    service: Loopwatch
    slack: FakeSlackApi
    clock: list[datetime]
    sleeper: FakeClock

    def now(self) -> datetime:
        return self.clock[0]

    def advance(self, **delta: float) -> None:
        self.clock[0] += timedelta(**delta)

    def pipeline(self) -> AlertPipeline:
        notifier = SlackNotifier(
            self.slack.token,
            base_url=self.slack.base_url,
            now=self.sleeper.now,
            sleep=self.sleeper.sleep,
            max_retry_after=5,
        )
        return build_pipeline(self.service, notifier, now=self.now)


@pytest.fixture
def world(tmp_path) -> Iterator[World]:
    from monitor.schema import ModelSchema

    clock = [T0]
    service = Loopwatch(
        Settings(data_dir=tmp_path / "data", public_url="https://loopwatch.example"), now=lambda: clock[0]
    )
    service.registry.register(ModelSchema.model_validate(BRAKING))
    with FakeSlackApi() as slack:
        yield World(service, slack, clock, FakeClock())
    service.close()


def outcome(
    world: World,
    status: str,
    *,
    value: float = 0.098,
    segment: dict | None = None,
    monitor: MonitorSpec = SPEC,
    detector: str = "performance",
    metric: str = "fnr",
    error: str | None = None,
) -> RunOutcome:
    end = world.now()
    run = RunRecord(
        f"run-{end.timestamp()}-{metric}",
        "harsh-braking",
        monitor.name,
        detector,
        "scheduled",
        end - timedelta(hours=1),
        end,
        1,
    )
    findings = (
        []
        if error
        else [
            Finding(
                detector=detector,
                model="harsh-braking",
                window_start=end - timedelta(hours=1),
                window_end=end,
                metric=metric,
                status=status,
                value=value,
                threshold=0.06,
                reference="trailing 7d",
                segment=segment or {"firmware": "3.2"},
                details={"reference_value": 0.041, "current_ci": [0.089, 0.107], "confidence": 0.95},
            )
        ]
    )
    return RunOutcome(run, monitor, findings, error=error)


def posts(world: World) -> list[dict]:
    """Top-level posts that Slack accepted (thread notes excluded)."""
    return [c for c in world.slack.calls_to("chat.postMessage", ok_only=True) if not c.params.get("thread_ts")]


def posts_all(world: World) -> list[dict]:
    """Every accepted chat.postMessage, thread notes included."""
    return world.slack.calls_to("chat.postMessage", ok_only=True)


def delivery(pipeline: AlertPipeline, alert_id: str) -> Delivery:
    """The newest group delivery of an alert (where its message is, the last error)."""
    return pipeline.deliveries(alert_id)[0]


def test_fires_after_for_windows_then_notifies_after_group_wait(world: World) -> None:
    """`for: 2` needs two bad windows; the message waits group_wait and says what changed, with
    buttons and links."""
    pipeline = world.pipeline()
    assert pipeline.on_run(outcome(world, "critical")) == []  # pending
    world.advance(minutes=15)
    [transition] = pipeline.on_run(outcome(world, "critical"))
    assert transition.kind == "new"
    assert pipeline.dispatch_due()["sent"] == 0 and not posts(world)  # group_wait not over
    world.advance(seconds=31)
    assert pipeline.dispatch_due()["sent"] == 1
    [post] = posts(world)
    text = str(post.params)
    assert "FN rate 4.1% → 9.8% (95% CI 8.9–10.7%) on firmware 3.2" in text
    assert "https://loopwatch.example/models/harsh-braking/alerts/" in text and "runbooks.example" in text
    alert = pipeline.alerts.get(transition.alert_id)
    sent = delivery(pipeline, transition.alert_id)
    assert alert["state"] == "firing" and sent.message_id == post.response["ts"]
    assert sent.receiver == "slack" and sent.channel_id and sent.channel_id.startswith("C")


def test_alerts_of_one_group_go_out_together_and_dedup_survives_restart(world: World) -> None:
    """Two alerts of one monitor firing within group_wait are one message (was: two messages in
    the same flush); re-planning after a restart (new pipeline objects on the same store) sends
    nothing twice."""
    spec = SPEC.model_copy(update={"for_": 1})
    pipeline = world.pipeline()
    first = pipeline.on_run(outcome(world, "critical", monitor=spec))
    world.advance(seconds=10)
    second = pipeline.on_run(outcome(world, "critical", monitor=spec, segment={"firmware": "3.1"}))
    world.advance(seconds=15)
    assert pipeline.dispatch_due()["sent"] == 0  # 25 s in: the first alert's group_wait (30 s) is not over
    world.advance(seconds=10)
    assert pipeline.dispatch_due()["sent"] == 1
    [post] = posts(world)
    assert "firmware=3.2" in str(post.params["blocks"]) and "firmware=3.1" in str(post.params["blocks"])
    restarted = world.pipeline()
    for transition in first + second:
        assert restarted.plan(transition) is False
    world.advance(minutes=10)
    restarted.dispatch_due()
    assert len(posts(world)) == 1 and not world.slack.calls_to("chat.update")


def test_resolution_updates_the_message_and_repeats_go_in_the_thread(world: World) -> None:
    """Still firing after repeat_interval → a thread reply; acknowledged → no more repeats;
    resolved → the original message is updated and a note posted in its thread."""
    spec = SPEC.model_copy(update={"for_": 1})
    pipeline = world.pipeline()
    [t] = pipeline.on_run(outcome(world, "critical", monitor=spec))
    world.advance(seconds=31)
    pipeline.dispatch_due()
    ts = delivery(pipeline, t.alert_id).message_id
    world.advance(hours=4, seconds=1)
    pipeline.dispatch_due()
    replies = [c for c in posts_all(world) if c.params.get("thread_ts") == ts]
    assert len(replies) == 1
    pipeline.alerts.ack(t.alert_id, "key_oncall")
    world.advance(hours=5)
    pipeline.dispatch_due()
    assert len([c for c in posts_all(world) if c.params.get("thread_ts") == ts]) == 1
    world.advance(minutes=15)
    [resolved] = pipeline.on_run(outcome(world, "ok", monitor=spec, value=0.04))
    assert resolved.kind == "resolved"
    world.advance(minutes=6)
    pipeline.dispatch_due()
    updates = world.slack.calls_to("chat.update")
    assert updates and updates[-1].params["ts"] == ts and "RESOLVED" in updates[-1].params["text"]
    notes = [c for c in posts_all(world) if c.params.get("thread_ts") == ts]
    assert len(notes) == 2 and "Resolved" in str(notes[-1].params["blocks"])
    assert pipeline.alerts.get(t.alert_id)["state"] == "resolved"
    assert delivery(pipeline, t.alert_id).message_state == "resolved"


def test_ten_minute_outage_delays_but_loses_and_duplicates_nothing(world: World) -> None:
    """While Slack is unreachable deliveries are retried with backoff; when it is back, the
    group's message (both alerts) arrives exactly once."""
    spec = SPEC.model_copy(update={"for_": 1})
    pipeline = world.pipeline()
    transitions = []
    with world.slack.outage():
        transitions += pipeline.on_run(outcome(world, "critical", monitor=spec))
        transitions += pipeline.on_run(outcome(world, "critical", monitor=spec, segment={"firmware": "3.0"}))
        for _ in range(60):  # ten simulated minutes of ticks every 10 s
            world.advance(seconds=10)
            pipeline.dispatch_due()
        rows = pipeline.outbox.rows()
        assert all(r["status"] == "pending" and r["attempts"] >= 3 for r in rows)
    world.advance(minutes=6)
    pipeline.dispatch_due()
    assert len(posts(world)) == 1 and {r["status"] for r in pipeline.outbox.rows()} == {"sent"}
    world.advance(minutes=30)
    pipeline.dispatch_due()
    assert len(posts(world)) == 1 and "firmware=3.0" in str(posts(world)[0].params["blocks"])


def test_rate_limits_and_5xx_storms_are_waited_out(world: World) -> None:
    """429 with Retry-After and bursts of 503 delay delivery; the message still arrives once."""
    spec = SPEC.model_copy(update={"for_": 1})
    pipeline = world.pipeline()
    pipeline.on_run(outcome(world, "critical", monitor=spec))
    world.slack.rate_limit(2, retry_after=1)
    world.slack.server_error(6, status=503)
    for _ in range(20):
        world.advance(seconds=31)
        pipeline.dispatch_due()
    assert len(posts(world)) == 1
    assert {r["status"] for r in pipeline.outbox.rows()} == {"sent"}


def test_bad_token_is_a_clear_error_on_the_delivery(world: World) -> None:
    """A revoked token fails delivery permanently: recorded on the group's delivery (shown with
    the alert) and in the alert's timeline, without the token; nothing crashes."""
    spec = SPEC.model_copy(update={"for_": 1})
    pipeline = world.pipeline()
    [t] = pipeline.on_run(outcome(world, "critical", monitor=spec))
    world.slack.revoke_token()
    world.advance(seconds=31)
    assert pipeline.dispatch_due()["failed"] == 1
    error = delivery(pipeline, t.alert_id).last_error or ""
    assert "invalid_auth" in error or "token" in error.lower()
    assert world.slack.token not in error and delivery(pipeline, t.alert_id).message_state == "failed"
    assert "notification_failed" in [e["event"] for e in pipeline.alerts.events(t.alert_id)]


def test_silences_and_no_data_inhibition_mute_notifications(world: World) -> None:
    """A matching silence mutes an alert (it still fires in the API); a firing no-data alert of
    the model mutes its other alerts."""
    spec = SPEC.model_copy(update={"for_": 1})
    pipeline = world.pipeline()
    pipeline.silences.create({"model": "harsh-braking", "segment.firmware": "3.2"}, T0 + timedelta(hours=1), "key_x")
    [t] = pipeline.on_run(outcome(world, "critical", monitor=spec))
    world.advance(minutes=1)
    pipeline.dispatch_due()
    assert not posts(world) and pipeline.alerts.get(t.alert_id)["state"] == "firing"
    freshness = SPEC.model_copy(update={"name": "freshness", "detector": "freshness", "reference": None, "for_": 1})
    pipeline.on_run(
        outcome(
            world,
            "no_data",
            monitor=freshness,
            detector="freshness",
            metric="minutes_since_last",
            segment={"region": "eu"},
        )
    )
    pipeline.on_run(outcome(world, "critical", monitor=spec, segment={"firmware": "3.1"}))
    world.advance(minutes=1)
    pipeline.dispatch_due()
    titles = [str(c.params.get("text")) for c in posts(world)]
    assert len(titles) == 1 and "no data" in titles[0]


def test_failed_runs_are_alerts_too(world: World) -> None:
    """A run that fails raises its own alert, resolved by the next successful run."""
    spec = SPEC.model_copy(update={"for_": 1})
    pipeline = world.pipeline()
    [t] = pipeline.on_run(outcome(world, "critical", monitor=spec, error="ValueError: reference is empty"))
    alert = pipeline.alerts.get(t.alert_id)
    assert alert["detector"] == "run_error" and "reference is empty" in alert["what_changed"]
    world.advance(minutes=15)
    transitions = pipeline.on_run(outcome(world, "ok", monitor=spec))
    assert [x.kind for x in transitions] == ["resolved"]


def test_a_post_lost_in_transit_is_not_posted_twice(world: World) -> None:
    """If Slack accepted a post but the answer never arrived, the retry finds the message by the
    alert id in its metadata and adopts it instead of posting again."""
    spec = SPEC.model_copy(update={"for_": 1})
    pipeline = world.pipeline()
    [t] = pipeline.on_run(outcome(world, "critical", monitor=spec))
    world.slack.drop(1, after_processing=True, methods=["chat.postMessage"])
    world.advance(seconds=31)
    assert pipeline.dispatch_due()["retry"] == 1
    world.advance(minutes=1)
    assert pipeline.dispatch_due()["sent"] == 1
    assert len(world.slack.messages("#ml-oncall")) == 1
    assert delivery(pipeline, t.alert_id).message_id == world.slack.messages("#ml-oncall")[0]["ts"]
    assert "notification_reconciled" in [e["event"] for e in pipeline.alerts.events(t.alert_id)]
