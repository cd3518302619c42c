"""Model performance before the labels arrive: CBPE for classifiers, DLE for regressors.

Labels come hours to weeks after the predictions. This detector judges a window from what the
model logged at prediction time and needs labels in the **reference only**:

* **Classification — confidence-based performance estimation** (CBPE, NannyML's method; the
  maths in :mod:`detectors.stats.cbpe`). The model's scores (binary ``score``; multiclass
  ``probabilities``, one-vs-rest per class) are calibrated on the labelled reference by
  isotonic regression, and the expected confusion matrix of the current window gives FPR, FNR,
  precision, recall, F1 and accuracy; ROC-AUC is the expected probability that a positive
  outranks a negative. It assumes the calibration carries over — the relation between score
  and outcome does not change (no concept drift), only which rows arrive (covariate shift).
* **Regression — direct loss estimation** (DLE, NannyML's method): a gradient-boosted model
  (scikit-learn's ``HistGradientBoostingRegressor``, chosen over LightGBM because scikit-learn
  is already installed) learns on the reference to predict each row's absolute and squared
  error from its features and prediction; their means over the window estimate MAE and RMSE.

**Verdicts** follow the performance detector's calibrated rule (:mod:`detectors.performance`):
``d = estimate − reference`` (the reference's *realized* value), oriented so that worse is
positive; the difference's interval is ``d ± z·√(se_estimate² + se_reference²)`` (delta-method
standard errors, :mod:`detectors.stats.cbpe`); *relevant* means worse by at
least ``max(margin, relative_margin × reference error)``, *established* means the one-sided
p-value stays below ``(1 − confidence)/2`` after Benjamini–Hochberg over every metric × class
× segment of the run. ``critical`` = relevant and established; ``warning`` = relevant and
established only before the adjustment. Error rates are measured in
``bench/estimated_performance.py`` and the table is in docs/detectors.md.

**Estimated next to realized.** When labels have reached a window (``check_min_labeled``
labelled rows), each metric's finding also carries the realized value on those rows, and an
``estimator_check`` finding compares realized with the estimate *on the same rows*: under
calibration the realized metric scatters around the estimate by Bernoulli noise of known size
(``noise_se``), so a disagreement beyond it (two-sided, BH-adjusted, and at least the
relevance margin) is a ``warning`` that the estimator's assumption broke — the calibration
moved, or the concept drifted — and its estimates should not be trusted for that model until
the reference is renewed.

>>> from datetime import datetime, timezone
>>> import numpy as np, pyarrow as pa
>>> from detectors import EstimatedPerformance, ModelSpec, RunContext
>>> rng = np.random.default_rng(3)
>>> spec = ModelSpec(task="binary", classes=("ok", "fault"), positive_class="fault",
...                  features={"x": "numeric"})
>>> def window(n, spread, labelled):
...     x = rng.normal(0, spread, n)
...     score = 1 / (1 + np.exp(-2 * x))              # a calibrated model: P(fault) = score
...     fault = rng.random(n) < score
...     return pa.table({"x": x, "score": score,
...                      "prediction": np.where(score >= 0.5, "fault", "ok"),
...                      "label": pa.array(np.where(fault, "fault", "ok")) if labelled
...                               else pa.nulls(n, pa.string())})
>>> detector = EstimatedPerformance()
>>> config = detector.config({"metrics": ["roc_auc", "accuracy"]})
>>> stats = detector.prepare_reference(window(20_000, 1.0, True), spec, config)
>>> ctx = RunContext("press", datetime(2026, 10, 8, tzinfo=timezone.utc),
...                  datetime(2026, 10, 9, tzinfo=timezone.utc))
>>> for f in detector.run(window(5_000, 1.0, False), stats, config, ctx):  # no change, no labels
...     print(f.metric, f.status.value, round(f.value, 2))
roc_auc ok 0.86
accuracy ok 0.77
>>> for f in detector.run(window(5_000, 0.5, False), stats, config, ctx):  # rows crowd the boundary
...     print(f.metric, f.status.value, round(f.value, 2))
roc_auc critical 0.74
accuracy critical 0.67
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from detectors.base import BaseDetector, Segment, SegmentKey, min_rows_for, segment_key, segment_slices
from detectors.context import RunContext
from detectors.finding import Finding, Status
from detectors.performance import (
    Comparison,
    PerformanceConfig,
    _adjust,
    _float,
    _indices,
    _Judged,
    _metric_plan,
    _probabilities,
    check_rule,
    metric_name,
    relevance_margin,
    worse_p_value,
)
from detectors.spec import FeatureKind, ModelSpec, Task
from detectors.stats.cbpe import (
    Calibrator,
    Estimate,
    estimate_auc,
    estimate_auc_calibrated,
    estimate_mean,
    estimate_rates,
)
from detectors.stats.fdr import benjamini_hochberg
from detectors.stats.intervals import z_value
from detectors.stats.pvalues import normal_cdf


@dataclass(frozen=True)
class EstimatedPerformanceConfig:
    """Parameters of the estimated-performance detector (see the module docstring)."""

    metrics: tuple[str, ...] | None = None
    margin: float = 0.005
    relative_margin: float = 0.2
    confidence: float = 0.95
    fdr: bool = True
    segments: tuple[str, ...] = ()
    min_rows: int = 100  # current rows needed for an estimate
    min_segment_rows: int = 100
    min_reference_labeled: int = 500  # labelled reference rows needed to calibrate / learn errors
    check_min_labeled: int = 200  # labelled current rows before realized is compared with estimated
    seed: int = 0  # DLE's gradient boosting

    def __post_init__(self) -> None:
        check_rule(self.metrics, self.margin, self.relative_margin, self.confidence)
        if self.min_reference_labeled < 50:
            raise ValueError("min_reference_labeled must be at least 50 (calibration needs data)")

    def rule(self) -> PerformanceConfig:
        """The performance detector's verdict rule with these margins and confidence."""
        return PerformanceConfig(
            metrics=self.metrics,
            margin=self.margin,
            relative_margin=self.relative_margin,
            confidence=self.confidence,
            fdr=self.fdr,
        )


