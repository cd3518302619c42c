"""One notification per incident: alerts of a group share one Slack message, posted after
group_wait and updated in place (chat.update) as alerts join, resolve or are acknowledged;
outages delay but never duplicate or lose the final state. Real DuckDB, the local Slack Web
API, injected clock; nothing waits for real."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from detectors import Finding
from monitor.alerting.groups import group_labels
from monitor.alerting.pipeline import AlertPipeline
from monitor.monitors import MonitorSpec, RouteSpec
from monitor.runs import RunRecord
from monitor.scheduling import RunOutcome
from tests.monitor.alerting.test_pipeline import World, delivery, posts, posts_all
from tests.monitor.alerting.test_pipeline import world as world

DRIFT = MonitorSpec.model_validate(
    {
        "name": "feature-drift",
        "detector": "data_drift",
        "every": "15m",
        "window": "1h",
        "severity": "critical",
        "reference": {"kind": "trailing", "length": "7d"},
        "route": {
            "slack_channel": "#ml-oncall",
            "runbook": "https://runbooks.example/drift",
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
        },
    }
)
COLUMNS = ["speed_kmh", "accel", "brake_pressure", "road_type", "night", "temperature", "humidity"]


def drift(world: World, bad: dict[str, bool], *, monitor: MonitorSpec = DRIFT) -> RunOutcome:
    """One data_drift run judging each column: True → critical (drifted), False → ok."""
    end = world.now()
    run = RunRecord(
        f"run-{monitor.name}-{end.timestamp()}", "harsh-braking", monitor.name, "data_drift", "scheduled",
        end - timedelta(hours=1), end, 1,
    )  # fmt: skip
    findings = [
        Finding(
            detector="data_drift",
            model="harsh-braking",
            window_start=end - timedelta(hours=1),
            window_end=end,
            metric="wasserstein",
            status="critical" if is_bad else "ok",
            value=0.31 if is_bad else 0.02,
            threshold=0.1,
            reference="trailing 7d",
            column=column,
            details={"reference_value": 0.02, "method_display_name": "Wasserstein distance (normed)"},
        )
        for column, is_bad in bad.items()
    ]
    return RunOutcome(run, monitor, findings)


def tick(world: World, pipeline: AlertPipeline, **delta: float) -> dict[str, int]:
    world.advance(**delta)
    return pipeline.dispatch_due()


def blocks_text(call: Any) -> str:
    return str(call.params.get("blocks"))


@pytest.fixture
def six(world: World) -> Iterator[tuple[AlertPipeline, list[str]]]:
    """Six drifting columns of one monitor, delivered: the pipeline and the alert ids."""
    pipeline = world.pipeline()
    transitions = pipeline.on_run(drift(world, dict.fromkeys(COLUMNS[:6], True)))
    tick(world, pipeline, seconds=31)
    yield pipeline, [t.alert_id for t in transitions]


def test_six_drifting_columns_are_one_message_listing_six_alerts(world: World) -> None:
    """One drift incident over six features: exactly one Slack post (after group_wait) that lists
    all six alerts with their columns and values."""
    pipeline = world.pipeline()
    transitions = pipeline.on_run(drift(world, dict.fromkeys(COLUMNS[:6], True)))
    assert len(transitions) == 6
    assert tick(world, pipeline, seconds=29)["sent"] == 0 and not posts(world)
    assert tick(world, pipeline, seconds=2)["sent"] == 1
    [post] = posts(world)
    text = blocks_text(post)
    for column in COLUMNS[:6]:
        assert f"{column} (data_drift)" in text
    assert "*6 firing* · model=harsh-braking, monitor=feature-drift" in text
    assert "0.31 vs 0.1" in text and "runbooks.example/drift" in text
    assert len({d.group_id for t in transitions for d in pipeline.deliveries(t.alert_id)}) == 1
    tick(world, pipeline, hours=1)
    assert len(posts(world)) == 1 and not world.slack.calls_to("chat.update")


def test_a_seventh_alert_joining_updates_the_same_message(six: tuple[AlertPipeline, list[str]], world: World) -> None:
    """An alert joining a posted group rewrites its message with chat.update (not before
    group_interval after the last notification); no new post."""
    pipeline, _ = six
    [post] = posts(world)
    world.advance(minutes=1)
    [joined] = pipeline.on_run(drift(world, dict.fromkeys(COLUMNS, True)))
    assert tick(world, pipeline, minutes=3)["sent"] == 0  # group_interval (5m) since the post is not over
    assert tick(world, pipeline, minutes=2)["sent"] == 1
    [update] = world.slack.calls_to("chat.update", ok_only=True)
    assert update.params["ts"] == post.response["ts"] and update.params["channel"].startswith("C")
    assert "humidity (data_drift)" in blocks_text(update) and "*7 firing*" in blocks_text(update)
    assert len(posts(world)) == 1
    assert delivery(pipeline, joined.alert_id).message_id == post.response["ts"]


def test_resolution_of_all_marks_the_message_resolved(six: tuple[AlertPipeline, list[str]], world: World) -> None:
    """A partial recovery updates the counts; when every alert resolved the message shows
    RESOLVED and a short note goes in its thread; the group then closes."""
    pipeline, alerts = six
    [post] = posts(world)
    ts = post.response["ts"]
    world.advance(minutes=15)
    partial = pipeline.on_run(drift(world, {**dict.fromkeys(COLUMNS[:3], False), **dict.fromkeys(COLUMNS[3:6], True)}))
    assert [t.kind for t in partial] == ["resolved"] * 3
    tick(world, pipeline, seconds=1)
    [update] = world.slack.calls_to("chat.update", ok_only=True)
    assert "*3 firing, 3 resolved*" in blocks_text(update)
    world.advance(minutes=15)
    pipeline.on_run(drift(world, dict.fromkeys(COLUMNS[:6], False)))
    tick(world, pipeline, seconds=1)
    final = world.slack.message(update.params["channel"], ts)
    assert final is not None and final["text"].startswith("[RESOLVED]")
    assert "All 6 alerts resolved" in str(final["blocks"])
    [note] = [c for c in posts_all(world) if c.params.get("thread_ts") == ts]
    assert "*Resolved*: all 6 alerts cleared" in blocks_text(note)
    assert delivery(pipeline, alerts[0]).group_state == "closed"
    assert len(posts(world)) == 1


def test_ack_updates_the_message_at_once(six: tuple[AlertPipeline, list[str]], world: World) -> None:
    """Acknowledging rewrites the message right away (a human waits for it): who acked, no
    Acknowledge button once every firing alert is acked; repeats stop."""
    pipeline, alerts = six
    world.advance(seconds=5)
    pipeline.alerts.ack(alerts[0], "key_alice")
    pipeline.plan_update(alert_id=alerts[0])
    tick(world, pipeline, seconds=1)
    [first] = world.slack.calls_to("chat.update", ok_only=True)
    assert "acknowledged by key_alice" in blocks_text(first) and "'action_id': 'ack'" in blocks_text(first)
    for alert_id in alerts[1:]:
        pipeline.alerts.ack(alert_id, "key_alice")
    assert pipeline.plan_update(alert_id=alerts[1]) == 1
    tick(world, pipeline, seconds=1)
    last = world.slack.calls_to("chat.update", ok_only=True)[-1]
    assert "Acknowledged by key_alice" in blocks_text(last) and "'action_id': 'ack'" not in blocks_text(last)
    tick(world, pipeline, hours=5)
    assert len(posts_all(world)) == 1  # acknowledged: no repeat in the thread


def test_repeats_go_in_the_thread_while_unacknowledged(six: tuple[AlertPipeline, list[str]], world: World) -> None:
    """Still firing and unacknowledged after repeat_interval: one thread note per interval."""
    pipeline, _ = six
    ts = posts(world)[0].response["ts"]
    tick(world, pipeline, hours=4, seconds=1)
    tick(world, pipeline, minutes=30)
    notes = [c for c in posts_all(world) if c.params.get("thread_ts") == ts]
    assert len(notes) == 1 and "Still firing" in blocks_text(notes[0]) and "6 alerts" in blocks_text(notes[0])
    tick(world, pipeline, hours=4)
    assert len([c for c in posts_all(world) if c.params.get("thread_ts") == ts]) == 2


def test_two_monitors_are_two_messages(world: World) -> None:
    """Different monitors are different groups (default group_by model + monitor): two posts."""
    other = DRIFT.model_copy(update={"name": "segment-drift"})
    pipeline = world.pipeline()
    pipeline.on_run(drift(world, dict.fromkeys(COLUMNS[:2], True)))
    pipeline.on_run(drift(world, dict.fromkeys(COLUMNS[2:4], True), monitor=other))
    tick(world, pipeline, seconds=31)
    titles = sorted(str(c.params["text"]).split(":")[0] for c in posts(world))
    assert titles == ["[CRITICAL] harsh-braking · feature-drift", "[CRITICAL] harsh-braking · segment-drift"]


def test_a_new_episode_after_full_resolution_is_a_new_message(
    six: tuple[AlertPipeline, list[str]], world: World
) -> None:
    """Once the group's message showed everything resolved, the same labels firing again open a
    new group: a new message, the old one stays resolved."""
    pipeline, _ = six
    world.advance(minutes=15)
    pipeline.on_run(drift(world, dict.fromkeys(COLUMNS[:6], False)))
    tick(world, pipeline, minutes=6)
    world.advance(minutes=15)
    pipeline.on_run(drift(world, {"speed_kmh": True}))
    tick(world, pipeline, seconds=31)
    first, second = posts(world)
    assert first.response["ts"] != second.response["ts"] and "*1 firing*" in blocks_text(second)


@pytest.mark.parametrize("outage", ["connection_refused", "http_503"])
def test_resolution_during_an_outage_is_delivered_once_after_recovery(
    six: tuple[AlertPipeline, list[str]], world: World, outage: str
) -> None:
    """Alerts that resolve while Slack is down (refused connections, or 5xx answers) are shown
    resolved after recovery: exactly one successful chat.update to RESOLVED, one thread note,
    no second post."""
    pipeline, alerts = six
    ts = posts(world)[0].response["ts"]
    world.advance(minutes=15)

    def during() -> None:
        pipeline.on_run(drift(world, dict.fromkeys(COLUMNS[:6], False)))
        for _ in range(30):  # five simulated minutes of ticks every 10 s
            assert tick(world, pipeline, seconds=10)["sent"] == 0

    if outage == "connection_refused":
        with world.slack.outage():
            during()
    else:
        world.slack.server_error(10_000, status=503)
        during()
        world.slack.clear_faults()
    assert pipeline.outbox.depth() == 1  # the updates coalesced into one pending flush
    assert "retry" in {r["status"] for r in pipeline.outbox.rows()} or pipeline.outbox.rows()[-1]["attempts"] >= 3
    tick(world, pipeline, minutes=6)
    updates = world.slack.calls_to("chat.update", ok_only=True)
    assert len(updates) == 1 and updates[0].params["ts"] == ts and updates[0].params["text"].startswith("[RESOLVED]")
    assert len([c for c in posts_all(world) if c.params.get("thread_ts") == ts]) == 1
    tick(world, pipeline, hours=1)
    assert len(world.slack.calls_to("chat.update", ok_only=True)) == 1 and len(posts(world)) == 1
    assert (
        delivery(pipeline, alerts[0]).message_state == "resolved" and delivery(pipeline, alerts[0]).last_error is None
    )


def test_changes_during_an_outage_coalesce_into_the_current_state(
    six: tuple[AlertPipeline, list[str]], world: World
) -> None:
    """Joins, an ack and partial resolutions during an outage become one update showing the
    group as it is when Slack is back."""
    pipeline, alerts = six
    with world.slack.outage():
        world.advance(minutes=15)
        pipeline.on_run(drift(world, {**dict.fromkeys(COLUMNS[:2], False), **dict.fromkeys(COLUMNS[2:], True)}))
        pipeline.alerts.ack(alerts[3], "key_bob")
        pipeline.plan_update(alert_id=alerts[3])
        for _ in range(12):
            tick(world, pipeline, seconds=10)
    tick(world, pipeline, minutes=6)
    [update] = world.slack.calls_to("chat.update", ok_only=True)
    assert "*5 firing, 2 resolved*" in blocks_text(update) and "acknowledged by key_bob" in blocks_text(update)
    assert len(posts(world)) == 1


def test_outbox_rows_survive_a_new_pipeline_instance(world: World) -> None:
    """Planned notifications are rows: a pipeline built after a restart (same database) delivers
    the waiting group once, and the first instance's plan is not repeated."""
    first = world.pipeline()
    transitions = first.on_run(drift(world, dict.fromkeys(COLUMNS[:6], True)))
    assert first.outbox.depth() == 1
    restarted = world.pipeline()
    assert [restarted.plan(t) for t in transitions] == [False] * 6
    tick(world, restarted, seconds=31)
    tick(world, restarted, minutes=10)
    assert len(posts(world)) == 1 and "*6 firing*" in blocks_text(posts(world)[0])
    assert restarted.outbox.depth() == 0


