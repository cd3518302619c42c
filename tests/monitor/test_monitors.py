"""Monitor definitions are validated completely when saved, and the runner records every run."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from monitor.errors import InvalidInput
from monitor.monitors import MonitorSpec, parse_monitor
from monitor.scheduling import MonitorScheduler, RunOutcome, schedule_points
from monitor.schema import ModelSchema
from monitor.service import Loopwatch
from tests.monitor.test_evaluation import NOW, _load

MODEL = "harsh-braking"
REF = {"kind": "trailing", "length": "1d"}
DRIFT = {"name": "feature-drift", "detector": "data_drift", "every": "15m", "window": "1h", "reference": REF}


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"detector": "magic"}, "detector", "Input should be"),
        ({"params": {"treshold": 0.2}}, "monitor", "unknown parameter"),
        ({"cron": "*/5 * * * *"}, "monitor", "exactly one of every"),
        ({"every": None}, "monitor", "exactly one of every"),
        ({"every": None, "cron": "every tuesday"}, "cron", "not valid"),
        ({"reference": None}, "monitor", "needs a reference"),
        ({"window": "an hour"}, "window", "duration"),
        ({"route": {"runbook": "javascript:alert(1)"}}, "route.runbook", "http"),
        ({"name": "Feature Drift"}, "name", "lowercase"),
        ({"for": 0}, "for", "greater than or equal"),
    ],
)
def test_invalid_monitors_are_refused_naming_the_field(change: dict, field: str, reason: str) -> None:
    """Typos in detector names, parameters, schedules and routes are refused at save time."""
    with pytest.raises(InvalidInput) as err:
        parse_monitor({**DRIFT, **change}, 0)
    errors = [e.to_dict() for e in err.value.errors]
    assert any(e["field"].endswith(field) or field == "monitor" for e in errors), errors
    assert any(reason in e["reason"] for e in errors), errors


def test_unknown_segment_is_refused(service: Loopwatch, braking_model: ModelSchema) -> None:
    """Monitors may only segment by the model's segment columns."""
    with pytest.raises(InvalidInput, match="not valid") as err:
        service.monitors.save(MODEL, MonitorSpec.model_validate({**DRIFT, "segments": ["planet"]}))
    assert "planet" in err.value.errors[0].reason


def test_interval_schedules_align_for_backfill() -> None:
    """Every-15m monitors judge windows ending on :00/:15/:30/:45, live and in backfill alike."""
    spec = MonitorSpec.model_validate(DRIFT)
    start = datetime(2026, 11, 20, 10, 7, tzinfo=UTC)
    points = list(schedule_points(spec, start, start + timedelta(hours=1)))
    assert [p.minute for p in points] == [15, 30, 45, 0]


def test_run_is_recorded_with_reproducibility_fields(service: Loopwatch, braking_model: ModelSchema) -> None:
    """A run stores window, config hash, data fingerprint, code version, engine, duration and its findings."""
    _load(service, NOW - timedelta(days=1, hours=2), 24, 100, seed=1)
    _load(service, NOW - timedelta(hours=1), 1, 1000, speed=60, seed=2)
    service.monitors.save(MODEL, MonitorSpec.model_validate(DRIFT))
    outcome = service.runner.run(MODEL, "feature-drift", window_end=NOW)
    assert outcome is not None and outcome.error is None
    record = service.runs.get(outcome.run.id)
    assert record["status"] == "succeeded" and record["config_hash"] and record["code_version"]
    assert record["engine"] == "embedded"
    assert service.runs.runs(MODEL)[0]["engine"] == "embedded"
    assert record["data_fingerprint"].startswith("1000:") and record["window_end"].startswith(
        NOW.strftime("%Y-%m-%dT%H")
    )
    assert any(f["column"] == "speed_kmh" and f["status"] == "critical" for f in record["findings"])


def test_failing_run_is_recorded_and_later_runs_still_work(service: Loopwatch, braking_model: ModelSchema) -> None:
    """A run that cannot be computed is marked failed with the reason; the monitor keeps working.
    A previous-version reference before any rollout is not a failure: insufficient data."""
    spec = MonitorSpec.model_validate(
        {**DRIFT, "name": "vs-previous", "detector": "latency", "reference": {"kind": "previous_version"}}
    )
    service.monitors.save(MODEL, spec)
    _load(service, NOW - timedelta(hours=1), 1, 100, seed=3)
    first = service.runner.run(MODEL, "vs-previous", window_end=NOW)
    assert first is not None and first.error is None
    assert [f.status.value for f in first.findings] == ["insufficient_data"]
    broken = MonitorSpec.model_validate(
        {
            **DRIFT,
            "name": "missing-dataset",
            "detector": "latency",
            "reference": {"kind": "dataset", "path": "gone.parquet"},
        }
    )
    service.monitors.save(MODEL, broken)
    outcome = service.runner.run(MODEL, "missing-dataset", window_end=NOW)
    assert outcome is not None and outcome.error and "gone.parquet" in outcome.error
    assert service.runs.get(outcome.run.id)["status"] == "failed"
    _load(service, NOW - timedelta(minutes=50), 1, 500, version="2.0", latency=40, seed=4)
    second = service.runner.run(MODEL, "vs-previous", window_end=NOW)
    assert second is not None and second.error is None


