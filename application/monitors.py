"""Monitors: apply a file of them (all or nothing), list, delete, run now, and backfill.

A backfill is planned before it runs: the windows each monitor's schedule produces in the range
are counted and those holding no predictions are skipped (one grouped scan of the range), so a
range with no data costs one query, not thousands of detector runs recording ``no_data``. The
plan is what ``loopwatch backfill --dry-run`` prints and what the progress bar counts.
"""

from __future__ import annotations

import bisect
import builtins
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol

from monitor.clock import iso_z
from monitor.errors import FieldError, InvalidInput
from monitor.monitors import MonitorSpec, monitor_summary, parse_monitor
from monitor.references import parse_duration
from monitor.scheduling import RunOutcome, backfill_summary, outcome_summary, schedule_points

if TYPE_CHECKING:
    from monitor.service import Loopwatch

Engine = Literal["embedded", "spark"]
ENGINES: tuple[Engine, ...] = ("embedded", "spark")

# Detectors whose finding on an empty window is the point (a volume drop, a silent source):
# their empty windows run once the model has sent data at all, not before.
ABSENCE_DETECTORS = frozenset({"volume", "freshness"})
# Planned runs per request when the CLI drives a backfill through a server in steps.
BACKFILL_STEP_RUNS = 25


class Scheduling(Protocol):
    """The server's scheduler, told when monitors change (absent in the offline CLI)."""

    def schedule(self, model: str, spec: MonitorSpec) -> object: ...
    def unschedule(self, model: str, name: str) -> None: ...


@dataclass(frozen=True)
class MonitorPlan:
    """One monitor's share of a backfill: the window ends it will run and what it skips."""

    monitor: str
    detector: str
    windows: int  # scheduled windows ending in (start, end]
    ends: builtins.list[datetime]  # those that will run
    skipped_empty: int  # windows holding no predictions, not run

    def to_dict(self, *, with_ends: bool = False) -> dict[str, Any]:
        out = {
            "monitor": self.monitor,
            "detector": self.detector,
            "windows": self.windows,
            "runs": len(self.ends),
            "skipped_empty": self.skipped_empty,
            "first": iso_z(self.ends[0]) if self.ends else None,
            "last": iso_z(self.ends[-1]) if self.ends else None,
        }
        if with_ends:  # what a caller driving the backfill in steps cuts its requests from
            out["ends"] = [iso_z(e) for e in self.ends]
        return out


@dataclass(frozen=True)
class BackfillPlan:
    model: str
    start: datetime
    end: datetime
    include_empty: bool
    monitors: builtins.list[MonitorPlan] = field(default_factory=list)

    @property
    def runs(self) -> int:
        return sum(len(m.ends) for m in self.monitors)

    @property
    def windows(self) -> int:
        return sum(m.windows for m in self.monitors)

    @property
    def skipped_empty(self) -> int:
        return sum(m.skipped_empty for m in self.monitors)

    def warnings(self) -> builtins.list[str]:
        """What a person should know before it runs."""
        if not self.monitors:
            return [f"model {self.model} has no monitors to backfill"]
        if self.windows and not self.runs:
            return [
                f"no predictions of {self.model} in the range: all {self.windows} windows are empty, nothing to run"
            ]
        if self.skipped_empty:
            return [f"{self.skipped_empty} of {self.windows} windows hold no predictions and are skipped"]
        return []

    def to_dict(self, *, with_ends: bool = False) -> dict[str, Any]:
        return {
            "model": self.model,
            "from": iso_z(self.start),
            "to": iso_z(self.end),
            "windows": self.windows,
            "runs": self.runs,
            "skipped_empty": self.skipped_empty,
            "include_empty": self.include_empty,
            "monitors": [m.to_dict(with_ends=with_ends) for m in self.monitors],
            "warnings": self.warnings(),
        }


class _Occupancy:
    """Which windows hold predictions, from the sorted minutes that do (window edges off the
    minute count the edge minute as occupied: a window is skipped only if surely empty)."""

    def __init__(self, minutes: builtins.list[datetime]) -> None:
        self._minutes = minutes

    def any_in(self, start: datetime, end: datetime) -> bool:
        floor = start.replace(second=0, microsecond=0)
        i = bisect.bisect_left(self._minutes, floor)
        return i < len(self._minutes) and self._minutes[i] < end

    @property
    def first(self) -> datetime | None:
        return self._minutes[0] if self._minutes else None


