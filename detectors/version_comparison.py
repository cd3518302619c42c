"""Canary comparison: judge a candidate model version against the baseline *in the same window*.

During a gradual rollout both versions serve live traffic at once, so the fairest reference
for the candidate is not last week but the baseline's rows of the very same window: same hour,
same users, same devices. This detector splits the window by ``model_version`` and runs the
existing calibrated detectors with the baseline's rows as the reference and the candidate's as
the current window:

* ``latency`` — :mod:`detectors.latency` (order-statistic intervals of p50/p95);
* ``predictions`` — :mod:`detectors.prediction_drift` (predicted class / value and score);
* ``inputs`` — :mod:`detectors.data_drift` (did the candidate see different inputs? then the
  other comparisons are confounded, and the verdict says so);
* ``performance`` — :mod:`detectors.performance` (realized FP/FN rates …) once both versions
  have ``min_labeled`` labels in the window; before that :mod:`detectors.estimated_performance`
  (confidence-based estimation, calibrated on the baseline's labelled rows of the window) when
  the baseline has enough of them; otherwise the check says it cannot judge yet.

Each sub-finding is kept (metric ``check:metric``, e.g. ``latency:p95``) and one ``decision``
finding gives the verdict a deployment system reads:

* **roll_back** (``critical``) — any check is ``critical``: an established, relevant regression;
* **hold** — any check is ``warning`` (suggestive only; status ``warning``), or either version
  has fewer than ``min_rows`` rows in the window (status ``insufficient_data``: wait, no page);
* **promote** (``ok``) — every check ran and none is worse than ``ok``.

Each sub-detector keeps its own calibrated rule; the decision is their union, so its false
roll-back rate under no change is at most the sum of theirs. Measured in
``bench/canary_quality.py`` (table in docs/detectors.md), checked in
``tests/detectors/test_version_comparison.py``.

>>> from datetime import datetime, timezone
>>> import numpy as np, pyarrow as pa
>>> from detectors import ModelSpec, RunContext, VersionComparison
>>> rng = np.random.default_rng(4)
>>> spec = ModelSpec(task="regression", features={"x": "numeric"})
>>> n = 4000
>>> version = np.where(rng.random(n) < 0.2, "2.0", "1.0")
>>> latency = rng.lognormal(3, 0.3, n) * np.where(version == "2.0", 1.5, 1.0)
>>> x = rng.normal(size=n)
>>> window = pa.table({"model_version": version, "latency_ms": latency, "x": x, "prediction": x + rng.normal(0, 0.1, n)})
>>> detector = VersionComparison()
>>> config = detector.config({"checks": ["latency", "predictions", "inputs"]})
>>> ctx = RunContext("m", datetime(2026, 10, 8, tzinfo=timezone.utc), datetime(2026, 10, 8, 1, tzinfo=timezone.utc))
>>> decision = detector.run(window, detector.prepare_reference(None, spec, config), config, ctx)[-1]
>>> decision.details["decision"], decision.status.value, decision.details["reasons"][0]
('roll_back', 'critical', 'latency:p50 critical (value 30.89, threshold 22.21)')
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from detectors.base import BaseDetector
from detectors.context import RunContext
from detectors.data_drift import DataDrift
from detectors.estimated_performance import EstimatedPerformance
from detectors.finding import Finding, Status
from detectors.latency import Latency
from detectors.performance import Performance
from detectors.prediction_drift import PredictionDrift
from detectors.spec import ModelSpec

CHECKS = ("latency", "predictions", "inputs", "performance")
DECISION_STATUS = {"roll_back": Status.CRITICAL, "promote": Status.OK}


@dataclass(frozen=True)
class VersionComparisonConfig:
    """Parameters of the canary comparison (see the module docstring)."""

    candidate: str | None = None  # default: the version that appeared last in the window
    baseline: str | None = None  # default: the other version with the most rows
    checks: tuple[str, ...] = CHECKS
    min_rows: int = 200  # per version in the window; fewer → hold (insufficient data)
    latency_quantiles: tuple[float, ...] = (0.5, 0.95)
    latency_margin: float = 0.10  # tolerated relative slowdown
    min_labeled: int = 200  # labelled rows per version before realized performance is compared
    segments: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = sorted(set(self.checks) - set(CHECKS))
        if unknown or not self.checks:
            raise ValueError(f"checks must be some of {list(CHECKS)} (unknown: {unknown})")
        if self.min_rows < 30 or self.min_labeled < 30:
            raise ValueError("min_rows and min_labeled must be at least 30")
        if self.candidate is not None and self.candidate == self.baseline:
            raise ValueError("candidate and baseline must be different versions")


@dataclass(frozen=True)
class _Prepared:
    spec: ModelSpec


class VersionComparison(BaseDetector):
    """Candidate vs baseline model version in the same window: promote / hold / roll back."""

    name: ClassVar[str] = "version_comparison"
    config_type: ClassVar[type] = VersionComparisonConfig
    needs_reference: ClassVar[bool] = False  # the baseline's rows of the same window are the reference

    def prepare_reference(self, reference: Any, spec: ModelSpec, config: Any = None) -> _Prepared:
        return _Prepared(spec)

    def run(self, current: pa.Table, reference: _Prepared, config: Any, context: RunContext) -> list[Finding]:
        cfg: VersionComparisonConfig = self.config(config)
        spec = reference.spec
        candidate, baseline, rows = _versions(current, cfg)
        if candidate is None or baseline is None:
            return [
                self._decision(
                    context,
                    None,
                    Status.INSUFFICIENT_DATA,
                    None,
                    None,
                    ["no canary: the window holds only one model version"],
                    rows,
                    {},
                )
            ]
        version = current.column("model_version")
        cand = current.filter(pc.equal(version, candidate))
        base = current.filter(pc.equal(version, baseline))
        ctx = dataclasses.replace(context, reference=f"model version {baseline}, same window", model_version=candidate)
        if cand.num_rows < cfg.min_rows or base.num_rows < cfg.min_rows:
            reason = (
                f"too few rows to compare: {cand.num_rows} of {candidate}, {base.num_rows} of {baseline} "
                f"(min_rows {cfg.min_rows})"
            )
            return [self._decision(ctx, "hold", Status.INSUFFICIENT_DATA, candidate, baseline, [reason], rows, {})]
        findings: list[Finding] = []
        checked: dict[str, str] = {}
        notes: list[str] = []
        for check in cfg.checks:
            got, note = self._check(check, cand, base, spec, cfg, ctx)
            if note:
                notes.append(f"{check}: {note}")
                checked[check] = "not judged"
                continue
            findings += [_relabel(f, check, baseline) for f in got]
            checked[check] = _worst(got).value if got else "not judged"
        critical = [f for f in findings if f.status is Status.CRITICAL]
        warnings = [f for f in findings if f.status is Status.WARNING]
        if critical:
            decision, status, named = "roll_back", Status.CRITICAL, critical
        elif warnings:
            decision, status, named = "hold", Status.WARNING, warnings
        else:
            decision, status, named = "promote", Status.OK, []
        reasons = [_reason(f) for f in named] + notes
        if decision == "promote":
            reasons.insert(0, "no check shows the candidate worse than the baseline")
        findings.append(self._decision(ctx, decision, status, candidate, baseline, reasons, rows, checked))
        return findings

    def _check(
        self,
        check: str,
        cand: pa.Table,
        base: pa.Table,
        spec: ModelSpec,
        cfg: VersionComparisonConfig,
        ctx: RunContext,
    ) -> tuple[list[Finding], str | None]:
        """One check's findings, or why it could not judge."""
        segments = list(cfg.segments)
        if check == "latency":
            if "latency_ms" not in cand.column_names:
                return [], "no latency_ms column"
            latency = Latency()
            lcfg = latency.config(
                {
                    "quantiles": list(cfg.latency_quantiles),
                    "margin": cfg.latency_margin,
                    "by_version": False,
                    "segments": segments,
                }
            )
            return latency.run(cand, latency.prepare_reference(base, spec, lcfg), lcfg, ctx), None
        if check == "predictions":
            drift = PredictionDrift()
            pcfg = drift.config({"segments": segments})
            return drift.run(cand, drift.prepare_reference(base, spec, pcfg), pcfg, ctx), None
        if check == "inputs":
            if not spec.features:
                return [], "the model has no features"
            inputs = DataDrift()
            icfg = inputs.config({"segments": segments})
            return inputs.run(cand, inputs.prepare_reference(base, spec, icfg), icfg, ctx), None
        # performance: realized where both versions have labels, else estimated
        if "label" not in cand.column_names:
            return [], "no labels in the window"
        cand_labelled = int(pc.sum(pc.is_valid(cand.column("label"))).as_py() or 0)
        labelled_base = base.filter(pc.is_valid(base.column("label")))
        base_labelled = labelled_base.num_rows
        if cand_labelled >= cfg.min_labeled and base_labelled >= cfg.min_labeled:
            realized = Performance()
            rcfg = realized.config({"min_coverage": 0.0, "min_labeled": cfg.min_labeled, "segments": segments})
            return realized.run(cand, realized.prepare_reference(labelled_base, spec, rcfg), rcfg, ctx), None
        estimated = EstimatedPerformance()
        ecfg = estimated.config({"segments": segments})
        if base_labelled < ecfg.min_reference_labeled or spec.task.value == "regression":
            return [], (
                f"not judged yet: {cand_labelled} labelled rows of the candidate, {base_labelled} of the baseline "
                f"(realized needs {cfg.min_labeled} each; estimated needs {ecfg.min_reference_labeled} of the baseline)"
            )
        return estimated.run(cand, estimated.prepare_reference(labelled_base, spec, ecfg), ecfg, ctx), None

    def _decision(
        self,
        ctx: RunContext,
        decision: str | None,
        status: Status,
        candidate: str | None,
        baseline: str | None,
        reasons: list[str],
        rows: dict[str, int],
        checked: dict[str, str],
    ) -> Finding:
        return ctx.finding(
            self.name,
            metric="decision",
            status=status,
            model_version=candidate,
            n_current=rows.get(candidate or "", 0),
            n_reference=rows.get(baseline or "", 0),
            details={
                "decision": decision,
                "candidate": candidate,
                "baseline": baseline,
                "reasons": reasons,
                "rows_by_version": rows,
                "checks": checked,
            },
        )


