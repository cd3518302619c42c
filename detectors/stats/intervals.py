"""Confidence intervals used to decide "worse than the reference by more than a margin".

Proportions use Wilson score intervals (good coverage even near 0 or 1 and for small n,
where the textbook Wald interval is badly anti-conservative); differences of two
proportions use Newcombe's hybrid score interval built from the two Wilson intervals.
Quantiles use distribution-free order-statistic intervals, so latency CIs need no
resampling and no distributional assumption.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np


def z_value(confidence: float) -> float:
    """Two-sided normal quantile, e.g. 1.96 for 0.95."""
    if not 0 < confidence < 1:
        raise ValueError("confidence must be in (0, 1)")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; (0, 1) when n == 0.

    >>> [round(x, 4) for x in wilson(10, 100)]
    [0.0552, 0.1744]
    """
    if n <= 0:
        return 0.0, 1.0
    z = z_value(confidence)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_difference(
    x1: int, n1: int, x2: int, n2: int, confidence: float = 0.95
) -> tuple[float, float, float]:
    """Difference p1 − p2 and its Newcombe (method 10) hybrid score interval.

    >>> [round(x, 4) for x in newcombe_difference(56, 70, 48, 80)]
    [0.2, 0.0524, 0.3339]
    """
    if n1 <= 0 or n2 <= 0:
        return float("nan"), -1.0, 1.0
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson(x1, n1, confidence)
    l2, u2 = wilson(x2, n2, confidence)
    d = p1 - p2
    low = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return d, low, high


def quantile_interval(sorted_values: np.ndarray, q: float, confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free CI for the q-quantile from order statistics (normal approx. to binomial).

    The number of observations below the true quantile is Binomial(n, q), so the order
    statistics at ranks ``nq ± z·sqrt(nq(1−q))`` bracket it with the requested confidence.
    """
    n = int(sorted_values.size)
    if n == 0:
        return float("nan"), float("nan")
    z = z_value(confidence)
    spread = z * math.sqrt(n * q * (1 - q))
    lo = max(0, math.floor(n * q - spread) - 1)
    hi = min(n - 1, math.ceil(n * q + spread))
    return float(sorted_values[lo]), float(sorted_values[hi])


def mean_interval(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and its normal-approximation CI (CLT), for MAE/MSE of a window."""
    n = int(values.size)
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(values.mean())
    if n == 1:
        return mean, float("-inf"), float("inf")
    half = z_value(confidence) * float(values.std(ddof=1)) / math.sqrt(n)
    return mean, mean - half, mean + half
