"""Monitor definitions: which detector runs on which model, how often, over which window,
against which reference, and where its alerts go (in the spirit of Prometheus rules).

A definition is validated completely when it is saved — detector name, detector parameters
(typos included), segments, reference, schedule — so a bad monitor is refused with a clear
error instead of failing at 3 a.m.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from detectors import DETECTORS, get_detector
from monitor.clock import Clock, utcnow
from monitor.db import Database
from monitor.errors import FieldError, InvalidInput, NotFound
from monitor.names import COLUMN_NAME, MODEL_NAME
from monitor.references import ReferenceSpec, parse_duration
from monitor.registry import Registry

Severity = Literal["info", "warning", "critical"]
FireOn = Literal["critical", "warning", "no_data"]
DEFAULT_FIRE_ON: tuple[FireOn, ...] = ("critical", "no_data")
DetectorName = Literal[
    "data_drift",
    "prediction_drift",
    "label_drift",
    "performance",
    "estimated_performance",
    "multivariate_drift",
    "embedding_drift",
    "latency",
    "version_comparison",
    "data_quality",
    "volume",
    "freshness",
]
MAX_FOR_WINDOWS = 100
CRON_SAMPLE_RUNS = 200


@lru_cache(maxsize=256)
def cron_min_gap(cron: str) -> timedelta:
    """The shortest gap between consecutive runs of ``cron`` over its first runs after 2000-01-01
    (a fixed sample, so the answer never depends on when it is asked)."""
    from apscheduler.triggers.cron import CronTrigger

    trigger = CronTrigger.from_crontab(cron, timezone="UTC")
    previous = trigger.get_next_fire_time(None, datetime(2000, 1, 1, tzinfo=UTC))
    gaps: list[timedelta] = []
    for _ in range(CRON_SAMPLE_RUNS):
        if previous is None:
            break
        following = trigger.get_next_fire_time(previous, previous + timedelta(microseconds=1))
        if following is None:
            break
        gaps.append(following - previous)
        previous = following
    return min(gaps) if gaps else timedelta(0)


#: Labels a route may group alerts by (``segment.<name>`` too), as in Alertmanager's ``group_by``.
GROUP_LABELS: tuple[str, ...] = ("model", "monitor", "detector", "severity", "column", "metric", "model_version")
DEFAULT_GROUP_BY: tuple[str, ...] = ("model", "monitor")
RECEIVER_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


class RouteSpec(BaseModel):
    """Where a monitor's alerts go and how they are grouped and repeated (Alertmanager's timers).

    Alerts with equal ``group_by`` labels going to the same channel form one group: one
    message, updated in place as alerts join, resolve or are acknowledged.
    """

    model_config = ConfigDict(extra="forbid")

    slack_channel: str | None = None
    group_by: list[str] = Field(default_factory=lambda: list(DEFAULT_GROUP_BY))
    runbook: str | None = Field(default=None, max_length=2000)
    owner: str | None = Field(default=None, max_length=200)
    group_wait: str = "30s"
    group_interval: str = "5m"
    repeat_interval: str = "4h"
    #: Receivers by name (``slack``, ``pagerduty``, a routing file's ``webhook-ml`` …): this
    #: monitor's alerts go to exactly these, bypassing the routing tree (docs/alerting.md).
    receivers: list[str] | None = None

    @field_validator("receivers")
    @classmethod
    def _receivers(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("receivers is empty: leave it out to use the routing tree")
        for name in value:
            if not RECEIVER_NAME.match(name):
                raise ValueError(f"receiver name {name!r}: 1-64 lowercase letters, digits, '-', '_' or '.'")
        if len(set(value)) != len(value):
            raise ValueError("receivers lists a name twice")
        return value

    @field_validator("group_wait", "group_interval", "repeat_interval")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("group_by")
    @classmethod
    def _group_by(cls, value: list[str]) -> list[str]:
        for label in value:
            segment = label.removeprefix("segment.")
            if label not in GROUP_LABELS and not (label.startswith("segment.") and COLUMN_NAME.match(segment)):
                raise ValueError(f"cannot group by {label!r}: use any of {', '.join(GROUP_LABELS)} or segment.<name>")
        if len(set(value)) != len(value):
            raise ValueError("group_by lists a label twice")
        return value

    @field_validator("runbook")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("runbook must be an http(s) URL")
        return value


class MonitorSpec(BaseModel):
    """One monitor, as written in YAML.

    ``for`` (how long a condition must stay bad before it fires) and ``keep_firing_for`` (how
    long it must stay clearly ok before a firing alert resolves) are durations of data time,
    e.g. ``30m``. A bare integer ``for: N`` (the first release's "N consecutive bad windows")
    still validates and means ``(N − 1)`` schedule periods; both keep the form they were written in.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str
    detector: DetectorName
    every: str | None = None
    cron: str | None = None
    window: str = "1h"
    reference: ReferenceSpec | None = None
    segments: list[str] = Field(default_factory=list)
    params: dict[str, Any] = Field(default_factory=dict)
    for_: int | str = Field(default=1, alias="for")
    keep_firing_for: str | None = None
    severity: Severity = "warning"
    fire_on: list[FireOn] = Field(default_factory=lambda: list(DEFAULT_FIRE_ON))
    route: RouteSpec = Field(default_factory=RouteSpec)
    enabled: bool = True
    rejudge: str | None = None  # e.g. 3d: re-judge past windows this recent when late labels arrive
    #: Where scheduled (and manual, retry, rejudge) runs read their windows: ``embedded`` (DuckDB in
    #: the server) or ``spark`` (the sealed Parquet plus the window's hot rows, read by the server's
    #: Spark session — ``LOOPWATCH_SPARK_MASTER``); the same findings either way (docs/spark.md).
    engine: Literal["embedded", "spark"] = "embedded"

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not MODEL_NAME.match(value):
            raise ValueError("must be 1-64 characters: lowercase letters, digits, '-' or '_'")
        return value

    @field_validator("every", "window", "rejudge", "keep_firing_for")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @field_validator("for_", mode="before")
    @classmethod
    def _for(cls, value: Any) -> int | str:
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 1:
                raise ValueError(
                    "a count of windows must be greater than or equal to 1 (or give a duration such as 30m)"
                )
            if value > MAX_FOR_WINDOWS:
                raise ValueError(f"a count of windows must be at most {MAX_FOR_WINDOWS} (or give a duration)")
            return value
        if isinstance(value, str):
            parse_duration(value)
            return value.strip()
        raise ValueError("for is a duration such as 30m (or, as before, a count of windows)")

    def period(self) -> timedelta:
        """The schedule's period: ``every``, or for a cron the shortest gap between its runs."""
        if self.every is not None:
            return parse_duration(self.every)
        return cron_min_gap(self.cron or "")

    def for_duration(self) -> timedelta:
        """``for`` in data time. ``for: N`` (windows) → ``(N − 1) × period()``: N consecutive
        windows span that much from the first one's end to the last one's. For a cron schedule
        the period is its *shortest* gap, so N consecutive windows always suffice (across a longer
        gap, e.g. a weekend, fewer may)."""
        if isinstance(self.for_, str):
            return parse_duration(self.for_)
        return (max(int(self.for_), 1) - 1) * self.period()

    def keep_firing_duration(self) -> timedelta:
        return parse_duration(self.keep_firing_for) if self.keep_firing_for else timedelta(0)

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            from apscheduler.triggers.cron import CronTrigger

            try:
                CronTrigger.from_crontab(value, timezone="UTC")
            except ValueError as exc:
                raise ValueError(f"cron {value!r} is not valid: {exc}") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> MonitorSpec:
        if (self.every is None) == (self.cron is None):
            raise ValueError("give exactly one of every (e.g. 15m) or cron (e.g. '*/15 * * * *')")
        if self.reference is None and get_detector(self.detector).needs_reference:
            raise ValueError(
                f"detector {self.detector} needs a reference (window, trailing, dataset or previous_version)"
            )
        try:
            params = {k: v for k, v in self.params.items() if k != "history_days"}
            get_detector(self.detector).config({**params, "segments": self.segments})
        except (ValueError, TypeError) as exc:
            raise ValueError(f"params: {exc}") from None
        return self

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, exclude_none=True)


