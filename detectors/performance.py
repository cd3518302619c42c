"""Model performance once delayed labels arrive: FP/FN rates and friends, with intervals.

Labels arrive hours or days after predictions, so a window is judged only when its *label
coverage* (labelled / predicted rows) reaches ``min_coverage`` and it has ``min_labeled``
labels; until then every metric is reported as ``insufficient_data`` (with the point
estimate so far). The monitor simply re-runs the window when late labels arrive — the
detector is pure, so the newer verdict replaces the older one.

Metrics — binary: ``fpr``, ``fnr``, ``precision``, ``recall``, ``f1``, ``accuracy``,
``roc_auc`` (from ``score``); multiclass: the same one-vs-rest per class
(``recall:cat``…, ``roc_auc`` from ``probabilities``) plus ``accuracy``; regression:
``mae``, ``rmse``.

Verdict rule — *established and relevant*. For each metric, ``d = current − reference``
(oriented so that "worse" is positive: ``d`` for fpr, fnr, mae, rmse; ``−d`` for precision,
recall, f1, accuracy, roc_auc), its confidence interval ``[lo, hi]`` at ``confidence`` (0.95):

* **relevant** — the point estimate is worse by at least the relevance margin
  ``m = max(margin, relative_margin × reference error)``, where the reference error is the
  reference rate for fpr/fnr and ``1 − reference`` for precision, recall, f1, accuracy and
  roc_auc (so fnr and recall, 1 − each other, get the same verdict). Defaults ``margin`` =
  0.005 (half a point) and ``relative_margin`` = 0.2: an FN rate of 7.1% must rise by ≥ 1.42
  points (+20%), 30% by ≥ 6 points, 1% by ≥ 0.5 points. MAE: ``m = relative_margin ×
  reference MAE``; RMSE: RMSE ≥ ``(1 + relative_margin) ×`` reference RMSE (judged on MSE).
* **established** — the interval is clear of zero on the worse side, after multiplicity
  control: the one-sided p-value of "not worse" implied by the interval (``p = 1 − Φ(z·d/(d −
  lo))`` for worse-is-up, so ``p < (1 − confidence)/2`` exactly when ``lo > 0``) is adjusted
  with Benjamini–Hochberg across every metric × class × segment judged in the run (recall
  and fnr count once: same counts, same test; ``fdr`` = true) and
  must stay below ``(1 − confidence)/2`` (0.025). Under no change at all this bounds the
  share of windows with any ``critical`` metric by ~2.5% (BH controls the family-wise error
  under the global null); ``fdr: false`` judges each metric on its own interval.

``critical`` = relevant and established; ``warning`` = relevant, and established by its own
interval but not after the multiplicity adjustment (suggestive only, as for drift); ``ok``
otherwise — including a change that is established but
too small to matter (e.g. 10.0% → 10.2% on a million labels). Measured (400 seeded trials per
cell, ``bench/performance_quality.py``; table in docs/detectors.md): any-metric ``critical``
under no change in 0.8–2.5% of windows (500–10,000 labelled rows, with segments); the +34% FN
rise 7.1% → 9.5% critical in 92% of windows with 10,000 labelled rows (61% at 5,000); 95%
intervals cover the truth in 94–96% of trials (ROC-AUC 96–98%).

Intervals: Wilson score intervals for a rate (Wilson 1927) and Newcombe's hybrid score
interval for the difference of two independent rates (Newcombe 1998, method 10) for fpr, fnr,
precision, recall and accuracy; a seeded multinomial percentile bootstrap for F1 (Efron &
Tibshirani 1993); Hanley–McNeil standard errors for ROC-AUC (Hanley & McNeil 1982, 1983,
independent samples); the CLT for MAE and MSE.

>>> from datetime import datetime, timezone
>>> import numpy as np, pyarrow as pa
>>> from detectors import ModelSpec, Performance, RunContext
>>> rng = np.random.default_rng(11)
>>> spec = ModelSpec(task="binary", classes=("none", "brake"), positive_class="brake")
>>> def window(n, fn_rate):
...     label = rng.choice(["none", "brake"], n, p=[0.7, 0.3])
...     miss = rng.random(n) < fn_rate
...     false_alarm = rng.random(n) < 0.05
...     pred = np.where(label == "brake", np.where(miss, "none", "brake"),
...                     np.where(false_alarm, "brake", "none"))
...     return pa.table({"prediction": pred, "label": label})
>>> detector = Performance()
>>> config = detector.config({"metrics": ["fnr", "fpr"]})
>>> stats = detector.prepare_reference(window(20000, 0.10), spec, config)
>>> ctx = RunContext("braking", datetime(2026, 10, 8, tzinfo=timezone.utc),
...                  datetime(2026, 10, 9, tzinfo=timezone.utc))
>>> for f in detector.run(window(3000, 0.20), stats, config, ctx):
...     print(f.metric, f.status.value, round(f.value, 2))
label_coverage ok 1.0
fnr critical 0.19
fpr ok 0.05
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from detectors.base import BaseDetector, Segment, SegmentKey, segment_key, segment_slices
from detectors.context import RunContext
from detectors.finding import Finding, Status, verdict
from detectors.spec import ModelSpec, Task
from detectors.stats.columns import to_numpy
from detectors.stats.fdr import benjamini_hochberg
from detectors.stats.intervals import mean_interval, newcombe_difference, wilson, z_value
from detectors.stats.pvalues import normal_cdf

BINARY_METRICS = ("fpr", "fnr", "precision", "recall", "f1", "accuracy", "roc_auc")
PER_CLASS_METRICS = ("fpr", "fnr", "precision", "recall", "f1", "roc_auc")
REGRESSION_METRICS = ("mae", "rmse")
HIGHER_IS_WORSE = frozenset({"fpr", "fnr", "mae", "rmse"})


@dataclass(frozen=True)
class PerformanceConfig:
    """Parameters of the performance detector (see the module docstring for the rule)."""

    metrics: tuple[str, ...] | None = None
    min_coverage: float = 0.5
    min_labeled: int = 30
    margin: float = 0.005  # absolute relevance floor for rates (half a point)
    relative_margin: float = 0.2  # relevance relative to the reference error (rates) or value (MAE/RMSE)
    confidence: float = 0.95
    fdr: bool = True  # Benjamini–Hochberg across metrics × segments of a run
    segments: tuple[str, ...] = ()
    min_segment_rows: int = 100
    bootstrap: int = 400
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.min_coverage <= 1:
            raise ValueError("min_coverage must be between 0 and 1")
        check_rule(self.metrics, self.margin, self.relative_margin, self.confidence)


def check_rule(metrics: tuple[str, ...] | None, margin: float, relative_margin: float, confidence: float) -> None:
    """Refuse a verdict rule that cannot work: negative margins, a confidence outside (0, 1),
    metrics the detector does not compute (shared with ``estimated_performance``)."""
    if margin < 0 or relative_margin < 0:
        raise ValueError("margins must be non-negative")
    z_value(confidence)
    known = set(BINARY_METRICS) | set(REGRESSION_METRICS)
    unknown = sorted(set(metrics or ()) - known)
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; known: {sorted(known)}")


@dataclass(frozen=True)
class Confusion:
    """One-vs-rest confusion counts for one class (or the positive class of a binary task)."""

    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.fn + self.tn


@dataclass(frozen=True)
class Auc:
    """ROC-AUC with what its Hanley–McNeil standard error needs."""

    value: float
    n_pos: int
    n_neg: int

    @property
    def variance(self) -> float:
        a, p, q = self.value, self.n_pos, self.n_neg
        q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
        return (a * (1 - a) + (p - 1) * (q1 - a * a) + (q - 1) * (q2 - a * a)) / (p * q)


@dataclass(frozen=True)
class ErrorStats:
    """Regression errors of a window, for MAE and RMSE with CLT intervals."""

    abs_errors: np.ndarray
    sq_errors: np.ndarray


@dataclass(frozen=True, eq=False)
class SliceStats:
    """Everything the metrics need from one window slice (or the reference)."""

    rows: int
    labeled: int
    invalid_labels: int
    confusion: dict[str, Confusion] = field(default_factory=dict)  # class → one-vs-rest counts
    matrix: list[list[int]] | None = None  # multiclass/binary confusion matrix, spec class order
    auc: dict[str, Auc] = field(default_factory=dict)
    correct: int = 0
    errors: ErrorStats | None = None

    @property
    def coverage(self) -> float:
        return self.labeled / self.rows if self.rows else 0.0


@dataclass(frozen=True, eq=False)
class PerformanceReference:
    spec: ModelSpec
    slices: dict[SegmentKey, SliceStats]
    segments: tuple[str, ...]


def _auc(scores: np.ndarray, positive: np.ndarray) -> Auc | None:
    """Mann–Whitney AUC with average ranks for ties; None unless both classes are present."""
    keep = np.isfinite(scores)
    scores, positive = scores[keep], positive[keep]
    n_pos = int(positive.sum())
    n_neg = int(positive.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        return None
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    value = (float(ranks[positive].sum()) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return Auc(value, n_pos, n_neg)


def _indices(column: pa.ChunkedArray, classes: tuple[str, ...]) -> np.ndarray:
    """Index of each value in ``classes`` (-1 for null or unknown)."""
    idx = pc.index_in(column.cast(pa.string()), value_set=pa.array(classes, pa.string()))
    return to_numpy(idx.fill_null(-1)).astype(np.int64)


def _float(table: pa.Table, name: str) -> np.ndarray:
    if name not in table.column_names:
        return np.full(table.num_rows, np.nan)
    col = table.column(name)
    return to_numpy(col.cast(pa.float64()))


def _probabilities(table: pa.Table, k: int) -> np.ndarray | None:
    """(n, k) matrix of class probabilities; rows with a null or wrong-length list are NaN."""
    if "probabilities" not in table.column_names or table.num_rows == 0:
        return None
    col = table.column("probabilities").combine_chunks()
    lengths = to_numpy(pc.list_value_length(col).fill_null(0))
    out = np.full((table.num_rows, k), np.nan)
    good = lengths == k
    if good.any():
        flat = to_numpy(pc.list_flatten(col.filter(pa.array(good))).cast(pa.float64()))
        out[good] = flat.reshape(-1, k)
    return out


def _labels_present(table: pa.Table) -> np.ndarray:
    if "label" not in table.column_names:
        return np.zeros(table.num_rows, dtype=bool)
    return to_numpy(table.column("label").is_valid()).astype(bool)


def _binary_truth(table: pa.Table, spec: ModelSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(valid, y_true, y_pred) as booleans for the positive class."""
    positive = spec.positive_class
    if spec.classes:
        label_idx = _indices(table.column("label"), spec.classes)
        pred_idx = (
            _indices(table.column("prediction"), spec.classes)
            if "prediction" in table.column_names
            else np.full(table.num_rows, -1)
        )
        pos = spec.classes.index(str(positive))
        valid = (label_idx >= 0) & (pred_idx >= 0)
        return valid, label_idx == pos, pred_idx == pos
    label = table.column("label").cast(pa.string())
    pred = table.column("prediction").cast(pa.string())
    valid = to_numpy(label.is_valid()).astype(bool) & to_numpy(pred.is_valid()).astype(bool)
    y_true = to_numpy(pc.fill_null(pc.equal(label, str(positive)), False)).astype(bool)
    y_pred = to_numpy(pc.fill_null(pc.equal(pred, str(positive)), False)).astype(bool)
    return valid, y_true, y_pred