def test_backfill_records_without_paging_and_subscribers_see_live_runs(
    service: Loopwatch, braking_model: ModelSchema
) -> None:
    """Backfill runs are recorded (mode backfill) and never reach subscribers; a failing subscriber
    does not stop the others."""
    _load(service, NOW - timedelta(days=1, hours=3), 27, 100, seed=5)
    service.monitors.save(MODEL, MonitorSpec.model_validate({**DRIFT, "every": "1h"}))
    seen: list[RunOutcome] = []
    service.runner.subscribe(lambda outcome: 1 / 0)
    service.runner.subscribe(seen.append)
    outcomes = service.runner.backfill(MODEL, NOW - timedelta(hours=3), NOW)
    assert len(outcomes) == 3 and not seen
    assert {f["mode"] for f in service.runs.findings(MODEL)} == {"backfill"}
    service.runner.run(MODEL, "feature-drift", window_end=NOW, mode="scheduled")  # live, whenever the test runs
    assert len(seen) == 1


def test_one_run_per_monitor_at_a_time(service: Loopwatch, braking_model: ModelSchema) -> None:
    """A firing while the same monitor runs is skipped, not queued behind it."""
    service.monitors.save(MODEL, MonitorSpec.model_validate({**DRIFT, "detector": "freshness", "reference": None}))
    lock = service.runner._lock(MODEL, "feature-drift")
    with lock:
        assert service.runner.run(MODEL, "feature-drift", wait=False) is None


def test_missed_run_after_downtime_runs_once(service: Loopwatch, braking_model: ModelSchema) -> None:
    """A monitor whose persisted next run is long past runs exactly once at start-up (coalesced),
    then waits for its next slot."""
    spec = MonitorSpec.model_validate({**DRIFT, "detector": "freshness", "reference": None, "every": "1h"})
    service.monitors.save(MODEL, spec)
    service.monitors.set_next_run(MODEL, spec.name, datetime.now(UTC) - timedelta(hours=30))
    scheduler = MonitorScheduler(service.runner, service.monitors)
    done = threading.Event()
    service.runner.subscribe(lambda outcome: done.set())
    scheduler.start()
    try:
        assert done.wait(10)
        time.sleep(1.0)  # a second, non-coalesced run would show up here
    finally:
        scheduler.shutdown()
    assert len(service.runs.runs(MODEL)) == 1
    next_run = service.monitors.next_run(MODEL, spec.name)
    assert next_run is not None and next_run > datetime.now(UTC)


def test_failed_scheduled_run_is_retried(service: Loopwatch, braking_model: ModelSchema) -> None:
    """A failed scheduled run is retried after a delay, as a new attempt of the same window."""
    spec = MonitorSpec.model_validate(
        {
            **DRIFT,
            "name": "broken",
            "detector": "latency",
            "every": "1h",
            "reference": {"kind": "dataset", "path": "x.parquet"},
        }
    )
    service.monitors.save(MODEL, spec)
    service.monitors.set_next_run(MODEL, "broken", datetime.now(UTC) - timedelta(minutes=5))
    scheduler = MonitorScheduler(service.runner, service.monitors, retry_delays=(0.2,))
    scheduler.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(service.runs.runs(MODEL)) < 2:
            time.sleep(0.05)
    finally:
        scheduler.shutdown()
    runs = service.runs.runs(MODEL)
    assert [r["attempt"] for r in sorted(runs, key=lambda r: r["attempt"])] == [1, 2]
    assert {r["window_end"] for r in runs} == {runs[0]["window_end"]}