class MonitorFile(BaseModel):
    """A YAML file of monitors for one model (``loopwatch monitors apply``)."""

    model_config = ConfigDict(extra="forbid")
    model: str
    monitors: list[MonitorSpec]


def parse_monitor(data: Any, index: int | None = None) -> MonitorSpec:
    """Validate one monitor, turning pydantic's errors into field errors that name the monitor."""
    try:
        return MonitorSpec.model_validate(data)
    except ValidationError as exc:
        name = data.get("name") if isinstance(data, dict) else None
        where = f"monitors[{index}]" if index is not None else "monitor"
        errors = [
            FieldError(
                field=".".join([where, *(str(p) for p in e["loc"])]), reason=e["msg"].removeprefix("Value error, ")
            )
            for e in exc.errors()
        ]
        raise InvalidInput(f"monitor {name or index or ''} is not valid".replace("  ", " "), errors) from None


class MonitorStore:
    """Monitors per model in the database; the scheduler reads them from here at start-up."""

    def __init__(self, db: Database, registry: Registry, now: Clock = utcnow) -> None:
        self._db = db
        self._registry = registry
        self._now = now
        #: Set by the alert pipeline: raises ValueError for a route naming unknown receivers.
        self.route_check: Callable[[RouteSpec], None] | None = None

    def save(self, model: str, spec: MonitorSpec) -> tuple[MonitorSpec, bool]:
        """Create or replace a monitor; returns (spec, created)."""
        return spec, self.save_all(model, [spec])[0]

    def segment_errors(self, model: str, spec: MonitorSpec, where: str = "segments") -> list[FieldError]:
        """The monitor's segments the model does not have (checked before anything is saved)."""
        registered = self._registry.get(model)
        unknown = [s for s in spec.segments if s not in registered.schema.segments]
        if not unknown:
            return []
        return [
            FieldError(
                field=where, reason=f"{unknown} are not segments of model {model} ({registered.schema.segments})"
            )
        ]

    def route_errors(self, spec: MonitorSpec, where: str = "route.receivers") -> list[FieldError]:
        """Receivers the monitor's route names that are not configured (see ``route_check``)."""
        if self.route_check is None or not spec.route.receivers:
            return []
        try:
            self.route_check(spec.route)
        except ValueError as exc:
            return [FieldError(field=where, reason=str(exc))]
        return []

    def save_all(self, model: str, specs: list[MonitorSpec]) -> list[bool]:
        """Create or replace several monitors in one transaction: all are saved or none (a
        half-applied file would start firing the monitors before its first mistake). Returns,
        per monitor, whether it was created."""
        registered = self._registry.get(model)
        errors = [e for spec in specs for e in self.segment_errors(model, spec, f"{spec.name}.segments")]
        errors += [e for spec in specs for e in self.route_errors(spec, f"{spec.name}.route.receivers")]
        if errors:
            raise InvalidInput("monitors are not valid, none was saved", errors)
        now = self._now()
        created: list[bool] = []
        with self._db.transaction() as cur:
            for spec in specs:
                existed = cur.execute(
                    "SELECT 1 FROM monitors WHERE model_id = ? AND name = ?", [registered.id, spec.name]
                ).fetchall()
                cur.execute(
                    "INSERT INTO monitors VALUES (?, ?, ?, ?, ?, NULL) ON CONFLICT (model_id, name) DO UPDATE SET "
                    "spec = excluded.spec, updated_at = excluded.updated_at",
                    [registered.id, spec.name, spec.to_json(), now, now],
                ).fetchall()
                created.append(not existed)
        return created

    def get(self, model: str, name: str) -> MonitorSpec:
        registered = self._registry.get(model)
        row = self._db.query_one("SELECT spec FROM monitors WHERE model_id = ? AND name = ?", [registered.id, name])
        if row is None:
            raise NotFound(f"model {model} has no monitor {name!r}")
        return MonitorSpec.model_validate_json(row[0])

    def list(self, model: str | None = None) -> list[tuple[str, MonitorSpec]]:
        sql = "SELECT m.name, x.spec FROM monitors x JOIN models m ON m.id = x.model_id"
        params: list[Any] = []
        if model is not None:
            sql += " WHERE m.name = ?"
            params.append(model)
            self._registry.get(model)
        rows = self._db.query(sql + " ORDER BY m.name, x.name", params)
        return [(m, MonitorSpec.model_validate_json(spec)) for m, spec in rows]

    def delete(self, model: str, name: str) -> None:
        registered = self._registry.get(model)
        with self._db.transaction() as cur:
            gone = cur.execute(
                "DELETE FROM monitors WHERE model_id = ? AND name = ? RETURNING name", [registered.id, name]
            ).fetchall()
        if not gone:
            raise NotFound(f"model {model} has no monitor {name!r}")

    def next_run(self, model: str, name: str) -> datetime | None:
        registered = self._registry.get(model)
        row = self._db.query_one(
            "SELECT next_run_at FROM monitors WHERE model_id = ? AND name = ?", [registered.id, name]
        )
        return row[0] if row else None

    def set_next_run(self, model: str, name: str, at: datetime | None) -> None:
        """Persisted so a restarted scheduler knows a run was missed (and runs it once)."""
        registered = self._registry.get(model)
        with self._db.transaction() as cur:
            cur.execute(
                "UPDATE monitors SET next_run_at = ? WHERE model_id = ? AND name = ?", [at, registered.id, name]
            ).fetchall()


def monitor_summary(model: str, spec: MonitorSpec) -> dict[str, Any]:
    return {"model": model, **json.loads(spec.to_json())}


__all__ = ["DETECTORS", "MonitorFile", "MonitorSpec", "MonitorStore", "RouteSpec", "parse_monitor"]