def _binary_matrix(conf: Confusion, spec: ModelSpec) -> list[list[int]]:
    """Rows = true class, columns = predicted class, in ``binary_classes`` order."""
    if spec.classes and spec.classes.index(str(spec.positive_class)) == 0:
        return [[conf.tp, conf.fn], [conf.fp, conf.tn]]
    return [[conf.tn, conf.fp], [conf.fn, conf.tp]]


def binary_classes(spec: ModelSpec) -> list[str]:
    """Class order of confusion matrices (``spec.classes``, or [not-positive, positive])."""
    return list(spec.classes) if spec.classes else [f"not {spec.positive_class}", str(spec.positive_class)]


def _confusion(y_true: np.ndarray, y_pred: np.ndarray) -> Confusion:
    tp = int(np.count_nonzero(y_true & y_pred))
    fp = int(np.count_nonzero(~y_true & y_pred))
    fn = int(np.count_nonzero(y_true & ~y_pred))
    return Confusion(tp, fp, fn, int(y_true.size) - tp - fp - fn)


def slice_stats(table: pa.Table, spec: ModelSpec) -> SliceStats:
    """Label coverage and the sufficient statistics of every metric for one slice."""
    rows = table.num_rows
    labeled_mask = _labels_present(table)
    labeled = int(labeled_mask.sum())
    if labeled == 0 or "prediction" not in table.column_names:
        return SliceStats(rows, labeled, 0)
    part = table.filter(pa.array(labeled_mask))
    if spec.task is Task.REGRESSION:
        err = _float(part, "prediction") - _float(part, "label")
        err = err[np.isfinite(err)]
        return SliceStats(rows, labeled, labeled - int(err.size), errors=ErrorStats(np.abs(err), err * err))
    if spec.task is Task.BINARY:
        valid, y_true, y_pred = _binary_truth(part, spec)
        y_true, y_pred = y_true[valid], y_pred[valid]
        positive = str(spec.positive_class)
        conf = _confusion(y_true, y_pred)
        auc = _auc(_float(part, "score")[valid], y_true)
        return SliceStats(
            rows,
            labeled,
            labeled - int(valid.sum()),
            confusion={positive: conf},
            matrix=_binary_matrix(conf, spec),
            auc={positive: auc} if auc else {},
            correct=conf.tp + conf.tn,
        )
    k = len(spec.classes)
    label_idx = _indices(part.column("label"), spec.classes)
    pred_idx = _indices(part.column("prediction"), spec.classes)
    valid = (label_idx >= 0) & (pred_idx >= 0)
    t, p = label_idx[valid], pred_idx[valid]
    matrix = np.bincount(t * k + p, minlength=k * k).reshape(k, k)
    probs = _probabilities(part, k)
    confusion, aucs = {}, {}
    for i, cls in enumerate(spec.classes):
        confusion[cls] = _confusion(t == i, p == i)
        if probs is not None:
            auc = _auc(probs[valid][:, i], t == i)
            if auc:
                aucs[cls] = auc
    return SliceStats(
        rows,
        labeled,
        labeled - int(valid.sum()),
        confusion=confusion,
        matrix=matrix.tolist(),
        auc=aucs,
        correct=int(np.trace(matrix)),
    )


