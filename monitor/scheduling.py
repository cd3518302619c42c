"""Running monitors: once on demand, over history (backfill), and on their schedules.

* ``MonitorRunner.run`` evaluates one monitor for one window, records the run and its
  findings, and publishes the outcome to subscribers (the alert pipeline, labeling) — only
  if the run is *live* (see :func:`is_live`): backfills and manual runs of a past window are
  recorded but never move alert state nor page anyone.
* ``MonitorScheduler`` (APScheduler) fires due monitors. The next run time of every monitor
  is persisted, so after downtime a missed run executes once — coalesced, never N times — and
  schedules survive restarts. One run per monitor at a time; a failed run is retried with
  backoff and never stops the scheduler.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from detectors import Finding
from monitor.clock import Clock, utcnow
from monitor.evaluation import Evaluator
from monitor.memory import release_free_memory
from monitor.monitors import MonitorSpec, MonitorStore
from monitor.references import parse_duration
from monitor.runs import RunMode, RunRecord, RunStore

log = logging.getLogger("loopwatch.scheduler")

MAX_BACKFILL_WINDOWS = 10_000


@dataclass
class RunOutcome:
    """One recorded run. ``live`` is False for runs of a past window (backfills, manual runs with
    an old ``at``): they are recorded but never published, so they never move alert state."""

    run: RunRecord
    monitor: MonitorSpec
    findings: list[Finding] = field(default_factory=list)
    error: str | None = None
    reference: str | None = None
    duration_s: float = 0.0
    live: bool = True


Subscriber = Callable[[RunOutcome], None]
T = TypeVar("T")
EngineEvaluators = Callable[[str], Evaluator]
"""An engine's name (a monitor's ``engine`` other than ``embedded``) → the evaluator reading through
it; the composition root passes the service's Spark engines, so the runner never imports Spark."""
ReferenceFreeze = Callable[[str, str], datetime | None]
"""(model, monitor) → where the monitor's trailing reference must end for now (``None``: it trails
freely). The composition root passes the alert store's answer, so the runner needs no alerting."""

PAST_WINDOW_NOTE = (
    "alert state left alone: this window does not end within one schedule period of now, so its "
    "findings were recorded but cannot fire, resolve or inhibit live alerts"
)


def schedule_period(spec: MonitorSpec, now: datetime) -> timedelta:
    """The length of the schedule slot that contains ``now``: ``every``, or for a cron the gap
    from its last run at or before ``now`` to its next run after it (so a weekday cron's Friday
    window is still the latest one on Monday morning)."""
    if spec.every is not None:
        return parse_duration(spec.every)
    trigger = CronTrigger.from_crontab(spec.cron or "", timezone=UTC)
    following = trigger.get_next_fire_time(None, now + timedelta(microseconds=1))
    back = timedelta(hours=1)
    while back <= timedelta(days=4 * 366):
        last = None
        fire = trigger.get_next_fire_time(None, now - back)
        while fire is not None and fire <= now:
            last = fire
            fire = trigger.get_next_fire_time(fire, fire + timedelta(microseconds=1))
        if last is not None:
            return (following or now) - last
        back *= 8
    return spec.period()


def is_live(spec: MonitorSpec, mode: RunMode, window_end: datetime, now: datetime) -> bool:
    """Whether a run may move live alert state. Scheduled, retry and rejudge runs are live (they
    judge the schedule's own windows; rejudges are bounded by the ``rejudge`` horizon and never
    move an open alert backwards); backfills never are; a manual run is live only if its window
    ends within one schedule period before now (``now − period ≤ window_end ≤ now``)."""
    if mode == "backfill":
        return False
    if mode != "manual":
        return True
    return now - schedule_period(spec, now) <= window_end <= now


def outcome_summary(outcome: RunOutcome | None) -> dict[str, object]:
    """What the API and CLI report for one run (``None``: skipped, the monitor was running)."""
    if outcome is None:
        return {"status": "skipped", "reason": "a run of this monitor is in progress"}
    return {
        "run_id": outcome.run.id,
        "monitor": outcome.monitor.name,
        "status": "failed" if outcome.error else "succeeded",
        "error": outcome.error,
        "window_start": outcome.run.window_start.isoformat(),
        "window_end": outcome.run.window_end.isoformat(),
        "live": outcome.live,
        "alert_state": "evaluated" if outcome.live else PAST_WINDOW_NOTE,
        "reference": outcome.reference,
        "findings": [f.to_dict() for f in outcome.findings],
    }