def test_windows_are_rejudged_when_late_labels_arrive(service: Loopwatch, braking_model: ModelSchema) -> None:
    """A past window whose labels changed since it was judged is run again (mode rejudge); an
    unchanged one is not; an open alert never moves back to an older window."""
    import pyarrow as pa

    spec = MonitorSpec.model_validate(
        {
            **DRIFT,
            "name": "perf",
            "detector": "performance",
            "every": "1h",
            "window": "1h",
            "rejudge": "3h",
            "params": {"min_coverage": 0.0},
        }
    )
    service.monitors.save(MODEL, spec)
    rows = _load(service, NOW - timedelta(days=1, hours=3), 27, 100, seed=7)
    service.store.ingest_labels(
        MODEL,
        pa.table({"prediction_id": rows.column("prediction_id")[:1500], "label": rows.column("prediction")[:1500]}),
    )
    for hours_ago in (2, 1):
        service.runner.run(MODEL, "perf", window_end=NOW - timedelta(hours=hours_ago), mode="scheduled")

    def counter(lo: datetime, hi: datetime) -> int:
        return service.store.stats(MODEL, lo, hi)["labels"]

    assert service.runner.rejudge(MODEL, "perf", NOW, counter) == 0  # nothing changed
    late = [
        pid
        for pid, ts in zip(rows.column("prediction_id").to_pylist(), rows.column("timestamp").to_pylist(), strict=True)
        if NOW - timedelta(hours=2) <= ts < NOW - timedelta(hours=1)
    ]
    service.store.ingest_labels(MODEL, pa.table({"prediction_id": late, "label": ["brake"] * len(late)}))
    assert service.runner.rejudge(MODEL, "perf", NOW, counter) == 1
    modes = [r["mode"] for r in service.runs.runs(MODEL, "perf")]
    assert modes.count("rejudge") == 1


def test_for_and_keep_firing_for_are_durations_serialised_as_written() -> None:
    """`for: 30m` and `keep_firing_for: 1h` are data-time durations and round-trip in the form written."""
    spec = parse_monitor({**DRIFT, "for": "30m", "keep_firing_for": "1h"})
    assert spec.for_duration() == timedelta(minutes=30) and spec.keep_firing_duration() == timedelta(hours=1)
    saved = MonitorSpec.model_validate_json(spec.to_json())
    assert '"for":"30m"' in spec.to_json() and '"keep_firing_for":"1h"' in spec.to_json()
    assert saved.for_ == "30m" and saved.keep_firing_for == "1h"
    assert parse_monitor(DRIFT).keep_firing_duration() == timedelta(0)


def test_a_bare_integer_for_still_means_consecutive_windows() -> None:
    """for: N (the first release's window count) is (N - 1) schedule periods; it stays an integer when saved."""
    spec = parse_monitor({**DRIFT, "for": 3})
    assert spec.for_duration() == timedelta(minutes=30) and '"for":3' in spec.to_json()
    assert parse_monitor({**DRIFT, "for": 1}).for_duration() == timedelta(0)
    hourly_cron = parse_monitor({**DRIFT, "every": None, "cron": "0 * * * *", "for": 2})
    assert hourly_cron.for_duration() == timedelta(hours=1)
    weekdays = parse_monitor({**DRIFT, "every": None, "cron": "0 9 * * 1-5", "for": 2})
    assert weekdays.for_duration() == timedelta(days=1)  # a cron's shortest gap: N windows always suffice


@pytest.mark.parametrize(
    ("value", "reason"),
    [("30 minutes", "duration"), (True, "duration"), (101, "at most"), ("2", "duration")],
)
def test_bad_for_values_are_refused(value: object, reason: str) -> None:
    """`for` is a duration or a window count of 1-100; anything else is refused naming the field."""
    with pytest.raises(InvalidInput) as err:
        parse_monitor({**DRIFT, "for": value}, 0)
    errors = [e.to_dict() for e in err.value.errors]
    assert any(e["field"].endswith("for") and reason in e["reason"] for e in errors), errors
    with pytest.raises(InvalidInput):
        parse_monitor({**DRIFT, "keep_firing_for": "soon"}, 0)


def test_liveness_is_one_schedule_period_back_from_now() -> None:
    """Scheduled/retry/rejudge runs are live, backfills never; a manual run is live if its window ends
    within one schedule period before now. For a cron the period is the slot containing now (a weekday
    cron's Friday window is still the latest one on Monday morning)."""
    from monitor.scheduling import is_live, schedule_period

    now = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # a Monday
    spec = MonitorSpec.model_validate(DRIFT)
    assert schedule_period(spec, now) == timedelta(minutes=15)
    assert is_live(spec, "scheduled", now - timedelta(days=3), now) and is_live(spec, "rejudge", now, now)
    assert not is_live(spec, "backfill", now, now)
    assert is_live(spec, "manual", now - timedelta(minutes=15), now)
    assert not is_live(spec, "manual", now - timedelta(minutes=16), now)
    assert not is_live(spec, "manual", now + timedelta(seconds=1), now)
    weekdays = MonitorSpec.model_validate({**DRIFT, "every": None, "cron": "0 9 * * 1-5"})
    assert schedule_period(weekdays, now) == timedelta(days=3)  # Friday 09:00 → Monday 09:00
    friday = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    assert is_live(weekdays, "manual", friday, now) and not is_live(weekdays, "manual", friday - timedelta(days=1), now)