@dataclass(frozen=True)
class Comparison:
    """Current value, reference value, and the CI of their difference."""

    value: float | None
    reference: float | None
    diff: float | None = None
    low: float | None = None
    high: float | None = None
    current_ci: tuple[float, float] | None = None
    reason: str | None = None


def _proportion(x_c: int, n_c: int, x_r: int, n_r: int, confidence: float) -> Comparison:
    if n_c == 0 or n_r == 0:
        value = x_c / n_c if n_c else None
        return Comparison(value, x_r / n_r if n_r else None, reason="metric undefined (empty denominator)")
    d, lo, hi = newcombe_difference(x_c, n_c, x_r, n_r, confidence)
    return Comparison(x_c / n_c, x_r / n_r, d, lo, hi, wilson(x_c, n_c, confidence))


def f1_from_counts(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """F1 = 2tp / (2tp + fp + fn) of arrays of counts (bootstrap replicates); NaN where no
    positive was present or called."""
    denominator = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), np.nan)


def _f1(c: Confusion) -> float:
    denom = 2 * c.tp + c.fp + c.fn
    return 2 * c.tp / denom if denom else float("nan")


def _f1_comparison(cur: Confusion, ref: Confusion, config: PerformanceConfig) -> Comparison:
    f_cur, f_ref = _f1(cur), _f1(ref)
    if math.isnan(f_cur) or math.isnan(f_ref):
        return Comparison(
            None if math.isnan(f_cur) else f_cur,
            None if math.isnan(f_ref) else f_ref,
            reason="metric undefined (no positives predicted or present)",
        )
    rng = np.random.default_rng(config.seed)

    def resample(c: Confusion) -> np.ndarray:
        cells = rng.multinomial(c.n, np.array([c.tp, c.fp, c.fn, c.tn]) / c.n, size=config.bootstrap)
        return f1_from_counts(cells[:, 0], cells[:, 1], cells[:, 2])

    boot_cur = resample(cur)
    diffs = boot_cur - resample(ref)
    alpha = (1 - config.confidence) / 2
    lo, hi = np.nanquantile(diffs, [alpha, 1 - alpha])
    c_lo, c_hi = np.nanquantile(boot_cur, [alpha, 1 - alpha])
    return Comparison(f_cur, f_ref, f_cur - f_ref, float(lo), float(hi), (float(c_lo), float(c_hi)))


