"""Benjamini–Hochberg: false-discovery-rate control when many p-value tests run at once.

A drift run over 40 features × 10 segments performs 400 tests; at α = 0.05 about 20 would
flag by chance every window. Adjusting with BH keeps the expected share of false alarms
among the flagged columns at α, while still reporting each raw p-value.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """BH-adjusted p-values (``scipy.stats.false_discovery_control(method="bh")``), same order.

    NaN inputs stay NaN and do not count as tests.

    >>> [round(p, 4) for p in benjamini_hochberg([0.01, 0.04, 0.03, 0.20])]
    [0.04, 0.0533, 0.0533, 0.2]
    """
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    valid = ~np.isnan(p)
    m = int(valid.sum())
    if m == 0:
        return out.tolist()
    pv = p[valid]
    order = np.argsort(pv, kind="stable")
    ranked = pv[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    result = np.empty(m)
    # max with the raw p: the product p·m/rank can round a hair below p when rank == m.
    result[order] = np.clip(np.maximum(adjusted, pv[order]), 0.0, 1.0)
    out[valid] = result
    return out.tolist()
