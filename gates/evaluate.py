"""Judge a candidate model version against a specification: ship, no-ship or insufficient evidence.

Every criterion is judged on the whole evaluation set and on every value of every slice. Each
judgement is one of:

* **pass** — the one-sided confidence bound at ``α = (1 − confidence)/2`` clears the threshold
  (a ``min``: the lower bound is above it; a ``max``: the upper bound is below it;
  non-inferiority: the bound of candidate − champion is inside the margin). The candidate ships
  only if *every* judgement passes: an intersection–union test (R. L. Berger, "Multiparameter
  hypothesis testing and acceptance sampling", Technometrics 24:295–300, 1982), so the chance of
  shipping a candidate that truly violates any one criterion is at most α (2.5 % at 95 %) with
  no multiplicity correction needed — adding slices only makes shipping harder.
* **fail** — the other bound shows the criterion violated, after Holm's step-down adjustment
  across every criterion × slice judged (:mod:`detectors.stats.multiplicity`): a 12-slice
  spec does not fail a compliant candidate by chance (family-wise error ≤ α).
* **insufficient** — neither, or fewer than ``min_samples`` rows in the slice (or no trials for
  the metric: a slice without positives has no recall). The judgement then says how many more
  labelled rows of that slice would decide it at ``power`` (80 %), planned at the current
  estimate (:mod:`detectors.stats.sample_size`).

Verdict: **no-ship** if any judgement fails, **ship** if all pass, otherwise **insufficient
evidence**.

Intervals: a rate uses the Wilson score interval (Wilson 1927) and its p-values the score test
the interval inverts; candidate − champion on the same rows uses Newcombe's paired hybrid score
interval (Newcombe 1998, method 10; :mod:`detectors.stats.paired`), with p-values found by
inverting it (the level at which the bound meets the margin); ``mae`` and paired differences of
absolute errors use the CLT interval of a mean. Pass and fail are therefore read off the same
intervals the report shows.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from statistics import NormalDist
from typing import Literal

import numpy as np

from detectors.stats.auc import delong
from detectors.stats.intervals import mean_interval, wilson, z_value
from detectors.stats.multiplicity import holm
from detectors.stats.paired import PairedCounts, newcombe_paired_difference
from detectors.stats.sample_size import one_sample_proportion_n, paired_difference_n
from gates.spec import LONGTAIL_SLICE, LOWER_IS_BETTER, Criterion, GateSpec

Judgement = Literal["pass", "fail", "insufficient"]
Verdict = Literal["ship", "no_ship", "insufficient_evidence"]
OVERALL = "all"
MISSING = "(missing)"
_NORMAL = NormalDist()


@dataclass(frozen=True)
class EvaluationSet:
    """The rows a gate judges, aligned: one entry per labelled dataset row."""

    task: Literal["binary", "multiclass", "regression"]
    labels: np.ndarray
    candidate: np.ndarray
    champion: np.ndarray | None
    slices: dict[str, np.ndarray]  # slice name → value per row (strings; the long-tail slice: split names)
    positive_class: str | None = None
    candidate_score: np.ndarray | None = None  # for roc_auc (binary: the positive class's score)
    champion_score: np.ndarray | None = None

    @property
    def rows(self) -> int:
        return int(self.labels.size)


@dataclass
class Estimate:
    """One model's metric on one slice, with its two-sided interval at the spec's confidence."""

    value: float | None
    low: float | None
    high: float | None
    trials: int  # the metric's denominator (positives for recall, negatives for fpr, rows for mae)


@dataclass
class Check:
    """One criterion judged on one slice value."""

    criterion: int  # index into the spec's criteria
    label: str
    slice: str  # "all", a segment column, or "longtail"
    value: str  # the slice value ("all" for the whole set)
    rows: int
    judgement: Judgement
    reason: str
    candidate: Estimate
    champion: Estimate | None = None
    difference: Estimate | None = None  # candidate − champion (non-inferiority)
    p_pass: float | None = None  # one-sided: the bound clears the threshold at this level
    p_fail: float | None = None  # one-sided, before Holm
    p_fail_holm: float | None = None
    more_rows_needed: int | None = None  # labelled rows of this slice that would decide it

    @property
    def where(self) -> str:
        """``all`` or ``region=us``."""
        return OVERALL if self.slice == OVERALL else f"{self.slice}={self.value}"

    def to_dict(self) -> dict[str, object]:
        cleaned = _clean(asdict(self))
        assert isinstance(cleaned, dict)
        return cleaned


@dataclass
class SampleRequest:
    """Labelled rows to ask the labeling queue for, per slice value (long-tail slices first)."""

    slice: str
    value: str
    rows: int
    for_criteria: list[str] = field(default_factory=list)


@dataclass
class GateResult:
    verdict: Verdict
    checks: list[Check]
    requests: list[SampleRequest]
    rows: int
    alpha: float

    @property
    def failing(self) -> list[Check]:
        return [c for c in self.checks if c.judgement == "fail"]

    def to_dict(self) -> dict[str, object]:
        return {
            "verdict": self.verdict,
            "rows": self.rows,
            "alpha": self.alpha,
            "summary": {j: sum(1 for c in self.checks if c.judgement == j) for j in ("pass", "fail", "insufficient")},
            "failing": [f"{c.label} [{c.where}]" for c in self.failing],
            "checks": [c.to_dict() for c in self.checks],
            "sample_requests": [_clean(asdict(r)) for r in self.requests],
        }


def _clean(value: object) -> object:
    """JSON-safe and stable: NaN/inf → None, floats rounded to 12 significant digits."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, float):
        return None if not math.isfinite(value) else float(f"{value:.12g}")
    return value