def _auc_comparison(cur: Auc | None, ref: Auc | None, confidence: float) -> Comparison:
    if cur is None or ref is None:
        return Comparison(
            cur.value if cur else None,
            ref.value if ref else None,
            reason="needs scores and both outcomes in current and reference",
        )
    z = z_value(confidence)
    se = math.sqrt(max(cur.variance, 0.0) + max(ref.variance, 0.0))
    d = cur.value - ref.value
    se_c = math.sqrt(max(cur.variance, 0.0))
    return Comparison(cur.value, ref.value, d, d - z * se, d + z * se, (cur.value - z * se_c, cur.value + z * se_c))


def _mean_comparison(cur: np.ndarray, ref: np.ndarray, confidence: float, root: bool) -> Comparison:
    if cur.size < 2 or ref.size < 2:
        return Comparison(None, None, reason="fewer than 2 labelled rows")
    z = z_value(confidence)
    m_c, lo_c, hi_c = mean_interval(cur, confidence)
    m_r = float(ref.mean())
    se = math.sqrt(float(cur.var(ddof=1)) / cur.size + float(ref.var(ddof=1)) / ref.size)
    d = m_c - m_r
    if not root:
        return Comparison(m_c, m_r, d, d - z * se, d + z * se, (lo_c, hi_c))
    # RMSE: judge on MSE, report on the RMSE scale.
    return Comparison(
        math.sqrt(m_c),
        math.sqrt(m_r),
        d,
        d - z * se,
        d + z * se,
        (math.sqrt(max(lo_c, 0.0)), math.sqrt(max(hi_c, 0.0))),
    )


