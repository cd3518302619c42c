"""Two-sample significance tests, reproducing Evidently's implementations exactly.

scipy is imported lazily inside each test: ``import scipy.stats`` costs over a second, and
the default path for references above 1,000 rows (Wasserstein / Jensen–Shannon) never
needs it.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from detectors.stats.summary import NumericSummary, Summary


@dataclass(frozen=True)
class TestOutcome:
    """A p-value plus the test statistic (kept as the effect-size-ish number for dashboards)."""

    p_value: float
    statistic: float


def normal_cdf(x: float) -> float:
    """Standard normal CDF with the same branch structure as scipy's ``ndtr`` (cephes).

    >>> round(normal_cdf(1.959963984540054), 6)
    0.975
    """
    t = x * math.sqrt(0.5)
    z = abs(t)
    if z < math.sqrt(0.5):
        return 0.5 + 0.5 * math.erf(t)
    y = 0.5 * math.erfc(z)
    return 1.0 - y if t > 0 else y


def ks(reference: NumericSummary, current: NumericSummary) -> TestOutcome:
    """Two-sided two-sample Kolmogorov–Smirnov (``scipy.stats.ks_2samp``, method auto)."""
    from scipy.stats import ks_2samp

    res = ks_2samp(reference.sorted_values, current.sorted_values)
    return TestOutcome(float(res.pvalue), float(res.statistic))


def anderson(reference: NumericSummary, current: NumericSummary) -> TestOutcome:
    """k-sample Anderson–Darling (midrank), p-value capped to [0.001, 0.25] like scipy's table."""
    from scipy.stats import anderson_ksamp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = anderson_ksamp([reference.sorted_values, current.sorted_values])
    return TestOutcome(float(res.pvalue), float(res.statistic))


def chisquare(reference: Summary, current: Summary) -> TestOutcome:
    """Pearson χ² of current counts against reference shares scaled to the current size.

    As in Evidently, a category absent from the reference has expected count 0, which makes
    the statistic infinite and the p-value 0: a new category *is* drift for this test.
    """
    from scipy.stats import chisquare as scipy_chisquare

    ref_counts = reference.counts()
    cur_counts = current.counts()
    keys = list(set(ref_counts) | set(cur_counts))
    k_norm = current.n / reference.n
    f_exp = [ref_counts.get(k, 0) * k_norm for k in keys]
    f_obs = [cur_counts.get(k, 0) for k in keys]
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = scipy_chisquare(f_obs, f_exp)
    return TestOutcome(float(res.pvalue), float(res.statistic))


def _sort_key(value: Any) -> tuple[int, Any]:
    # Keys of one column share a type; the tuple only guards against mixed int/float/bool.
    return (0, value) if isinstance(value, int | float | bool) else (1, str(value))


def z_proportions(reference: Summary, current: Summary) -> TestOutcome:
    """Two-proportion z-test on "is the smallest value" vs "is anything else" (Evidently's ``z``).

    Both samples constant and equal → p = 1 (no information, no drift).
    """
    ref_counts = reference.counts()
    cur_counts = current.counts()
    if len(ref_counts) == 1 and len(cur_counts) == 1 and set(ref_counts) == set(cur_counts):
        return TestOutcome(1.0, 0.0)
    first = sorted(set(ref_counts) | set(cur_counts), key=_sort_key)[0]
    n1, n2 = reference.n, current.n
    p1 = float(n1 - ref_counts.get(first, 0)) / n1
    p2 = float(n2 - cur_counts.get(first, 0)) / n2
    pooled = float(p1 * n1 + p2 * n2) / (n1 + n2)
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    p_value = 2 * (1 - normal_cdf(abs(z)))
    return TestOutcome(p_value, z)
