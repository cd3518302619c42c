"""The calibrated drift verdict keeps its promises, measured in seeded trials.

Small versions of ``bench/alert_quality.py`` (same scenarios, ``bench/drift_scenarios.py``):
a few hundred windows in seconds. Rates are judged with their Wilson interval so a test
fails only when the rule is really off, not on one unlucky seed.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from bench.drift_scenarios import SHIFTS, SPEC, TINY_SHIFT, window
from detectors import DataDrift, ModelSpec, Status
from detectors.stats.intervals import wilson
from detectors.stats.pvalues import bucket_categories, chi2_homogeneity
from detectors.stats.summary import CategoricalSummary
from tests.detectors.conftest import context

ALPHA = 0.05


def _any_critical(findings: list) -> bool:
    return any(f.status is Status.CRITICAL for f in findings)


@pytest.mark.parametrize("compat", [None, "evidently"])
def test_null_rate_across_kinds_cardinalities_and_segments(compat: str | None) -> None:
    """No change at all, 10 columns (5 numeric shapes; 2 to 300 categories; a boolean) judged
    overall and per segment value, small windows: the calibrated rule raises a critical finding
    in at most ~α of windows (Wilson lower bound ≤ α, point estimate ≤ 9%), whereas Evidently's
    rule — kept as the compat mode — raises one in most windows (the defect this rule fixes)."""
    detector = DataDrift()
    config = detector.config({"segments": ["region"], "details": False, "compat": compat})
    rng = np.random.default_rng(20261202)
    trials = 150 if compat is None else 40
    alarms = 0
    for i in range(trials):
        n_ref, n_cur = ((600, 600), (2000, 400))[i % 2]
        reference = detector.prepare_reference(window(rng, n_ref), SPEC, config)
        alarms += _any_critical(detector.run(window(rng, n_cur), reference, config, context()))
    low, _ = wilson(alarms, trials)
    if compat is None:
        assert low <= ALPHA and alarms / trials <= 0.09, f"{alarms}/{trials} windows raised a false alarm"
    else:
        assert alarms / trials >= 0.5, f"Evidently's rule raised only {alarms}/{trials}"


@pytest.mark.parametrize("shift", SHIFTS, ids=[s.column for s in SHIFTS])
def test_shifts_that_matter_are_caught_at_5k(shift) -> None:
    """At 5k reference / 5k current rows each shift on-call cares about (0.2σ mean shift, 10 points
    of share moved between common categories, a binary share 30% → 40%) is critical in ≥ 80%
    of windows — here in every one of 12 — with segments judged too."""
    detector = DataDrift()
    spec = ModelSpec(task="regression", features={shift.column: SPEC.features[shift.column], "uniform": "numeric"},
                     segments=("region",))
    config = detector.config({"segments": ["region"], "details": False})
    rng = np.random.default_rng(7)
    columns = (shift.column, "uniform")
    hits = 0
    for _ in range(12):
        reference = detector.prepare_reference(window(rng, 5000, columns=columns), spec, config)
        findings = detector.run(window(rng, 5000, shift, columns=columns), reference, config, context())
        hits += any(f.column == shift.column and f.segment is None and f.status is Status.CRITICAL for f in findings)
    assert hits == 12, f"{shift.name}: caught in {hits}/12 windows"


def test_a_tiny_shift_on_a_huge_window_is_never_critical() -> None:
    """A 0.01σ shift on 1M / 1M rows is statistically established (KS p < α) but below the
    practical floor: ok, never critical — even when the user forces the KS test."""
    detector = DataDrift()
    spec = ModelSpec(task="regression", features={"normal": "numeric"})
    rng = np.random.default_rng(11)
    reference_table = window(rng, 1_000_000, columns=("normal",))
    current_table = window(rng, 1_000_000, TINY_SHIFT, columns=("normal",))
    for params in ({}, {"method": "ks"}):
        config = detector.config({**params, "details": False})
        finding = next(f for f in detector.run(
            current_table, detector.prepare_reference(reference_table, spec, config), config, context()) if f.column)
        assert finding.p_value is not None and finding.p_value < ALPHA
        assert finding.value < finding.threshold and finding.status is Status.OK


def test_chi2_is_two_sample_and_new_categories_do_not_force_p_zero() -> None:
    """χ² of homogeneity treats both sides as samples: a category absent from a small reference
    but seen a few times in the current window does not make p = 0 (Evidently's one-sample χ²
    did), while a category that takes 20% of the current window is established drift."""
    reference = CategoricalSummary({"a": 300, "b": 200}, 0)
    few_new = CategoricalSummary({"a": 290, "b": 207, "new": 3}, 0)
    many_new = CategoricalSummary({"a": 240, "b": 160, "new": 100}, 0)
    assert chi2_homogeneity(bucket_categories(reference, few_new)).p_value > 0.05
    assert chi2_homogeneity(bucket_categories(reference, many_new)).p_value < 1e-6


def test_rare_categories_are_bucketed_until_expected_counts_suffice() -> None:
    """Categories whose expected count would fall below 5 in the smaller sample are merged into
    one "(other)" bucket, so 300 mostly rare categories make a handful of well-filled cells."""
    rng = np.random.default_rng(3)
    values = pa.chunked_array([pa.array(window(rng, 800, columns=("cat300",)).column("cat300"))])
    reference = CategoricalSummary.from_values(values)
    current = CategoricalSummary.from_values(pa.chunked_array([window(rng, 300, columns=("cat300",)).column("cat300")]))
    buckets = bucket_categories(reference, current)
    expected_smaller = (buckets.reference + buckets.current) * current.n / (reference.n + current.n)
    assert buckets.merged >= 150 and len(buckets.labels) < 20 and "(other)" in buckets.labels
    assert expected_smaller.min() >= 5


def test_id_like_categorical_feature_is_not_compared() -> None:
    """A categorical feature whose reference values are nearly all distinct (e.g. a request id
    declared as categorical) is insufficient_data with the reason, never drift."""
    detector = DataDrift()
    spec = ModelSpec(task="regression", features={"request": "categorical", "normal": "numeric"})
    rng = np.random.default_rng(5)
    ref = pa.table({"request": [f"r{i}" for i in range(1000)], "normal": rng.normal(0, 1, 1000)})
    cur = pa.table({"request": [f"s{i}" for i in range(1000)], "normal": rng.normal(0, 1, 1000)})
    found = {f.column: f for f in detector.run(cur, detector.prepare_reference(ref, spec), None, context()) if f.column}
    assert found["request"].status is Status.INSUFFICIENT_DATA
    assert "id-like" in found["request"].details["reason"]
    assert found["normal"].status is Status.OK


def test_an_overwhelming_shift_is_critical_with_fdr_off_too() -> None:
    """With ``fdr: false`` each column is judged on its raw p-value — including a p-value that
    underflows to exactly 0 for a huge shift, which must count as established, not as missing."""
    detector = DataDrift()
    spec = ModelSpec(task="regression", features={"normal": "numeric"})
    rng = np.random.default_rng(13)
    ref = pa.table({"normal": rng.normal(0, 1, 20_000)})
    cur = pa.table({"normal": rng.normal(5, 1, 20_000)})
    config = detector.config({"fdr": False})
    finding = next(f for f in detector.run(cur, detector.prepare_reference(ref, spec, config), config, context())
                   if f.column)
    assert finding.p_value == 0.0 and finding.status is Status.CRITICAL
