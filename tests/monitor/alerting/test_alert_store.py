"""The alert store persists what the pure state machine decides: real DuckDB in a temporary
directory, time injected (data time = the runs' window ends; wall time = the injected clock)."""

from __future__ import annotations

from datetime import timedelta

from monitor.alerting.alerts import AlertStore
from monitor.scheduling import RunOutcome
from tests.monitor.alerting import test_pipeline
from tests.monitor.alerting.test_pipeline import SPEC, T0, World, outcome

world = test_pipeline.world  # the same fixture: a real store in a temporary directory, injected clock

EVERY = timedelta(minutes=15)
PUBLIC_KEYS = {
    "id",
    "fingerprint",
    "model",
    "monitor",
    "detector",
    "metric",
    "column",
    "segment",
    "severity",
    "state",
    "consecutive",
    "started_at",
    "fired_at",
    "resolved_at",
    "last_window_start",
    "last_window_end",
    "value",
    "threshold",
    "model_version",
    "what_changed",
    "finding_status",
    "last_run_id",
    "route",
    "acked_by",
    "acked_at",
    "repeats",
    "last_notified_at",
    "updated_at",
    "title",
}


def store(world: World) -> AlertStore:
    return AlertStore(world.service.db, world.service.registry, world.now)


def feed(world: World, alerts: AlertStore, statuses: list[str], **kwargs: object) -> list[list[str]]:
    """One scheduled window per status, 15 minutes of data (and wall) time apart."""
    kinds = []
    for status in statuses:
        kinds.append([t.kind for t in alerts.observe(outcome(world, status, **kwargs))])  # type: ignore[arg-type]
        world.advance(minutes=15)
    return kinds


def test_a_false_positive_rate_that_stays_high_is_one_alert(world: World) -> None:
    """critical, warning, critical, warning, critical: one alert fires once and stays firing
    (before, each warning window resolved it and three alerts fired)."""
    alerts = store(world)
    spec = SPEC.model_copy(update={"for_": "0s"})
    kinds = feed(world, alerts, ["critical", "warning", "critical", "warning", "critical"], monitor=spec)
    assert kinds == [["new"], [], [], [], []]
    [alert] = alerts.list(model="harsh-braking")
    assert alert["state"] == "firing" and alert["consecutive"] == 3


def test_keep_firing_for_holds_the_alert_until_ok_long_enough(world: World) -> None:
    """keep_firing_for: 30m: the alert resolves on the third clearly-ok window, not the first."""
    alerts = store(world)
    spec = SPEC.model_copy(update={"for_": "0s", "keep_firing_for": "30m"})
    kinds = feed(world, alerts, ["critical", "ok", "ok", "ok"], monitor=spec)
    assert kinds == [["new"], [], [], ["resolved"]]
    [alert] = alerts.list(model="harsh-braking")
    assert alert["state"] == "resolved" and alert["resolved_at"] == (T0 + 3 * EVERY).isoformat().replace("+00:00", "Z")


def test_for_as_a_duration_counts_data_time(world: World) -> None:
    """for: 30m with a 15-minute schedule fires on the third bad window; for: 2 (windows) on the second."""
    alerts = store(world)
    assert feed(world, alerts, ["critical"] * 3, monitor=SPEC.model_copy(update={"for_": "30m"})) == [
        [],
        [],
        ["new"],
    ]
    legacy = SPEC.model_copy(update={"name": "legacy", "for_": 2})
    assert feed(world, alerts, ["critical"] * 2, monitor=legacy) == [[], ["new"]]


def test_timeline_events_are_stamped_by_the_injected_clock(world: World) -> None:
    """alert_events rows carry the injected clock's time, not the database's now()."""
    alerts = store(world)
    [transition] = alerts.observe(outcome(world, "critical", monitor=SPEC.model_copy(update={"for_": 1})))
    [event] = alerts.events(transition.alert_id)
    assert event["event"] == "fired" and event["at"] == T0.isoformat().replace("+00:00", "Z")


def test_a_run_that_is_not_live_changes_nothing(world: World) -> None:
    """An outcome marked not live (a past window) neither opens nor moves an alert."""
    alerts = store(world)
    spec = SPEC.model_copy(update={"for_": 1})
    past: RunOutcome = outcome(world, "critical", monitor=spec)
    past.live = False
    assert alerts.observe(past) == [] and alerts.list() == []
    [t] = alerts.observe(outcome(world, "critical", monitor=spec))
    world.advance(minutes=15)
    resolving = outcome(world, "ok", monitor=spec)
    resolving.live = False
    assert alerts.observe(resolving) == [] and alerts.get(t.alert_id)["state"] == "firing"


def test_the_public_alert_shape_is_unchanged(world: World) -> None:
    """get() and list() return the same keys as before the state machine moved out (others build on
    them); its internal fields (first_window_start, ok_since) stay internal. Delivery columns are
    the notification stage's business and not checked here."""
    alerts = store(world)
    [t] = alerts.observe(outcome(world, "critical", monitor=SPEC.model_copy(update={"for_": 1})))
    for shape in (set(alerts.get(t.alert_id)), set(alerts.list()[0])):
        assert shape >= PUBLIC_KEYS and not {"first_window_start", "ok_since"} & shape


def test_reference_freeze_is_the_first_bad_window_start_of_open_data_alerts(world: World) -> None:
    """The freeze point is the earliest first-bad-window start among the monitor's pending or firing
    alerts; run_error alerts and resolved alerts do not freeze anything."""
    alerts = store(world)
    spec = SPEC.model_copy(update={"for_": "30m"})
    assert alerts.reference_freeze("harsh-braking", spec.name) is None
    alerts.observe(outcome(world, "critical", monitor=spec, error="boom"))
    assert alerts.reference_freeze("harsh-braking", spec.name) is None  # a failed run says nothing about data
    world.advance(minutes=15)
    alerts.observe(outcome(world, "critical", monitor=spec))  # pending
    first_start = world.now() - timedelta(hours=1)
    world.advance(minutes=15)
    alerts.observe(outcome(world, "critical", monitor=spec, segment={"firmware": "3.1"}))
    assert alerts.reference_freeze("harsh-braking", spec.name) == first_start
    world.advance(minutes=15)
    alerts.observe(outcome(world, "ok", monitor=spec))
    alerts.observe(outcome(world, "ok", monitor=spec, segment={"firmware": "3.1"}))
    assert alerts.reference_freeze("harsh-braking", spec.name) is None
