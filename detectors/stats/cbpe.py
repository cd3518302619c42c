"""Confidence-based performance estimation (CBPE): classification metrics from scores alone.

A model whose scores are *calibrated* — among rows scored 0.8, 80 % are positive — tells how
well it performs without labels: a row predicted positive with calibrated probability ``p`` is
a true positive with probability ``p``. Summing those probabilities gives the expected
confusion matrix of a window, and from it every metric (NannyML's CBPE; the expected-confusion
construction is in Guo et al., "On calibration of modern neural networks", 2017, and the
method in NannyML's documentation, "Confidence-based Performance Estimation").

**Calibration** is isotonic regression of the label on the score over the labelled reference
(Zadrozny & Elkan, "Transforming classifier scores into accurate multiclass probability
estimates", KDD 2002): monotone, so it keeps the score's ranking, and free of a parametric
shape (Platt's sigmoid assumes one). It is stored as its step function and applied with
``np.interp``, so estimating a 1M-row window costs one interpolation, not a model call.

**Metrics as ratios of row sums.** Every count metric is ``R = Σ a_i / Σ b_i`` with per-row
terms *linear in the outcome* ``y_i``: ``a_i = α_i + β_i·y_i``, ``b_i = γ_i + δ_i·y_i``
(precision: ``a = ŷ·y, b = ŷ``; recall: ``a = ŷ·y, b = y``; FPR: ``a = ŷ(1−y), b = 1−y``;
accuracy: ``a = ŷ·y + (1−ŷ)(1−y), b = 1``; F1: ``a = 2ŷ·y, b = ŷ + y``). The *realized*
metric puts the label in ``y``; the *estimate* puts the calibrated probability ``p`` there,
which is its expectation. The same coefficients give both standard errors:

* the estimate's **sampling error** — the window is a sample of rows — by the delta method for
  a ratio estimator (Cochran, *Sampling Techniques*, 1977, §6.4):
  ``Var(R̂) ≈ Σ (a_i − R̂·b_i)² / (Σ b_i)²`` (with ``n/(n−1)``), the same formula for the
  realized reference value (``p`` replaced by ``y``);
* the realized metric's spread **around the estimate when calibration holds** — outcomes are
  independent Bernoulli(``p_i``) given the scores — ``Var(R − R̂ | p) ≈ Σ (β_i − R̂·δ_i)²
  p_i(1−p_i) / (Σ b_i(p))²``: what the estimator check compares realized with estimated on.

**ROC-AUC** has no such form. Its estimate is the probability that a random positive outranks a
random negative, each row counted as ``p_i`` positive and ``1 − p_i`` negative:
``Σ_ij p_i (1−p_j) [s_i > s_j] / (Σ p · Σ (1−p))`` (ties ½), computed in O(n log n) from one
sort, and both standard errors come from the same sort by the delta method
(:func:`estimate_auc`; DeLong's variance when ``p`` is 0/1).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> score = rng.random(20_000)
>>> label = rng.random(20_000) < score ** 2          # the score is not calibrated: P(y) = s²
>>> calibrator = Calibrator.fit(score, label)
>>> round(float(calibrator.apply(np.array([0.5]))[0]), 2)   # ≈ 0.5² = 0.25
0.25
>>> current = rng.random(5_000) ** 0.5               # a shifted window: more high scores
>>> p = calibrator.apply(current)
>>> est = estimate_rates(p, current >= 0.5)
>>> truth = rng.random(5_000) < current ** 2
>>> round(est["precision"].value, 3)   # the true expected precision is E[s² | s ≥ 0.5] = 0.625
0.63
>>> round(float(truth[current >= 0.5].mean()), 3)  # realized, once labels arrive
0.617
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

RATE_METRICS = ("fpr", "fnr", "precision", "recall", "f1", "accuracy")


@dataclass(frozen=True)
class Calibrator:
    """Isotonic calibration of a score, as the breakpoints of its step function."""

    x: np.ndarray
    y: np.ndarray

    @classmethod
    def fit(cls, score: np.ndarray, outcome: np.ndarray) -> Calibrator:
        """Isotonic regression of ``outcome`` (0/1) on ``score`` (scikit-learn's PAV)."""
        from sklearn.isotonic import IsotonicRegression

        keep = np.isfinite(score)
        model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        model.fit(score[keep], outcome[keep].astype(np.float64))
        return cls(np.asarray(model.X_thresholds_, np.float64), np.asarray(model.y_thresholds_, np.float64))

    def apply(self, score: np.ndarray) -> np.ndarray:
        """Calibrated probabilities; NaN scores stay NaN."""
        return np.interp(score, self.x, self.y)


@dataclass(frozen=True)
class Estimate:
    """A metric's value with its standard error (``se``), and — where outcomes were not used —
    ``noise_se``: the realized metric's spread around it when calibration holds."""

    value: float
    se: float
    noise_se: float = float("nan")


# (α, β, γ, δ) of a = α + β·y and b = γ + δ·y for a row with ŷ = 0 and for one with ŷ = 1.
_Coefficients = tuple[float, float, float, float]
_COEFFICIENTS: dict[str, tuple[_Coefficients, _Coefficients]] = {
    "precision": ((0, 0, 0, 0), (0, 1, 1, 0)),
    "recall": ((0, 0, 0, 1), (0, 1, 0, 1)),
    "fnr": ((0, 0, 0, 1), (0, 1, 0, 1)),  # fnr = 1 − recall, turned over by _ratio
    "fpr": ((0, 0, 1, -1), (1, -1, 1, -1)),
    "accuracy": ((1, -1, 1, 0), (0, 1, 1, 0)),
    "f1": ((0, 0, 0, 1), (0, 2, 1, 1)),
}


@dataclass(frozen=True)
class _Moments:
    """Per predicted class g ∈ {0, 1}: rows ``n``, ``Σy`` and ``Σy²``. Within a group the
    coefficients are constants, so every sum the ratio estimator needs is a combination of
    these six numbers: one pass over the window serves all metrics (a 1M-row window costs
    four dot products instead of a dozen full-length temporaries per metric)."""

    n: tuple[float, float]
    s1: tuple[float, float]
    s2: tuple[float, float]

    @classmethod
    def of(cls, y: np.ndarray, yhat: np.ndarray) -> _Moments:
        n, s1, s2 = float(y.size), float(y.sum()), float(y @ y)
        n1, s1_1, s2_1 = float(yhat.sum()), float(yhat @ y), float(yhat @ (y * y))
        return cls((n - n1, n1), (s1 - s1_1, s1_1), (s2 - s2_1, s2_1))


def _ratio(metric: str, m: _Moments) -> Estimate:
    """``Σa/Σb`` with ``y`` (labels or probabilities) put in the linear terms, and its errors,
    from the window's :class:`_Moments`: with ``c = α − R·γ`` and ``e = β − R·δ`` per group,
    ``Σ(a − R·b)² = Σ_g c²n + 2ce·Σy + e²·Σy²`` and ``Σ(β − R·δ)² y(1−y) = Σ_g e²(Σy − Σy²)``."""
    groups = list(zip(_COEFFICIENTS[metric], m.n, m.s1, m.s2, strict=True))
    total = m.n[0] + m.n[1]
    sum_a = sum(alpha * n + beta * s1 for (alpha, beta, _, _), n, s1, _ in groups)
    sum_b = sum(gamma * n + delta * s1 for (_, _, gamma, delta), n, s1, _ in groups)
    if total < 2 or sum_b <= 0:
        return Estimate(float("nan"), float("nan"))
    r = sum_a / sum_b
    resid_sq = noise_sq = 0.0
    for (alpha, beta, gamma, delta), n, s1, s2 in groups:
        c, e = alpha - r * gamma, beta - r * delta
        resid_sq += c * c * n + 2 * c * e * s1 + e * e * s2
        noise_sq += e * e * (s1 - s2)  # zero where y is a 0/1 label
    se = math.sqrt(max(resid_sq, 0.0) * total / (total - 1)) / sum_b
    noise = math.sqrt(max(noise_sq, 0.0)) / sum_b
    if metric == "fnr":
        r = 1 - r
    return Estimate(r, se, noise)


def estimate_rates(p: np.ndarray, yhat: np.ndarray, metrics: tuple[str, ...] = RATE_METRICS) -> dict[str, Estimate]:
    """Each rate metric of a window from ``p`` (calibrated probabilities of the positive class,
    or 0/1 labels for the realized value) and ``yhat`` (predicted positive, 0/1)."""
    keep = np.isfinite(p)
    if not keep.all():
        p, yhat = p[keep], yhat[keep]
    moments = _Moments.of(p.astype(np.float64, copy=False), yhat.astype(np.float64, copy=False))
    return {m: _ratio(m, moments) for m in metrics if m in RATE_METRICS}


def estimate_auc(score: np.ndarray, p: np.ndarray) -> Estimate:
    """ROC-AUC from scores and positive shares ``p`` (calibrated probabilities, or 0/1 labels
    for the realized value), with two standard errors from one sort (O(n log n)):

    * ``se`` — rows are a sample: the delta method on the U-statistic's influence function,
      ``ψ_k = n·[(p_k·G_k + q_k·F_k)/(P·N) − A·(p_k/P + q_k/N)]`` and ``se = √Σψ²/n``, with
      ``G_k`` the negative mass ranked below row k, ``F_k`` the positive mass ranked above it
      (ties ½), ``q = 1 − p``, ``P = Σp``, ``N = Σq``. For 0/1 labels this is DeLong's
      structural-components variance (DeLong, DeLong & Clarke-Pearson, Biometrics 1988);
    * ``noise_se`` — the realized AUC's spread around the estimate when outcomes are
      Bernoulli(``p``): ``Σ_k (∂A/∂y_k)² p_k q_k`` with ``∂A/∂y_k = (G_k − F_k)/(P·N) − A·(1/P − 1/N)``.

    Both agreed with 400-resample bootstraps within 2–6 % at 3,000 and 50,000 rows, at a
    three-hundredth of the cost."""
    keep = np.isfinite(score) & np.isfinite(p)
    score, p = score[keep].astype(np.float64), p[keep].astype(np.float64)
    order = np.argsort(score)  # ties are grouped below, so the sort need not be stable
    return _auc_of_sorted(score[order], p[order])


def estimate_auc_calibrated(score: np.ndarray, calibrator: Calibrator) -> Estimate:
    """:func:`estimate_auc` with ``p = calibrator(score)``. Calibration is monotone, so ``p`` in
    score order is the calibration of the sorted scores: a value sort replaces the argsort and
    the two gathers it needs (0.08 s instead of 0.2 s for a 1M-row window)."""
    s_sorted = np.sort(score[np.isfinite(score)].astype(np.float64, copy=False))
    return _auc_of_sorted(s_sorted, calibrator.apply(s_sorted))


#: Above twice this many rows, the AUC's two standard errors are summed over a systematic sample
#: of about this many rows in score order (every m-th row); the value always uses every row.
SE_SAMPLE_ROWS = 200_000


def _auc_of_sorted(s_sorted: np.ndarray, pos: np.ndarray) -> Estimate:
    """:func:`estimate_auc`'s value and errors from rows already in ascending score order.

    The standard errors are sums of per-row squares (ψ_k², and the gradient's squares times
    p_k·q_k). On a window of more than ``2 × SE_SAMPLE_ROWS`` rows they are summed over every
    m-th row in score order and scaled by m — a systematic sample, stratified by score, whose
    relative error on the standard error was 0.24 % at 1M rows with 0/1 labels (tested: under
    0.5 %) — because those ten full-length passes were a third of a 1M-row window's estimate.
    The G_k and F_k of the sampled rows still come from every row."""
    n = s_sorted.size
    if n < 2:
        return Estimate(float("nan"), float("nan"))
    neg = 1 - pos
    total_pos, total_neg = float(pos.sum()), float(neg.sum())
    if total_pos <= 0 or total_neg <= 0:
        return Estimate(float("nan"), float("nan"))
    tied = s_sorted[1:] == s_sorted[:-1]
    if tied.any():  # rows of one score form a group: each ranks ½ against the others in it
        starts = np.flatnonzero(np.r_[True, ~tied])
        group: np.ndarray | None = np.repeat(np.arange(starts.size), np.diff(np.r_[starts, n]))
        pos_g = np.add.reduceat(pos, starts)
        neg_g = np.add.reduceat(neg, starts)
    else:  # continuous scores: every row is its own group (no reduce, no gathers)
        pos_g, neg_g, group = pos, neg, None
    neg_below = np.cumsum(neg_g)
    neg_below -= 0.5 * neg_g  # negative mass ranked below, ties ½
    pos_above = total_pos - np.cumsum(pos_g)
    pos_above += 0.5 * pos_g  # positive mass ranked above, ties ½
    pn = total_pos * total_neg
    value = float(pos_g @ neg_below / pn)
    rows: slice | np.ndarray = slice(None)
    scale = 1.0
    if n > 2 * SE_SAMPLE_ROWS:
        step = n // SE_SAMPLE_ROWS
        rows = np.arange(step // 2, n, step)
        scale = n / rows.size
    p_k, q_k = pos[rows], neg[rows]
    below = neg_below[rows] if group is None else neg_below[group[rows]]
    above = pos_above[rows] if group is None else pos_above[group[rows]]
    psi = p_k * below
    psi += q_k * above
    psi /= pn
    psi -= value * (p_k / total_pos + q_k / total_neg)
    se = math.sqrt(scale * float(psi @ psi))
    grad = below - above
    grad /= pn
    grad -= value * (1 / total_pos - 1 / total_neg)
    noise = math.sqrt(scale * float((grad * grad) @ (p_k * q_k)))
    return Estimate(value, se, noise)


def estimate_mean(values: np.ndarray) -> Estimate:
    """The mean of per-row values (e.g. DLE's predicted absolute errors) and its CLT standard
    error."""
    values = values[np.isfinite(values)]
    n = values.size
    if n < 2:
        return Estimate(float("nan"), float("nan"))
    return Estimate(float(values.mean()), float(values.std(ddof=1)) / math.sqrt(n))
