"""Distances agree with scipy to floating-point precision."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon as scipy_js
from scipy.stats import wasserstein_distance

from detectors.stats import distances
from detectors.stats.distances import jensenshannon, psi, total_variation, wasserstein_sorted


@pytest.mark.parametrize("block", [1, 3, 1 << 16])
def test_wasserstein_matches_scipy_for_any_sizes_and_ties(block: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Exact W1 from sorted samples equals scipy.stats.wasserstein_distance (ties, unequal sizes, blocks)."""
    monkeypatch.setattr(distances, "_BLOCK", block)
    rng = np.random.default_rng(0)
    for _ in range(300):
        n, m = (int(x) for x in rng.integers(1, 80, 2))
        u = np.sort(np.round(rng.normal(size=n), 1))
        v = np.sort(np.round(rng.normal(0.2, 1.3, size=m), 1))
        assert wasserstein_sorted(u, v) == pytest.approx(wasserstein_distance(u, v), rel=1e-12, abs=1e-15)


def test_wasserstein_large_unequal_samples() -> None:
    """Million-row-scale samples of unequal size still match scipy."""
    rng = np.random.default_rng(1)
    u, v = np.sort(rng.normal(size=200_000)), np.sort(rng.normal(0.1, 1, size=150_001))
    assert wasserstein_sorted(u, v) == pytest.approx(wasserstein_distance(u, v), rel=1e-10)


def test_wasserstein_empty_is_nan() -> None:
    """No samples on one side → NaN, which callers turn into insufficient_data."""
    assert np.isnan(wasserstein_sorted(np.empty(0), np.array([1.0])))


def test_jensenshannon_matches_scipy() -> None:
    """JS distance (natural log) equals scipy.spatial.distance.jensenshannon, including zero bins."""
    rng = np.random.default_rng(2)
    for _ in range(50):
        p, q = rng.random(6), rng.random(6)
        p[rng.integers(0, 6)] = 0
        assert jensenshannon(p, q) == pytest.approx(float(scipy_js(p, q)), rel=1e-12)


def test_psi_and_tvd_known_values() -> None:
    """PSI and TVD on hand-computed cases; both are 0 for identical distributions."""
    assert psi(np.array([0.5, 0.5]), np.array([0.5, 0.5])) == 0.0
    assert psi(np.array([0.2, 0.8]), np.array([0.4, 0.6])) == pytest.approx(
        (0.2 - 0.4) * np.log(0.5) + (0.8 - 0.6) * np.log(0.8 / 0.6)
    )
    assert total_variation(np.array([1, 3]), np.array([3, 1])) == 0.5
