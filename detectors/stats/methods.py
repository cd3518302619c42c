"""Catalogue of drift methods and Evidently 0.7's default choice among them.

Scores follow Evidently's conventions: distance methods report the distance and flag drift
when ``score >= threshold``; test methods report the p-value and flag drift when
``p < threshold`` (``p <= threshold`` for KS, exactly as Evidently compares).

Default selection (Evidently ``_get_default_stattest``), after dropping null/NaN/±inf and
with ``n_values`` = distinct values of reference and current pooled:

=================  ==============================  ======================================
reference rows     numeric                         categorical
=================  ==============================  ======================================
≤ 1,000            ``ks``; ``chisquare`` if 3–5     ``chisquare``; ``z`` if ≤ 2 values
                   values; ``z`` if ≤ 2 values
> 1,000            ``wasserstein`` (normed by ref   ``jensenshannon``
                   std, 0.1); ``jensenshannon``
                   if ≤ 5 values
=================  ==============================  ======================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detectors.stats import pvalues
from detectors.stats.binning import binned_shares
from detectors.stats.distances import jensenshannon, psi, total_variation, wasserstein_sorted
from detectors.stats.summary import NumericSummary, Summary

#: Evidently: references up to this many rows use statistical tests, above it distances.
SMALL_REFERENCE_ROWS = 1000
#: Evidently: numeric columns with at most this many pooled values are treated as discrete.
DISCRETE_MAX_VALUES = 5


@dataclass(frozen=True)
class MethodScore:
    """Raw output of a method before thresholding."""

    score: float
    p_value: float | None = None
    effect_size: float | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DriftMethod:
    """One drift method: how to score two summaries and how to read the score."""

    name: str
    display_name: str  # Evidently's display name, for cross-checking reports
    kinds: frozenset[str]
    default_threshold: float
    uses_p_value: bool
    compute: Callable[[Summary, Summary], MethodScore]
    inclusive: bool = False  # p-value methods: drift when p <= threshold instead of <

    def is_drift(self, score: float, threshold: float) -> bool:
        """Evidently's comparison for this method (NaN is never drift)."""
        if score != score:
            return False
        if self.uses_p_value:
            return score <= threshold if self.inclusive else score < threshold
        return score >= threshold


def _normed_wasserstein(reference: Summary, current: Summary) -> float:
    assert isinstance(reference, NumericSummary) and isinstance(current, NumericSummary)
    norm = max(float(reference.std), 0.001)
    return wasserstein_sorted(reference.sorted_values, current.sorted_values) / norm


def _count_tvd(reference: Summary, current: Summary) -> float:
    ref_counts, cur_counts = reference.counts(), current.counts()
    keys = list(set(ref_counts) | set(cur_counts))
    return total_variation(
        np.array([ref_counts.get(k, 0) for k in keys]), np.array([cur_counts.get(k, 0) for k in keys])
    )


def _effect(reference: Summary, current: Summary) -> float:
    """Size-independent 'how much': normed Wasserstein for numeric, TVD for categorical."""
    if isinstance(reference, NumericSummary) and isinstance(current, NumericSummary):
        return _normed_wasserstein(reference, current)
    return _count_tvd(reference, current)


def _wasserstein(reference: Summary, current: Summary) -> MethodScore:
    value = _normed_wasserstein(reference, current)
    return MethodScore(value, effect_size=value)


def _jensenshannon(reference: Summary, current: Summary) -> MethodScore:
    _, ref, cur = binned_shares(reference, current, fill_zeroes=False)
    value = jensenshannon(ref, cur)
    return MethodScore(value, effect_size=value)


def _psi(reference: Summary, current: Summary) -> MethodScore:
    _, ref, cur = binned_shares(reference, current, fill_zeroes=True)
    value = psi(ref, cur)
    return MethodScore(value, effect_size=value)


def _tvd(reference: Summary, current: Summary) -> MethodScore:
    value = _count_tvd(reference, current)
    return MethodScore(value, effect_size=value)


def _test(fn: Callable[[Any, Any], pvalues.TestOutcome]) -> Callable[[Summary, Summary], MethodScore]:
    def compute(reference: Summary, current: Summary) -> MethodScore:
        outcome = fn(reference, current)
        return MethodScore(
            outcome.p_value,
            p_value=outcome.p_value,
            effect_size=_effect(reference, current),
            details={"statistic": outcome.statistic},
        )

    compute.__name__ = fn.__name__
    return compute


NUMERIC = frozenset({"numeric"})
CATEGORICAL = frozenset({"categorical"})
BOTH = NUMERIC | CATEGORICAL

METHODS: dict[str, DriftMethod] = {
    m.name: m
    for m in (
        DriftMethod("wasserstein", "Wasserstein distance (normed)", NUMERIC, 0.1, False, _wasserstein),
        DriftMethod("jensenshannon", "Jensen-Shannon distance", BOTH, 0.1, False, _jensenshannon),
        DriftMethod("psi", "PSI", BOTH, 0.1, False, _psi),
        DriftMethod("tvd", "Total-Variation-Distance", BOTH, 0.1, False, _tvd),
        DriftMethod("ks", "K-S p_value", NUMERIC, 0.05, True, _test(pvalues.ks), inclusive=True),
        DriftMethod("anderson", "Anderson-Darling", NUMERIC, 0.1, True, _test(pvalues.anderson)),
        DriftMethod("chisquare", "chi-square p_value", BOTH, 0.05, True, _test(pvalues.chisquare)),
        DriftMethod("z", "Z-test p_value", BOTH, 0.05, True, _test(pvalues.z_proportions)),
    )
}

ALIASES = {
    "wasserstein_norm": "wasserstein",
    "wasserstein_distance": "wasserstein",
    "js": "jensenshannon",
    "jensen_shannon": "jensenshannon",
    "kolmogorov_smirnov": "ks",
    "chi2": "chisquare",
    "chi_square": "chisquare",
    "ztest": "z",
    "z_test": "z",
    "anderson_darling": "anderson",
    "total_variation": "tvd",
}


def get_method(name: str) -> DriftMethod:
    """Look a method up by name or alias (case-insensitive); ValueError lists the choices."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    try:
        return METHODS[key]
    except KeyError:
        raise ValueError(f"unknown drift method {name!r}; choose one of {sorted(METHODS)}") from None


def pooled_distinct(reference: Summary, current: Summary, limit: int = DISCRETE_MAX_VALUES) -> int:
    """Distinct values of both samples pooled, exact up to ``limit``; ``limit + 1`` means more."""
    ref = reference.distinct(limit)
    cur = current.distinct(limit)
    if ref is None or cur is None:
        return limit + 1
    return min(len(ref | cur), limit + 1)


def default_method(kind: str, reference: Summary, current: Summary) -> DriftMethod:
    """Evidently 0.7's automatic choice for a column of ``kind`` ("numeric"/"categorical")."""
    n_values = pooled_distinct(reference, current)
    small = reference.n <= SMALL_REFERENCE_ROWS
    if kind == "numeric":
        if n_values <= DISCRETE_MAX_VALUES:
            if small:
                return METHODS["chisquare"] if n_values > 2 else METHODS["z"]
            return METHODS["jensenshannon"]
        return METHODS["ks"] if small else METHODS["wasserstein"]
    if kind == "categorical":
        if small:
            return METHODS["chisquare"] if n_values > 2 else METHODS["z"]
        return METHODS["jensenshannon"]
    raise ValueError(f"no default drift method for column kind {kind!r}")
