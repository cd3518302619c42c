"""The calibrated rule's two-sample tests agree with their textbook reference implementations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import chdtrc
from scipy.stats import chi2_contingency, ks_2samp

from detectors.stats.pvalues import (
    bucket_categories,
    chi2_homogeneity,
    chi2_sf,
    ks_sorted,
    ks_statistic_sorted,
)
from detectors.stats.summary import CategoricalSummary, NumericSummary


def test_ks_statistic_equals_scipy_with_and_without_ties() -> None:
    """sup |F_ref − F_cur| from sorted samples equals scipy's ks_2samp statistic exactly,
    including heavily tied integer data and samples of very different sizes."""
    rng = np.random.default_rng(1)
    for trial in range(500):
        n, m = (int(x) for x in rng.integers(1, 80, 2))
        levels = int(rng.integers(1, 8))
        a = np.sort(rng.integers(0, levels, n) + (rng.random(n) if trial % 3 == 0 else 0.0))
        b = np.sort(rng.integers(0, levels, m) + float(rng.integers(0, 2)))
        assert ks_statistic_sorted(a, b) == pytest.approx(ks_2samp(a, b).statistic, abs=1e-12)


def test_ks_p_value_tracks_scipy() -> None:
    """Stephens' approximation stays within 10% of scipy's p-value where it matters (p > 0.001)
    from a few hundred values up."""
    rng = np.random.default_rng(2)
    for n, m in ((400, 200), (1000, 1000), (20_000, 5000)):
        for _ in range(10):
            a, b = rng.normal(0, 1, n), rng.normal(0.1, 1, m)
            expected = ks_2samp(a, b).pvalue
            got = ks_sorted(NumericSummary.from_values(a), NumericSummary.from_values(b)).p_value
            if expected > 1e-3:
                assert got == pytest.approx(expected, rel=0.10)


def test_chi2_survival_matches_scipy() -> None:
    """chi2_sf (no scipy import on the CLI path) equals scipy.special.chdtrc to 1e-10 relative."""
    for dof in (1, 2, 3, 7, 40, 299):
        for x in np.linspace(0.05, 4 * dof + 30, 60):
            assert chi2_sf(float(x), dof) == pytest.approx(float(chdtrc(dof, x)), rel=1e-10, abs=1e-300)


def test_chi2_homogeneity_matches_scipy_contingency() -> None:
    """With well-filled cells (no bucketing), the statistic and p-value are Pearson's χ² of the
    2×k table, as scipy.stats.chi2_contingency computes them (no continuity correction)."""
    reference = CategoricalSummary({"a": 400, "b": 300, "c": 300}, 0)
    current = CategoricalSummary({"a": 150, "b": 170, "c": 180}, 0)
    buckets = bucket_categories(reference, current)
    assert buckets.merged == 0
    ours = chi2_homogeneity(buckets)
    table = np.vstack([buckets.reference, buckets.current])
    statistic, p_value, _, _ = chi2_contingency(table, correction=False)
    assert ours.statistic == pytest.approx(statistic) and ours.p_value == pytest.approx(p_value)
