"""The release gate's statistics, measured in seeded trials: the paired interval's coverage, the
exact McNemar test's level, Holm's family-wise error, and the power the sample sizes promise."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.stats.intervals import wilson
from detectors.stats.multiplicity import holm
from detectors.stats.paired import PairedCounts, mcnemar_exact_p, newcombe_paired_difference
from detectors.stats.sample_size import one_sample_proportion_n, paired_difference_n

TRIALS = 400


def _pairs(rng: np.random.Generator, n: int, cells: tuple[float, float, float, float]) -> PairedCounts:
    both, first_only, second_only, neither = rng.multinomial(n, cells)
    return PairedCounts(int(both), int(first_only), int(second_only), int(neither))


@pytest.mark.parametrize(
    "cells",
    [
        (0.70, 0.10, 0.05, 0.15),  # models mostly agree, the candidate a little better
        (0.85, 0.02, 0.08, 0.05),  # near 1, the candidate worse
        (0.40, 0.15, 0.15, 0.30),  # no difference, many discordant pairs
    ],
)
def test_the_paired_interval_covers_the_true_difference_at_its_nominal_rate(
    cells: tuple[float, float, float, float],
) -> None:
    """Rule: Newcombe's paired 95 % interval holds the true difference in ≥ 92 % of 400 seeded
    trials of 60 pairs (nominal 95 %; Newcombe reports minimum coverage near 93 %)."""
    rng = np.random.default_rng(11)
    truth = cells[1] - cells[2]
    covered = 0
    for _ in range(TRIALS):
        _, low, high = newcombe_paired_difference(_pairs(rng, 60, cells))
        covered += low <= truth <= high
    assert covered / TRIALS >= 0.92, covered / TRIALS


def test_the_paired_interval_is_narrower_than_the_unpaired_one_when_models_agree() -> None:
    """Rule: on pairs where the two models mostly agree, the paired interval is narrower than
    Newcombe's interval for independent samples on the same counts (why pairing is used)."""
    from detectors.stats.intervals import newcombe_difference

    counts = PairedCounts(both=160, first_only=14, second_only=6, neither=20)
    _, low, high = newcombe_paired_difference(counts)
    first, second = counts.both + counts.first_only, counts.both + counts.second_only
    _, u_low, u_high = newcombe_difference(first, counts.n, second, counts.n)
    assert high - low < 0.75 * (u_high - u_low)


def test_mcnemar_exact_keeps_its_level_when_the_models_are_equal() -> None:
    """Rule: with equal models the one-sided exact McNemar test rejects at 5 % in at most 5 %
    of 400 seeded trials (+ 2 points of simulation noise)."""
    rng = np.random.default_rng(12)
    cells = (0.6, 0.1, 0.1, 0.2)
    rejected = sum(mcnemar_exact_p(_pairs(rng, 80, cells), "greater") <= 0.05 for _ in range(TRIALS))
    assert rejected / TRIALS <= 0.07, rejected / TRIALS


def test_holm_keeps_the_chance_of_any_false_fail_at_alpha_across_36_slices() -> None:
    """Rule: 36 criterion × slice tests, every true value exactly on its threshold: testing each
    at 2.5 % fails *some* slice most of the time, Holm-adjusted at most 2.5 % (+ noise) of 400
    seeded trials."""
    rng = np.random.default_rng(13)
    raw_any, holm_any = 0, 0
    for _ in range(TRIALS):
        p = rng.random(36)  # true nulls: uniform p-values
        raw_any += bool((p <= 0.025).any())
        holm_any += bool((np.array(holm(p.tolist())) <= 0.025).any())
    assert raw_any / TRIALS > 0.4
    assert holm_any / TRIALS <= 0.04, holm_any / TRIALS


def test_holm_rejects_what_bonferroni_rejects_and_keeps_order() -> None:
    """Rule: Holm's adjusted p-values are never above Bonferroni's (m·p, capped at 1), never
    below the raw ones, NaN stays NaN and is not counted as a test."""
    p = [0.001, 0.02, float("nan"), 0.2, 0.011]
    adjusted = holm(p)
    assert np.isnan(adjusted[2])
    for raw, adj in zip([0.001, 0.02, 0.2, 0.011], [adjusted[0], adjusted[1], adjusted[3], adjusted[4]], strict=True):
        assert raw <= adj <= min(1.0, 4 * raw)


@pytest.mark.parametrize(("assumed", "threshold"), [(0.90, 0.80), (0.72, 0.80), (0.05, 0.10)])
def test_the_one_sample_size_reaches_its_power(assumed: float, threshold: float) -> None:
    """Rule: with the sample size asked for, the Wilson interval at 95 % decides the criterion in
    the direction of the truth (lower bound above a threshold the truth clears, upper bound below
    one it misses) in ≥ 75 % of 400 seeded trials (target power 80 %)."""
    n = one_sample_proportion_n(assumed, threshold, alpha=0.025)
    assert n is not None
    rng = np.random.default_rng(14)
    decided = 0
    for _ in range(TRIALS):
        low, high = wilson(int(rng.binomial(n, assumed)), n, 0.95)
        decided += low > threshold if assumed > threshold else high < threshold
    assert decided / TRIALS >= 0.75, (n, decided / TRIALS)


def test_the_paired_sample_size_reaches_its_power_for_non_inferiority() -> None:
    """Rule: with the paired sample size asked for (candidate 3 points better, margin 3 points),
    the paired interval's lower bound clears −margin in ≥ 75 % of 400 seeded trials."""
    cells = (0.70, 0.10, 0.07, 0.13)
    n = paired_difference_n(cells[1], cells[2], margin=0.03, alpha=0.025)
    assert n is not None
    rng = np.random.default_rng(15)
    cleared = sum(newcombe_paired_difference(_pairs(rng, n, cells))[1] > -0.03 for _ in range(TRIALS))
    assert cleared / TRIALS >= 0.75, (n, cleared / TRIALS)


def test_no_sample_size_decides_an_estimate_on_its_threshold() -> None:
    """Rule: an estimate exactly on the threshold (or no discordant pairs) has no sample size."""
    assert one_sample_proportion_n(0.8, 0.8, alpha=0.025) is None
    assert paired_difference_n(0.05, 0.08, margin=0.03, alpha=0.025) is None
    assert paired_difference_n(0.0, 0.0, margin=0.03, alpha=0.025) is None
