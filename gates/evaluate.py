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

from detectors.performance import f1_from_counts
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


def _normal_p(estimate: float, threshold: float, se: float) -> float:
    """One-sided normal p-value of "the metric is at least ``threshold``" (small: it is below).
    For a rate with ``se`` = √(θ(1 − θ)/n) this is the score test the Wilson interval inverts,
    so the two always agree; for a mean, the CLT test of its interval."""
    if se <= 0:
        return 0.0 if estimate < threshold else 1.0
    return _NORMAL.cdf((estimate - threshold) / se)


def _bounded(kind: str, p_below: float) -> tuple[float, float]:
    """(p_pass, p_fail) of a min (pass when shown above) or a max, or a non-inferiority on a
    lower-is-better difference (pass when shown below)."""
    return (1 - p_below, p_below) if kind == "min" else (p_below, 1 - p_below)


def _scaled_plan(rows: int, se: float, distance: float, alpha: float, power: float) -> int | None:
    """Rows that would decide a criterion whose standard error shrinks as 1/√n: the current
    ``se`` at ``rows`` rows, an estimate ``distance`` from its threshold."""
    if distance == 0 or se <= 0 or not math.isfinite(se):
        return None
    z = z_value(1 - 2 * alpha) + _NORMAL.inv_cdf(power)
    return math.ceil(rows * (z * se / distance) ** 2)


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


@dataclass(frozen=True)
class _Slice:
    """One criterion on one slice value: which rows it judges and how its check is named."""

    index: int  # of the criterion in the spec
    criterion: Criterion
    name: str
    value: str
    mask: np.ndarray
    rows: int

    def check(self, candidate: Estimate, champion: Estimate | None = None, difference: Estimate | None = None) -> Check:
        """The slice's check, undecided until ``evaluate`` judges it."""
        label = self.criterion.label
        return Check(
            self.index, label, self.name, self.value, self.rows, "insufficient", "", candidate, champion, difference
        )

    def undecidable(self) -> _Judged:
        """No estimate at all (no trials, one class only): never judged, nothing to plan."""
        return _Judged(self.check(Estimate(None, None, None, 0)), 1.0, 1.0, lambda: None)


def evaluate(spec: GateSpec, data: EvaluationSet) -> GateResult:
    """Judge every criterion on the whole set and on every slice value (see the module docstring)."""
    alpha = spec.alpha
    judged: list[_Judged] = []
    checks: list[Check] = []
    for index, criterion in enumerate(spec.criteria):
        for slice_name, value, mask in _slices(spec, data):
            rows = int(mask.sum())
            outcome = _judge(spec, data, _Slice(index, criterion, slice_name, value, mask, rows))
            checks.append(outcome.check)
            if rows < spec.min_samples:
                outcome.check.reason = f"{rows} rows < min_samples {spec.min_samples}"
                outcome.check.more_rows_needed = max(spec.min_samples, outcome.plan() or 0) - rows
            elif outcome.check.candidate.trials == 0 or (
                outcome.check.difference is not None and outcome.check.difference.trials == 0
            ):
                outcome.check.reason = "no trials for this metric in the slice"
            else:
                judged.append(outcome)
    adjusted = holm([j.p_fail for j in judged])
    for outcome, p_holm in zip(judged, adjusted, strict=True):
        check = outcome.check
        check.p_pass, check.p_fail, check.p_fail_holm = outcome.p_pass, outcome.p_fail, p_holm
        if outcome.p_pass <= alpha:
            check.judgement = "pass"
            check.reason = f"the confidence bound clears the threshold (p = {outcome.p_pass:.3g})"
        elif p_holm <= alpha:
            check.judgement = "fail"
            check.reason = f"violated: Holm-adjusted p = {p_holm:.3g} ≤ {alpha:g}"
        elif (planned := outcome.plan()) is None:
            check.reason = "undecided; the estimate sits on the threshold, so no sample size decides it"
        else:
            check.more_rows_needed = max(planned - check.rows, 1)
            check.reason = f"undecided at {check.rows} rows; about {planned} would decide it at {spec.power:.0%} power"
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