# ---------------------------------------------------------------------------------------------
# What each metric counts
# ---------------------------------------------------------------------------------------------


def _rate_outcomes(
    metric: str, labels: np.ndarray, predictions: np.ndarray, positive: str | None
) -> tuple[np.ndarray, np.ndarray]:
    """(is a trial, is a success) per row: the metric is successes / trials."""
    if metric == "accuracy":
        return np.ones(labels.size, dtype=bool), predictions == labels
    is_pos_label = labels == positive
    said_pos = predictions == positive
    if metric == "recall":
        return is_pos_label, said_pos
    if metric == "fnr":
        return is_pos_label, ~said_pos
    if metric == "fpr":
        return ~is_pos_label, said_pos
    if metric == "specificity":
        return ~is_pos_label, ~said_pos
    if metric == "precision":
        return said_pos, is_pos_label
    raise ValueError(f"not a rate metric: {metric}")


def _abs_errors(labels: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    return np.abs(predictions.astype(np.float64) - labels.astype(np.float64))


# ---------------------------------------------------------------------------------------------
# Intervals and their p-values
# ---------------------------------------------------------------------------------------------


def _rate_estimate(successes: int, trials: int, confidence: float) -> Estimate:
    if trials == 0:
        return Estimate(None, None, None, 0)
    low, high = wilson(successes, trials, confidence)
    return Estimate(successes / trials, low, high, trials)


def _mean_estimate(values: np.ndarray, confidence: float) -> Estimate:
    if values.size == 0:
        return Estimate(None, None, None, 0)
    mean, low, high = mean_interval(values, confidence)
    return Estimate(mean, low, high, int(values.size))


def _score_p(successes: int, trials: int, threshold: float) -> float:
    """One-sided score-test p-value of "the rate is at least ``threshold``" (small: it is below).
    The Wilson interval is this test inverted, so the two always agree."""
    z = (successes / trials - threshold) / math.sqrt(threshold * (1 - threshold) / trials)
    return _NORMAL.cdf(z)


def _mean_p(values: np.ndarray, threshold: float) -> float:
    """One-sided CLT p-value of "the mean is at least ``threshold``" (small: it is below)."""
    n = values.size
    sd = float(values.std(ddof=1)) if n > 1 else 0.0
    mean = float(values.mean())
    if sd == 0.0:
        return 0.0 if mean < threshold else 1.0
    return _NORMAL.cdf((mean - threshold) / (sd / math.sqrt(n)))


def _inverted_p(bound: Callable[[float], float], clears: Callable[[float], bool]) -> float:
    """The smallest one-sided level ``a`` at which ``bound(a)`` clears, by bisection: the
    p-value implied by an interval family that narrows as ``a`` grows (1.0 if even the point
    estimate, ``a`` = ½, does not clear)."""
    top = 0.5 - 1e-9  # ½ itself is a zero-width interval (confidence 0), which the helpers refuse
    if not clears(bound(top)):
        return 1.0
    lo, hi = 1e-15, top
    if clears(bound(lo)):
        return lo
    for _ in range(60):
        mid = (lo + hi) / 2
        if clears(bound(mid)):
            hi = mid
        else:
            lo = mid
    return hi


# ---------------------------------------------------------------------------------------------
# Judging
# ---------------------------------------------------------------------------------------------


@dataclass
class _Judged:
    check: Check
    p_pass: float
    p_fail: float
    plan: Callable[[], int | None]  # rows of this slice that would decide it (None: none would)


def evaluate(spec: GateSpec, data: EvaluationSet) -> GateResult:
    """Judge every criterion on the whole set and on every slice value (see the module docstring)."""
    alpha = spec.alpha
    judged: list[_Judged] = []
    checks: list[Check] = []
    for index, criterion in enumerate(spec.criteria):
        for slice_name, value, mask in _slices(spec, data):
            rows = int(mask.sum())
            outcome = _judge(spec, data, index, criterion, slice_name, value, mask)
            if rows < spec.min_samples:
                outcome.check.judgement = "insufficient"
                outcome.check.reason = f"{rows} rows < min_samples {spec.min_samples}"
                planned = outcome.plan()
                outcome.check.more_rows_needed = max(spec.min_samples, planned or 0) - rows
                checks.append(outcome.check)
                continue
            if outcome.check.candidate.trials == 0 or (
                outcome.check.difference is not None and outcome.check.difference.trials == 0
            ):
                outcome.check.judgement = "insufficient"
                outcome.check.reason = "no trials for this metric in the slice"
                checks.append(outcome.check)
                continue
            judged.append(outcome)
            checks.append(outcome.check)
    adjusted = holm([j.p_fail for j in judged])
    for outcome, p_holm in zip(judged, adjusted, strict=True):
        check = outcome.check
        check.p_pass, check.p_fail, check.p_fail_holm = outcome.p_pass, outcome.p_fail, p_holm
        if outcome.p_pass <= alpha:
            check.judgement, check.reason = (
                "pass",
                f"the confidence bound clears the threshold (p = {outcome.p_pass:.3g})",
            )
        elif p_holm <= alpha:
            check.judgement = "fail"
            check.reason = f"violated: Holm-adjusted p = {p_holm:.3g} ≤ {alpha:g}"
        else:
            check.judgement = "insufficient"
            planned = outcome.plan()
            if planned is None:
                check.reason = "undecided; the estimate sits on the threshold, so no sample size decides it"
            else:
                check.more_rows_needed = max(planned - check.rows, 1)
                check.reason = (
                    f"undecided at {check.rows} rows; about {planned} would decide it at {spec.power:.0%} power"
                )
    verdict: Verdict
    if any(c.judgement == "fail" for c in checks):
        verdict = "no_ship"
    elif all(c.judgement == "pass" for c in checks):
        verdict = "ship"
    else:
        verdict = "insufficient_evidence"
    return GateResult(verdict, checks, _requests(checks), data.rows, alpha)


def _slices(spec: GateSpec, data: EvaluationSet) -> list[tuple[str, str, np.ndarray]]:
    out = [(OVERALL, OVERALL, np.ones(data.rows, dtype=bool))]
    for name in spec.slices:
        column = data.slices[name]
        if name == LONGTAIL_SLICE:
            out.append((name, "longtail_test", column == "longtail_test"))
            continue
        for value in sorted({str(v) for v in column}):
            out.append((name, value, column == value))
    return out


def _judge(
    spec: GateSpec,
    data: EvaluationSet,
    index: int,
    criterion: Criterion,
    slice_name: str,
    value: str,
    mask: np.ndarray,
) -> _Judged:
    labels, cand = data.labels[mask], data.candidate[mask]
    champ = data.champion[mask] if data.champion is not None else None
    rows = int(mask.sum())
    positive = criterion.class_ or data.positive_class
    conf, alpha, power = spec.confidence, spec.alpha, spec.power
    lower_better = criterion.metric in LOWER_IS_BETTER

    def check(candidate: Estimate, champion: Estimate | None, difference: Estimate | None) -> Check:
        return Check(
            index, criterion.label, slice_name, value, rows, "insufficient", "", candidate, champion, difference
        )

    if criterion.metric == "rmse":
        return _rmse(spec, data, index, criterion, slice_name, value, mask)
    if criterion.metric == "roc_auc":
        return _roc_auc(spec, data, index, criterion, slice_name, value, mask)
    if criterion.metric == "f1":
        return _f1(spec, data, index, criterion, slice_name, value, mask)
    if criterion.metric == "mae":
        cand_err = _abs_errors(labels, cand)
        champ_err = _abs_errors(labels, champ) if champ is not None else None
        cand_est = _mean_estimate(cand_err, conf)
        champ_est = _mean_estimate(champ_err, conf) if champ_err is not None else None
        if criterion.kind != "non_inferiority":
            return _one_sample_mean(check(cand_est, champ_est, None), criterion, cand_err, alpha, power)
        assert champ_err is not None  # a champion is required by the spec (checked on load)
        diffs = cand_err - champ_err  # positive: the candidate errs more
        diff_est = _mean_estimate(diffs, conf)
        return _one_sample_mean(
            check(cand_est, champ_est, diff_est), criterion, diffs, alpha, power, override_threshold=criterion.threshold
        )

    trials, success = _rate_outcomes(criterion.metric, labels, cand, positive)
    n, x = int(trials.sum()), int((success & trials).sum())
    cand_est = _rate_estimate(x, n, conf)
    champ_est = None
    if champ is not None:
        c_trials, c_success = _rate_outcomes(criterion.metric, labels, champ, positive)
        champ_est = _rate_estimate(int((c_success & c_trials).sum()), int(c_trials.sum()), conf)
    share = n / rows if rows else 0.0

    def rows_for(trials_needed: int | None) -> int | None:
        if trials_needed is None or share == 0:
            return None
        return math.ceil(trials_needed / share)

    if criterion.kind != "non_inferiority":
        result = check(cand_est, champ_est, None)
        threshold = criterion.threshold
        if n == 0:
            return _Judged(result, 1.0, 1.0, lambda: None)
        p_below = _score_p(x, n, threshold)
        # A min passes when the rate is shown above; a max when it is shown below.
        p_pass, p_fail = (1 - p_below, p_below) if criterion.kind == "min" else (p_below, 1 - p_below)
        estimate = x / n
        return _Judged(
            result, p_pass, p_fail, lambda: rows_for(one_sample_proportion_n(estimate, threshold, alpha, power))
        )

    # Non-inferiority on the same trials (the labels fix them): pairs of outcomes.
    assert champ is not None
    _, c_success = _rate_outcomes(criterion.metric, labels, champ, positive)
    good_cand = success[trials] if not lower_better else ~success[trials]
    good_champ = c_success[trials] if not lower_better else ~c_success[trials]
    counts = PairedCounts(
        both=int((good_cand & good_champ).sum()),
        first_only=int((good_cand & ~good_champ).sum()),
        second_only=int((~good_cand & good_champ).sum()),
        neither=int((~good_cand & ~good_champ).sum()),
    )
    margin = criterion.threshold
    sign = -1.0 if lower_better else 1.0  # report candidate − champion in the metric's own terms
    diff_good, low_good, high_good = newcombe_paired_difference(counts, conf)
    if n == 0:
        difference = Estimate(None, None, None, 0)
    else:
        ends = sorted((sign * low_good, sign * high_good))
        difference = Estimate(sign * diff_good, ends[0], ends[1], n)
    result = check(cand_est, champ_est, difference)
    if n == 0:
        return _Judged(result, 1.0, 1.0, lambda: None)

    def lower(a: float) -> float:
        return newcombe_paired_difference(counts, 1 - 2 * a)[1]

    def upper(a: float) -> float:
        return newcombe_paired_difference(counts, 1 - 2 * a)[2]

    p_pass = _inverted_p(lower, lambda b: b > -margin)  # good-rate difference shown above −margin
    p_fail = _inverted_p(upper, lambda b: b < -margin)  # shown below it: worse by more than the margin
    # No discordant pair yet: plan with half a pair in each discordant cell (the usual ½
    # correction for empty cells), since Connor's formula needs some discordance to plan for.
    first_only = counts.first_only or (0.5 if counts.second_only == 0 else 0.0)
    second_only = counts.second_only or (0.5 if counts.first_only == 0 else 0.0)
    first, second = first_only / n, second_only / n
    return _Judged(result, p_pass, p_fail, lambda: rows_for(paired_difference_n(first, second, margin, alpha, power)))


def _one_sample_mean(
    result: Check,
    criterion: Criterion,
    values: np.ndarray,
    alpha: float,
    power: float,
    override_threshold: float | None = None,
) -> _Judged:
    """A mean (MAE, or the paired error difference against ``margin``) against a threshold:
    a ``max`` (and non-inferiority: mean difference below the margin) passes when the mean is
    shown below it, a ``min`` when shown above."""
    if values.size < 2:
        return _Judged(result, 1.0, 1.0, lambda: None)
    threshold = override_threshold if override_threshold is not None else criterion.threshold
    p_below = _mean_p(values, threshold)
    p_pass, p_fail = (1 - p_below, p_below) if criterion.kind == "min" else (p_below, 1 - p_below)
    mean, sd = float(values.mean()), float(values.std(ddof=1))

    def plan() -> int | None:
        if mean == threshold:
            return None
        return math.ceil(((z_value(1 - 2 * alpha) + _NORMAL.inv_cdf(power)) * sd / (mean - threshold)) ** 2)

    return _Judged(result, p_pass, p_fail, plan)


def _scaled_plan(rows: int, se: float, distance: float, alpha: float, power: float) -> int | None:
    """Rows that would decide a criterion whose standard error shrinks as 1/√n: the current
    ``se`` at ``rows`` rows, an estimate ``distance`` from its threshold."""
    if distance == 0 or se <= 0 or not math.isfinite(se):
        return None
    z = z_value(1 - 2 * alpha) + _NORMAL.inv_cdf(power)
    return math.ceil(rows * (z * se / distance) ** 2)


def _normal_p(estimate: float, threshold: float, se: float) -> float:
    """One-sided normal p-value of "the metric is at least ``threshold``" (small: it is below)."""
    if se <= 0:
        return 0.0 if estimate < threshold else 1.0
    return _NORMAL.cdf((estimate - threshold) / se)


def _bounded(kind: str, p_below: float) -> tuple[float, float]:
    """(p_pass, p_fail) of a min (pass when shown above) or a max (pass when shown below)."""
    return (1 - p_below, p_below) if kind == "min" else (p_below, 1 - p_below)


def _rmse(
    spec: GateSpec, data: EvaluationSet, index: int, criterion: Criterion, slice_name: str, value: str, mask: np.ndarray
) -> _Judged:
    """RMSE bounds, judged on the mean squared error (CLT) against the threshold squared; the
    report shows the RMSE and its interval (square roots of the MSE's)."""
    labels, cand = data.labels[mask], data.candidate[mask]
    rows = int(mask.sum())

    def estimate(predictions: np.ndarray | None) -> tuple[Estimate | None, np.ndarray | None]:
        if predictions is None:
            return None, None
        squared = (predictions.astype(np.float64) - labels.astype(np.float64)) ** 2
        mse = _mean_estimate(squared, spec.confidence)
        if mse.value is None or mse.low is None or mse.high is None:
            return Estimate(None, None, None, 0), squared
        return Estimate(math.sqrt(mse.value), math.sqrt(max(mse.low, 0.0)), math.sqrt(mse.high), mse.trials), squared

    cand_est, squared = estimate(cand)
    champ_est, _ = estimate(data.champion[mask] if data.champion is not None else None)
    assert cand_est is not None and squared is not None
    check = Check(index, criterion.label, slice_name, value, rows, "insufficient", "", cand_est, champ_est)
    return _one_sample_mean(
        check, criterion, squared, spec.alpha, spec.power, override_threshold=criterion.threshold**2
    )


def _roc_auc(
    spec: GateSpec, data: EvaluationSet, index: int, criterion: Criterion, slice_name: str, value: str, mask: np.ndarray
) -> _Judged:
    """ROC-AUC from the ``score`` column with DeLong's variance; candidate vs champion by
    DeLong's paired covariance (both on the same rows)."""
    rows = int(mask.sum())
    positive = data.labels[mask] == (criterion.class_ or data.positive_class)
    assert data.candidate_score is not None  # checked with the inputs
    scores = [data.candidate_score[mask]]
    if data.champion_score is not None:
        scores.append(data.champion_score[mask])
    result = delong(scores, positive)
    z = z_value(spec.confidence)

    def interval(auc: float, var: float) -> Estimate:
        se = math.sqrt(max(var, 0.0))
        return Estimate(auc, max(0.0, auc - z * se), min(1.0, auc + z * se), rows)

    if result is None:
        empty = Estimate(None, None, None, 0)
        return _Judged(
            Check(index, criterion.label, slice_name, value, rows, "insufficient", "", empty), 1.0, 1.0, lambda: None
        )
    cand_est = interval(float(result.auc[0]), result.variance(0))
    champ_est = interval(float(result.auc[1]), result.variance(1)) if len(scores) > 1 else None
    if criterion.kind != "non_inferiority":
        se = math.sqrt(result.variance(0))
        auc = float(result.auc[0])
        p_pass, p_fail = _bounded(criterion.kind, _normal_p(auc, criterion.threshold, se))
        check = Check(index, criterion.label, slice_name, value, rows, "insufficient", "", cand_est, champ_est)
        distance = auc - criterion.threshold
        return _Judged(check, p_pass, p_fail, lambda: _scaled_plan(rows, se, distance, spec.alpha, spec.power))
    diff, var = result.difference(0, 1)
    se = math.sqrt(var)
    difference = Estimate(diff, diff - z * se, diff + z * se, rows)
    check = Check(index, criterion.label, slice_name, value, rows, "insufficient", "", cand_est, champ_est, difference)
    margin = criterion.threshold
    p_below = _normal_p(diff, -margin, se)  # small: the candidate is worse by more than the margin
    shifted = diff + margin
    return _Judged(check, 1 - p_below, p_below, lambda: _scaled_plan(rows, se, shifted, spec.alpha, spec.power))


F1_BOOTSTRAP = 2000


def _f1_of(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    denominator = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), np.nan)