def _compare(metric: str, cls: str | None, cur: SliceStats, ref: SliceStats, config: PerformanceConfig) -> Comparison:
    conf = config.confidence
    if metric == "mae":
        assert cur.errors is not None and ref.errors is not None
        return _mean_comparison(cur.errors.abs_errors, ref.errors.abs_errors, conf, root=False)
    if metric == "rmse":
        assert cur.errors is not None and ref.errors is not None
        return _mean_comparison(cur.errors.sq_errors, ref.errors.sq_errors, conf, root=True)
    if metric == "accuracy":
        n_c = sum(sum(r) for r in cur.matrix) if cur.matrix else 0
        n_r = sum(sum(r) for r in ref.matrix) if ref.matrix else 0
        return _proportion(cur.correct, n_c, ref.correct, n_r, conf)
    assert cls is not None
    if metric == "roc_auc":
        return _auc_comparison(cur.auc.get(cls), ref.auc.get(cls), conf)
    c, r = cur.confusion.get(cls), ref.confusion.get(cls)
    if c is None or r is None:
        return Comparison(None, None, reason="no labelled rows")
    if metric == "f1":
        return _f1_comparison(c, r, config)
    counts: dict[str, Callable[[Confusion], tuple[int, int]]] = {
        "fpr": lambda x: (x.fp, x.fp + x.tn),
        "fnr": lambda x: (x.fn, x.fn + x.tp),
        "precision": lambda x: (x.tp, x.tp + x.fp),
        "recall": lambda x: (x.tp, x.tp + x.fn),
    }
    (x_c, n_c), (x_r, n_r) = counts[metric](c), counts[metric](r)
    return _proportion(x_c, n_c, x_r, n_r, conf)


