"""Volume: did the number of predictions drop or spike vs the same hour on past days?

Traffic is seasonal, so the comparison is with the same hour of previous days (the monitor
passes those counts in; the detector does no queries). Expected volume is the median of
that history, robust to one odd day. A window is anomalous only when all three agree:

1. the ratio ``count / expected`` is outside ``[1 − drop, 1 + spike]``;
2. a Poisson tail test rejects "same rate" at ``alpha`` (small counts are noisy);
3. the count is more than ``robust_z`` robust standard deviations (1.4826·MAD) from the
   median, when the history varies at all (real traffic is over-dispersed vs Poisson).

A drop is ``critical`` (something upstream is broken), a spike ``warning`` (may be real
traffic). Fewer than ``min_history`` past values → ``insufficient_data``.

>>> from datetime import datetime, timezone
>>> from detectors import ModelSpec, RunContext, Volume, VolumeCounts
>>> detector = Volume()
>>> history = detector.prepare_reference(VolumeCounts(total=[980, 1010, 1050, 995, 1020, 990, 1005]),
...                                      ModelSpec(task="binary", classes=("a", "b")))
>>> ctx = RunContext("braking", datetime(2026, 10, 8, 14, tzinfo=timezone.utc),
...                  datetime(2026, 10, 8, 15, tzinfo=timezone.utc))
>>> [(f.status.value, round(f.value, 2)) for f in detector.run(VolumeCounts(total=310), history, None, ctx)]
[('critical', 0.31)]
>>> [(f.status.value, round(f.value, 2)) for f in detector.run(VolumeCounts(total=1030), history, None, ctx)]
[('ok', 1.02)]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from detectors.base import BaseDetector, InputKind, Segment
from detectors.context import RunContext
from detectors.finding import Finding, Status
from detectors.spec import ModelSpec


@dataclass(frozen=True)
class VolumeCounts:
    """Row counts: one int for the current window, or a sequence of past counts for the reference.

    ``by_segment`` maps a segment column to {segment value: count(s)} for per-segment checks.
    """

    total: int | Sequence[int]
    by_segment: Mapping[str, Mapping[Any, int | Sequence[int]]] = field(default_factory=dict)


@dataclass(frozen=True)
class VolumeConfig:
    """Thresholds of the volume detector."""

    drop: float = 0.5
    spike: float = 1.0
    alpha: float = 0.01
    robust_z: float = 3.0
    min_history: int = 3
    min_expected: float = 1.0
    spike_status: str = "warning"
    segments: tuple[str, ...] | None = None  # judge only these by_segment columns (None = all given)

    def __post_init__(self) -> None:
        if not 0 < self.drop <= 1 or self.spike <= 0:
            raise ValueError("drop must be in (0, 1] and spike positive")
        Status(self.spike_status)


@dataclass(frozen=True)
class History:
    """Past counts of one series and their robust centre and spread."""

    counts: tuple[int, ...]
    median: float
    mad: float


@dataclass(frozen=True, eq=False)
class VolumeReference:
    spec: ModelSpec
    total: History
    by_segment: dict[tuple[str, Any], History]


def _history(values: int | Sequence[int]) -> History:
    counts = (int(values),) if isinstance(values, int | np.integer) else tuple(int(v) for v in values)
    if not counts:
        return History((), float("nan"), float("nan"))
    arr = np.asarray(counts, dtype=np.float64)
    median = float(np.median(arr))
    return History(counts, median, float(np.median(np.abs(arr - median))))


def _poisson_tail(count: int, expected: float, lower: bool) -> float:
    from scipy.stats import poisson

    return float(poisson.cdf(count, expected) if lower else poisson.sf(count - 1, expected))


class Volume(BaseDetector):
    """Prediction count vs the same hour on past days."""

    name: ClassVar[str] = "volume"
    input_kind: ClassVar[InputKind] = "counts"
    config_type: ClassVar[type] = VolumeConfig
    needs_reference: ClassVar[bool] = False  # compares with history (the same hours on past days), not a reference

    def prepare_reference(self, reference: VolumeCounts, spec: ModelSpec, config: Any = None) -> VolumeReference:
        self.config(config)
        segments = {
            (column, value): _history(counts)
            for column, values in reference.by_segment.items()
            for value, counts in values.items()
        }
        return VolumeReference(spec, _history(reference.total), segments)

    def run(self, current: VolumeCounts, reference: VolumeReference, config: Any, context: RunContext) -> list[Finding]:
        cfg: VolumeConfig = self.config(config)
        total = current.total if isinstance(current.total, int | np.integer) else sum(current.total)
        findings = [self._judge(int(total), reference.total, None, cfg, context)]
        seen = set()
        wanted = {c: v for c, v in current.by_segment.items() if cfg.segments is None or c in cfg.segments}
        for column, values in wanted.items():
            for value, count in values.items():
                seen.add((column, value))
                history = reference.by_segment.get((column, value), History((), float("nan"), float("nan")))
                n = count if isinstance(count, int | np.integer) else sum(count)
                findings.append(self._judge(int(n), history, {column: value}, cfg, context))
        for (column, value), history in sorted(reference.by_segment.items(), key=lambda kv: str(kv[0])):
            if (column, value) not in seen and column in wanted:
                findings.append(self._judge(0, history, {column: value}, cfg, context))  # segment went silent
        return findings

    def _judge(
        self, count: int, history: History, segment: Segment, cfg: VolumeConfig, context: RunContext
    ) -> Finding:
        details: dict[str, Any] = {"count": count, "history": list(history.counts), "expected": history.median}
        if len(history.counts) < cfg.min_history or not history.median >= cfg.min_expected:
            return context.finding(
                self.name, metric="volume_ratio", segment=segment, status=Status.INSUFFICIENT_DATA,
                n_current=count, n_reference=len(history.counts),
                details={**details, "reason": f"needs {cfg.min_history} past counts with a median of at least "
                                              f"{cfg.min_expected:g}"},
            )
        expected = history.median
        ratio = count / expected
        low = ratio < 1 - cfg.drop
        high = ratio > 1 + cfg.spike
        p_value = _poisson_tail(count, expected, lower=count < expected)
        spread = 1.4826 * history.mad
        robust = abs(count - expected) / spread if spread > 0 else float("inf")
        details.update({"robust_z": robust if np.isfinite(robust) else None, "mad": history.mad})
        status = Status.OK
        if (low or high) and p_value < cfg.alpha and robust > cfg.robust_z:
            status = Status.CRITICAL if low else Status(cfg.spike_status)
            details["direction"] = "drop" if low else "spike"
        return context.finding(
            self.name, metric="volume_ratio", segment=segment, status=status, value=ratio,
            threshold=(1 - cfg.drop) if count < expected else (1 + cfg.spike), p_value=p_value,
            effect_size=ratio - 1, n_current=count, n_reference=len(history.counts), details=details,
        )