def _judge(spec: GateSpec, data: EvaluationSet, s: _Slice) -> _Judged:
    metric = s.criterion.metric
    if metric in ("mae", "rmse"):
        return _regression(spec, data, s)
    if metric == "roc_auc":
        return _roc_auc(spec, data, s)
    if metric == "f1":
        return _f1(spec, data, s)
    return _rate(spec, data, s)


def _rate(spec: GateSpec, data: EvaluationSet, s: _Slice) -> _Judged:
    """A rate (recall, fpr …): Wilson bounds; candidate vs champion paired on the same trials
    (the labels fix them) by Newcombe's interval, p-values by inverting it."""
    criterion, alpha, power = s.criterion, spec.alpha, spec.power
    labels, cand = data.labels[s.mask], data.candidate[s.mask]
    champ = data.champion[s.mask] if data.champion is not None else None
    positive = criterion.class_ or data.positive_class
    trials, success = _rate_outcomes(criterion.metric, labels, cand, positive)
    n, x = int(trials.sum()), int((success & trials).sum())
    cand_est = _rate_estimate(x, n, spec.confidence)
    champ_est = None
    if champ is not None:
        c_trials, c_success = _rate_outcomes(criterion.metric, labels, champ, positive)
        champ_est = _rate_estimate(int((c_success & c_trials).sum()), int(c_trials.sum()), spec.confidence)
    share = n / s.rows if s.rows else 0.0

    def rows_for(trials_needed: int | None) -> int | None:
        return None if trials_needed is None or share == 0 else math.ceil(trials_needed / share)

    if criterion.kind != "non_inferiority":
        if n == 0:
            return _Judged(s.check(cand_est, champ_est), 1.0, 1.0, lambda: None)
        threshold, estimate = criterion.threshold, x / n
        score_se = math.sqrt(threshold * (1 - threshold) / n)  # the score test's: Wilson inverts it
        p_pass, p_fail = _bounded(criterion.kind, _normal_p(estimate, threshold, score_se))
        return _Judged(
            s.check(cand_est, champ_est),
            p_pass,
            p_fail,
            lambda: rows_for(one_sample_proportion_n(estimate, threshold, alpha, power)),
        )

    assert champ is not None  # a champion is required by the spec (checked with the inputs)
    if n == 0:
        return _Judged(s.check(cand_est, champ_est, Estimate(None, None, None, 0)), 1.0, 1.0, lambda: None)
    _, c_success = _rate_outcomes(criterion.metric, labels, champ, positive)
    lower_better = criterion.metric in LOWER_IS_BETTER
    # Paired on the "good" outcome of each trial (a hit for recall, no false alarm for fpr).
    counts = PairedCounts.from_outcomes(success[trials] ^ lower_better, c_success[trials] ^ lower_better)
    margin = criterion.threshold
    sign = -1.0 if lower_better else 1.0  # report candidate − champion in the metric's own terms
    diff_good, low_good, high_good = newcombe_paired_difference(counts, spec.confidence)
    ends = sorted((sign * low_good, sign * high_good))
    difference = Estimate(sign * diff_good, ends[0], ends[1], n)
    p_pass = _inverted_p(  # good-rate difference shown above −margin
        lambda a: newcombe_paired_difference(counts, 1 - 2 * a)[1], lambda b: b > -margin
    )
    p_fail = _inverted_p(  # shown below it: worse by more than the margin
        lambda a: newcombe_paired_difference(counts, 1 - 2 * a)[2], lambda b: b < -margin
    )
    # No discordant pair yet: plan with half a pair in each discordant cell (the usual ½
    # correction for empty cells), since Connor's formula needs some discordance to plan for.
    first_only = counts.first_only or (0.5 if counts.second_only == 0 else 0.0)
    second_only = counts.second_only or (0.5 if counts.first_only == 0 else 0.0)
    first, second = first_only / n, second_only / n
    return _Judged(
        s.check(cand_est, champ_est, difference),
        p_pass,
        p_fail,
        lambda: rows_for(paired_difference_n(first, second, margin, alpha, power)),
    )


