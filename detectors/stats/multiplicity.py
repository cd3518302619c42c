"""Holm's step-down adjustment: family-wise error control when one failed test decides.

A release gate judges every criterion in every slice (3 criteria × 12 regions = 36 tests). If a
single "this criterion fails" verdict blocks the release, testing each at α would block a model
that sits exactly on its thresholds far more often than α (1 − 0.975³⁶ ≈ 60 % at one-sided
2.5 %). Holm's procedure (S. Holm, "A simple sequentially rejective multiple test procedure",
Scandinavian Journal of Statistics 6:65–70, 1979) keeps the chance of *any* false rejection at
α under any dependence between the tests, and is uniformly more powerful than Bonferroni.
(Benjamini–Hochberg, in ``fdr.py``, controls a different error — the share of false flags —
which suits drift alerts, not a ship / no-ship decision.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def adjust_sorted(p_values: Sequence[float], rule: Callable[[np.ndarray], np.ndarray]) -> list[float]:
    """Adjusted p-values, same order as given: ``rule`` maps the ascending valid p-values to
    their adjusted values. NaN inputs stay NaN and do not count as tests."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    valid = ~np.isnan(p)
    if not valid.any():
        return out.tolist()
    pv = p[valid]
    order = np.argsort(pv, kind="stable")
    result = np.empty(pv.size)
    result[order] = rule(pv[order])
    out[valid] = result
    return out.tolist()


def _holm_sorted(ascending: np.ndarray) -> np.ndarray:
    m = ascending.size
    stepped = ascending * (m - np.arange(m))  # the i-th smallest times (m − i + 1), 1-based
    return np.minimum(np.maximum.accumulate(stepped), 1.0)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, same order: reject hypothesis i at level α iff adjusted[i] ≤ α.

    NaN inputs stay NaN and do not count as tests.

    >>> [round(p, 4) for p in holm([0.01, 0.04, 0.03, 0.005])]
    [0.03, 0.06, 0.06, 0.02]
    """
    return adjust_sorted(p_values, _holm_sorted)
