"""Drift of one column: score it, test it, and explain it — by one of two verdict rules.

This is the engine under ``data_drift``, ``prediction_drift``, ``label_drift`` and
``compare_tables``. It works on summaries (see :mod:`detectors.stats.summary`) so the
reference side is computed once and reused.

* :func:`calibrated_compare` (the default): a column drifted when the change is **relevant**
  (an effect size at or above a practical floor — normed Wasserstein for numeric columns,
  total variation between bucketed categories otherwise) **and established** (a two-sample
  test — Kolmogorov–Smirnov, or Pearson's χ² test of homogeneity with rare categories
  bucketed — rejects at ``alpha``; callers apply Benjamini–Hochberg across columns ×
  segments). Why both: a distance alone fires on noise in small windows and high-cardinality
  columns; a p-value alone fires on trivial shifts in huge windows.
* :func:`compare_summaries` (``compat: evidently``): Evidently 0.7's method choice and
  thresholds, score for score.

Explicit edge cases (Evidently would raise on the first two):

* empty reference or empty current after dropping missing values → no score, ``reason`` set;
  callers turn that into ``insufficient_data``;
* a constant numeric reference → Wasserstein is normalised by ``max(std, 0.001)`` as in
  Evidently, and a constant current equal to it scores 0;
* categories that appear only in the current window are listed in ``details`` (χ² treats
  them as certain drift, JS/PSI as mass moved to a new bin).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detectors.stats import pvalues
from detectors.stats.binning import histogram_sorted
from detectors.stats.distances import total_variation
from detectors.stats.methods import DriftMethod, default_method, get_method
from detectors.stats.summary import SMALL_UNIQUE_LIMIT, CategoricalSummary, NumericSummary, Summary

#: Categories shown in dashboard details (largest first).
TOP_CATEGORIES = 20
#: Bins of the dashboard histogram (independent of the bins a method may use).
DASHBOARD_BINS = 20


@dataclass(frozen=True)
class ColumnDrift:
    """Result of comparing one column between reference and current."""

    column: str
    kind: str
    method: str
    score: float | None
    threshold: float
    drifted: bool
    p_value: float | None
    effect_size: float | None
    n_reference: int
    n_current: int
    missing_reference: int = 0
    missing_current: int = 0
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    #: "evidently": ``drifted`` is Evidently's verdict. "calibrated": ``score`` is the effect,
    #: ``threshold`` its floor, ``p_value`` the two-sample test, ``alpha`` its level.
    rule: str = "evidently"
    alpha: float | None = None

    @property
    def uses_p_value(self) -> bool:
        return self.p_value is not None


def resolve_method(kind: str, reference: Summary, current: Summary, method: str | None) -> DriftMethod:
    """The requested method (validated against the column kind) or Evidently's default."""
    if method is None:
        return default_method(kind, reference, current)
    chosen = get_method(method)
    if kind not in chosen.kinds:
        raise ValueError(f"drift method {chosen.name!r} does not apply to {kind} columns")
    return chosen


def _numeric_details(reference: NumericSummary, current: NumericSummary) -> dict[str, Any]:
    lo, hi = min(reference.min, current.min), max(reference.max, current.max)
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, DASHBOARD_BINS + 1)
    qs = (0.05, 0.25, 0.5, 0.75, 0.95)
    return {
        "histogram": {
            "edges": edges.tolist(),
            "reference": (histogram_sorted(reference.sorted_values, edges) / reference.n).tolist(),
            "current": (histogram_sorted(current.sorted_values, edges) / current.n).tolist(),
        },
        "reference_mean": float(reference.sorted_values.mean()),
        "current_mean": float(current.sorted_values.mean()),
        "reference_std": reference.std,
        "current_std": current.std,
        "reference_quantiles": {str(q): reference.quantile(q) for q in qs},
        "current_quantiles": {str(q): current.quantile(q) for q in qs},
    }