@dataclass(frozen=True, eq=False)
class ErrorModel:
    """DLE: models of a row's absolute and squared error from its features and prediction."""

    features: tuple[str, ...]
    categories: dict[str, tuple[str, ...]]
    absolute: Any
    squared: Any

    def design(self, table: pa.Table) -> np.ndarray:
        """Feature matrix: numeric columns as floats (NaN for missing), categories as codes."""
        columns = [_float(table, "prediction")]
        for name in self.features:
            if name in self.categories:
                values = tuple(self.categories[name])
                codes = (
                    _indices(table.column(name), values).astype(np.float64)
                    if name in table.column_names
                    else np.full(table.num_rows, -1.0)
                )
                columns.append(np.where(codes < 0, np.nan, codes))
            else:
                columns.append(_float(table, name))
        return np.column_stack(columns)


@dataclass(frozen=True, eq=False)
class ReferenceSlice:
    """The realized metrics of one reference slice, with standard errors."""

    labeled: int
    realized: dict[tuple[str, str | None], Estimate]


@dataclass(frozen=True, eq=False)
class EstimatedPerformanceReference:
    spec: ModelSpec
    segments: tuple[str, ...]
    calibrators: dict[str, Calibrator]  # class → calibrator (binary: the positive class)
    error_model: ErrorModel | None
    slices: dict[SegmentKey, ReferenceSlice]
    labeled: int
    problem: str | None = None  # why nothing can be estimated from this reference