def _f1(
    spec: GateSpec, data: EvaluationSet, index: int, criterion: Criterion, slice_name: str, value: str, mask: np.ndarray
) -> _Judged:
    """F1 with a seeded multinomial percentile bootstrap over the confusion cells (Efron &
    Tibshirani 1993, as the performance detector), paired for non-inferiority: each row's cell
    is (label, candidate's call, champion's call), resampled together. p-values are the share of
    replicates on the wrong side of the threshold, (count + 1) / (B + 1)."""
    rows = int(mask.sum())
    positive_class = criterion.class_ or data.positive_class
    is_pos = data.labels[mask] == positive_class
    cand_pos = data.candidate[mask] == positive_class
    champ_pos = data.champion[mask] == positive_class if data.champion is not None else np.zeros(rows, dtype=bool)
    # 8 cells: label × candidate's call × champion's call.
    cell = is_pos.astype(np.int64) * 4 + cand_pos.astype(np.int64) * 2 + champ_pos.astype(np.int64)
    counts = np.bincount(cell, minlength=8)
    seed = int.from_bytes(hashlib.sha256(f"{index}\x00{slice_name}\x00{value}".encode()).digest()[:8], "big")
    draws = (
        np.random.default_rng(seed).multinomial(rows, counts / max(rows, 1), size=F1_BOOTSTRAP)
        if rows
        else np.zeros((0, 8))
    )

    def f1s(table: np.ndarray, model: int) -> np.ndarray:
        """F1 of the candidate (model 2) or champion (model 1) from cell counts (rows × 8)."""
        pos_label = table[..., 4:].reshape(*table.shape[:-1], 2, 2)
        neg_label = table[..., :4].reshape(*table.shape[:-1], 2, 2)
        if model == 2:  # candidate's call is the middle bit
            tp, fp = pos_label[..., 1, :].sum(-1), neg_label[..., 1, :].sum(-1)
            fn = pos_label[..., 0, :].sum(-1)
        else:
            tp, fp = pos_label[..., :, 1].sum(-1), neg_label[..., :, 1].sum(-1)
            fn = pos_label[..., :, 0].sum(-1)
        return _f1_of(tp, fp, fn)

    point_c, point_h = float(f1s(counts, 2)), float(f1s(counts, 1))
    boot_c = f1s(draws, 2)
    low_q, high_q = spec.alpha, 1 - spec.alpha

    def interval(point: float, boot: np.ndarray) -> Estimate:
        finite = boot[np.isfinite(boot)]
        if not math.isfinite(point) or finite.size == 0:
            return Estimate(None, None, None, 0)
        return Estimate(point, float(np.quantile(finite, low_q)), float(np.quantile(finite, high_q)), rows)

    cand_est = interval(point_c, boot_c)
    champ_est = interval(point_h, f1s(draws, 1)) if data.champion is not None else None

    def tails(boot: np.ndarray, threshold: float) -> tuple[float, float]:
        """Bootstrap p-values (Davison & Hinkley 1997, (count + 1) / (B + 1)) of "at least
        ``threshold``" and of "at most ``threshold``": the shares of replicates below and above."""
        finite = boot[np.isfinite(boot)]
        if finite.size == 0:
            return 1.0, 1.0
        below, above = float((finite < threshold).sum()), float((finite > threshold).sum())
        return (below + 1) / (finite.size + 1), (above + 1) / (finite.size + 1)

    if cand_est.value is None:
        check = Check(
            index, criterion.label, slice_name, value, rows, "insufficient", "", Estimate(None, None, None, 0)
        )
        return _Judged(check, 1.0, 1.0, lambda: None)
    if criterion.kind != "non_inferiority":
        check = Check(index, criterion.label, slice_name, value, rows, "insufficient", "", cand_est, champ_est)
        below, above = tails(boot_c, criterion.threshold)
        p_pass, p_fail = (below, above) if criterion.kind == "min" else (above, below)
        se = float(np.nanstd(boot_c))
        distance = point_c - criterion.threshold
        return _Judged(check, p_pass, p_fail, lambda: _scaled_plan(rows, se, distance, spec.alpha, spec.power))
    diffs = boot_c - f1s(draws, 1)
    difference = interval(point_c - point_h, diffs)
    check = Check(index, criterion.label, slice_name, value, rows, "insufficient", "", cand_est, champ_est, difference)
    margin = criterion.threshold
    p_pass, p_fail = tails(diffs, -margin)  # below −margin: the candidate worse by more than the margin
    se = float(np.nanstd(diffs))
    shifted = point_c - point_h + margin
    return _Judged(check, p_pass, p_fail, lambda: _scaled_plan(rows, se, shifted, spec.alpha, spec.power))


def _requests(checks: list[Check]) -> list[SampleRequest]:
    """Per slice value, the most rows any of its undecided checks needs; long-tail first, then
    the largest requests."""
    wanted: dict[tuple[str, str], SampleRequest] = {}
    for check in checks:
        if check.judgement != "insufficient" or not check.more_rows_needed:
            continue
        key = (check.slice, check.value)
        request = wanted.setdefault(key, SampleRequest(check.slice, check.value, 0))
        request.rows = max(request.rows, check.more_rows_needed)
        request.for_criteria.append(check.label)
    return sorted(wanted.values(), key=lambda r: (r.slice != LONGTAIL_SLICE, -r.rows, r.slice, r.value))