def relevance_margin(metric: str, reference_value: float, config: PerformanceConfig) -> float:
    """Smallest worsening that matters, in the units the difference is computed in.

    Rates: ``max(margin, relative_margin × reference error)`` — relative so that a +34% rise of
    a 7% FN rate counts, absolute so that a tiny base rate does not make noise-sized moves
    relevant. The reference error of a higher-is-better rate is ``1 − reference``.

    >>> cfg = PerformanceConfig()
    >>> round(relevance_margin("fnr", 0.071, cfg), 4), round(relevance_margin("recall", 0.929, cfg), 4)
    (0.0142, 0.0142)
    >>> relevance_margin("fpr", 0.01, cfg)
    0.005
    """
    if metric == "mae":
        return config.relative_margin * reference_value
    if metric == "rmse":  # difference is on MSE
        return ((1 + config.relative_margin) ** 2 - 1) * reference_value**2
    error = reference_value if metric in HIGHER_IS_WORSE else 1 - reference_value
    return max(config.margin, config.relative_margin * max(error, 0.0))


def _threshold(metric: str, reference_value: float, margin: float, config: PerformanceConfig) -> float:
    """The relevance boundary on the metric's own scale (what dashboards draw)."""
    if metric == "rmse":
        return reference_value * (1 + config.relative_margin)
    return reference_value + margin if metric in HIGHER_IS_WORSE else reference_value - margin


def worse_p_value(metric: str, cmp: Comparison, confidence: float) -> float:
    """One-sided p-value of "not worse than the reference", implied by the difference's interval.

    The standard error is read off the interval's half-width on the worse side, so the
    p-value agrees with the interval at its own level: ``p < (1 − confidence)/2`` exactly when
    the interval is clear of zero on the worse side (asymmetric Newcombe intervals included).
    """
    assert cmp.diff is not None and cmp.low is not None and cmp.high is not None
    worse, half = (cmp.diff, cmp.diff - cmp.low) if metric in HIGHER_IS_WORSE else (-cmp.diff, cmp.high - cmp.diff)
    if half <= 0:
        return 0.0 if worse > 0 else 1.0
    return 1 - normal_cdf(z_value(confidence) * worse / half)


@dataclass(frozen=True)
class Judgement:
    status: Status
    threshold: float
    margin: float
    relevant: bool
    established: bool


def judge(
    metric: str, cmp: Comparison, p_adjusted: float, config: PerformanceConfig, p_raw: float | None = None
) -> Judgement:
    """Critical = relevant and established; warning = relevant and established only before the
    multiplicity adjustment (suggestive, as for drift); else ok."""
    assert cmp.reference is not None and cmp.diff is not None
    margin = relevance_margin(metric, cmp.reference, config)
    worse = cmp.diff if metric in HIGHER_IS_WORSE else -cmp.diff
    relevant = worse >= margin and worse > 0
    level = (1 - config.confidence) / 2
    established = p_adjusted < level
    suggestive = (p_raw if p_raw is not None else p_adjusted) < level
    return Judgement(verdict(relevant, established, suggestive), _threshold(metric, cmp.reference, margin, config), margin, relevant, established)


@dataclass(frozen=True)
class _Judged:
    """A judged metric waiting for the run-wide multiplicity adjustment of its p-value."""

    detector: str
    metric: str
    name: str
    cls: str | None
    segment: Segment
    cmp: Comparison
    p_value: float
    n_current: int
    n_reference: int
    coverage: float

    @property
    def hypothesis(self) -> tuple[object, ...]:
        """What is tested; recall and fnr of a class are the same hypothesis."""
        metric = "fnr" if self.metric == "recall" else self.metric
        return (segment_key(self.segment), metric, self.cls)

    def finding(self, p_adjusted: float, cfg: PerformanceConfig, context: RunContext) -> Finding:
        verdict = judge(self.metric, self.cmp, p_adjusted, cfg, self.p_value)
        cmp = self.cmp
        return context.finding(
            self.detector,
            metric=self.name,
            segment=self.segment,
            status=verdict.status,
            value=cmp.value,
            threshold=verdict.threshold,
            p_value=self.p_value,
            p_value_adjusted=p_adjusted,
            effect_size=cmp.diff,
            n_current=self.n_current,
            n_reference=self.n_reference,
            details={
                "class": self.cls,
                "reference_value": cmp.reference,
                "difference_ci": [cmp.low, cmp.high],
                "current_ci": list(cmp.current_ci or ()),
                "confidence": cfg.confidence,
                "higher_is_worse": self.metric in HIGHER_IS_WORSE,
                "relevance_margin": verdict.margin,
                "relevant": verdict.relevant,
                "established": verdict.established,
                "label_coverage": self.coverage,
            },
        )


