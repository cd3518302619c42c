"""Benjamini–Hochberg and the confidence intervals: agreement with scipy and nominal coverage."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import false_discovery_control

from detectors.stats.fdr import benjamini_hochberg
from detectors.stats.intervals import mean_interval, newcombe_difference, quantile_interval, wilson


def test_bh_matches_scipy() -> None:
    """Adjusted p-values equal scipy.stats.false_discovery_control(method='bh'), order preserved."""
    rng = np.random.default_rng(0)
    p = rng.random(40) ** 3
    assert benjamini_hochberg(p.tolist()) == pytest.approx(false_discovery_control(p).tolist(), rel=1e-12)


def test_bh_ignores_nan_and_handles_empty() -> None:
    """NaN entries stay NaN and are not counted as tests; no tests → empty list."""
    out = benjamini_hochberg([0.01, float("nan"), 0.02])
    assert math.isnan(out[1]) and out[0] == pytest.approx(0.02) and out[2] == pytest.approx(0.02)
    assert benjamini_hochberg([]) == []


def test_wilson_coverage_is_nominal() -> None:
    """Wilson 95% intervals cover the true rate in ≥ 93% of 2,000 seeded binomial draws (p = 0.1, n = 80)."""
    rng = np.random.default_rng(1)
    draws = rng.binomial(80, 0.1, 2000)
    covered = sum(lo <= 0.1 <= hi for lo, hi in (wilson(int(k), 80) for k in draws))
    assert covered / 2000 >= 0.93


def test_wilson_edges() -> None:
    """0 of n gives a lower bound of 0 and a positive upper bound; n = 0 gives [0, 1]."""
    lo, hi = wilson(0, 50)
    assert lo == 0.0 and 0 < hi < 0.1
    assert wilson(0, 0) == (0.0, 1.0)


def test_newcombe_known_example() -> None:
    """Newcombe (1998) example 56/70 − 48/80: difference 0.2, CI [0.0524, 0.3339]."""
    d, lo, hi = newcombe_difference(56, 70, 48, 80)
    assert (round(d, 4), round(lo, 4), round(hi, 4)) == (0.2, 0.0524, 0.3339)


def test_quantile_interval_coverage() -> None:
    """Order-statistic CI for p95 covers the true quantile in ≥ 93% of seeded samples."""
    rng = np.random.default_rng(2)
    true = float(np.exp(3 + 0.4 * 1.6448536269514722))  # lognormal(3, 0.4) p95
    covered = 0
    for _ in range(500):
        lo, hi = quantile_interval(np.sort(rng.lognormal(3, 0.4, 400)), 0.95)
        covered += lo <= true <= hi
    assert covered / 500 >= 0.93


def test_mean_interval() -> None:
    """CLT interval contains the sample mean and shrinks like 1/sqrt(n)."""
    rng = np.random.default_rng(3)
    m, lo, hi = mean_interval(rng.normal(5, 2, 400))
    assert lo < m < hi and (hi - lo) == pytest.approx(2 * 1.96 * 2 / 20, rel=0.15)
