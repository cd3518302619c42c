"""Shared machinery of the three drift detectors (data, prediction, label drift).

They differ only in *which* columns they watch; everything else is here: per-segment
reference summaries computed once, minimum sample sizes, the verdict rule,
Benjamini–Hochberg across all tests of a run (columns × segments), and the findings.

Status rule (default, ``compat`` unset — see :func:`detectors.column_drift.calibrated_compare`):

* ``critical`` — the effect is at or above its practical floor **and** the two-sample test
  rejects after Benjamini–Hochberg at ``alpha`` (so under no drift at most ~``alpha`` of
  windows raise any critical finding, whatever the sizes, cardinalities and segments);
* ``warning`` — the effect is over its floor and only the raw p-value is below ``alpha``;
* ``ok`` — otherwise (including "statistically detectable but below the floor");
* ``insufficient_data`` — too few non-missing values, or an id-like column (nearly every
  value distinct: there is no distribution to compare).

``compat: evidently`` keeps Evidently 0.7's methods and thresholds: ``critical`` when the
column drifted (p-value tests after BH when ``fdr`` is on), ``warning`` when only the raw
p-value crossed.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from detectors.base import Segment, SegmentKey, min_rows_for, segment_key, segment_slices
from detectors.column_drift import (
    CATEGORICAL_FLOOR,
    NUMERIC_FLOOR,
    ColumnDrift,
    calibrated_compare,
    compare_summaries,
)
from detectors.context import RunContext
from detectors.finding import Finding, Status, verdict
from detectors.spec import ModelSpec
from detectors.stats.columns import text_lengths
from detectors.stats.fdr import benjamini_hochberg
from detectors.stats.methods import get_method
from detectors.stats.summary import Summary, summarize


@dataclass(frozen=True)
class DriftConfig:
    """Parameters shared by the drift detectors (all optional).

    ``compat``: unset for the calibrated rule, ``"evidently"`` for Evidently 0.7's verdicts.
    ``method``/``threshold`` apply to every column (where the method fits the column kind);
    ``methods``/``thresholds`` override per column. Under the calibrated rule a distance
    method replaces the effect measure and ``threshold`` is its floor, a test method replaces
    the test. ``alpha``: level of the tests after Benjamini–Hochberg (``fdr``) across all
    tests of one run. ``numeric_floor`` (normed Wasserstein) and ``categorical_floor``
    (total variation) are the practical floors; ``min_expected`` the χ² bucketing rule;
    ``id_like_share``: a categorical reference column with at least this share of distinct
    values (and ≥ 100 values) is id-like and not compared.
    """

    columns: tuple[str, ...] | None = None
    method: str | None = None
    methods: Mapping[str, str] = field(default_factory=dict)
    threshold: float | None = None
    thresholds: Mapping[str, float] = field(default_factory=dict)
    segments: tuple[str, ...] = ()
    min_rows: int = 30
    min_segment_rows: int = 100
    fdr: bool = True
    details: bool = True
    compat: str | None = None
    alpha: float = 0.05
    numeric_floor: float = NUMERIC_FLOOR
    categorical_floor: float = CATEGORICAL_FLOOR
    min_expected: float = 5.0
    id_like_share: float = 0.9

    def __post_init__(self) -> None:
        if self.compat not in (None, "evidently"):
            raise ValueError(f"compat must be 'evidently' or unset, not {self.compat!r}")
        if not 0 < self.alpha < 1:
            raise ValueError("alpha must be between 0 and 1")
        if self.numeric_floor < 0 or self.categorical_floor < 0 or self.min_expected <= 0:
            raise ValueError("floors must be non-negative and min_expected positive")
        if not 0 < self.id_like_share <= 1:
            raise ValueError("id_like_share must be in (0, 1]")
        for name in [self.method, *self.methods.values()]:
            if name is not None:
                get_method(name)
        if self.min_rows < 1 or self.min_segment_rows < 1:
            raise ValueError("min_rows and min_segment_rows must be at least 1")


@dataclass(frozen=True)
class WatchedColumn:
    """A column to watch: the kind its values are compared as, and an optional transform."""

    name: str
    kind: str  # "numeric" | "categorical"
    transform: str | None = None  # "text_length" for free-text features


@dataclass(frozen=True, eq=False)
class DriftReference:
    """Cached reference statistics: one summary per (segment value, column)."""

    spec: ModelSpec
    columns: tuple[WatchedColumn, ...]
    summaries: dict[SegmentKey, dict[str, Summary]]
    rows: dict[SegmentKey, int]
    segments: tuple[str, ...]


def _values(table: pa.Table, column: WatchedColumn) -> pa.ChunkedArray:
    values = table.column(column.name)
    if column.transform == "text_length":
        return text_lengths(values)
    return values


def prepare_drift_reference(
    table: pa.Table, spec: ModelSpec, columns: list[WatchedColumn], config: DriftConfig
) -> DriftReference:
    """Summarise every watched column of the reference, overall and per segment value.

    A per-column method that cannot apply to the column's kind is a configuration error
    and raises here, when the monitor is set up, rather than at every scheduled run.
    """
    for c in columns:
        if c.name in config.methods and c.kind not in get_method(config.methods[c.name]).kinds:
            raise ValueError(f"drift method {config.methods[c.name]!r} does not apply to {c.kind} column {c.name!r}")
    summaries: dict[SegmentKey, dict[str, Summary]] = {}
    rows: dict[SegmentKey, int] = {}
    for segment, part in segment_slices(table, config.segments):
        key = segment_key(segment)
        rows[key] = part.num_rows
        summaries[key] = {
            c.name: summarize(_values(part, c), c.kind) for c in columns if c.name in part.column_names
        }
    return DriftReference(spec, tuple(columns), summaries, rows, tuple(config.segments))


@dataclass
class _Pending:
    segment: Segment
    column: WatchedColumn
    result: ColumnDrift | None
    reason: str | None = None
    n_current: int = 0
    n_reference: int = 0


#: Windows with at least this many values in total (rows × watched columns) are judged on a
#: small thread pool, one column slice per task: the heavy steps (numpy sorts and searches,
#: Arrow counting) release the GIL, so two cores nearly halve a big run. Smaller windows stay
#: serial, where a pool costs more than it saves.
PARALLEL_MIN_VALUES = 2_000_000
PARALLEL_WORKERS = 2


def run_drift(
    detector: str,
    current: pa.Table,
    reference: DriftReference,
    config: DriftConfig,
    context: RunContext,
) -> list[Finding]:
    """Compare every watched column in every segment slice; BH-adjust; build findings.

    Findings come out in the same order whether or not the slices were judged in parallel.
    """
    tasks = [
        (segment, part, column)
        for segment, part in segment_slices(current, reference.segments)
        for column in reference.columns
    ]

    def judge(task: tuple[Segment, pa.Table, WatchedColumn]) -> _Pending:
        return _judge_column(*task, reference, config)

    if current.num_rows * len(reference.columns) >= PARALLEL_MIN_VALUES and len(tasks) > 1:
        with ThreadPoolExecutor(max_workers=PARALLEL_WORKERS, thread_name_prefix="drift") as pool:
            pending = list(pool.map(judge, tasks))
    else:
        pending = [judge(task) for task in tasks]
    adjusted = _adjust(pending, config.fdr)
    return [_finding(detector, p, adjusted.get(i), config, context) for i, p in enumerate(pending)]


def _judge_column(
    segment: Segment, part: pa.Table, column: WatchedColumn, reference: DriftReference, config: DriftConfig
) -> _Pending:
    """One column of one segment slice: summarise the current side, check sizes, compare."""
    if column.name not in part.column_names:
        return _Pending(segment, column, None, "column missing from the current window")
    ref_columns = reference.summaries.get(segment_key(segment))
    cur = summarize(_values(part, column), column.kind)
    ref = ref_columns.get(column.name) if ref_columns is not None else None
    if ref is None:
        reason = "segment value absent from the reference" if ref_columns is None else (
            "column missing from the reference")
        return _Pending(segment, column, None, reason, cur.n)
    id_like = _id_like(ref, column, config)
    if id_like is not None:
        return _Pending(segment, column, None, id_like, cur.n, ref.n)
    minimum = min_rows_for(segment, config.min_rows, config.min_segment_rows)
    if cur.n < minimum or ref.n < minimum:
        side = "current" if cur.n < minimum else "reference"
        return _Pending(
            segment, column, None, f"{side} window has fewer than {minimum} non-missing values", cur.n, ref.n
        )
    method = config.methods.get(column.name, config.method) if _fits(config, column) else None
    threshold = config.thresholds.get(column.name, config.threshold)
    if config.compat == "evidently":
        result = compare_summaries(
            column.name, column.kind, ref, cur, method=method, threshold=threshold, with_details=config.details,
        )
    else:
        result = calibrated_compare(
            column.name, column.kind, ref, cur, method=method, threshold=threshold,
            alpha=config.alpha, numeric_floor=config.numeric_floor,
            categorical_floor=config.categorical_floor, min_expected=config.min_expected,
            with_details=config.details,
        )
    return _Pending(segment, column, result, None, cur.n, ref.n)


#: Below this many reference values a column is never called id-like (too few to tell).
ID_LIKE_MIN_ROWS = 100


def _id_like(reference: Summary, column: WatchedColumn, config: DriftConfig) -> str | None:
    """Why a categorical column is not compared (nearly all values distinct), or ``None``.

    A column of ids (request ids, serial numbers) has no distribution to drift: every window
    brings new values, so any comparison "drifts". Decided on the cached reference.
    """
    if config.compat == "evidently" or column.kind != "categorical" or reference.n < ID_LIKE_MIN_ROWS:
        return None
    share = reference.n_unique / reference.n
    if share < config.id_like_share:
        return None
    return f"id-like column: {share:.0%} of reference values are distinct; not compared (declare it as text or drop it)"


def _fits(config: DriftConfig, column: WatchedColumn) -> bool:
    """A run-wide ``method`` only applies to columns of a kind it supports."""
    name = config.methods.get(column.name, config.method)
    if name is None:
        return False
    if column.name in config.methods:
        return True
    return column.kind in get_method(name).kinds


def _adjust(pending: list[_Pending], fdr: bool) -> dict[int, float]:
    raw: dict[int, float] = {}
    for i, p in enumerate(pending):
        if p.result is not None and p.result.p_value is not None:
            raw[i] = p.result.p_value
    if not fdr or not raw:
        return {}
    return dict(zip(raw, benjamini_hochberg(list(raw.values())), strict=True))


def _finding(
    detector: str, p: _Pending, adjusted: float | None, config: DriftConfig, context: RunContext
) -> Finding:
    column = p.column
    common: dict[str, Any] = {"segment": p.segment, "column": column.name}
    if p.result is None:
        return context.finding(
            detector, metric="drift", status=Status.INSUFFICIENT_DATA, n_current=p.n_current,
            n_reference=p.n_reference, details={"reason": p.reason, "kind": column.kind}, **common,
        )
    r = p.result
    method = get_method(r.method)
    raw_drift = r.drifted
    if r.score is None:
        status = Status.INSUFFICIENT_DATA
    elif r.rule == "calibrated":
        relevant = r.score >= r.threshold
        alpha = r.alpha if r.alpha is not None else config.alpha
        p_value = adjusted if adjusted is not None else r.p_value
        established = p_value is not None and p_value < alpha
        suggestive = r.p_value is not None and r.p_value < alpha
        status = verdict(relevant, established, suggestive)
    elif adjusted is not None:
        confirmed = method.is_drift(adjusted, r.threshold)
        status = Status.CRITICAL if confirmed else (Status.WARNING if raw_drift else Status.OK)
    else:
        status = Status.CRITICAL if raw_drift else Status.OK
    details = {
        "kind": column.kind,
        "method": r.method,
        "method_display_name": method.display_name,
        "score_is_p_value": method.uses_p_value and r.rule != "calibrated",
        "missing_current": r.missing_current,
        "missing_reference": r.missing_reference,
        **({"transform": column.transform} if column.transform else {}),
        **({"reason": r.reason} if r.reason else {}),
        **r.details,
    }
    return context.finding(
        detector, metric=r.method, status=status, value=r.score, threshold=r.threshold,
        p_value=r.p_value, p_value_adjusted=adjusted, effect_size=r.effect_size,
        n_current=r.n_current, n_reference=r.n_reference, details=details, **common,
    )


def share_findings(
    detector: str, findings: list[Finding], drift_share: float, context: RunContext
) -> list[Finding]:
    """Dataset-level verdict per segment: share of judged columns that drifted (Evidently's rule)."""
    by_segment: dict[SegmentKey, list[Finding]] = {}
    segments: dict[SegmentKey, Mapping[str, Any] | None] = {}
    for f in findings:
        key = segment_key(f.segment)
        by_segment.setdefault(key, []).append(f)
        segments[key] = f.segment
    out = []
    for key, group in by_segment.items():
        judged = [f for f in group if f.status in (Status.OK, Status.WARNING, Status.CRITICAL)]
        drifted = [f.column for f in judged if f.status is Status.CRITICAL]
        if not judged:
            out.append(context.finding(
                detector, metric="share_drifted_columns", status=Status.INSUFFICIENT_DATA,
                segment=segments[key], threshold=drift_share, details={"reason": "no column could be judged"},
            ))
            continue
        share = len(drifted) / len(judged)
        out.append(context.finding(
            detector, metric="share_drifted_columns",
            status=Status.CRITICAL if share >= drift_share else Status.OK,
            segment=segments[key], value=share, threshold=drift_share,
            n_current=max(f.n_current for f in judged), n_reference=max(f.n_reference for f in judged),
            details={"drifted_columns": drifted, "columns_judged": len(judged)},
        ))
    return out
