"""Monitor use cases: a file of monitors is applied all or nothing with every mistake reported at
once, and a backfill is planned (windows counted, empty ones skipped) before anything runs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from application import Application
from monitor.errors import InvalidInput
from monitor.schema import ModelSchema
from monitor.service import Loopwatch
from tests.monitor.test_evaluation import NOW, _load

DRIFT: dict[str, Any] = {
    "name": "feature-drift",
    "detector": "data_drift",
    "every": "1h",
    "window": "1h",
    "reference": {"kind": "trailing", "length": "1d"},
}
VOLUME: dict[str, Any] = {"name": "volume", "detector": "volume", "every": "1h", "window": "1h"}


@pytest.fixture
def app(service: Loopwatch, braking_model: ModelSchema) -> Application:
    return Application.offline(service)


def test_apply_reports_every_mistake_at_once_and_saves_nothing(app: Application) -> None:
    """Five mistakes in one file come back in one answer, each naming its monitor and field, and
    not even the valid monitors before them are saved (they would start firing)."""
    items = [
        DRIFT,
        {**DRIFT, "name": "typo-detector", "detector": "data_drfit"},
        {**DRIFT, "name": "bad-window", "window": "an hour"},
        {**DRIFT, "name": "bad-segment", "segments": ["country"]},
        {**DRIFT, "name": "both-schedules", "cron": "0 * * * *"},
        {**DRIFT},  # feature-drift declared twice
    ]
    with pytest.raises(InvalidInput) as caught:
        app.monitors.apply("test", "harsh-braking", items)
    fields = [e.field for e in caught.value.errors]
    assert any(f.startswith("monitors[1].detector") for f in fields), fields
    assert any(f.startswith("monitors[2].window") for f in fields), fields
    assert "monitors[3].segments" in fields
    assert any(f.startswith("monitors[4]") for f in fields), fields
    assert "monitors[5].name" in fields
    assert len(caught.value.errors) == 5 and "none was saved: 5 errors" in caught.value.message
    assert app.monitors.list("harsh-braking") == []
    assert app.service.audit.list(action="monitor.saved") == []


def test_apply_saves_all_together_and_reports_created_or_updated(app: Application) -> None:
    """A valid file saves every monitor; applying it again updates them (none created)."""
    first = app.monitors.apply("test", "harsh-braking", [DRIFT, VOLUME])
    assert first["created"] == 2 and [m["created"] for m in first["monitors"]] == [True, True]
    again = app.monitors.apply("test", "harsh-braking", [DRIFT, VOLUME])
    assert again["created"] == 0 and again["updated"] == 2
    assert [m["name"] for m in app.monitors.list("harsh-braking")] == ["feature-drift", "volume"]
    assert len(app.service.audit.list(action="monitor.saved")) == 4


def test_backfill_plan_skips_windows_without_predictions(app: Application) -> None:
    """Over two days with data in only three hours, a drift monitor plans the windows that hold
    rows; the others are counted as skipped, and running the plan runs exactly those."""
    _load(app.service, NOW - timedelta(hours=30), 3, 50, seed=1)
    app.monitors.apply("test", "harsh-braking", [DRIFT])
    plan = app.monitors.plan_backfill("harsh-braking", NOW - timedelta(days=2), NOW)
    [drift] = plan.monitors
    assert drift.windows == 48 and len(drift.ends) == 3 and drift.skipped_empty == 45
    assert [e for e in drift.ends] == [NOW - timedelta(hours=h) for h in (29, 28, 27)]
    assert plan.warnings() == ["45 of 48 windows hold no predictions and are skipped"]
    result = app.monitors.backfill("test", plan)
    assert result["runs"] == 3 and result["skipped_empty"] == 45
    assert len(app.service.runs.runs("harsh-braking", "feature-drift", 100)) == 3


def test_backfill_of_a_range_without_data_runs_nothing_and_says_so(app: Application) -> None:
    """A range before any data plans zero runs (every monitor, absence detectors too) and
    warns, instead of recording thousands of no-data findings."""
    _load(app.service, NOW - timedelta(hours=3), 2, 20, seed=2)
    app.monitors.apply("test", "harsh-braking", [DRIFT, VOLUME])
    plan = app.monitors.plan_backfill("harsh-braking", NOW - timedelta(days=60), NOW - timedelta(days=30))
    assert plan.windows == 2 * 30 * 24 and plan.runs == 0
    assert plan.warnings() == [
        f"no predictions of harsh-braking in the range: all {plan.windows} windows are empty, nothing to run"
    ]
    assert app.monitors.backfill("test", plan)["runs"] == 0


def test_absence_detectors_keep_empty_windows_once_data_was_seen(app: Application) -> None:
    """A volume monitor judges silence: after the model's first data its empty windows still run
    (an outage is what it should find); before the first data they are skipped."""
    _load(app.service, NOW - timedelta(hours=10), 2, 20, seed=3)  # data in hours -10 .. -8 only
    app.monitors.apply("test", "harsh-braking", [DRIFT, VOLUME])
    plan = app.monitors.plan_backfill("harsh-braking", NOW - timedelta(hours=20), NOW)
    by_name = {m.monitor: m for m in plan.monitors}
    assert len(by_name["feature-drift"].ends) == 2
    volume_ends = by_name["volume"].ends
    assert volume_ends[0] == NOW - timedelta(hours=9) and volume_ends[-1] == NOW and len(volume_ends) == 10
    everything = app.monitors.plan_backfill("harsh-braking", NOW - timedelta(hours=20), NOW, include_empty=True)
    assert everything.runs == 40 and everything.skipped_empty == 0


def test_backfill_refuses_unknown_monitors_and_empty_ranges(app: Application) -> None:
    """Naming a monitor the model lacks, or a range whose end is not after its start, is a 422
    naming the field."""
    app.monitors.apply("test", "harsh-braking", [DRIFT])
    with pytest.raises(InvalidInput) as caught:
        app.monitors.plan_backfill("harsh-braking", NOW - timedelta(days=1), NOW, ["nope"])
    assert caught.value.errors[0].field == "monitors" and "nope" in caught.value.errors[0].reason
    with pytest.raises(InvalidInput) as caught:
        app.monitors.plan_backfill("harsh-braking", NOW, NOW - timedelta(days=1))
    assert caught.value.errors[0].field == "to"


def test_spark_asked_for_where_java_is_missing_is_refused_saying_what_to_install(
    app: Application, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a Java runtime (none on the PATH, no JAVA_HOME) a monitor declaring `engine: spark`
    is refused when saved (422 on its engine field) and a Spark backfill is refused before any run
    (503), both naming the package to install; the embedded engine still works."""
    from monitor.errors import NotConfigured

    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(InvalidInput) as refused:
        app.monitors.apply("test", "harsh-braking", [{**DRIFT, "engine": "spark"}])
    assert refused.value.errors[0].field == "monitors[0].engine"
    assert "openjdk-17-jre-headless" in refused.value.errors[0].reason
    assert app.monitors.list("harsh-braking") == []

    _load(app.service, NOW - timedelta(hours=3), 2, 50, seed=3)
    app.monitors.apply("test", "harsh-braking", [DRIFT])
    plan = app.monitors.plan_backfill("harsh-braking", NOW - timedelta(hours=3), NOW)
    with pytest.raises(NotConfigured) as unavailable:
        app.monitors.backfill("test", plan, engine="spark")
    assert unavailable.value.status == 503 and "openjdk-17-jre-headless" in unavailable.value.message
    assert app.service.runs.runs("harsh-braking") == []
    assert app.monitors.backfill("test", plan, engine="embedded")["runs"] == plan.runs > 0