def backfill_summary(outcomes: list[RunOutcome]) -> dict[str, object]:
    """Counts of a backfill: runs, failures, findings, and those that would have paged."""
    return {
        "runs": len(outcomes),
        "failed": sum(1 for o in outcomes if o.error),
        "findings": sum(len(o.findings) for o in outcomes),
        "bad_findings": sum(1 for o in outcomes for f in o.findings if f.status.value in ("critical", "no_data")),
        "errors": sorted({o.error for o in outcomes if o.error})[:10],
    }


class MonitorRunner:
    def __init__(
        self,
        evaluator: Evaluator,
        runs: RunStore,
        monitors: MonitorStore,
        now: Clock = utcnow,
        reference_freeze: ReferenceFreeze | None = None,
        engines: EngineEvaluators | None = None,
    ) -> None:
        self._evaluator = evaluator
        self._engines = engines
        self._runs = runs
        self._monitors = monitors
        self._now = now
        self._reference_freeze = reference_freeze
        self._subscribers: list[Subscriber] = []
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._inflight: dict[str, RunRecord] = {}  # run id → record, while its evaluation runs
        self._idle = threading.Condition()
        self._closing = False

    def subscribe(self, subscriber: Subscriber) -> None:
        """Called with every live outcome (the composition root wires alerts and labeling)."""
        self._subscribers.append(subscriber)

    def _lock(self, model: str, name: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault((model, name), threading.Lock())

    def run(
        self,
        model: str,
        name: str,
        *,
        window_end: datetime | None = None,
        mode: RunMode = "manual",
        attempt: int = 1,
        wait: bool = True,
        engine: str | None = None,
    ) -> RunOutcome | None:
        """Evaluate ``name`` for the window ending at ``window_end`` (default: now) with ``engine``
        (default: the monitor's own ``engine``). Returns ``None`` only if ``wait`` is False and a
        run of this monitor is in progress. An engine that cannot start (Spark without Java) makes
        a failed run saying so, retried like any other failure."""
        if self._closing:
            log.info("shutting down: not starting a run of %s/%s", model, name)
            return None
        spec = self._monitors.get(model, name)
        end = (window_end or self._now()).astimezone(UTC)
        start = end - parse_duration(spec.window)
        lock = self._lock(model, name)
        if not lock.acquire(blocking=wait):
            log.info("monitor %s/%s is still running; skipping this firing", model, name)
            return None
        try:
            outcome = self._execute(model, spec, (start, end), mode, attempt, engine or spec.engine)
        finally:
            lock.release()
        outcome.live = is_live(spec, mode, end, self._now())
        if outcome.live:
            for subscriber in self._subscribers:
                try:
                    subscriber(outcome)
                except Exception:  # one broken subscriber must not hide findings from the others
                    log.exception("finding subscriber %r failed for run %s", subscriber, outcome.run.id)
        return outcome

    def _execute(
        self,
        model: str,
        spec: MonitorSpec,
        window: tuple[datetime, datetime],
        mode: RunMode,
        attempt: int,
        engine: str,
    ) -> RunOutcome:
        run = self._runs.start(model, spec.name, spec.detector, mode, window, attempt, engine)
        with self._idle:
            self._inflight[run.id] = run
        try:
            return self._evaluate(model, spec, window, run, engine)
        finally:
            with self._idle:
                self._inflight.pop(run.id, None)
                self._idle.notify_all()
            # The window's arrays are freed now; hand the heap they leave back to the OS, or
            # every run adds its arena's free memory to the RSS (see monitor.memory).
            release_free_memory()

    def when_idle(self, action: Callable[[], T]) -> T | None:
        """Run ``action`` only while no monitor run is in progress, holding off new runs until it
        returns (they wait to register); ``None`` without running it when a run is in progress.
        For housekeeping that briefly lowers a shared limit, such as the DuckDB cache release."""
        with self._idle:
            if self._inflight:
                return None
            return action()

    def finish_runs(self, grace: float) -> list[str]:
        """At shutdown: start no new runs, wait up to ``grace`` seconds for the runs in progress,
        and record those still going as ``interrupted`` (their threads are abandoned: the process
        exits). Returns the ids of the interrupted runs."""
        self._closing = True
        deadline = time.monotonic() + max(grace, 0.0)
        with self._idle:
            while self._inflight and (left := deadline - time.monotonic()) > 0:
                self._idle.wait(left)
            stragglers = list(self._inflight.values())
        for run in stragglers:
            try:
                self._runs.interrupt(run, f"server shut down; still running after the {grace:g} s grace")
            except Exception:
                log.exception("could not record run %s as interrupted", run.id)
        if stragglers:
            log.warning(
                "shutdown: %d monitor run(s) still going after %g s recorded as interrupted: %s",
                len(stragglers),
                grace,
                ", ".join(f"{r.model}/{r.monitor}" for r in stragglers),
            )
        return [r.id for r in stragglers]

    def _evaluator_for(self, engine: str) -> Evaluator:
        if engine == "embedded":
            return self._evaluator
        if self._engines is None:
            raise RuntimeError(f"engine {engine!r} is not available in this process")
        return self._engines(engine)

    def _evaluate(
        self, model: str, spec: MonitorSpec, window: tuple[datetime, datetime], run: RunRecord, engine: str
    ) -> RunOutcome:
        started = time.perf_counter()
        try:
            freeze = self._reference_freeze(model, spec.name) if self._reference_freeze is not None else None
            evaluation = self._evaluator_for(engine).evaluate(
                model, spec.detector, spec.params, window, spec.reference, spec.segments, freeze_before=freeze
            )
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.warning("run %s of %s/%s failed: %s", run.id, model, spec.name, error)
            elapsed = time.perf_counter() - started
            self._runs.fail(run, error, duration_ms=elapsed * 1000)
            return RunOutcome(run, spec, error=error, duration_s=elapsed)
        reference = evaluation.reference.description if evaluation.reference else None
        elapsed = time.perf_counter() - started
        self._runs.succeed(
            run,
            evaluation.findings,
            duration_ms=elapsed * 1000,
            config_hash=evaluation.config_hash,
            data_fingerprint=evaluation.data_fingerprint,
            reference=reference,
            rows=evaluation.rows,
            labels=evaluation.labels,
        )
        return RunOutcome(run, spec, evaluation.findings, reference=reference, duration_s=elapsed)

    def rejudge(self, model: str, name: str, now: datetime, label_counter: Callable[[datetime, datetime], int]) -> int:
        """Re-run past windows (within the monitor's ``rejudge`` horizon) whose labels changed
        since they were judged: delayed labels make yesterday's FN rate knowable today."""
        spec = self._monitors.get(model, name)
        if not spec.rejudge:
            return 0
        length = parse_duration(spec.window)
        rerun = 0
        for window_end in schedule_points(spec, now - parse_duration(spec.rejudge), now - timedelta(microseconds=1)):
            judged = self._runs.labels_judged(model, name, window_end)
            if judged is None:
                continue  # never judged live (e.g. before the monitor existed): backfill covers that
            changed = label_counter(window_end - length, window_end) != judged
            if changed and self.run(model, name, window_end=window_end, mode="rejudge") is not None:
                rerun += 1
        return rerun

    def backfill(
        self, model: str, start: datetime, end: datetime, monitors: list[str] | None = None
    ) -> list[RunOutcome]:
        """Replay every scheduled window ending in ``(start, end]`` — recorded, never paging."""
        outcomes: list[RunOutcome] = []
        for name, spec in [(s.name, s) for _, s in self._monitors.list(model)]:
            if monitors and name not in monitors:
                continue
            for window_end in schedule_points(spec, start, end):
                outcome = self.run(model, name, window_end=window_end, mode="backfill")
                if outcome is not None:
                    outcomes.append(outcome)
        return outcomes


def trigger_for(spec: MonitorSpec) -> IntervalTrigger | CronTrigger:
    if spec.cron:
        return CronTrigger.from_crontab(spec.cron, timezone=UTC)
    return IntervalTrigger(
        seconds=parse_duration(spec.every or "1h").total_seconds(),
        timezone=UTC,
        start_date=datetime(2000, 1, 1, tzinfo=UTC),
    )


def schedule_points(spec: MonitorSpec, start: datetime, end: datetime) -> Iterator[datetime]:
    """The window ends a schedule produces in ``(start, end]`` (interval schedules align to the epoch
    of 2000-01-01, so backfills and live runs judge the same windows)."""
    trigger = trigger_for(spec)
    previous = None
    current = start
    for _ in range(MAX_BACKFILL_WINDOWS):
        fire = trigger.get_next_fire_time(previous, current)
        if fire is None or fire > end:
            return
        if fire > start:
            yield fire
        previous, current = fire, fire + timedelta(microseconds=1)
    raise ValueError(f"backfill of more than {MAX_BACKFILL_WINDOWS} windows; narrow the range")


class MonitorScheduler:
    def __init__(
        self,
        runner: MonitorRunner,
        monitors: MonitorStore,
        *,
        now: Clock = utcnow,
        retry_delays: tuple[float, ...] = (60.0, 300.0, 900.0),
        label_counter: Callable[[str, datetime, datetime], int] | None = None,
    ) -> None:
        self._label_counter = label_counter
        self._runner = runner
        self._monitors = monitors
        self._now = now
        self._retry_delays = retry_delays
        self._scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        self._guard = threading.Lock()  # jobs touch the scheduler only under it, and never once stopping
        self._stopping = False

    def start(self) -> None:
        for model, spec in self._monitors.list():
            if spec.enabled:
                self.schedule(model, spec)
        self._scheduler.start()

    def shutdown(self, grace: float = 20.0) -> list[str]:
        """Stop firing, wait at most ``grace`` seconds for runs in progress, and record the runs
        still going as ``interrupted`` (returns their ids). The scheduler is shut down without
        waiting for its jobs: a detector stuck on a huge window must not hold SIGTERM (measured:
        over 60 s). Jobs check ``_stopping`` under ``_guard`` before touching the scheduler, and
        shutdown sets it under the same lock, so a job finishing meanwhile never re-schedules."""
        with self._guard:
            self._stopping = True
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        return self._runner.finish_runs(grace)

    def schedule(self, model: str, spec: MonitorSpec) -> datetime | None:
        """(Re)schedule a monitor; a persisted next run in the past means a run was missed: run it now, once."""
        job_id = f"{model}/{spec.name}"
        if not spec.enabled:
            self.unschedule(model, spec.name)
            return None
        trigger = trigger_for(spec)
        now = self._now()
        persisted = self._monitors.next_run(model, spec.name)
        upcoming = trigger.get_next_fire_time(None, now)
        next_time = now if persisted is not None and persisted <= now else upcoming
        self._scheduler.add_job(
            self._fire,
            trigger,
            id=job_id,
            args=[model, spec.name],
            replace_existing=True,
            next_run_time=next_time,
            name=job_id,
        )
        self._monitors.set_next_run(model, spec.name, next_time)
        return next_time

    def unschedule(self, model: str, name: str) -> None:
        job_id = f"{model}/{name}"
        if self._scheduler.get_job(job_id):
            self._scheduler.remove_job(job_id)

    def jobs(self) -> list[dict[str, str | None]]:
        return [
            {"id": j.id, "next_run_at": j.next_run_time.isoformat() if j.next_run_time else None}
            for j in self._scheduler.get_jobs()
        ]

    def _fire(self, model: str, name: str, window_end: datetime | None = None, attempt: int = 1) -> None:
        try:
            mode: RunMode = "scheduled" if attempt == 1 else "retry"
            end = window_end or self._now().replace(microsecond=0)
            outcome = self._runner.run(model, name, window_end=end, mode=mode, attempt=attempt, wait=False)
            if outcome is not None and attempt == 1 and self._label_counter is not None:
                counter = self._label_counter
                self._runner.rejudge(model, name, end, lambda lo, hi: counter(model, lo, hi))
            retry = outcome is not None and outcome.error is not None and attempt <= len(self._retry_delays)
            with self._guard:
                if self._stopping:
                    return  # shutting down: the persisted next run time covers the restart
                job = self._scheduler.get_job(f"{model}/{name}")
                if retry:
                    delay = self._retry_delays[attempt - 1]
                    self._scheduler.add_job(
                        self._fire,
                        DateTrigger(self._now() + timedelta(seconds=delay)),
                        args=[model, name, end, attempt + 1],
                        id=f"{model}/{name}/retry/{end.isoformat()}",
                        replace_existing=True,
                    )
                    log.info("run of %s/%s failed; retry %d in %.0fs", model, name, attempt, delay)
            if job is not None:
                self._monitors.set_next_run(model, name, job.next_run_time)
        except Exception:  # never let a monitor take the scheduler down
            log.exception("scheduled run of %s/%s crashed", model, name)