def _adjust(judged: list[_Judged], fdr: bool) -> dict[tuple[object, ...], float]:
    """Benjamini–Hochberg over one family: every distinct hypothesis (metric × class × segment)
    judged in the run. ``recall`` is ``1 − fnr`` (same counts, same interval, same p-value),
    so the two are one hypothesis, not two."""
    raw: dict[tuple[object, ...], float] = {}
    for item in judged:
        raw.setdefault(item.hypothesis, item.p_value)
    if not fdr:
        return raw
    return dict(zip(raw, benjamini_hochberg(list(raw.values())), strict=True))


def metric_name(spec: ModelSpec, metric: str, cls: str | None) -> str:
    """A finding's metric name: ``recall``, or ``recall:bike`` for one class of a multiclass model."""
    return f"{metric}:{cls}" if spec.task is Task.MULTICLASS and cls is not None else metric


def _metric_plan(spec: ModelSpec, config: PerformanceConfig) -> list[tuple[str, str | None]]:
    """(metric name, class) pairs to evaluate, in a stable order."""
    if spec.task is Task.REGRESSION:
        wanted = [m for m in (config.metrics or REGRESSION_METRICS) if m in REGRESSION_METRICS]
        return [(m, None) for m in wanted]
    if spec.task is Task.BINARY:
        wanted = [m for m in (config.metrics or BINARY_METRICS) if m in BINARY_METRICS]
        return [(m, None if m == "accuracy" else str(spec.positive_class)) for m in wanted]
    per_class = [m for m in (config.metrics or PER_CLASS_METRICS) if m in PER_CLASS_METRICS]
    plan: list[tuple[str, str | None]] = []
    if config.metrics is None or "accuracy" in config.metrics:
        plan.append(("accuracy", None))
    plan += [(m, cls) for cls in spec.classes for m in per_class]
    return plan


