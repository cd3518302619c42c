"""Benjamini–Hochberg: false-discovery-rate control when many p-value tests run at once.

A drift run over 40 features × 10 segments performs 400 tests; at α = 0.05 about 20 would
flag by chance every window. Adjusting with BH keeps the expected share of false alarms
among the flagged columns at α, while still reporting each raw p-value.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from detectors.stats.multiplicity import adjust_sorted


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """BH-adjusted p-values (``scipy.stats.false_discovery_control(method="bh")``), same order.

    NaN inputs stay NaN and do not count as tests.

    >>> [round(p, 4) for p in benjamini_hochberg([0.01, 0.04, 0.03, 0.20])]
    [0.04, 0.0533, 0.0533, 0.2]
    """
    return adjust_sorted(p_values, _bh_sorted)


def _bh_sorted(ascending: np.ndarray) -> np.ndarray:
    m = ascending.size
    ranked = ascending * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    # max with the raw p: the product p·m/rank can round a hair below p when rank == m.
    return np.clip(np.maximum(adjusted, ascending), 0.0, 1.0)
