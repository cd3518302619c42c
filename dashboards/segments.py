"""Realized performance per value of one segment column over a time range: what the segment
drill-down reads.

The range's rows are read once with ``PredictionStore.reference_sample`` (the prediction, the
score, the segment column and the label): whole up to :data:`ROW_CAP` rows per slice, so every
number is exact; beyond that each value gets its own uniform sample of about that many rows
(the page says so) and the row counts come from ``PredictionStore.counts``. Slices are cut by
:func:`detectors.base.segment_slices`, the detectors' own cutter (null values last), and each
slice's rates come from :mod:`dashboards.rates` — the performance detector's counts and
Wilson intervals.

Rows are ordered worst first by the chosen metric's point estimate; values with fewer than
:data:`dashboards.rates.MIN_LABELED` labelled rows cannot be judged and go last, marked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa

from dashboards.data import TimeRange
from dashboards.rates import WORSE_IS_HIGHER, Quality, model_spec, quality
from detectors.base import segment_slices
from detectors.sampling import SAMPLE_KEY, sample_rates
from detectors.spec import ModelSpec, Task
from monitor.errors import InvalidInput

if TYPE_CHECKING:
    from monitor.service import Loopwatch

ROW_CAP = 250_000
CLASSIFICATION_SORTS = ("fnr", "fpr", "precision", "recall")
REGRESSION_SORTS = ("mae", "rmse")


@dataclass(frozen=True)
class SegmentValue:
    """One value of the segment column (``None``: rows without a value) and its quality."""

    value: str | None
    quality: Quality

    @property
    def text(self) -> str:
        return "(no value)" if self.value is None else self.value


@dataclass(frozen=True)
class Breakdown:
    model: str
    segment: str
    span: TimeRange
    cls: str | None
    sort: str
    sampled: bool
    overall: Quality
    values: list[SegmentValue]  # worst first; too few labels last


def sort_options(spec: ModelSpec) -> tuple[str, ...]:
    return REGRESSION_SORTS if spec.task is Task.REGRESSION else CLASSIFICATION_SORTS


def breakdown(
    service: Loopwatch, model: str, segment: str, span: TimeRange, cls: str | None, sort: str | None
) -> Breakdown:
    """Per-value quality of ``segment`` in ``span`` (see the module docstring)."""
    registered = service.registry.get(model)
    schema = registered.schema
    if segment not in schema.segments:
        known = ", ".join(schema.segments) or "none"
        raise InvalidInput(f"model {model!r} has no segment column {segment!r} (its segments: {known})")
    spec = model_spec(schema)
    options = sort_options(spec)
    order = sort if sort in options else options[0]
    table = service.store.reference_sample(
        model, span.start, span.end, segments=[segment], cap=ROW_CAP, columns=["prediction", "score", segment]
    )
    sampled = sample_rates(table) is not None
    exact = (
        service.store.counts(model, span.start, span.end, [segment])["by_segment"].get(segment, {}) if sampled else {}
    )
    overall: Quality | None = None
    values: list[SegmentValue] = []
    for part_segment, part in segment_slices(table, [segment]):
        rows = _plain(part)
        if part_segment is None:
            overall = quality(rows, spec, cls, rows=_total(service, model, span) if sampled else None)
            continue
        raw = part_segment[segment]
        value = None if raw is None else str(raw)
        count = exact.get(value) if (sampled and value is not None) else None
        values.append(SegmentValue(value, quality(rows, spec, cls, rows=count)))
    values.sort(key=lambda v: _order_key(v, order))
    if overall is None:  # segment_slices always yields the whole table first
        overall = quality(_plain(table), spec, cls)
    return Breakdown(model, segment, span, cls, order, sampled, overall, values)


def _plain(table: pa.Table) -> pa.Table:
    return table.drop_columns([SAMPLE_KEY]) if SAMPLE_KEY in table.column_names else table


def _total(service: Loopwatch, model: str, span: TimeRange) -> int:
    return int(service.store.counts(model, span.start, span.end)["total"])


def metric_value(q: Quality, metric: str) -> float | None:
    if metric in q.rates:
        return q.rates[metric].value
    if metric in q.errors:
        return q.errors[metric].value
    return None


def _order_key(item: SegmentValue, metric: str) -> tuple[int, float, int, str]:
    """Judgeable values first, worst first; then by labelled rows (most first), then by name."""
    value = metric_value(item.quality, metric)
    judged = item.quality.enough_labels and value is not None
    worse_first = -value if value is not None and WORSE_IS_HIGHER[metric] else (value if value is not None else 0.0)
    return (0 if judged else 1, worse_first if judged else 0.0, -item.quality.labelled, item.text)
