"""Data quality: missing columns, rising null rates, out-of-range values, unseen categories.

Ingestion already refuses rows that violate the schema; what it cannot refuse is data
that is *valid but wrong*: a sensor that starts sending nulls, a unit change that puts
speeds out of the range ever seen, a new firmware emitting a category the model never
saw. Per feature (and per segment value):

* ``schema`` — the column is absent from the window or has an incompatible type
  (``critical``);
* ``null_rate`` — Newcombe interval of (current − reference) null share; ``critical`` when
  its lower end exceeds ``max_null_rate_increase``, ``warning`` when only the point does;
* ``out_of_range`` (numeric) — share of values outside the reference [min, max] (±inf
  included); ``critical`` when the Wilson lower bound exceeds ``max_out_of_range_share``;
* ``unseen_categories`` (categorical/boolean) — share of values never seen in the
  reference, same rule with ``max_unseen_share``; the top new values are in ``details``.

>>> from datetime import datetime, timezone
>>> import numpy as np, pyarrow as pa
>>> from detectors import DataQuality, ModelSpec, RunContext
>>> rng = np.random.default_rng(4)
>>> spec = ModelSpec(task="binary", classes=("n", "y"), features={"speed": "numeric", "road": "categorical"})
>>> ref = pa.table({"speed": rng.uniform(0, 130, 5000), "road": rng.choice(["urban", "rural"], 5000)})
>>> speed = rng.uniform(0, 130, 2000)
>>> speed[:300] = speed[:300] / 3.6 * 10           # a unit bug in 15% of rows
>>> road = rng.choice(["urban", "rural", "gravel", None], 2000, p=[0.4, 0.4, 0.05, 0.15])
>>> detector = DataQuality()
>>> ctx = RunContext("braking", datetime(2026, 10, 8, tzinfo=timezone.utc),
...                  datetime(2026, 10, 8, 1, tzinfo=timezone.utc))
>>> for f in detector.run(pa.table({"speed": speed, "road": road}), detector.prepare_reference(ref, spec), None, ctx):
...     print(f.column, f.metric, f.status.value)
speed null_rate ok
speed out_of_range critical
road null_rate critical
road unseen_categories critical
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from detectors.base import BaseDetector, Segment, SegmentKey, min_rows_for, segment_key, segment_slices
from detectors.context import RunContext
from detectors.finding import Finding, Status
from detectors.spec import FeatureKind, ModelSpec
from detectors.stats.columns import to_numpy, value_counts
from detectors.stats.intervals import newcombe_difference, wilson, z_value

#: Unseen values listed in a finding's details.
TOP_UNSEEN = 20


@dataclass(frozen=True)
class DataQualityConfig:
    """Thresholds of the data quality detector."""

    columns: tuple[str, ...] | None = None
    max_null_rate_increase: float = 0.05
    max_out_of_range_share: float = 0.01
    max_unseen_share: float = 0.01
    confidence: float = 0.95
    min_rows: int = 30
    min_segment_rows: int = 100
    segments: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        z_value(self.confidence)


@dataclass(frozen=True)
class ColumnProfile:
    """What the reference says is normal for one column."""

    rows: int
    nulls: int
    minimum: float | None = None
    maximum: float | None = None
    categories: frozenset[Any] | None = None


@dataclass(frozen=True, eq=False)
class DataQualityReference:
    spec: ModelSpec
    profiles: dict[SegmentKey, dict[str, ColumnProfile]]
    columns: tuple[str, ...]
    segments: tuple[str, ...]


def _is_numeric_type(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def _compatible(kind: FeatureKind, t: pa.DataType) -> bool:
    if pa.types.is_null(t):
        return True  # an all-null batch has no type to speak of; null_rate reports it
    if pa.types.is_dictionary(t):
        t = t.value_type
    if kind is FeatureKind.NUMERIC:
        return _is_numeric_type(t) or pa.types.is_boolean(t)
    if kind is FeatureKind.BOOLEAN:
        return pa.types.is_boolean(t)
    if kind is FeatureKind.TEXT:
        return pa.types.is_string(t) or pa.types.is_large_string(t)
    return True  # categorical: strings, ints and bools are all fine


def _nulls(column: pa.ChunkedArray) -> int:
    nulls = column.null_count
    if pa.types.is_floating(column.type) and len(column):
        nulls += int(np.isnan(to_numpy(column)).sum()) - column.null_count
    return int(nulls)


def profile(column: pa.ChunkedArray, kind: FeatureKind) -> ColumnProfile:
    """Reference profile of a column."""
    rows, nulls = len(column), _nulls(column)
    if kind is FeatureKind.NUMERIC and _is_numeric_type(column.type) and rows > nulls:
        values = to_numpy(column.cast(pa.float64()))
        finite = values[np.isfinite(values)]
        if finite.size:
            return ColumnProfile(rows, nulls, float(finite.min()), float(finite.max()))
        return ColumnProfile(rows, nulls)
    if kind in (FeatureKind.CATEGORICAL, FeatureKind.BOOLEAN):
        keys, _, _ = value_counts(column)
        return ColumnProfile(rows, nulls, categories=frozenset(keys))
    return ColumnProfile(rows, nulls)


class DataQuality(BaseDetector):
    """Schema, null-rate, range and category checks against the reference profile."""

    name: ClassVar[str] = "data_quality"
    config_type: ClassVar[type] = DataQualityConfig

    def prepare_reference(self, reference: pa.Table, spec: ModelSpec, config: Any = None) -> DataQualityReference:
        cfg: DataQualityConfig = self.config(config)
        columns = tuple(c for c in spec.features if cfg.columns is None or c in cfg.columns)
        profiles: dict[SegmentKey, dict[str, ColumnProfile]] = {}
        for segment, part in segment_slices(reference, cfg.segments):
            profiles[segment_key(segment)] = {
                c: profile(part.column(c), spec.features[c]) for c in columns if c in part.column_names
            }
        return DataQualityReference(spec, profiles, columns, tuple(cfg.segments))

    def run(
        self, current: pa.Table, reference: DataQualityReference, config: Any, context: RunContext
    ) -> list[Finding]:
        cfg: DataQualityConfig = self.config(config)
        findings: list[Finding] = []
        for segment, part in segment_slices(current, reference.segments):
            profiles = reference.profiles.get(segment_key(segment), {})
            minimum = min_rows_for(segment, cfg.min_rows, cfg.min_segment_rows)
            for name in reference.columns:
                findings += self._column(name, segment, part, profiles.get(name), minimum, reference, cfg, context)
        return findings

    def _column(
        self, name: str, segment: Segment, part: pa.Table, ref: ColumnProfile | None, minimum: int,
        reference: DataQualityReference, cfg: DataQualityConfig, context: RunContext,
    ) -> list[Finding]:
        kind = reference.spec.features[name]
        common: dict[str, Any] = {"segment": segment, "column": name}
        if name not in part.column_names:
            return [context.finding(
                self.name, metric="schema", status=Status.CRITICAL, n_current=part.num_rows,
                details={"reason": "column missing from the window", "kind": kind.value}, **common,
            )]
        column = part.column(name)
        if not _compatible(kind, column.type):
            return [context.finding(
                self.name, metric="schema", status=Status.CRITICAL, n_current=part.num_rows,
                details={"reason": f"type {column.type} does not fit a {kind.value} feature"}, **common,
            )]
        rows = len(column)
        if ref is None or rows < minimum or ref.rows < minimum:
            side = "current" if rows < minimum else "reference"
            return [context.finding(
                self.name, metric="null_rate", status=Status.INSUFFICIENT_DATA, n_current=rows,
                n_reference=ref.rows if ref else 0,
                details={"reason": f"{side} window has fewer than {minimum} rows"}, **common,
            )]
        out = [self._null_rate(column, ref, cfg, context, common)]
        if kind is FeatureKind.NUMERIC and ref.minimum is not None and _is_numeric_type(column.type):
            out.append(self._out_of_range(column, ref, cfg, context, common))
        elif kind in (FeatureKind.CATEGORICAL, FeatureKind.BOOLEAN) and ref.categories is not None:
            out.append(self._unseen(column, ref, cfg, context, common))
        return out

    def _null_rate(
        self, column: pa.ChunkedArray, ref: ColumnProfile, cfg: DataQualityConfig, context: RunContext,
        common: dict[str, Any],
    ) -> Finding:
        nulls, rows = _nulls(column), len(column)
        d, lo, _ = newcombe_difference(nulls, rows, ref.nulls, ref.rows, cfg.confidence)
        limit = cfg.max_null_rate_increase
        status = Status.CRITICAL if lo > limit else Status.WARNING if d > limit else Status.OK
        return context.finding(
            self.name, metric="null_rate", status=status, value=nulls / rows,
            threshold=ref.nulls / ref.rows + limit, effect_size=d, n_current=rows, n_reference=ref.rows,
            details={"reference_value": ref.nulls / ref.rows, "difference_ci_low": lo, "nulls": nulls}, **common,
        )

    def _share_finding(
        self, metric: str, hits: int, n: int, limit: float, cfg: DataQualityConfig, context: RunContext,
        common: dict[str, Any], details: dict[str, Any], n_reference: int,
    ) -> Finding:
        if n == 0:
            return context.finding(
                self.name, metric=metric, status=Status.INSUFFICIENT_DATA, n_reference=n_reference,
                details={"reason": "no non-null values", **details}, **common,
            )
        lo, hi = wilson(hits, n, cfg.confidence)
        share = hits / n
        status = Status.CRITICAL if lo > limit else Status.WARNING if share > limit else Status.OK
        return context.finding(
            self.name, metric=metric, status=status, value=share, threshold=limit, effect_size=share,
            n_current=n, n_reference=n_reference, details={"count": hits, "ci": [lo, hi], **details}, **common,
        )

    def _out_of_range(
        self, column: pa.ChunkedArray, ref: ColumnProfile, cfg: DataQualityConfig, context: RunContext,
        common: dict[str, Any],
    ) -> Finding:
        values = to_numpy(column.cast(pa.float64()))
        values = values[~np.isnan(values)]
        outside = (values < ref.minimum) | (values > ref.maximum)
        return self._share_finding(
            "out_of_range", int(outside.sum()), int(values.size), cfg.max_out_of_range_share, cfg, context, common,
            {"reference_min": ref.minimum, "reference_max": ref.maximum,
             "below": int((values < ref.minimum).sum()), "above": int((values > ref.maximum).sum())},
            ref.rows - ref.nulls,
        )

    def _unseen(
        self, column: pa.ChunkedArray, ref: ColumnProfile, cfg: DataQualityConfig, context: RunContext,
        common: dict[str, Any],
    ) -> Finding:
        assert ref.categories is not None
        keys, counts, _ = value_counts(column)
        unseen = sorted(
            ((k, int(c)) for k, c in zip(keys, counts.tolist(), strict=True) if k not in ref.categories),
            key=lambda kc: -kc[1],
        )
        return self._share_finding(
            "unseen_categories", sum(c for _, c in unseen), int(counts.sum()), cfg.max_unseen_share, cfg, context,
            common, {"unseen": [{"value": str(k), "count": c} for k, c in unseen[:TOP_UNSEEN]],
                     "reference_categories": len(ref.categories)},
            ref.rows - ref.nulls,
        )