def test_group_by_severity_and_column_splits_groups(world: World) -> None:
    """``group_by: [column]`` makes one group (message) per column."""
    spec = DRIFT.model_copy(update={"route": DRIFT.route.model_copy(update={"group_by": ["column"]})})
    pipeline = world.pipeline()
    pipeline.on_run(drift(world, dict.fromkeys(COLUMNS[:3], True), monitor=spec))
    tick(world, pipeline, seconds=31)
    assert len(posts(world)) == 3


def test_group_labels_are_read_in_route_order_and_missing_ones_are_empty() -> None:
    """Group labels take the route's order; a label the alert lacks (column of a performance
    alert, an absent segment) is the empty string."""
    alert = {"model": "m", "monitor": "fn", "column": None, "segment": {"firmware": "3.2"}, "severity": "critical"}
    assert group_labels(alert, ["severity", "model", "column", "segment.firmware", "segment.region"]) == {
        "severity": "critical",
        "model": "m",
        "column": "",
        "segment.firmware": "3.2",
        "segment.region": "",
    }


@pytest.mark.parametrize(
    ("group_by", "message"),
    [(["team"], "cannot group by 'team'"), (["segment."], "cannot group by"), (["model", "model"], "twice")],
)
def test_group_by_is_validated_when_the_monitor_is_saved(group_by: list[str], message: str) -> None:
    """Unknown grouping labels are refused at save time with the allowed ones named."""
    with pytest.raises(ValidationError, match=message) as caught:
        RouteSpec.model_validate({"group_by": group_by})
    if "team" in message:
        assert "model, monitor, detector, severity, column, metric, model_version" in str(caught.value)
    assert RouteSpec().group_by == ["model", "monitor"]
    assert RouteSpec.model_validate({"group_by": ["segment.firmware", "severity"]}).group_by[0] == "segment.firmware"