@dataclass(frozen=True, eq=False)
class _Window:
    """What the metrics of one slice are computed from: calibrated shares or predicted errors."""

    rows: int
    p: np.ndarray | None = None  # (n, k) calibrated class probabilities (binary: k = 1)
    yhat: np.ndarray | None = None  # (n, k) predicted-class indicators
    scores: np.ndarray | None = None  # (n, k) raw scores (for ROC-AUC)
    abs_err: np.ndarray | None = None  # DLE: predicted |error| and error² per row
    sq_err: np.ndarray | None = None
    truth: np.ndarray | None = None  # (n, k) 0/1 outcomes where labelled, NaN elsewhere
    abs_true: np.ndarray | None = None
    sq_true: np.ndarray | None = None
    calibrator: Calibrator | None = None  # binary: p is this calibration of the score (AUC sorts values only)
    usable: dict[tuple[int, bool], tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)
    rates: dict[tuple[int, bool], dict[str, Estimate]] = field(default_factory=dict)  # every rate metric, one pass

    def where(self, mask: np.ndarray) -> _Window:
        """The same window restricted to ``mask``'s rows (e.g. the labelled ones), without
        computing the scores, calibration or error predictions again."""

        def pick(values: np.ndarray | None) -> np.ndarray | None:
            return None if values is None else values[mask]

        return _Window(
            int(mask.sum()),
            p=pick(self.p),
            yhat=pick(self.yhat),
            scores=pick(self.scores),
            abs_err=pick(self.abs_err),
            sq_err=pick(self.sq_err),
            truth=pick(self.truth),
            abs_true=pick(self.abs_true),
            sq_true=pick(self.sq_true),
            calibrator=self.calibrator,
        )


def _classes_of(spec: ModelSpec) -> tuple[str, ...]:
    return (str(spec.positive_class),) if spec.task is Task.BINARY else spec.classes


def _all_classes(spec: ModelSpec) -> tuple[str, ...]:
    """Class order of the codes below (a binary model without listed classes: not-positive, positive)."""
    return spec.classes or (f"not {spec.positive_class}", str(spec.positive_class))