class Performance(BaseDetector):
    """Performance metrics vs the reference, judged only when enough labels have arrived."""

    name: ClassVar[str] = "performance"
    config_type: ClassVar[type] = PerformanceConfig

    def prepare_reference(self, reference: pa.Table, spec: ModelSpec, config: Any = None) -> PerformanceReference:
        cfg: PerformanceConfig = self.config(config)
        if spec.task is Task.BINARY and spec.positive_class is None:
            raise ValueError("binary performance needs the model's positive_class")
        slices = {segment_key(seg): slice_stats(part, spec) for seg, part in segment_slices(reference, cfg.segments)}
        return PerformanceReference(spec, slices, tuple(cfg.segments))

    def run(
        self, current: pa.Table, reference: PerformanceReference, config: Any, context: RunContext
    ) -> list[Finding]:
        cfg: PerformanceConfig = self.config(config)
        spec = reference.spec
        plan = _metric_plan(spec, cfg)
        items: list[Finding | _Judged] = []
        for segment, part in segment_slices(current, reference.segments):
            cur = slice_stats(part, spec)
            ref = reference.slices.get(segment_key(segment))
            items += self._slice(spec, segment, cur, ref, plan, cfg, context)
        adjusted = _adjust([item for item in items if isinstance(item, _Judged)], cfg.fdr)
        return [
            item if isinstance(item, Finding) else item.finding(adjusted[item.hypothesis], cfg, context)
            for item in items
        ]

    def _slice(
        self,
        spec: ModelSpec,
        segment: Segment,
        cur: SliceStats,
        ref: SliceStats | None,
        plan: list[tuple[str, str | None]],
        cfg: PerformanceConfig,
        context: RunContext,
    ) -> list[Finding | _Judged]:
        minimum = cfg.min_labeled if segment is None else max(cfg.min_labeled, cfg.min_segment_rows)
        usable = cur.labeled - cur.invalid_labels
        reason = None
        if ref is None or ref.labeled - ref.invalid_labels < minimum:
            reason = f"reference has fewer than {minimum} usable labels"
        elif cur.rows == 0:
            reason = "no predictions in the window"
        elif cur.coverage < cfg.min_coverage:
            reason = f"label coverage {cur.coverage:.1%} is below {cfg.min_coverage:.0%}"
        elif usable < minimum:
            reason = f"fewer than {minimum} usable labels"
        coverage = context.finding(
            self.name,
            metric="label_coverage",
            segment=segment,
            status=Status.INSUFFICIENT_DATA if reason else Status.OK,
            value=cur.coverage if cur.rows else None,
            threshold=cfg.min_coverage,
            n_current=cur.labeled,
            n_reference=ref.labeled if ref else 0,
            details={
                "rows": cur.rows,
                "labeled": cur.labeled,
                "invalid_labels": cur.invalid_labels,
                "classes": binary_classes(spec) if spec.task is Task.BINARY else list(spec.classes),
                "confusion_matrix": cur.matrix,
                "reference_confusion_matrix": ref.matrix if ref else None,
                **({"reason": reason} if reason else {}),
            },
        )
        out: list[Finding | _Judged] = [coverage]
        for metric, cls in plan:
            name = metric_name(spec, metric, cls)
            if reason or ref is None:
                out.append(
                    context.finding(
                        self.name,
                        metric=name,
                        segment=segment,
                        status=Status.INSUFFICIENT_DATA,
                        n_current=usable,
                        n_reference=ref.labeled if ref else 0,
                        value=self._point(metric, cls, cur),
                        details={"reason": reason, "class": cls},
                    )
                )
                continue
            cmp = _compare(metric, cls, cur, ref, cfg)
            if cmp.diff is None:
                out.append(
                    context.finding(
                        self.name,
                        metric=name,
                        segment=segment,
                        status=Status.INSUFFICIENT_DATA,
                        value=cmp.value,
                        n_current=usable,
                        n_reference=ref.labeled - ref.invalid_labels,
                        details={"reason": cmp.reason, "class": cls, "reference_value": cmp.reference},
                    )
                )
                continue
            out.append(
                _Judged(
                    self.name,
                    metric,
                    name,
                    cls,
                    segment,
                    cmp,
                    worse_p_value(metric, cmp, cfg.confidence),
                    usable,
                    ref.labeled - ref.invalid_labels,
                    cur.coverage,
                )
            )
        return out

    @staticmethod
    def _point(metric: str, cls: str | None, cur: SliceStats) -> float | None:
        """Point estimate so far (shown while the window waits for labels)."""
        if cur.labeled == 0:
            return None
        if metric in ("mae", "rmse"):
            if cur.errors is None or cur.errors.abs_errors.size == 0:
                return None
            return float(cur.errors.abs_errors.mean()) if metric == "mae" else math.sqrt(cur.errors.sq_errors.mean())
        if metric == "accuracy":
            n = sum(sum(r) for r in cur.matrix) if cur.matrix else 0
            return cur.correct / n if n else None
        if metric == "roc_auc":
            auc = cur.auc.get(cls or "")
            return auc.value if auc else None
        c = cur.confusion.get(cls or "")
        if c is None:
            return None
        value = {
            "fpr": (c.fp, c.fp + c.tn),
            "fnr": (c.fn, c.fn + c.tp),
            "precision": (c.tp, c.tp + c.fp),
            "recall": (c.tp, c.tp + c.fn),
        }.get(metric)
        if value is None:
            f1 = _f1(c)
            return None if math.isnan(f1) else f1
        return value[0] / value[1] if value[1] else None