def _categorical_details(reference: Summary, current: Summary) -> dict[str, Any]:
    ref_counts, cur_counts = reference.counts(), current.counts()
    new = sorted((k for k in cur_counts if k not in ref_counts), key=lambda k: -cur_counts[k])
    gone = sorted((k for k in ref_counts if k not in cur_counts), key=lambda k: -ref_counts[k])
    top = sorted(set(ref_counts) | set(cur_counts), key=lambda k: -(ref_counts.get(k, 0) + cur_counts.get(k, 0)))
    top = top[:TOP_CATEGORIES]
    return {
        "categories": [str(k) for k in top],
        "reference_share": [ref_counts.get(k, 0) / reference.n for k in top],
        "current_share": [cur_counts.get(k, 0) / current.n for k in top],
        "new_categories": [str(k) for k in new[:TOP_CATEGORIES]],
        "new_category_share": sum(cur_counts[k] for k in new) / current.n,
        "missing_categories": [str(k) for k in gone[:TOP_CATEGORIES]],
    }


def _sizes(column: str, kind: str, reference: Summary, current: Summary) -> dict[str, Any]:
    """The identity and sample sizes every :class:`ColumnDrift` carries, whichever rule judged it."""
    return {
        "column": column,
        "kind": kind,
        "n_reference": reference.n,
        "n_current": current.n,
        "missing_reference": reference.n_missing,
        "missing_current": current.n_missing,
    }


def compare_summaries(
    column: str,
    kind: str,
    reference: Summary,
    current: Summary,
    *,
    method: str | None = None,
    threshold: float | None = None,
    with_details: bool = False,
) -> ColumnDrift:
    """Compare two summaries of the same column and return the verdict.

    >>> import numpy as np
    >>> from detectors.stats.summary import NumericSummary
    >>> rng = np.random.default_rng(0)
    >>> ref = NumericSummary.from_values(rng.normal(0, 1, 5000))
    >>> cur = NumericSummary.from_values(rng.normal(0.5, 1, 5000))
    >>> r = compare_summaries("x", "numeric", ref, cur)
    >>> r.method, r.drifted, round(r.score, 2)
    ('wasserstein', True, 0.52)
    """
    base = _sizes(column, kind, reference, current)
    if reference.n == 0 or current.n == 0:
        requested = get_method(method) if method else None
        side = "reference" if reference.n == 0 else "current"
        return ColumnDrift(
            method=requested.name if requested else "none",
            score=None,
            threshold=threshold if threshold is not None else (requested.default_threshold if requested else 0.0),
            drifted=False,
            p_value=None,
            effect_size=None,
            reason=f"no non-missing values in the {side} window",
            **base,
        )
    chosen = resolve_method(kind, reference, current, method)
    limit = chosen.default_threshold if threshold is None else float(threshold)
    scored = chosen.compute(reference, current)
    details: dict[str, Any] = dict(scored.details)
    if with_details:
        if isinstance(reference, NumericSummary) and isinstance(current, NumericSummary):
            details.update(_numeric_details(reference, current))
        if isinstance(reference, CategoricalSummary) or reference.n_unique <= TOP_CATEGORIES:
            details.update(_categorical_details(reference, current))
    return ColumnDrift(
        method=chosen.name,
        score=float(scored.score),
        threshold=limit,
        drifted=chosen.is_drift(float(scored.score), limit),
        p_value=scored.p_value,
        effect_size=scored.effect_size,
        details=details,
        **base,
    )


#: Practical floors of the calibrated rule (documented in docs/detectors.md).
NUMERIC_FLOOR = 0.1  # normed Wasserstein: the distributions moved a tenth of a reference std
CATEGORICAL_FLOOR = 0.05  # total variation: 5% of the mass moved between (bucketed) categories
#: A numeric column whose reference has at most this many distinct values is judged as
#: discrete (χ² on values + total variation): KS is needlessly conservative under ties.
DISCRETE_LIMIT = SMALL_UNIQUE_LIMIT
#: How each p-value method is run under the calibrated rule (two-sample versions only).
_CALIBRATED_TESTS = {"ks", "anderson", "chisquare", "z"}


def is_discrete(kind: str, reference: Summary) -> bool:
    """Judge as categories? Decided on the reference alone, so the metric of a column's
    series (and with it the alert's identity) never flips from one window to the next."""
    return kind == "categorical" or (isinstance(reference, NumericSummary) and reference.n_unique <= DISCRETE_LIMIT)


