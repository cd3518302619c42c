"""The one line on-call reads first names the change and the evidence behind it."""

from __future__ import annotations

from monitor.alerting.describe import what_changed


def test_calibrated_drift_line_shows_effect_floor_and_test() -> None:
    """A drift finding of the calibrated rule reads "effect (floor F; TEST p … after BH)", so
    on-call sees both halves of the verdict: big enough, and more than noise."""
    line = what_changed({
        "metric": "wasserstein", "column": "brightness", "value": 0.175, "threshold": 0.1,
        "p_value": 1e-9, "p_value_adjusted": 2e-8, "segment": {"firmware": "3.2"}, "reference": "trailing 7d",
        "details": {"rule": "calibrated", "test": "ks_2samp", "method_display_name": "Wasserstein distance (normed)"},
    })
    assert line == (
        "brightness Wasserstein distance (normed) 0.175 (floor 0.1; KS p < 0.001 after BH) on firmware 3.2 "
        "vs trailing 7d"
    )
    line = what_changed({
        "metric": "tvd", "column": "road", "value": 0.11, "threshold": 0.05, "p_value": 0.004,
        "p_value_adjusted": 0.02, "details": {"rule": "calibrated", "test": "chi2_homogeneity",
                                              "method_display_name": "Total-Variation-Distance"},
    })
    assert line == "road Total-Variation-Distance 0.11 (floor 0.05; χ² p = 0.020 after BH)"


def test_performance_line_keeps_before_after_and_interval() -> None:
    """A performance finding reads "FN rate before → after (95% CI …)"."""
    line = what_changed({
        "metric": "fnr", "value": 0.187, "threshold": 0.12, "details": {
            "reference_value": 0.095, "current_ci": [0.131, 0.26], "confidence": 0.95}, "reference": "trailing 7d",
    })
    assert line == "FN rate 9.5% → 18.7% (95% CI 13.1–26.0%) vs trailing 7d"