def _class_codes(table: pa.Table, spec: ModelSpec) -> tuple[np.ndarray, np.ndarray]:
    """(prediction, label) as indices into :func:`_all_classes`; -1 where null or unknown."""
    n = table.num_rows

    def codes(name: str) -> np.ndarray:
        if name not in table.column_names:
            return np.full(n, -1)
        if spec.classes:
            return _indices(table.column(name), spec.classes)
        column = table.column(name).cast(pa.string())
        valid = np.asarray(column.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        positive = np.asarray(
            pc.fill_null(pc.equal(column, str(spec.positive_class)), False).to_numpy(zero_copy_only=False), dtype=bool
        )
        return np.where(valid, positive.astype(np.int64), -1)

    return codes("prediction"), codes("label")


def _scores(table: pa.Table, spec: ModelSpec) -> np.ndarray:
    """(n, k) raw scores: the binary ``score``, or each class's probability."""
    if spec.task is Task.BINARY:
        return _float(table, "score")[:, None]
    probs = _probabilities(table, len(spec.classes))
    return probs if probs is not None else np.full((table.num_rows, len(spec.classes)), np.nan)


def _truth(table: pa.Table, spec: ModelSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n, k) predicted-class indicators and 0/1 outcomes per class of :func:`_classes_of`, and
    the rows with a usable prediction; the outcome is NaN where the label is missing or the
    prediction unusable (a row is realized exactly where it is estimated)."""
    pred_idx, label_idx = _class_codes(table, spec)
    predicted = pred_idx >= 0
    targets = np.array([_all_classes(spec).index(c) for c in _classes_of(spec)])
    yhat = (pred_idx[:, None] == targets[None, :]).astype(np.float64)
    truth = (label_idx[:, None] == targets[None, :]).astype(np.float64)
    truth[(label_idx < 0) | ~predicted] = np.nan
    return yhat, truth, predicted


def _classification_window(table: pa.Table, spec: ModelSpec, calibrators: dict[str, Calibrator]) -> _Window:
    scores = _scores(table, spec)
    p = np.column_stack([calibrators[c].apply(scores[:, i]) for i, c in enumerate(_classes_of(spec))])
    if spec.task is Task.MULTICLASS:  # one-vs-rest calibrations need not sum to 1
        total = p.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            p = np.where(total > 0, p / total, p)
    yhat, truth, predicted = _truth(table, spec)
    p[~predicted] = np.nan  # no usable prediction: not counted
    calibrator = calibrators[str(spec.positive_class)] if spec.task is Task.BINARY else None
    return _Window(table.num_rows, p=p, yhat=yhat, scores=scores, truth=truth, calibrator=calibrator)


def _regression_window(table: pa.Table, model: ErrorModel) -> _Window:
    x = model.design(table)
    n = table.num_rows
    prediction = _float(table, "prediction")
    good = np.isfinite(prediction)
    abs_err = np.full(n, np.nan)
    sq_err = np.full(n, np.nan)
    if good.any():
        abs_err[good] = np.maximum(model.absolute.predict(x[good]), 0.0)
        sq_err[good] = np.maximum(model.squared.predict(x[good]), 0.0)
    err = prediction - _float(table, "label") if "label" in table.column_names else np.full(n, np.nan)
    return _Window(n, abs_err=abs_err, sq_err=sq_err, abs_true=np.abs(err), sq_true=err * err)


def _class_index(spec: ModelSpec, cls: str | None) -> int:
    return 0 if cls is None or spec.task is Task.BINARY else spec.classes.index(cls)


def _metric_estimate(metric: str, cls: str | None, w: _Window, spec: ModelSpec, *, realized: bool) -> Estimate:
    """One metric of a window slice: estimated from ``p`` (or DLE), or realized from labels;
    an estimate from ``p`` also carries the outcome noise the estimator check compares with."""
    if metric in ("mae", "rmse"):
        values = (w.abs_true if metric == "mae" else w.sq_true) if realized else (w.abs_err if metric == "mae" else w.sq_err)
        assert values is not None
        return estimate_mean(values)  # rmse: judged on the mean squared error
    assert w.p is not None and w.yhat is not None and w.scores is not None and w.truth is not None
    if metric == "accuracy" and spec.task is Task.MULTICLASS:
        # Expected share correct: the calibrated probability of the predicted class.
        share = (w.truth if realized else w.p) * w.yhat
        predicted = w.yhat.sum(axis=1) > 0
        rows = share.sum(axis=1)[predicted & np.all(np.isfinite(share), axis=1)]
        mean = estimate_mean(rows)
        # Each row is correct with probability q: Bernoulli noise Σq(1−q) around the estimate.
        noise = math.sqrt(float(rows @ (1 - rows))) / max(rows.size, 1)
        return Estimate(mean.value, mean.se, noise)
    i = _class_index(spec, cls)
    key = (i, realized)
    if key not in w.usable:  # the rows with a share, once per class and side (a window is 1M rows)
        shares = w.truth[:, i] if realized else w.p[:, i]
        keep = np.isfinite(shares)
        if keep.all():  # the usual window: views, no 1M-row copies
            w.usable[key] = (shares, w.yhat[:, i], w.scores[:, i])
        else:
            w.usable[key] = (shares[keep], w.yhat[keep, i], w.scores[keep, i])
    shares, yhat, scores = w.usable[key]
    if metric == "roc_auc":
        if not realized and w.calibrator is not None:
            return estimate_auc_calibrated(scores, w.calibrator)
        return estimate_auc(scores, shares)
    if key not in w.rates:  # the window's sums serve every rate metric: computed once per side
        w.rates[key] = estimate_rates(shares, yhat)
    return w.rates[key][metric]


def _comparison(metric: str, est: Estimate, ref: Estimate, confidence: float) -> Comparison:
    z = z_value(confidence)
    d = est.value - ref.value
    se = math.sqrt(est.se**2 + ref.se**2)
    if metric == "rmse":  # estimated on MSE; shown as RMSE
        return Comparison(
            math.sqrt(max(est.value, 0.0)),
            math.sqrt(max(ref.value, 0.0)),
            d,
            d - z * se,
            d + z * se,
            (math.sqrt(max(est.value - z * est.se, 0.0)), math.sqrt(est.value + z * est.se)),
        )
    return Comparison(est.value, ref.value, d, d - z * se, d + z * se, (est.value - z * est.se, est.value + z * est.se))


def _usable(estimate: Estimate) -> bool:
    return math.isfinite(estimate.value) and math.isfinite(estimate.se)


@dataclass(frozen=True)
class _Check:
    """Realized vs estimated on the same labelled rows of one slice."""

    metric: str
    name: str  # as the metric's finding names it ("recall", or "recall:cat" for a multiclass model)
    cls: str | None
    segment: Segment
    estimated: float
    realized: float
    noise_se: float
    labeled: int

    @property
    def p_value(self) -> float:
        if self.noise_se <= 0:
            return 0.0 if self.realized != self.estimated else 1.0
        return 2 * (1 - normal_cdf(abs(self.realized - self.estimated) / self.noise_se))


class EstimatedPerformance(BaseDetector):
    """Performance estimated from scores (CBPE) or predicted errors (DLE), judged like realized
    performance, and checked against realized performance once labels arrive."""

    name: ClassVar[str] = "estimated_performance"
    config_type: ClassVar[type] = EstimatedPerformanceConfig

    def prepare_reference(
        self, reference: pa.Table, spec: ModelSpec, config: Any = None
    ) -> EstimatedPerformanceReference:
        cfg: EstimatedPerformanceConfig = self.config(config)
        if spec.task is Task.BINARY and spec.positive_class is None:
            raise ValueError("estimated performance of a binary model needs its positive_class")
        labelled = reference.filter(pa.array(_labelled(reference)))
        problem = self._reference_problem(labelled, spec, cfg)
        if problem is not None:
            return EstimatedPerformanceReference(spec, tuple(cfg.segments), {}, None, {}, labelled.num_rows, problem)
        calibrators: dict[str, Calibrator] = {}
        error_model: ErrorModel | None = None
        _, whole = next(iter(segment_slices(labelled, ())))  # a sampled reference: the whole-window share
        if spec.task is Task.REGRESSION:
            error_model = _fit_error_model(whole, spec, cfg.seed)
        else:
            scores = _scores(whole, spec)
            _, truth, _ = _truth(whole, spec)
            for i, cls in enumerate(_classes_of(spec)):
                known = np.isfinite(truth[:, i]) & np.isfinite(scores[:, i])
                if known.sum() < cfg.min_reference_labeled:
                    problem = f"fewer than {cfg.min_reference_labeled} labelled reference rows with a score for {cls!r}"
                    return EstimatedPerformanceReference(
                        spec, tuple(cfg.segments), {}, None, {}, labelled.num_rows, problem
                    )
                calibrators[cls] = Calibrator.fit(scores[known, i], truth[known, i])
        plan = _metric_plan(spec, cfg.rule())
        slices: dict[SegmentKey, ReferenceSlice] = {}
        for segment, part in segment_slices(labelled, cfg.segments):
            window = self._window(part, spec, calibrators, error_model)
            realized = {(m, c): _metric_estimate(m, c, window, spec, realized=True) for m, c in plan}
            slices[segment_key(segment)] = ReferenceSlice(part.num_rows, realized)
        return EstimatedPerformanceReference(
            spec, tuple(cfg.segments), calibrators, error_model, slices, labelled.num_rows
        )

    @staticmethod
    def _reference_problem(labelled: pa.Table, spec: ModelSpec, cfg: EstimatedPerformanceConfig) -> str | None:
        """Why the reference cannot teach the estimator (reported as insufficient data), if so."""
        if labelled.num_rows < cfg.min_reference_labeled:
            return (
                f"the reference has {labelled.num_rows} labelled rows; estimated performance learns from at "
                f"least {cfg.min_reference_labeled} (widen the reference or wait for labels)"
            )
        if spec.task is Task.BINARY and "score" not in labelled.column_names:
            return "the model logs no score: CBPE calibrates the score of each prediction"
        if spec.task is Task.MULTICLASS and "probabilities" not in labelled.column_names:
            return "the model logs no probabilities: CBPE calibrates each class's probability"
        if spec.task is Task.REGRESSION and not np.isfinite(_float(labelled, "prediction") - _float(labelled, "label")).any():
            return "no labelled reference row has a numeric prediction and label"
        return None

    @staticmethod
    def _window(
        table: pa.Table, spec: ModelSpec, calibrators: dict[str, Calibrator], error_model: ErrorModel | None
    ) -> _Window:
        if spec.task is Task.REGRESSION:
            assert error_model is not None
            return _regression_window(table, error_model)
        return _classification_window(table, spec, calibrators)

    def run(
        self, current: pa.Table, reference: EstimatedPerformanceReference, config: Any, context: RunContext
    ) -> list[Finding]:
        cfg: EstimatedPerformanceConfig = self.config(config)
        spec = reference.spec
        rule = cfg.rule()
        plan = _metric_plan(spec, rule)
        items: list[Finding | tuple[_Judged, _Check | None]] = []
        for segment, part in segment_slices(current, reference.segments):
            ref = reference.slices.get(segment_key(segment))
            minimum = min_rows_for(segment, cfg.min_rows, cfg.min_segment_rows)
            labelled_rows = _labelled(part)
            window = labelled_window = None
            if reference.problem is None:
                window = self._window(part, spec, reference.calibrators, reference.error_model)
                if int(labelled_rows.sum()) >= cfg.check_min_labeled:
                    labelled_window = window.where(labelled_rows)
            for metric, cls in plan:
                name = metric_name(spec, metric, cls)
                est, reason = None, reference.problem
                if reason is None and (ref is None or ref.labeled < minimum):
                    reason = f"reference slice has fewer than {minimum} labelled rows"
                elif reason is None and part.num_rows < minimum:
                    reason = f"fewer than {minimum} rows in the window"
                elif reason is None and window is not None and ref is not None:
                    est = _metric_estimate(metric, cls, window, spec, realized=False)
                    if not (_usable(est) and _usable(ref.realized[(metric, cls)])):
                        reason = "metric undefined in the window or the reference (e.g. no predicted positives)"
                if reason is not None or est is None or ref is None:
                    items.append(
                        context.finding(
                            self.name,
                            metric=name,
                            segment=segment,
                            status=Status.INSUFFICIENT_DATA,
                            n_current=part.num_rows,
                            n_reference=ref.labeled if ref else 0,
                            details={"reason": reason, "class": cls, "estimated": True},
                        )
                    )
                    continue
                cmp = _comparison(metric, est, ref.realized[(metric, cls)], cfg.confidence)
                judged = _Judged(
                    self.name,
                    metric,
                    name,
                    cls,
                    segment,
                    cmp,
                    worse_p_value(metric, cmp, cfg.confidence),
                    part.num_rows,
                    ref.labeled,
                    float(labelled_rows.mean()) if part.num_rows else 0.0,
                )
                check = None if labelled_window is None else self._check(metric, name, cls, segment, labelled_window, spec)
                items.append((judged, check))
        adjusted = _adjust([item[0] for item in items if isinstance(item, tuple)], cfg.fdr)
        findings: list[Finding] = []
        for item in items:
            if isinstance(item, Finding):
                findings.append(item)
                continue
            judged, check = item
            finding = judged.finding(adjusted[judged.hypothesis], rule, context)
            extra: dict[str, Any] = {"estimated": True, "method": "DLE" if spec.task is Task.REGRESSION else "CBPE"}
            if check is not None:
                shown = math.sqrt if judged.metric == "rmse" else float  # checked on MSE, shown as RMSE
                extra |= {
                    "realized": shown(check.realized),
                    "estimated_on_labeled": shown(check.estimated),
                    "realized_labeled": check.labeled,
                }
            findings.append(replace(finding, details={**finding.details, **extra}))
        checks = [item[1] for item in items if isinstance(item, tuple) and item[1] is not None]
        findings += self._check_findings(checks, rule, context)
        return findings

    def _check(
        self,
        metric: str,
        name: str,
        cls: str | None,
        segment: Segment,
        w: _Window,
        spec: ModelSpec,
    ) -> _Check | None:
        """Realized vs estimated on the labelled rows of a slice, with the spread expected of
        the realized value if the estimator's assumptions hold."""
        if metric in ("mae", "rmse"):  # paired: each row's realized minus predicted error
            assert w.abs_err is not None and w.sq_err is not None and w.abs_true is not None and w.sq_true is not None
            pred, true = (w.abs_err, w.abs_true) if metric == "mae" else (w.sq_err, w.sq_true)
            keep = np.isfinite(pred) & np.isfinite(true)
            if keep.sum() < 2:
                return None
            diff = estimate_mean(true[keep] - pred[keep])
            estimated, realized = float(pred[keep].mean()), float(true[keep].mean())
            return _Check(metric, name, cls, segment, estimated, realized, diff.se, int(keep.sum()))
        est = _metric_estimate(metric, cls, w, spec, realized=False)
        real = _metric_estimate(metric, cls, w, spec, realized=True)
        if not (math.isfinite(est.value) and math.isfinite(real.value) and math.isfinite(est.noise_se)):
            return None
        return _Check(metric, name, cls, segment, est.value, real.value, est.noise_se, w.rows)

    def _check_findings(self, checks: list[_Check], rule: PerformanceConfig, context: RunContext) -> list[Finding]:
        """One ``estimator_check`` finding per slice with labels: ``warning`` when realized and
        estimated disagree beyond the outcome noise (BH over the run's checks) by at least the
        relevance margin."""
        if not checks:
            return []
        adjusted = benjamini_hochberg([c.p_value for c in checks]) if rule.fdr else [c.p_value for c in checks]
        level = 1 - rule.confidence
        by_segment: dict[SegmentKey, list[tuple[_Check, float]]] = {}
        for check, p_adj in zip(checks, adjusted, strict=True):
            by_segment.setdefault(segment_key(check.segment), []).append((check, p_adj))
        out: list[Finding] = []
        for pairs in by_segment.values():
            segment = pairs[0][0].segment
            broken = []
            rows = []
            for check, p_adj in pairs:
                # relevance_margin takes the RMSE itself for "rmse" (the check is on MSE)
                on_scale = math.sqrt(check.realized) if check.metric == "rmse" else check.realized
                margin = relevance_margin(check.metric, on_scale, rule)
                disagree = p_adj < level and abs(check.realized - check.estimated) >= margin
                if disagree:
                    broken.append(check.name)
                rows.append(
                    {
                        "metric": check.name,
                        "class": check.cls,
                        "estimated": check.estimated,
                        "realized": check.realized,
                        "noise_se": check.noise_se,
                        "p_value_adjusted": p_adj,
                        "disagrees": disagree,
                    }
                )
            worst = min(pairs, key=lambda item: item[1])
            out.append(
                context.finding(
                    self.name,
                    metric="estimator_check",
                    segment=segment,
                    status=Status.WARNING if broken else Status.OK,
                    value=float(len(broken)),
                    p_value=worst[0].p_value,
                    p_value_adjusted=worst[1],
                    n_current=max(c.labeled for c, _ in pairs),
                    details={
                        "checks": rows,
                        "disagreeing": broken,
                        "meaning": (
                            "realized and estimated performance disagree beyond sampling noise: the calibration "
                            "moved or the concept drifted; renew the reference before trusting estimates"
                            if broken
                            else "realized performance agrees with the estimate"
                        ),
                    },
                )
            )
        return out


def _labelled(table: pa.Table) -> np.ndarray:
    if "label" not in table.column_names:
        return np.zeros(table.num_rows, dtype=bool)
    return np.asarray(table.column("label").is_valid().to_numpy(zero_copy_only=False), dtype=bool)


def _fit_error_model(labelled: pa.Table, spec: ModelSpec, seed: int) -> ErrorModel:
    """DLE's error models, fitted on the labelled reference."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    features = tuple(
        name
        for name, kind in spec.features.items()
        if kind in (FeatureKind.NUMERIC, FeatureKind.CATEGORICAL, FeatureKind.BOOLEAN) and name in labelled.column_names
    )
    categories: dict[str, tuple[str, ...]] = {}
    for name in features:
        if spec.features[name] is not FeatureKind.NUMERIC:
            values = labelled.column(name).cast(pa.string()).unique().drop_null().to_pylist()
            categories[name] = tuple(sorted(values)[:250])
    shell = ErrorModel(features, categories, None, None)
    x = shell.design(labelled)
    err = _float(labelled, "prediction") - _float(labelled, "label")
    keep = np.isfinite(err)
    categorical = [i + 1 for i, name in enumerate(features) if name in categories]

    def fit(target: np.ndarray) -> Any:
        model = HistGradientBoostingRegressor(
            max_iter=200, learning_rate=0.1, categorical_features=categorical or None, random_state=seed
        )
        return model.fit(x[keep], target[keep])

    return ErrorModel(features, categories, fit(np.abs(err)), fit(err * err))


__all__ = ["EstimatedPerformance", "EstimatedPerformanceConfig", "EstimatedPerformanceReference"]