def calibrated_compare(
    column: str,
    kind: str,
    reference: Summary,
    current: Summary,
    *,
    method: str | None = None,
    threshold: float | None = None,
    alpha: float = 0.05,
    numeric_floor: float = NUMERIC_FLOOR,
    categorical_floor: float = CATEGORICAL_FLOOR,
    min_expected: float = 5.0,
    with_details: bool = False,
) -> ColumnDrift:
    """Effect size against its floor plus a two-sample test, for one column.

    ``method`` may name a distance (``jensenshannon``, ``psi``, ``tvd``, ``wasserstein``),
    which then replaces the default effect measure with ``threshold`` as its floor, or a test
    (``ks``, ``anderson``, ``chisquare`` — run as the two-sample homogeneity test — ``z``),
    which replaces the default test. ``drifted`` is the *raw* verdict (effect ≥ floor and
    p < alpha); the detectors re-judge it after Benjamini–Hochberg.

    >>> import numpy as np
    >>> from detectors.stats.summary import NumericSummary
    >>> rng = np.random.default_rng(0)
    >>> ref = NumericSummary.from_values(rng.normal(0, 1, 5000))
    >>> r = calibrated_compare("x", "numeric", ref, NumericSummary.from_values(rng.normal(0.2, 1, 5000)))
    >>> r.method, r.drifted, round(r.score, 2), r.p_value < 1e-6
    ('wasserstein', True, 0.22, True)
    >>> huge = NumericSummary.from_values(rng.normal(0, 1, 1_000_000))
    >>> r = calibrated_compare("x", "numeric", huge, NumericSummary.from_values(rng.normal(0.01, 1, 1_000_000)))
    >>> r.drifted, r.p_value < 0.05, r.score < 0.1    # established but irrelevant: no drift
    (False, True, True)
    """
    base = _sizes(column, kind, reference, current)
    requested = get_method(method) if method else None
    if requested is not None and kind not in requested.kinds:
        raise ValueError(f"drift method {requested.name!r} does not apply to {kind} columns")
    discrete = is_discrete(kind, reference)
    if requested is not None and not requested.uses_p_value:
        effect_method = requested
        floor = requested.default_threshold if threshold is None else float(threshold)
    else:
        effect_method = get_method("tvd" if discrete else "wasserstein")
        default_floor = categorical_floor if discrete else numeric_floor
        floor = default_floor if threshold is None else float(threshold)
    if reference.n == 0 or current.n == 0:
        side = "reference" if reference.n == 0 else "current"
        return ColumnDrift(
            method=effect_method.name, score=None, threshold=floor, drifted=False, p_value=None,
            effect_size=None, reason=f"no non-missing values in the {side} window", rule="calibrated",
            alpha=alpha, **base,
        )
    details: dict[str, Any] = {"rule": "calibrated", "alpha": alpha}
    buckets = pvalues.bucket_categories(reference, current, min_expected) if discrete else None
    test_name = requested.name if requested is not None and requested.uses_p_value else (
        "chisquare" if discrete else "ks")
    if test_name == "chisquare":
        buckets = buckets or pvalues.bucket_categories(reference, current, min_expected)
        outcome = pvalues.chi2_homogeneity(buckets)
    elif test_name == "ks":
        assert isinstance(reference, NumericSummary) and isinstance(current, NumericSummary)
        outcome = pvalues.ks_sorted(reference, current)
    elif test_name == "anderson":
        assert isinstance(reference, NumericSummary) and isinstance(current, NumericSummary)
        outcome = pvalues.anderson(reference, current)
    else:
        outcome = pvalues.z_proportions(reference, current)
    details["test"] = {"ks": "ks_2samp", "chisquare": "chi2_homogeneity"}.get(test_name, test_name)
    details["statistic"] = outcome.statistic
    if buckets is not None:
        details["buckets"] = len(buckets.labels)
        details["merged_categories"] = buckets.merged
    if effect_method.name == "tvd" and buckets is not None:
        effect = total_variation(buckets.reference, buckets.current)
    else:
        effect = float(effect_method.compute(reference, current).score)
    if with_details:
        if isinstance(reference, NumericSummary) and isinstance(current, NumericSummary):
            details.update(_numeric_details(reference, current))
        if isinstance(reference, CategoricalSummary) or reference.n_unique <= TOP_CATEGORIES:
            details.update(_categorical_details(reference, current))
    relevant = effect == effect and effect >= floor
    return ColumnDrift(
        method=effect_method.name,
        score=effect,
        threshold=floor,
        drifted=bool(relevant and outcome.p_value < alpha),
        p_value=outcome.p_value,
        effect_size=effect,
        details=details,
        rule="calibrated",
        alpha=alpha,
        **base,
    )
