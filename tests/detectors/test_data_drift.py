"""Data drift: statistical validity of the calibrated rule, Evidently compatibility, segments, FDR."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from detectors import DataDrift, ModelSpec, Status
from detectors.stats.intervals import wilson
from tests.detectors.conftest import BINARY, context, make_window

SPEC = ModelSpec(task="regression", features={f"x{i}": "numeric" for i in range(5)})
ALPHA = 0.05


def _numeric_table(rng: np.random.Generator, n: int, shift: float = 0.0) -> pa.Table:
    return pa.table({f"x{i}": rng.normal(shift if i == 0 else 0.0, 1.0, n) for i in range(5)})


def _alarms(findings: list) -> bool:
    return any(f.status is Status.CRITICAL for f in findings if f.metric != "share_drifted_columns")


def test_false_alarm_rate_of_tests_stays_at_nominal_level() -> None:
    """Same distribution, small windows (Evidently's KS path), 5 features with BH: the share of
    windows with any alarm is at most α — the Wilson interval's lower end must not exceed α."""
    rng = np.random.default_rng(1234)
    detector = DataDrift()
    config = detector.config({"compat": "evidently"})
    trials = 300
    alarms = 0
    for _ in range(trials):
        ref = detector.prepare_reference(_numeric_table(rng, 400), SPEC, config)
        findings = detector.run(_numeric_table(rng, 200), ref, config, context())
        assert {f.metric for f in findings if f.column} == {"ks"}
        alarms += _alarms(findings)
    low, _ = wilson(alarms, trials)
    assert alarms / trials <= ALPHA + 0.02 and low <= ALPHA, f"{alarms}/{trials} false alarms"


def test_false_alarm_rate_of_distances_is_near_zero() -> None:
    """Same distribution, large reference (Wasserstein/JS path): no alarms in 50 windows."""
    rng = np.random.default_rng(99)
    detector = DataDrift()
    ref = detector.prepare_reference(_numeric_table(rng, 5000), SPEC)
    alarms = sum(_alarms(detector.run(_numeric_table(rng, 2000), ref, None, context())) for _ in range(50))
    assert alarms == 0


@pytest.mark.parametrize(("n_ref", "n_cur"), [(5000, 2000), (1000, 1000)])
def test_a_0_2_sigma_mean_shift_is_detected(n_ref: int, n_cur: int) -> None:
    """A 0.2σ mean shift in one feature is flagged critical in ≥ 90% of windows (both method paths),
    while the unshifted features stay within the nominal false-alarm level."""
    rng = np.random.default_rng(7)
    detector = DataDrift()
    hits = false_flags = 0
    trials = 20
    for _ in range(trials):
        ref = detector.prepare_reference(_numeric_table(rng, n_ref), SPEC)
        findings = detector.run(_numeric_table(rng, n_cur, shift=0.2), ref, None, context())
        by_col = {f.column: f for f in findings if f.column}
        hits += by_col["x0"].status is Status.CRITICAL
        false_flags += sum(by_col[c].status is Status.CRITICAL for c in ("x1", "x2", "x3", "x4"))
    assert hits >= 0.9 * trials, f"detected {hits}/{trials}"
    assert wilson(false_flags, 4 * trials)[0] <= ALPHA, f"{false_flags} false flags"


def test_a_tiny_shift_below_threshold_is_not_flagged() -> None:
    """A 0.03σ shift stays below Wasserstein's 0.1 threshold: ok in every window."""
    rng = np.random.default_rng(8)
    detector = DataDrift()
    ref = detector.prepare_reference(_numeric_table(rng, 5000), SPEC)
    for _ in range(20):
        by_col = {f.column: f for f in detector.run(_numeric_table(rng, 5000, shift=0.03), ref, None, context())}
        assert by_col["x0"].status is Status.OK and by_col["x0"].value < 0.1


def test_bh_adjusted_p_values_are_reported_with_raw_ones() -> None:
    """With FDR on, each p-value test reports raw and BH-adjusted p (adjusted ≥ raw);
    a raw-only rejection is a warning, not critical."""
    rng = np.random.default_rng(3)
    detector = DataDrift()
    ref = detector.prepare_reference(_numeric_table(rng, 300), SPEC)
    findings = [f for f in detector.run(_numeric_table(rng, 300, shift=0.25), ref, None, context()) if f.column]
    for f in findings:
        assert f.p_value is not None and f.p_value_adjusted is not None
        assert f.p_value_adjusted >= f.p_value
        if f.p_value < ALPHA <= f.p_value_adjusted and f.value >= f.threshold:
            assert f.status is Status.WARNING
    off = [f for f in detector.run(_numeric_table(rng, 300), ref, {"fdr": False}, context()) if f.column]
    assert all(f.p_value_adjusted is None for f in off)


def test_evidently_method_selection_by_reference_size_and_kind() -> None:
    """compat evidently: >1000 reference rows: Wasserstein (numeric), JS (categorical/boolean);
    ≤1000: KS / chi² / z."""
    detector = DataDrift()
    config = detector.config({"compat": "evidently"})
    big = detector.prepare_reference(make_window(BINARY, 3000, 1), BINARY, config)
    methods = {
        f.column: f.metric for f in detector.run(make_window(BINARY, 500, 2), big, config, context()) if f.column
    }
    assert methods == {"speed": "wasserstein", "road": "jensenshannon", "night": "jensenshannon", "note": "wasserstein"}
    small = detector.prepare_reference(make_window(BINARY, 800, 1), BINARY, config)
    methods = {
        f.column: f.metric for f in detector.run(make_window(BINARY, 500, 2), small, config, context()) if f.column
    }
    assert methods == {"speed": "ks", "road": "chisquare", "night": "z", "note": "ks"}


def test_calibrated_measures_do_not_depend_on_reference_size() -> None:
    """Default rule: numeric columns are measured by normed Wasserstein (tested with KS),
    categorical, boolean and discrete ones (≤ 20 reference values, like the text length here)
    by total variation (tested with χ² of homogeneity), whatever
    the reference size — so a series' metric, and its alert, never changes with the window."""
    detector = DataDrift()
    for n_ref in (3000, 800):
        ref = detector.prepare_reference(make_window(BINARY, n_ref, 1), BINARY)
        found = {f.column: f for f in detector.run(make_window(BINARY, 500, 2), ref, None, context()) if f.column}
        assert {c: f.metric for c, f in found.items()} == {
            "speed": "wasserstein", "road": "tvd", "night": "tvd", "note": "tvd"}
        assert {c: f.details["test"] for c, f in found.items()} == {
            "speed": "ks_2samp", "road": "chi2_homogeneity", "night": "chi2_homogeneity", "note": "chi2_homogeneity"}


def test_segments_below_minimum_are_insufficient_not_drift() -> None:
    """A segment value with fewer rows than min_segment_rows is insufficient_data even if shifted."""
    detector = DataDrift()
    config = detector.config({"segments": ["firmware"], "min_segment_rows": 100})
    ref = detector.prepare_reference(make_window(BINARY, 4000, 1), BINARY, config)
    big = make_window(BINARY, 2000, 2, firmware=("3.1",))
    tiny = make_window(BINARY, 40, 3, speed_shift=3.0, firmware=("3.2",))
    findings = detector.run(pa.concat_tables([big, tiny]), ref, config, context())
    small_seg = [f for f in findings if f.segment == {"firmware": "3.2"} and f.column == "speed"]
    assert small_seg and small_seg[0].status is Status.INSUFFICIENT_DATA
    assert "fewer than 100" in small_seg[0].details["reason"]
    unknown = detector.run(make_window(BINARY, 500, 4, firmware=("9.9",)), ref, config, context())
    assert {f.status for f in unknown if f.segment == {"firmware": "9.9"}} == {Status.INSUFFICIENT_DATA}


def test_new_categories_and_constant_columns_are_explicit() -> None:
    """A category unseen in the reference is listed in details; a constant column scores 0, not NaN."""
    spec = ModelSpec(task="binary", classes=("a", "b"), features={"road": "categorical", "k": "numeric"})
    ref = pa.table({"road": ["urban"] * 1500 + ["rural"] * 1500, "k": [1.0] * 3000})
    cur = pa.table({"road": ["urban"] * 400 + ["gravel"] * 600, "k": [1.0] * 1000})
    detector = DataDrift()
    by_col = {
        f.column: f for f in detector.run(cur, detector.prepare_reference(ref, spec), None, context()) if f.column
    }
    assert by_col["road"].status is Status.CRITICAL
    assert by_col["road"].details["new_categories"] == ["gravel"]
    assert by_col["k"].value == 0.0 and by_col["k"].status is Status.OK


def test_reference_statistics_are_reused_not_recomputed() -> None:
    """prepare_reference's result is a plain value: running it against many windows never mutates it."""
    detector = DataDrift()
    ref = detector.prepare_reference(make_window(BINARY, 2000, 1), BINARY)
    before = {k: {c: s.n for c, s in v.items()} for k, v in ref.summaries.items()}
    for seed in range(3):
        detector.run(make_window(BINARY, 300, seed + 10), ref, None, context())
    assert {k: {c: s.n for c, s in v.items()} for k, v in ref.summaries.items()} == before


def test_per_column_method_must_fit_the_column_kind() -> None:
    """Forcing a numeric-only method on a categorical feature is rejected when the reference is prepared."""
    detector = DataDrift()
    config = detector.config({"methods": {"road": "wasserstein"}})
    with pytest.raises(ValueError, match="does not apply"):
        detector.prepare_reference(make_window(BINARY, 200, 1), BINARY, config)
    config = detector.config({"methods": {"speed": "psi"}, "threshold": 0.2})
    ref = detector.prepare_reference(make_window(BINARY, 2000, 1), BINARY, config)
    speed = next(f for f in detector.run(make_window(BINARY, 500, 2), ref, config, context()) if f.column == "speed")
    assert (speed.metric, speed.threshold) == ("psi", 0.2)
