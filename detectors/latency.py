"""Latency regression: did p50/p95/p99 get slower than the reference, beyond noise?

Each quantile gets a distribution-free confidence interval from order statistics (the
number of observations below a true quantile is binomial, so no resampling and no
normality assumption). Rule, with ``margin`` the tolerated relative slowdown:

* ``critical`` if the current interval's *lower* end exceeds the reference interval's
  *upper* end × (1 + margin) — the regression is established;
* ``warning`` if only the point estimate exceeds reference × (1 + margin) — a noisy
  window shows up on the dashboard but does not page anyone;
* ``ok`` otherwise; ``insufficient_data`` below ``min_rows`` latencies.

When the window holds several model versions (a rollout), versions are examined in order
of first appearance and the first one that is itself ``critical`` is named as where the
regression began (``Finding.model_version`` and ``details["regression_began_at_version"]``).

>>> from datetime import datetime, timezone
>>> import numpy as np, pyarrow as pa
>>> from detectors import Latency, ModelSpec, RunContext
>>> rng = np.random.default_rng(2)
>>> spec = ModelSpec(task="regression")
>>> ref = pa.table({"latency_ms": rng.lognormal(3, 0.4, 20000), "model_version": ["v1"] * 20000})
>>> cur = pa.table({"latency_ms": np.concatenate([rng.lognormal(3, 0.4, 1500), 1.3 * rng.lognormal(3, 0.4, 1500)]),
...                 "model_version": ["v1"] * 1500 + ["v2"] * 1500})
>>> detector = Latency()
>>> ctx = RunContext("braking", datetime(2026, 10, 8, tzinfo=timezone.utc),
...                  datetime(2026, 10, 8, 1, tzinfo=timezone.utc), reference="v1, trailing 7d")
>>> for f in detector.run(cur, detector.prepare_reference(ref, spec), None, ctx):
...     print(f.metric, f.status.value, f.model_version)
p50 critical v2
p95 critical v2
p99 warning None
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from detectors.base import BaseDetector, Segment, SegmentKey, min_rows_for, segment_key, segment_slices
from detectors.context import RunContext
from detectors.finding import Finding, Status
from detectors.spec import ModelSpec
from detectors.stats.columns import numeric_values
from detectors.stats.intervals import quantile_interval, z_value
from detectors.stats.summary import sorted_quantile


@dataclass(frozen=True)
class LatencyConfig:
    """Parameters of the latency detector."""

    quantiles: tuple[float, ...] = (0.5, 0.95, 0.99)
    margin: float = 0.10
    confidence: float = 0.95
    min_rows: int = 50
    min_segment_rows: int = 100
    segments: tuple[str, ...] = ()
    by_version: bool = True
    column: str = "latency_ms"

    def __post_init__(self) -> None:
        if not self.quantiles or any(not 0 < q < 1 for q in self.quantiles):
            raise ValueError("quantiles must be in (0, 1)")
        if self.margin < 0:
            raise ValueError("margin must be non-negative")
        z_value(self.confidence)


@dataclass(frozen=True, eq=False)
class LatencyReference:
    """Sorted reference latencies per segment value."""

    spec: ModelSpec
    sorted_values: dict[SegmentKey, np.ndarray]
    segments: tuple[str, ...]
    column: str


def _latencies(table: pa.Table, column: str) -> np.ndarray:
    if column not in table.column_names or table.num_rows == 0:
        return np.empty(0)
    values, _ = numeric_values(table.column(column))
    return np.sort(values[values >= 0])


def _metric(q: float) -> str:
    return f"p{q * 100:g}"


@dataclass(frozen=True)
class _QuantileVerdict:
    status: Status
    value: float
    reference: float
    threshold: float
    current_ci: tuple[float, float]
    reference_ci: tuple[float, float]


def _judge(cur: np.ndarray, ref: np.ndarray, q: float, cfg: LatencyConfig) -> _QuantileVerdict:
    value, reference = sorted_quantile(cur, q), sorted_quantile(ref, q)
    cur_ci = quantile_interval(cur, q, cfg.confidence)
    ref_ci = quantile_interval(ref, q, cfg.confidence)
    threshold = reference * (1 + cfg.margin)
    if cur_ci[0] > ref_ci[1] * (1 + cfg.margin):
        status = Status.CRITICAL
    elif value > threshold:
        status = Status.WARNING
    else:
        status = Status.OK
    return _QuantileVerdict(status, value, reference, threshold, cur_ci, ref_ci)


def _versions_in_order(table: pa.Table) -> list[tuple[str | None, pa.Table]]:
    """Model versions of the window in order of first appearance (by timestamp when present)."""
    if "model_version" not in table.column_names or table.num_rows == 0:
        return []
    versions = table.column("model_version")
    if "timestamp" in table.column_names:
        order = pc.sort_indices(table, sort_keys=[("timestamp", "ascending")])
        versions = versions.take(order)
    first_seen = list(dict.fromkeys(versions.to_pylist()))
    out = []
    for version in first_seen:
        mask = pc.is_null(table.column("model_version")) if version is None else pc.fill_null(
            pc.equal(table.column("model_version"), version), False)
        out.append((version, table.filter(mask)))
    return out


class Latency(BaseDetector):
    """p50/p95/p99 latency vs the reference with order-statistic intervals."""

    name: ClassVar[str] = "latency"
    config_type: ClassVar[type] = LatencyConfig

    def prepare_reference(self, reference: pa.Table, spec: ModelSpec, config: Any = None) -> LatencyReference:
        cfg: LatencyConfig = self.config(config)
        values = {segment_key(seg): _latencies(part, cfg.column) for seg, part in segment_slices(reference, cfg.segments)}
        return LatencyReference(spec, values, tuple(cfg.segments), cfg.column)

    def run(self, current: pa.Table, reference: LatencyReference, config: Any, context: RunContext) -> list[Finding]:
        cfg: LatencyConfig = self.config(config)
        findings: list[Finding] = []
        for segment, part in segment_slices(current, reference.segments):
            findings += self._slice(segment, part, reference, cfg, context)
        return findings

    def _slice(
        self, segment: Segment, part: pa.Table, reference: LatencyReference, cfg: LatencyConfig, context: RunContext
    ) -> list[Finding]:
        cur = _latencies(part, reference.column)
        ref = reference.sorted_values.get(segment_key(segment), np.empty(0))
        minimum = min_rows_for(segment, cfg.min_rows, cfg.min_segment_rows)
        if cur.size < minimum or ref.size < minimum:
            side = "current" if cur.size < minimum else "reference"
            return [
                context.finding(
                    self.name, metric=_metric(q), segment=segment, status=Status.INSUFFICIENT_DATA,
                    value=sorted_quantile(cur, q) if cur.size else None,
                    n_current=cur.size, n_reference=ref.size,
                    details={"reason": f"{side} window has fewer than {minimum} latencies"},
                )
                for q in cfg.quantiles
            ]
        versions = self._per_version(part, ref, minimum, cfg) if cfg.by_version else []
        out = []
        for q in cfg.quantiles:
            verdict = _judge(cur, ref, q, cfg)
            began = None
            if verdict.status is Status.CRITICAL:
                began = next((v["version"] for v in versions if v["status"][_metric(q)] == "critical"), None)
            details: dict[str, Any] = {
                "reference_value": verdict.reference,
                "current_ci": list(verdict.current_ci),
                "reference_ci": list(verdict.reference_ci),
                "confidence": cfg.confidence,
                "margin": cfg.margin,
                "ratio": verdict.value / verdict.reference if verdict.reference else None,
            }
            if versions:
                details["versions"] = [
                    {"version": v["version"], "n": v["n"], "value": v["values"][_metric(q)],
                     "status": v["status"][_metric(q)]} for v in versions
                ]
            if began is not None:
                details["regression_began_at_version"] = began
            out.append(context.finding(
                self.name, metric=_metric(q), segment=segment, status=verdict.status, value=verdict.value,
                threshold=verdict.threshold,
                effect_size=verdict.value / verdict.reference - 1 if verdict.reference else None,
                n_current=cur.size, n_reference=ref.size, details=details,
                **({"model_version": began} if began is not None else {}),
            ))
        return out

    def _per_version(self, part: pa.Table, ref: np.ndarray, minimum: int, cfg: LatencyConfig) -> list[dict[str, Any]]:
        out = []
        for version, rows in _versions_in_order(part):
            values = _latencies(rows, cfg.column)
            entry: dict[str, Any] = {"version": version, "n": int(values.size), "values": {}, "status": {}}
            for q in cfg.quantiles:
                if values.size >= minimum:
                    verdict = _judge(values, ref, q, cfg)
                    entry["values"][_metric(q)] = verdict.value
                    entry["status"][_metric(q)] = verdict.status.value
                else:
                    entry["values"][_metric(q)] = sorted_quantile(values, q) if values.size else None
                    entry["status"][_metric(q)] = Status.INSUFFICIENT_DATA.value
            out.append(entry)
        return out
