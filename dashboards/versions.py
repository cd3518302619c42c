"""Two model versions side by side over one time range: what the comparison view reads.

* **volume and labels**: exact counts per version from the store (``PredictionStore.stats``,
  the same numbers as ``GET /v1/models/{model}/stats``); hourly bars from the rollups.
* **latency p50/p95, prediction/score distributions, realized performance, drift**: from each
  version's rows of the range, read once per version with ``PredictionStore.reference_sample``
  (only the columns needed). Up to :data:`ROW_CAP` rows a version is read whole, so every
  number is exact; beyond it a uniform sample of about that many rows is read (the page says
  so) — a page view must not materialise months of raw log.
* **drift between them**: the detectors' own calibrated rules, version A's rows as the
  reference and B's as the current window (``data_drift`` over the features,
  ``prediction_drift`` over prediction and score). Both versions' traffic must come from the
  same period for this to isolate the model (a canary); otherwise time confounds it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from dashboards.data import TimeRange, drift_ratio
from dashboards.rates import Quality, model_spec, quality
from detectors.context import RunContext
from detectors.data_drift import DataDrift
from detectors.finding import Finding
from detectors.prediction_drift import PredictionDrift
from detectors.sampling import SAMPLE_KEY, sample_rates
from detectors.spec import ModelSpec
from detectors.stats.intervals import newcombe_difference

if TYPE_CHECKING:
    from monitor.service import Loopwatch

ROW_CAP = 250_000


@dataclass(frozen=True)
class VersionTraffic:
    """A version's exact predictions and labels in the range (``PredictionStore.stats``)."""

    version: str
    predictions: int
    labels: int


@dataclass(frozen=True)
class VersionSide:
    """One version's numbers over the range."""

    version: str
    predictions: int  # exact
    labels: int  # exact
    rows_read: int  # rows behind the statistics below (all of them unless ``sampled``)
    sampled: bool
    latency_n: int
    latency_p50: float | None
    latency_p95: float | None
    quality: Quality


@dataclass(frozen=True)
class DriftRow:
    """One column's drift, B against A (the detector's finding, flattened)."""

    column: str
    method: str
    value: float | None
    threshold: float | None
    status: str
    n_a: int | None
    n_b: int | None
    p_value: float | None = None  # adjusted across the columns tested together, if a test ran
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        return drift_ratio(self.method, self.value, self.threshold)


@dataclass(frozen=True)
class RateDifference:
    """B − A of one rate, with Newcombe's interval for the difference of two proportions."""

    metric: str
    diff: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class Comparison:
    model: str
    span: TimeRange
    cls: str | None
    a: VersionSide
    b: VersionSide
    differences: dict[str, RateDifference]
    outputs: list[DriftRow]  # prediction, score
    inputs: list[DriftRow]  # features


def traffic(service: Loopwatch, model: str, span: TimeRange) -> list[VersionTraffic]:
    """Versions with predictions in the range, in order of their first prediction in it."""
    stats = service.store.stats(model, span.start, span.end)
    return [
        VersionTraffic(str(v["model_version"]), int(v["predictions"]), int(v["labels"]))
        for v in stats["by_version"]
        if v["predictions"]
    ]


def default_pair(available: list[VersionTraffic]) -> tuple[str | None, str | None]:
    """The two most recent versions with traffic: (older, newer), or Nones when there are fewer."""
    if len(available) < 2:
        return (None, available[0].version if available else None)
    return available[-2].version, available[-1].version


def compare(
    service: Loopwatch, model: str, span: TimeRange, a: str, b: str, cls: str | None, available: list[VersionTraffic]
) -> Comparison:
    """Everything the comparison view shows for versions ``a`` and ``b`` (see the module docstring)."""
    registered = service.registry.get(model)
    spec = model_spec(registered.schema)
    counts = {t.version: t for t in available}
    tables = {v: _rows(service, model, span, v, spec) for v in (a, b)}
    sides = {v: _side(v, counts.get(v), tables[v], spec, cls) for v in (a, b)}
    differences = {}
    for metric, rate_b in sides[b].quality.rates.items():
        rate_a = sides[a].quality.rates.get(metric)
        if rate_a is None or not rate_a.n or not rate_b.n:
            differences[metric] = RateDifference(metric, None, None, None)
            continue
        d, lo, hi = newcombe_difference(rate_b.hits, rate_b.n, rate_a.hits, rate_a.n)
        differences[metric] = RateDifference(metric, d, lo, hi)
    context = RunContext(model, span.start, span.end, reference=f"model version {a}", model_version=b)
    outputs = _drift(PredictionDrift(), tables[a], tables[b], spec, context)
    inputs = _drift(DataDrift(), tables[a], tables[b], spec, context)
    return Comparison(model, span, cls, sides[a], sides[b], differences, outputs, inputs)


def _rows(service: Loopwatch, model: str, span: TimeRange, version: str, spec: ModelSpec) -> pa.Table:
    columns = [*spec.features, "prediction", "score", "latency_ms", "model_version"]
    return service.store.reference_sample(
        model, span.start, span.end, segments=[], cap=ROW_CAP, model_version=version, columns=columns
    )


def _side(
    version: str, counted: VersionTraffic | None, table: pa.Table, spec: ModelSpec, cls: str | None
) -> VersionSide:
    sampled = sample_rates(table) is not None
    latency = _floats(table, "latency_ms")
    p50, p95 = (float(np.percentile(latency, 50)), float(np.percentile(latency, 95))) if latency.size else (None, None)
    return VersionSide(
        version=version,
        predictions=counted.predictions if counted else 0,
        labels=counted.labels if counted else 0,
        rows_read=table.num_rows,
        sampled=sampled,
        latency_n=int(latency.size),
        latency_p50=p50,
        latency_p95=p95,
        quality=quality(_plain(table), spec, cls),
    )


def _floats(table: pa.Table, name: str) -> np.ndarray:
    if name not in table.column_names or table.num_rows == 0:
        return np.empty(0)
    values = table.column(name).to_numpy(zero_copy_only=False).astype(float)
    return values[np.isfinite(values)]


def _plain(table: pa.Table) -> pa.Table:
    """The rows without the sampling key (a sample is uniform here: no segments were asked for)."""
    return table.drop_columns([SAMPLE_KEY]) if SAMPLE_KEY in table.column_names else table


def _drift(
    detector: DataDrift | PredictionDrift, a: pa.Table, b: pa.Table, spec: ModelSpec, context: RunContext
) -> list[DriftRow]:
    if a.num_rows == 0 or b.num_rows == 0:
        return []
    config = detector.config({"segments": []})
    reference = detector.prepare_reference(_plain(a), spec, config)
    findings: list[Finding] = detector.run(_plain(b), reference, config, context)
    return [
        DriftRow(
            column=f.column,
            method=f.metric,
            value=f.value,
            threshold=f.threshold,
            status=f.status.value,
            n_a=f.n_reference,
            n_b=f.n_current,
            p_value=f.p_value_adjusted if f.p_value_adjusted is not None else f.p_value,
            details=dict(f.details or {}),
        )
        for f in findings
        if f.column is not None and f.segment is None
    ]


def first_seen(versions: list[dict[str, Any]]) -> dict[str, datetime | str | None]:
    """When each version was first seen (registry), to label the pickers."""
    return {str(v["version"]): v.get("first_seen") for v in versions}
