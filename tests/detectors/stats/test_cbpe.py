"""CBPE's arithmetic (detectors/stats/cbpe.py): the fast forms give the textbook per-row values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from detectors.stats.cbpe import RATE_METRICS, Calibrator, estimate_auc, estimate_auc_calibrated, estimate_rates


def _per_row(metric: str, y: np.ndarray, yhat: np.ndarray) -> tuple[float, float, float]:
    """The ratio estimator row by row (Cochran §6.4): ``a``, ``b`` per row, then the sums."""
    terms = {
        "precision": (yhat * y, yhat, yhat, 0 * y),
        "recall": (yhat * y, y, yhat, 1 + 0 * y),
        "fnr": (yhat * y, y, yhat, 1 + 0 * y),
        "fpr": (yhat * (1 - y), 1 - y, -yhat, -1 + 0 * y),
        "accuracy": (yhat * y + (1 - yhat) * (1 - y), 1 + 0 * y, 2 * yhat - 1, 0 * y),
        "f1": (2 * yhat * y, yhat + y, 2 * yhat, 1 + 0 * y),
    }
    a, b, beta, delta = terms[metric]
    n, r = y.size, a.sum() / b.sum()
    se = math.sqrt(((a - r * b) ** 2).sum() * n / (n - 1)) / b.sum()
    noise = math.sqrt((((beta - r * delta) ** 2) * y * (1 - y)).sum()) / b.sum()
    return (1 - r if metric == "fnr" else r), se, noise


@pytest.mark.parametrize("labels", [False, True])
def test_rate_metrics_from_group_moments_equal_the_row_by_row_ratio_estimator(labels: bool) -> None:
    """Rule: every rate metric, its sampling error and its outcome noise, computed from the six
    per-group sums, equal the row-by-row delta-method formulas (for probabilities and for 0/1
    labels)."""
    rng = np.random.default_rng(3)
    for n in (5, 200, 20_000):
        p = rng.random(n)
        y = (rng.random(n) < p).astype(float) if labels else p
        yhat = (rng.random(n) < 0.4).astype(float)
        got = estimate_rates(y, yhat)
        for metric in RATE_METRICS:
            want = _per_row(metric, y, yhat)
            assert (got[metric].value, got[metric].se, got[metric].noise_se) == pytest.approx(want, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("rounding", [None, 2])
def test_auc_from_calibrated_sorted_scores_equals_the_argsort_form(rounding: int | None) -> None:
    """Rule: the AUC of ``p = calibration(score)`` read off the sorted scores equals the general
    form given those ``p`` (value and both errors), with and without tied scores; NaN scores are
    left out of both."""
    rng = np.random.default_rng(4)
    score = rng.random(30_000)
    if rounding is not None:
        score = np.round(score, rounding)
    label = rng.random(score.size) < score**2
    calibrator = Calibrator.fit(score, label)
    score[::97] = np.nan
    general = estimate_auc(score, calibrator.apply(score))
    fast = estimate_auc_calibrated(score, calibrator)
    assert (fast.value, fast.se, fast.noise_se) == pytest.approx((general.value, general.se, general.noise_se), rel=1e-9)
    assert 0.5 < fast.value < 1


@pytest.mark.parametrize("labels", [False, True])
def test_auc_errors_on_a_big_window_from_a_systematic_sample_stay_within_half_a_percent(
    labels: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule: above 2 × SE_SAMPLE_ROWS rows the AUC's standard errors, summed over every m-th row
    in score order, stay within 0.5 % of the sums over every row, and the value is exact."""
    from detectors.stats import cbpe

    rng = np.random.default_rng(6)
    score = rng.random(1_000_000)
    p = score**2 if not labels else (rng.random(score.size) < score**2).astype(float)
    sampled = estimate_auc(score, p)
    monkeypatch.setattr(cbpe, "SE_SAMPLE_ROWS", 10**9)  # every row
    full = estimate_auc(score, p)
    assert sampled.value == full.value
    assert sampled.se == pytest.approx(full.se, rel=5e-3)
    if not labels:  # with 0/1 outcomes there is no outcome noise
        assert sampled.noise_se == pytest.approx(full.noise_se, rel=5e-3)