class MonitorOps:
    def __init__(self, service: Loopwatch, scheduler: Scheduling | None = None) -> None:
        self._service = service
        self._scheduler = scheduler

    def close(self) -> None:
        """Stop the Spark session a backfill or a scheduled run started (nothing to do for the
        embedded engine)."""
        self._service.spark.close()

    def _spark(self, master: str | None, conf: dict[str, str] | None, sealed_uri: str | None = None) -> dict[str, Any]:
        """Start (or reuse) the Spark engine for a backfill: the server's settings, with this
        backfill's master, extra settings and sealed-file mirror over them; 503 naming what to
        install when this machine cannot run Spark. Hot rows of the range are read too (see
        monitor/engines/spark.py)."""
        from monitor.engines.spark import SparkOptions, require_spark
        from monitor.settings import normalize_sealed_uri

        if sealed_uri is not None:
            try:
                sealed_uri = normalize_sealed_uri(sealed_uri)
            except ValueError as exc:
                raise InvalidInput(
                    "invalid sealed-file mirror", [FieldError(field="spark_sealed_uri", reason=str(exc))]
                ) from None
        require_spark()
        base = SparkOptions.from_settings(self._service.settings, master, sealed_uri)
        merged = {**dict(base.conf), **(conf or {})}
        options = SparkOptions(
            master=base.master,
            driver_memory=base.driver_memory,
            conf=tuple(sorted(merged.items())),
            sealed_uri=base.sealed_uri,
        )
        return self._service.spark.get(options).describe()

    def attach_scheduler(self, scheduler: Scheduling | None) -> None:
        self._scheduler = scheduler

    # --- declare -------------------------------------------------------------------------

    def validate(self, model: str, items: builtins.list[Any], *, single: bool = False) -> builtins.list[MonitorSpec]:
        """Every monitor checked, every mistake reported at once (one InvalidInput naming each
        monitor and field); nothing is saved by this."""
        self._service.registry.get(model)  # 404 for an unknown model before anything else
        if not items:
            raise InvalidInput("no monitors given", [FieldError(field="monitors", reason="the list is empty")])
        specs: builtins.list[MonitorSpec] = []
        errors: builtins.list[FieldError] = []
        seen: set[str] = set()
        for i, item in enumerate(items):
            where = "monitor" if single else f"monitors[{i}]"
            try:
                spec = parse_monitor(item, None if single else i)
            except InvalidInput as exc:
                errors.extend(exc.errors)
                continue
            if spec.name in seen:
                reason = f"{spec.name!r} is declared twice (monitors are keyed by name)"
                errors.append(FieldError(field=f"{where}.name", reason=reason))
            seen.add(spec.name)
            errors.extend(self._service.monitors.segment_errors(model, spec, f"{where}.segments"))
            errors.extend(self._service.monitors.route_errors(spec, f"{where}.route.receivers"))
            errors.extend(_engine_errors(spec, f"{where}.engine"))
            specs.append(spec)
        if errors:
            count = len(errors)
            raise InvalidInput(
                f"monitors are not valid, none was saved: {count} error{'s' if count != 1 else ''}", errors
            )
        return specs

    def apply(self, actor: str, model: str, items: builtins.list[Any], *, single: bool = False) -> dict[str, Any]:
        """Create or replace the monitors: all are validated first, then saved in one
        transaction — all or nothing — and (in a server) scheduled."""
        specs = self.validate(model, items, single=single)
        created = self._service.monitors.save_all(model, specs)
        for spec, is_new in zip(specs, created, strict=True):
            if self._scheduler is not None:
                self._scheduler.schedule(model, spec)
            self._service.audit.record(actor, "monitor.saved", f"{model}/{spec.name}", {"created": is_new})
        return {
            "monitors": [
                {**monitor_summary(model, s), "created": is_new} for s, is_new in zip(specs, created, strict=True)
            ],
            "created": sum(created),
            "updated": len(created) - sum(created),
        }

    def list(self, model: str | None = None) -> builtins.list[dict[str, Any]]:
        monitors = self._service.monitors
        return [
            {
                **monitor_summary(m, s),
                "next_run_at": (n.isoformat() if (n := monitors.next_run(m, s.name)) else None),
            }
            for m, s in monitors.list(model)
        ]

    def delete(self, actor: str, model: str, name: str) -> None:
        """Remove a monitor (its past runs and findings stay); a server stops scheduling it."""
        self._service.monitors.delete(model, name)
        if self._scheduler is not None:
            self._scheduler.unschedule(model, name)
        self._service.audit.record(actor, "monitor.deleted", f"{model}/{name}")

    # --- run -----------------------------------------------------------------------------

    def run(self, actor: str, model: str, name: str, at: datetime | None) -> dict[str, Any]:
        """Run now (or for the window ending ``at``). A live run's findings reach alerting in a
        server; a past window is recorded but leaves live alert state alone."""
        self._service.monitors.get(model, name)
        outcome = self._service.runner.run(model, name, window_end=at, mode="manual")
        self._service.audit.record(actor, "monitor.run", f"{model}/{name}", {"at": iso_z(at) if at else None})
        return outcome_summary(outcome)

    def plan_backfill(
        self,
        model: str,
        start: datetime,
        end: datetime,
        monitors: builtins.list[str] | None = None,
        *,
        include_empty: bool = False,
    ) -> BackfillPlan:
        """The windows a backfill of ``(start, end]`` will run, per monitor, skipping windows
        without predictions (unless ``include_empty``); volume and freshness monitors keep their
        empty windows once the model has sent any data, since silence is what they judge."""
        if end <= start:
            raise InvalidInput("empty range", [FieldError(field="to", reason="must be after from")])
        chosen = [s for _, s in self._service.monitors.list(model) if not monitors or s.name in monitors]
        unknown = sorted(set(monitors or []) - {s.name for s in chosen})
        if unknown:
            raise InvalidInput(
                "unknown monitors",
                [FieldError(field="monitors", reason=f"model {model} has no monitor {n!r}") for n in unknown],
            )
        plans: builtins.list[tuple[MonitorSpec, builtins.list[datetime]]] = []
        try:
            for spec in chosen:
                plans.append((spec, list(schedule_points(spec, start, end))))
        except ValueError as exc:
            raise InvalidInput("backfill range too long", [FieldError(field="from", reason=str(exc))]) from None
        longest = max((parse_duration(s.window) for s in chosen), default=timedelta(0))
        occupancy = None
        if not include_empty and plans:
            occupancy = _Occupancy(self._service.store.minutes_with_data(model, start - longest, end))
        seen_before = None
        result: builtins.list[MonitorPlan] = []
        for spec, ends in plans:
            window = parse_duration(spec.window)
            if occupancy is None:
                run = ends
            elif spec.detector in ABSENCE_DETECTORS:
                if seen_before is None:
                    seen_before = self._service.store.last_seen(model, before=start - longest)["at"] is not None
                first = None if seen_before else occupancy.first
                run = [e for e in ends if seen_before or (first is not None and first < e)]
            else:
                run = [e for e in ends if occupancy.any_in(e - window, e)]
            result.append(MonitorPlan(spec.name, spec.detector, len(ends), run, len(ends) - len(run)))
        return BackfillPlan(model, start, end, include_empty, result)

    def backfill(
        self,
        actor: str,
        plan: BackfillPlan,
        progress: Callable[[RunOutcome], None] | None = None,
        *,
        engine: Engine | None = None,
        spark_master: str | None = None,
        spark_conf: dict[str, str] | None = None,
        spark_sealed_uri: str | None = None,
    ) -> dict[str, Any]:
        """Run a plan's windows (mode ``backfill``: recorded, never paging); ``progress`` is
        called after each run. ``engine``: ``embedded`` (DuckDB in this process), ``spark`` (the
        sealed Parquet plus the range's hot rows read by Spark at ``spark_master`` — default the
        ``spark_master`` setting — with extra ``spark_conf`` settings, the sealed files read from
        the mirror at ``spark_sealed_uri`` (default the ``spark_sealed_uri`` setting; ``None`` and no
        setting: the local files); the same detectors and run records), or ``None``: each monitor's
        own ``engine``. The Spark options are ignored when no monitor of the plan runs on Spark."""
        if engine is not None and engine not in ENGINES:
            reason = f"unknown engine {engine!r}; one of {', '.join(ENGINES)}"
            raise InvalidInput("unknown engine", [FieldError(field="engine", reason=reason)])
        specs = {s.name: s for _, s in self._service.monitors.list(plan.model)}
        chosen = {m.monitor: engine or specs[m.monitor].engine for m in plan.monitors if m.monitor in specs}
        used = sorted(set(chosen.values())) or [engine or "embedded"]
        described: dict[str, Any] = {"engine": used[0] if len(used) == 1 else "per monitor"}
        if "spark" in used:
            described = {**self._spark(spark_master, spark_conf, spark_sealed_uri), "engine": described["engine"]}
        outcomes: builtins.list[RunOutcome] = []
        runner = self._service.runner
        for monitor in plan.monitors:
            for window_end in monitor.ends:
                outcome = runner.run(
                    plan.model,
                    monitor.monitor,
                    window_end=window_end,
                    mode="backfill",
                    engine=chosen.get(monitor.monitor),
                )
                if outcome is not None:
                    outcomes.append(outcome)
                    if progress is not None:
                        progress(outcome)
        self._service.audit.record(
            actor,
            "monitor.backfill",
            plan.model,
            {
                "from": iso_z(plan.start),
                "to": iso_z(plan.end),
                "runs": len(outcomes),
                "skipped_empty": plan.skipped_empty,
                **described,
            },
        )
        return {
            **backfill_summary(outcomes),
            "skipped_empty": plan.skipped_empty,
            "windows": plan.windows,
            **described,
        }


def _engine_errors(spec: MonitorSpec, where: str) -> builtins.list[FieldError]:
    """A monitor asking for Spark where Spark cannot start is refused when saved (not at its first
    scheduled run at 3 a.m.), saying what to install."""
    if spec.engine != "spark":
        return []
    from monitor.engines.spark import missing_requirements

    missing = missing_requirements()
    return [] if missing is None else [FieldError(field=where, reason=f"the Spark engine cannot run here: {missing}")]