def _regression(spec: GateSpec, data: EvaluationSet, s: _Slice) -> _Judged:
    """``mae``: the mean absolute error (CLT), non-inferiority on the paired differences of
    absolute errors against the margin. ``rmse``: judged on the mean squared error against the
    threshold squared; the report shows the RMSE and its interval (square roots of the MSE's)."""
    criterion = s.criterion
    labels = data.labels[s.mask].astype(np.float64)
    rmse = criterion.metric == "rmse"

    def errors(predictions: np.ndarray) -> np.ndarray:
        error = predictions.astype(np.float64) - labels
        return error**2 if rmse else np.abs(error)

    def estimate(values: np.ndarray) -> Estimate:
        mean = _mean_estimate(values, spec.confidence)
        if not rmse or mean.value is None or mean.low is None or mean.high is None:
            return mean
        return Estimate(math.sqrt(mean.value), math.sqrt(max(mean.low, 0.0)), math.sqrt(mean.high), mean.trials)

    cand_err = errors(data.candidate[s.mask])
    champ_err = errors(data.champion[s.mask]) if data.champion is not None else None
    cand_est = estimate(cand_err)
    champ_est = estimate(champ_err) if champ_err is not None else None
    if criterion.kind != "non_inferiority":
        threshold = criterion.threshold**2 if rmse else criterion.threshold
        return _mean_against(s.check(cand_est, champ_est), criterion.kind, cand_err, threshold, spec)
    assert champ_err is not None  # a champion is required by the spec (checked with the inputs)
    diffs = cand_err - champ_err  # positive: the candidate errs more
    check = s.check(cand_est, champ_est, _mean_estimate(diffs, spec.confidence))
    return _mean_against(check, "max", diffs, criterion.threshold, spec)


def _mean_against(result: Check, kind: str, values: np.ndarray, threshold: float, spec: GateSpec) -> _Judged:
    """A mean against a threshold by the CLT: a ``min`` passes when the mean is shown above it,
    a ``max`` (and non-inferiority: the mean paired difference under the margin) when below."""
    if values.size < 2:
        return _Judged(result, 1.0, 1.0, lambda: None)
    n = values.size
    mean, se = float(values.mean()), float(values.std(ddof=1)) / math.sqrt(n)
    p_pass, p_fail = _bounded(kind, _normal_p(mean, threshold, se))
    return _Judged(result, p_pass, p_fail, lambda: _scaled_plan(n, se, mean - threshold, spec.alpha, spec.power))


def _roc_auc(spec: GateSpec, data: EvaluationSet, s: _Slice) -> _Judged:
    """ROC-AUC from the ``score`` column with DeLong's variance; candidate vs champion by
    DeLong's paired covariance (both on the same rows)."""
    criterion = s.criterion
    positive = data.labels[s.mask] == (criterion.class_ or data.positive_class)
    assert data.candidate_score is not None  # checked with the inputs
    scores = [data.candidate_score[s.mask]]
    if data.champion_score is not None:
        scores.append(data.champion_score[s.mask])
    result = delong(scores, positive)
    if result is None:
        return s.undecidable()
    z = z_value(spec.confidence)

    def interval(value: float, var: float, low: float = 0.0, high: float = 1.0) -> Estimate:
        se = math.sqrt(max(var, 0.0))
        return Estimate(value, max(low, value - z * se), min(high, value + z * se), s.rows)

    cand_est = interval(float(result.auc[0]), result.variance(0))
    champ_est = interval(float(result.auc[1]), result.variance(1)) if len(scores) > 1 else None
    if criterion.kind == "non_inferiority":
        diff, var = result.difference(0, 1)
        se = math.sqrt(var)
        check = s.check(cand_est, champ_est, interval(diff, var, -math.inf, math.inf))
        p_fail = _normal_p(diff, -criterion.threshold, se)  # small: worse by more than the margin
        p_pass, distance = 1 - p_fail, diff + criterion.threshold
    else:
        auc, se = float(result.auc[0]), math.sqrt(result.variance(0))
        check = s.check(cand_est, champ_est)
        p_pass, p_fail = _bounded(criterion.kind, _normal_p(auc, criterion.threshold, se))
        distance = auc - criterion.threshold
    return _Judged(check, p_pass, p_fail, lambda: _scaled_plan(s.rows, se, distance, spec.alpha, spec.power))


