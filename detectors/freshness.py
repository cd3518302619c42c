"""Freshness: has the model stopped logging predictions?

The monitor passes the time the last prediction was seen (overall and, optionally, per
segment value); "now" is the run's ``window_end`` — the detector never reads a clock.
Silent longer than ``max_silence_minutes`` → a ``no_data`` finding (the alert pipeline
treats it as bad). Never seen at all → ``no_data`` with no value.

>>> from datetime import datetime, timezone
>>> from detectors import Freshness, LastSeen, ModelSpec, RunContext
>>> detector = Freshness()
>>> ctx = RunContext("braking", datetime(2026, 10, 8, 14, tzinfo=timezone.utc),
...                  datetime(2026, 10, 8, 15, tzinfo=timezone.utc))
>>> ref = detector.prepare_reference(None, ModelSpec(task="regression"))
>>> f, = detector.run(LastSeen(datetime(2026, 10, 8, 14, 10, tzinfo=timezone.utc)), ref, None, ctx)
>>> f.status.value, f.value
('no_data', 50.0)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from detectors.base import BaseDetector, InputKind, Segment
from detectors.context import RunContext
from detectors.finding import Finding, Status
from detectors.spec import ModelSpec


@dataclass(frozen=True)
class LastSeen:
    """Time of the latest prediction (``None`` = never), overall and per segment value."""

    at: datetime | None
    by_segment: Mapping[str, Mapping[Any, datetime | None]] = field(default_factory=dict)


@dataclass(frozen=True)
class FreshnessConfig:
    """How long a model may stay silent."""

    max_silence_minutes: float = 30.0
    segments: tuple[str, ...] | None = None  # judge only these by_segment columns (None = all given)

    def __post_init__(self) -> None:
        if self.max_silence_minutes <= 0:
            raise ValueError("max_silence_minutes must be positive")


@dataclass(frozen=True)
class FreshnessReference:
    """Freshness needs no reference statistics; kept for the uniform interface."""

    spec: ModelSpec


class Freshness(BaseDetector):
    """Minutes since the last prediction vs ``max_silence_minutes``."""

    name: ClassVar[str] = "freshness"
    input_kind: ClassVar[InputKind] = "last_seen"
    config_type: ClassVar[type] = FreshnessConfig
    needs_reference: ClassVar[bool] = False  # compares with a silence limit, not a reference

    def prepare_reference(self, reference: Any, spec: ModelSpec, config: Any = None) -> FreshnessReference:
        self.config(config)
        return FreshnessReference(spec)

    def run(self, current: LastSeen | None, reference: FreshnessReference, config: Any,
            context: RunContext) -> list[Finding]:
        cfg: FreshnessConfig = self.config(config)
        current = current if current is not None else LastSeen(None)
        findings = [self._judge(current.at, None, cfg, context)]
        for column, values in current.by_segment.items():
            if cfg.segments is not None and column not in cfg.segments:
                continue
            for value, at in sorted(values.items(), key=lambda kv: str(kv[0])):
                findings.append(self._judge(at, {column: value}, cfg, context))
        return findings

    def _judge(self, at: datetime | None, segment: Segment, cfg: FreshnessConfig, context: RunContext) -> Finding:
        if at is None:
            return context.finding(
                self.name, metric="minutes_since_last_prediction", segment=segment, status=Status.NO_DATA,
                threshold=cfg.max_silence_minutes, details={"last_seen": None, "reason": "never seen"},
            )
        silence = (context.window_end - at).total_seconds() / 60
        status = Status.NO_DATA if silence > cfg.max_silence_minutes else Status.OK
        return context.finding(
            self.name, metric="minutes_since_last_prediction", segment=segment, status=status,
            value=max(silence, 0.0), threshold=cfg.max_silence_minutes, details={"last_seen": at.isoformat()},
        )