def test_shutdown_while_a_run_is_in_progress_does_not_hang(service: Loopwatch, braking_model: ModelSchema) -> None:
    """Shutting the scheduler down while a monitor runs waits for the run and returns: the job does
    not touch the scheduler once it is stopping (APScheduler 3 holds its job-store lock meanwhile,
    so a job asking for its next run time used to deadlock the shutdown)."""
    spec = MonitorSpec.model_validate({**DRIFT, "name": "slow", "detector": "freshness", "reference": None})
    service.monitors.save(MODEL, spec)
    service.monitors.set_next_run(MODEL, "slow", datetime.now(UTC) - timedelta(minutes=5))  # due at once
    running, release = threading.Event(), threading.Event()

    class SlowRunner:
        def run(self, *args: object, **kwargs: object) -> None:
            running.set()
            release.wait(10)

        def finish_runs(self, grace: float) -> list[str]:
            return []

    scheduler = MonitorScheduler(SlowRunner(), service.monitors)  # type: ignore[arg-type]
    scheduler.start()
    assert running.wait(10)
    stopper = threading.Thread(target=scheduler.shutdown)
    stopper.start()
    deadline = time.monotonic() + 10
    while not scheduler._stopping and time.monotonic() < deadline:
        time.sleep(0.01)
    release.set()  # the run ends after shutdown began
    stopper.join(10)
    assert not stopper.is_alive()


def _blocked_run(service: Loopwatch, name: str) -> tuple[threading.Event, threading.Event]:
    """Make every evaluation of ``name`` block until released; returns (started, release)."""
    started, release = threading.Event(), threading.Event()
    evaluate = service.evaluator.evaluate

    def slow(*args: object, **kwargs: object) -> object:
        started.set()
        release.wait(30)
        return evaluate(*args, **kwargs)  # type: ignore[arg-type]

    service.evaluator.evaluate = slow  # type: ignore[method-assign]
    return started, release


def test_shutdown_waits_at_most_the_grace_and_records_the_run_interrupted(
    service: Loopwatch, braking_model: ModelSchema
) -> None:
    """Rule: shutdown waits for a monitor run in progress at most ``shutdown_grace_seconds``; a run
    still going then is recorded as ``interrupted`` (never left ``running``), and shutdown returns."""
    spec = MonitorSpec.model_validate({**DRIFT, "name": "stuck", "detector": "freshness", "reference": None})
    service.monitors.save(MODEL, spec)
    service.monitors.set_next_run(MODEL, "stuck", datetime.now(UTC) - timedelta(minutes=5))  # due at once
    started, release = _blocked_run(service, "stuck")
    scheduler = MonitorScheduler(service.runner, service.monitors)
    scheduler.start()
    try:
        assert started.wait(10)
        began = time.monotonic()
        interrupted = scheduler.shutdown(grace=0.5)
        took = time.monotonic() - began
    finally:
        release.set()
    assert 0.5 <= took < 3, took
    assert len(interrupted) == 1
    run = service.runs.get(interrupted[0])
    assert run["status"] == "interrupted"
    assert run["finished_at"] is not None and "grace" in run["error"]
    assert service.runner.run(MODEL, "stuck") is None  # no new runs once shutting down


def test_a_run_that_ends_within_the_grace_is_recorded_normally(
    service: Loopwatch, braking_model: ModelSchema
) -> None:
    """Rule: shutdown waits for runs that finish within the grace; they keep their real outcome."""
    spec = MonitorSpec.model_validate({**DRIFT, "name": "brief", "detector": "freshness", "reference": None})
    service.monitors.save(MODEL, spec)
    service.monitors.set_next_run(MODEL, "brief", datetime.now(UTC) - timedelta(minutes=5))
    started, release = _blocked_run(service, "brief")
    scheduler = MonitorScheduler(service.runner, service.monitors)
    scheduler.start()
    assert started.wait(10)
    threading.Timer(0.3, release.set).start()
    assert scheduler.shutdown(grace=10) == []
    [run] = service.runs.runs(MODEL, "brief")
    assert run["status"] == "succeeded"


def test_runs_left_running_by_a_dead_process_are_interrupted_at_start(
    service: Loopwatch, braking_model: ModelSchema
) -> None:
    """Rule: a run recorded ``running`` by a process that died without shutting down (kill -9) is
    marked ``interrupted`` when the server starts; finished runs are left alone."""
    spec = MonitorSpec.model_validate({**DRIFT, "name": "fresh", "detector": "freshness", "reference": None})
    service.monitors.save(MODEL, spec)
    done = service.runner.run(MODEL, "fresh", window_end=NOW)
    assert done is not None
    orphan = service.runs.start(MODEL, "fresh", "freshness", "scheduled", (NOW - timedelta(hours=1), NOW))
    assert service.runs.interrupt_stale() == 1
    assert service.runs.get(orphan.id)["status"] == "interrupted"
    assert service.runs.get(done.run.id)["status"] == "succeeded"