F1_BOOTSTRAP = 2000


def _f1(spec: GateSpec, data: EvaluationSet, s: _Slice) -> _Judged:
    """F1 with a seeded multinomial percentile bootstrap over the confusion cells (Efron &
    Tibshirani 1993, as the performance detector), paired for non-inferiority: each row's cell
    is (label, candidate's call, champion's call), resampled together. p-values are the share of
    replicates on the wrong side of the threshold, (count + 1) / (B + 1) (Davison & Hinkley 1997)."""
    criterion, rows = s.criterion, s.rows
    positive_class = criterion.class_ or data.positive_class
    is_pos = data.labels[s.mask] == positive_class
    cand_pos = data.candidate[s.mask] == positive_class
    champ_pos = data.champion[s.mask] == positive_class if data.champion is not None else np.zeros(rows, dtype=bool)
    # 8 cells: label × candidate's call × champion's call.
    counts = np.bincount(is_pos * 4 + cand_pos * 2 + champ_pos.astype(np.int64), minlength=8)
    seed = int.from_bytes(hashlib.sha256(f"{s.index}\x00{s.name}\x00{s.value}".encode()).digest()[:8], "big")
    draws = (
        np.random.default_rng(seed).multinomial(rows, counts / max(rows, 1), size=F1_BOOTSTRAP)
        if rows
        else np.zeros((0, 8))
    )

    def f1s(table: np.ndarray, candidate: bool) -> np.ndarray:
        """The candidate's (or champion's) F1 from cell counts (… × 8)."""
        shape = (*table.shape[:-1], 2, 2)  # [call of the candidate][call of the champion]
        pos_label, neg_label = table[..., 4:].reshape(shape), table[..., :4].reshape(shape)
        axis = -1 if candidate else -2  # sum out the other model's call: [..., this model's call]
        pos_by_call, neg_by_call = pos_label.sum(axis), neg_label.sum(axis)
        return f1_from_counts(pos_by_call[..., 1], neg_by_call[..., 1], pos_by_call[..., 0])

    point_c, point_h = float(f1s(counts, True)), float(f1s(counts, False))
    boot_c = f1s(draws, True)

    def interval(point: float, boot: np.ndarray) -> Estimate:
        finite = boot[np.isfinite(boot)]
        if not math.isfinite(point) or finite.size == 0:
            return Estimate(None, None, None, 0)
        low, high = np.quantile(finite, [spec.alpha, 1 - spec.alpha])
        return Estimate(point, float(low), float(high), rows)

    def tails(boot: np.ndarray, threshold: float) -> tuple[float, float]:
        """Bootstrap p-values of "at least ``threshold``" and "at most": the shares below, above."""
        finite = boot[np.isfinite(boot)]
        if finite.size == 0:
            return 1.0, 1.0
        below, above = float((finite < threshold).sum()), float((finite > threshold).sum())
        return (below + 1) / (finite.size + 1), (above + 1) / (finite.size + 1)

    cand_est = interval(point_c, boot_c)
    if cand_est.value is None:
        return s.undecidable()
    champ_est = interval(point_h, f1s(draws, False)) if data.champion is not None else None
    if criterion.kind != "non_inferiority":
        below, above = tails(boot_c, criterion.threshold)
        p_pass, p_fail = (below, above) if criterion.kind == "min" else (above, below)
        se, distance = float(np.nanstd(boot_c)), point_c - criterion.threshold
        check = s.check(cand_est, champ_est)
    else:
        diffs = boot_c - f1s(draws, False)
        p_pass, p_fail = tails(diffs, -criterion.threshold)  # below −margin: worse by more than the margin
        se, distance = float(np.nanstd(diffs)), point_c - point_h + criterion.threshold
        check = s.check(cand_est, champ_est, interval(point_c - point_h, diffs))
    return _Judged(check, p_pass, p_fail, lambda: _scaled_plan(rows, se, distance, spec.alpha, spec.power))


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