def _versions(table: pa.Table, cfg: VersionComparisonConfig) -> tuple[str | None, str | None, dict[str, int]]:
    """(candidate, baseline, rows per version): configured, else the version that appeared last
    and the largest other one."""
    if table.num_rows == 0 or "model_version" not in table.column_names:
        return None, None, {}
    aggregates = [("model_version", "count")]
    if "timestamp" in table.column_names:
        aggregates.append(("timestamp", "min"))
    grouped = [r for r in table.group_by("model_version").aggregate(aggregates).to_pylist() if r["model_version"]]
    rows = {str(r["model_version"]): int(r["model_version_count"]) for r in grouped}
    if len(rows) < 2 and not (cfg.candidate and cfg.baseline):
        return None, None, rows
    candidate = cfg.candidate
    if candidate is None:
        if "timestamp" in table.column_names:
            firsts = {str(r["model_version"]): r["timestamp_min"] for r in grouped}
            candidate = max(firsts, key=lambda v: (firsts[v], v))
        else:
            candidate = min(rows, key=lambda v: (rows[v], v))  # without times: the smaller share
    baseline = cfg.baseline
    if baseline is None:
        others = {v: n for v, n in rows.items() if v != candidate}
        baseline = max(others, key=lambda v: (others[v], v)) if others else None
    return candidate, baseline, rows


def _relabel(finding: Finding, check: str, baseline: str) -> Finding:
    return dataclasses.replace(
        finding,
        detector=VersionComparison.name,
        metric=f"{check}:{finding.metric}",
        details={**finding.details, "check": check, "detector": finding.detector, "baseline": baseline},
    )


def _worst(findings: list[Finding]) -> Status:
    order = [Status.CRITICAL, Status.WARNING, Status.OK, Status.INSUFFICIENT_DATA, Status.NO_DATA]
    present = {f.status for f in findings}
    return next((s for s in order if s in present), Status.NO_DATA)


def _reason(finding: Finding) -> str:
    where = f" [{', '.join(f'{k}={v}' for k, v in finding.segment.items())}]" if finding.segment else ""
    column = f" {finding.column}" if finding.column else ""
    numbers = ""
    if finding.value is not None and finding.threshold is not None:
        numbers = f" (value {finding.value:.4g}, threshold {finding.threshold:.4g})"
    elif finding.value is not None:
        numbers = f" (value {finding.value:.4g})"
    return f"{finding.metric}{column}{where} {finding.status.value}{numbers}"


__all__ = ["CHECKS", "VersionComparison", "VersionComparisonConfig"]
