"""A trailing reference never absorbs the change it alerts on: while a monitor has an open alert,
its trailing reference ends at the start of that alert's first bad window; it trails again once
the alert resolves. Real DuckDB, real data_drift detector, scheduled runs under an injected clock."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from monitor.alerting.pipeline import AlertPipeline, build_pipeline
from monitor.monitors import MonitorSpec
from monitor.references import ReferenceSpec
from monitor.scheduling import RunOutcome
from monitor.schema import ModelSchema
from monitor.service import Loopwatch
from monitor.settings import Settings
from tests.conftest import BRAKING
from tests.monitor.test_evaluation import _load

MODEL = "harsh-braking"
BREAK = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)  # speed_kmh breaks here ...
BROKEN_HOURS = 30  # ... and is fixed again 30 hours later (longer than the 1-day trailing reference)
MONITOR = MonitorSpec.model_validate(
    {
        "name": "speed-drift",
        "detector": "data_drift",
        "every": "1h",
        "window": "1h",
        "reference": {"kind": "trailing", "length": "1d"},
        "params": {"columns": ["speed_kmh"]},
        "for": "0s",
        "severity": "critical",
    }
)


@dataclass
class World:
    service: Loopwatch
    pipeline: AlertPipeline
    clock: list[datetime]

    def scheduled_run(self, hours_after_break: int) -> RunOutcome:
        end = BREAK + timedelta(hours=hours_after_break)
        self.clock[0] = end
        outcome = self.service.runner.run(MODEL, MONITOR.name, window_end=end, mode="scheduled")
        assert outcome is not None and outcome.error is None, outcome and outcome.error
        return outcome

    def speed_alerts(self) -> list[dict]:
        return [
            a
            for a in self.pipeline.alerts.list(model=MODEL, limit=1000)
            if a["column"] == "speed_kmh" and a["detector"] == "data_drift"
        ]


@pytest.fixture
def world(tmp_path) -> Iterator[World]:
    clock = [BREAK + timedelta(hours=BROKEN_HOURS + 6)]  # while loading: all the data is in the past
    service = Loopwatch(Settings(data_dir=tmp_path / "data"), now=lambda: clock[0])
    service.registry.register(ModelSchema.model_validate(BRAKING))
    _load(service, BREAK - timedelta(days=2), 48, 1000, speed=50.0, seed=1, prefix="before")
    _load(service, BREAK, BROKEN_HOURS, 1000, speed=62.0, seed=2, prefix="broken")
    _load(service, BREAK + timedelta(hours=BROKEN_HOURS), 6, 1000, speed=50.0, seed=3, prefix="fixed")
    service.monitors.save(MODEL, MONITOR)
    pipeline = build_pipeline(service, now=lambda: clock[0])
    service.runner.subscribe(pipeline.on_run)
    yield World(service, pipeline, clock)
    service.close()


def test_an_ongoing_drift_keeps_firing_while_the_feature_stays_broken(world: World) -> None:
    """Speed shifts and stays shifted for 30 hours, longer than the 1-day trailing reference: one
    alert fires and keeps firing the whole time (a trailing reference would have absorbed the shift
    and resolved it); the frozen reference ends where the first bad window starts."""
    outcomes = [world.scheduled_run(h) for h in range(1, BROKEN_HOURS + 1)]
    [alert] = world.speed_alerts()
    assert alert["state"] == "firing" and alert["started_at"] == (BREAK + timedelta(hours=1)).isoformat().replace(
        "+00:00", "Z"
    )
    first_bad_start = BREAK.isoformat()
    assert all("frozen" in (o.reference or "") and first_bad_start in (o.reference or "") for o in outcomes[1:])
    # Without the freeze the last window would be judged against a reference that is all broken data:
    unfrozen = world.service.evaluator.evaluate(
        MODEL,
        "data_drift",
        MONITOR.params,
        (BREAK + timedelta(hours=BROKEN_HOURS - 1), BREAK + timedelta(hours=BROKEN_HOURS)),
        ReferenceSpec(kind="trailing", length="1d"),
    )
    assert [f.status.value for f in unfrozen.findings if f.column == "speed_kmh"] == ["ok"]
    assert world.service.evaluator.cache.misses <= 3  # the frozen reference was prepared once, then reused


def test_the_reference_trails_again_once_the_alert_resolves(world: World) -> None:
    """When the feature is fixed the window is ok against the frozen (clean) reference, the alert
    resolves, and the next run's trailing reference is no longer frozen."""
    for h in range(1, BROKEN_HOURS + 1):
        world.scheduled_run(h)
    fixed = world.scheduled_run(BROKEN_HOURS + 1)
    assert "frozen" in (fixed.reference or "")
    [alert] = world.speed_alerts()
    assert alert["state"] == "resolved"
    assert world.pipeline.alerts.reference_freeze(MODEL, MONITOR.name) is None
    after = world.scheduled_run(BROKEN_HOURS + 2)
    expected_end = (BREAK + timedelta(hours=BROKEN_HOURS + 1)).isoformat()
    assert "frozen" not in (after.reference or "") and expected_end in (after.reference or "")