def test_an_alert_joining_while_the_message_is_in_flight_is_not_lost(world: World) -> None:
    """A change that lands while the group's message is being sent (its version moved) is
    delivered by a further update after group_interval — never swallowed by the in-flight one."""
    pipeline = world.pipeline()
    notifier = pipeline.notifier
    post = notifier.post

    def post_while_an_alert_joins(notice: Any) -> Any:
        ref = post(notice)
        pipeline.on_run(drift(world, dict.fromkeys(COLUMNS, True)))  # humidity joins mid-flight
        return ref

    notifier.post = post_while_an_alert_joins  # type: ignore[method-assign]
    pipeline.on_run(drift(world, dict.fromkeys(COLUMNS[:6], True)))
    tick(world, pipeline, seconds=31)
    assert "*6 firing*" in blocks_text(posts(world)[0])
    assert pipeline.outbox.depth() == 1
    tick(world, pipeline, minutes=5)
    [update] = world.slack.calls_to("chat.update", ok_only=True)
    assert "*7 firing*" in blocks_text(update) and len(posts(world)) == 1


def test_an_alert_posted_before_the_upgrade_is_resolved_in_its_own_message(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Migration 9 turns each open alert already posted to Slack (per-alert message, slack_ts on
    the alert) into a one-alert group owning that message, so its resolution after the upgrade
    updates that very message instead of being lost."""
    import monitor.db
    from monitor.alerting.alerts import fingerprint
    from monitor.alerting.notify.slack import SlackNotifier
    from monitor.schema import ModelSchema
    from monitor.service import Loopwatch
    from monitor.settings import Settings
    from tests.conftest import BRAKING
    from tests.fakes.slack_api import FakeSlackApi
    from tests.monitor.alerting.helpers import FakeClock, make_notice
    from tests.monitor.alerting.test_pipeline import SPEC, T0, outcome

    settings = Settings(data_dir=tmp_path / "data", public_url="https://loopwatch.example")
    clock = [T0]
    with FakeSlackApi() as slack:
        old = SlackNotifier(slack.token, base_url=slack.base_url, sleep=lambda _s: None).post(make_notice())
        monkeypatch.setattr(monitor.db, "MIGRATIONS", monitor.db.MIGRATIONS[:8])
        before = Loopwatch(settings, now=lambda: clock[0])
        before.registry.register(ModelSchema.model_validate(BRAKING))
        model_id = before.registry.get("harsh-braking").id
        with before.db.transaction() as cur:
            cur.execute(
                "INSERT INTO alerts (id, fingerprint, model_id, monitor, detector, metric, segment, severity, state, "
                "consecutive, started_at, fired_at, last_window_start, last_window_end, route, slack_channel, "
                "slack_ts, last_notified_at, updated_at) VALUES ('al_old', ?, ?, 'fn-rate', 'performance', 'fnr', "
                "?, 'critical', 'firing', 2, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    fingerprint("harsh-braking", "fn-rate", "performance", {"firmware": "3.2"}, "fnr", None),
                    model_id,
                    '{"firmware": "3.2"}',
                    T0 - timedelta(hours=2),
                    T0 - timedelta(hours=1),
                    T0 - timedelta(hours=2),
                    T0 - timedelta(hours=1),
                    SPEC.route.model_dump_json(),
                    old.channel,
                    old.message_id,
                    T0 - timedelta(hours=1),
                    T0 - timedelta(hours=1),
                ],
            ).fetchall()
        before.close()
        monkeypatch.undo()
        service = Loopwatch(settings, now=lambda: clock[0])
        try:
            world = World(service, slack, clock, FakeClock())
            pipeline = world.pipeline()
            [resolved] = pipeline.on_run(outcome(world, "ok", value=0.04))
            assert (resolved.alert_id, resolved.kind) == ("al_old", "resolved")
            tick(world, pipeline, minutes=6)
            [update] = world.slack.calls_to("chat.update", ok_only=True)
            assert update.params["ts"] == old.message_id and update.params["text"].startswith("[RESOLVED]")
            assert len(world.slack.messages()) == 2  # the old message and its thread note; no new post
        finally:
            service.close()


def test_deliveries_are_counted_by_receiver(world: World) -> None:
    """Without Slack the log receiver delivers the group; /metrics counts it as receiver="log",
    never as sent to Slack."""
    from prometheus_client import generate_latest

    from api.metrics import Metrics
    from monitor.alerting.notify.log import LogNotifier
    from monitor.alerting.pipeline import build_pipeline

    metrics = Metrics()
    pipeline = build_pipeline(world.service, LogNotifier(), now=world.now)
    pipeline.on_delivery = lambda receiver, result: metrics.notifications.labels(receiver, result).inc()
    transitions = pipeline.on_run(drift(world, dict.fromkeys(COLUMNS[:6], True)))
    tick(world, pipeline, seconds=31)
    text = generate_latest(metrics.registry).decode()
    assert 'loopwatch_alert_notifications_total{receiver="log",result="sent"} 1.0' in text
    assert 'receiver="slack"' not in text and not world.slack.calls
    [sent] = pipeline.deliveries(transitions[0].alert_id)
    assert (sent.receiver, sent.channel, sent.alerts, sent.message_state) == ("log", "log", 6, "firing")
