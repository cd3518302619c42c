"""Realized classification rates with their 95% intervals, from a labelled slice of rows.

Shared by the model-version comparison and the per-segment drill-down. The counts come from
the performance detector's own sufficient statistics (:func:`detectors.performance.slice_stats`:
one-vs-rest confusion counts, invalid labels dropped) and the intervals from the same Wilson
score interval the detector judges by (:func:`detectors.stats.intervals.wilson`), so a rate on
a page is the rate a ``performance`` monitor would compute over the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from detectors.performance import PerformanceConfig, SliceStats, slice_stats
from detectors.spec import ModelSpec, Task
from detectors.stats.intervals import mean_interval, wilson

CONFIDENCE = 0.95
# Below this many labelled rows a slice is marked "too few labels" (the detector's own floor).
MIN_LABELED = PerformanceConfig.min_labeled

RATE_LABELS = {"fnr": "FN rate", "fpr": "FP rate", "precision": "Precision", "recall": "Recall"}
# "worse" is up for error rates, down for precision and recall
WORSE_IS_HIGHER = {"fnr": True, "fpr": True, "precision": False, "recall": False, "mae": True, "rmse": True}


@dataclass(frozen=True)
class Rate:
    """``hits`` out of ``n`` (e.g. missed positives out of labelled positives) and its Wilson interval."""

    metric: str  # fnr | fpr | precision | recall
    hits: int
    n: int

    @property
    def value(self) -> float | None:
        return self.hits / self.n if self.n else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson(self.hits, self.n, CONFIDENCE) if self.n else None

    @property
    def low(self) -> float | None:
        interval = self.interval
        return interval[0] if interval else None

    @property
    def high(self) -> float | None:
        interval = self.interval
        return interval[1] if interval else None

    @property
    def label(self) -> str:
        return RATE_LABELS[self.metric]


@dataclass(frozen=True)
class ErrorMean:
    """A regression error mean (MAE, or MSE shown as RMSE) with its CLT interval."""

    metric: str  # mae | rmse
    n: int
    value: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class Quality:
    """What a labelled slice says about the model: coverage, and its rates (classification) or
    error means (regression)."""

    rows: int
    labelled: int
    rates: dict[str, Rate]
    errors: dict[str, ErrorMean]

    @property
    def coverage(self) -> float | None:
        return self.labelled / self.rows if self.rows else None

    @property
    def enough_labels(self) -> bool:
        return self.labelled >= MIN_LABELED


def model_spec(schema: Any) -> ModelSpec:
    """The detectors' view of a registered model's schema (as the monitor builds it)."""
    return ModelSpec.from_dict(schema.model_dump())


def rate_class(spec: ModelSpec, chosen: str | None) -> str | None:
    """The class whose one-vs-rest rates are shown: the positive class of a binary model; for a
    multiclass one ``chosen`` if it is a class, else the second class (the first is usually the
    "nothing happened" class), as the overview does."""
    if spec.task is Task.BINARY:
        return str(spec.positive_class) if spec.positive_class is not None else None
    if spec.task is Task.MULTICLASS and spec.classes:
        if chosen in spec.classes:
            return chosen
        return spec.classes[1] if len(spec.classes) > 1 else spec.classes[0]
    return None


def quality(table: pa.Table, spec: ModelSpec, cls: str | None, rows: int | None = None) -> Quality:
    """Rates of ``cls`` (classification) or error means (regression) over the labelled rows of
    ``table``; ``rows`` overrides the row count when ``table`` is a sample of a larger slice."""
    stats: SliceStats = slice_stats(table, spec)
    total = stats.rows if rows is None else rows
    rates: dict[str, Rate] = {}
    errors: dict[str, ErrorMean] = {}
    if spec.task is Task.REGRESSION:
        if stats.errors is not None:
            for metric, values in (("mae", stats.errors.abs_errors), ("rmse", stats.errors.sq_errors)):
                errors[metric] = _error_mean(metric, values)
    elif cls is not None:
        c = stats.confusion.get(cls)
        if c is not None:
            rates = {
                "fnr": Rate("fnr", c.fn, c.tp + c.fn),
                "fpr": Rate("fpr", c.fp, c.fp + c.tn),
                "precision": Rate("precision", c.tp, c.tp + c.fp),
                "recall": Rate("recall", c.tp, c.tp + c.fn),
            }
    return Quality(total, stats.labeled, rates, errors)


def _error_mean(metric: str, values: np.ndarray) -> ErrorMean:
    if values.size == 0:
        return ErrorMean(metric, 0, None, None, None)
    mean, lo, hi = mean_interval(values, CONFIDENCE)
    if metric == "rmse":  # the interval of the MSE, mapped to RMSE
        return ErrorMean(metric, int(values.size), mean**0.5, max(lo, 0.0) ** 0.5, hi**0.5)
    return ErrorMean(metric, int(values.size), mean, lo, hi)
