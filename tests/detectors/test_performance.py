"""Performance with delayed labels: coverage gating, interval-based regression, metric correctness."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

from detectors import Performance, Status
from detectors.performance import slice_stats
from detectors.stats.intervals import wilson
from tests.detectors.conftest import BINARY, MULTICLASS, REGRESSION, context, make_window


def _by_metric(findings: list) -> dict:
    return {f.metric: f for f in findings if f.segment is None}


def test_ten_point_fn_rate_rise_is_detected() -> None:
    """FNR 10% → 20% with 3,000 labelled rows is critical (fnr and recall) in every seeded window;
    the unchanged FPR is critical in at most 1 of 10: Benjamini–Hochberg bounds the share of
    false discoveries, so next to real changes an unchanged metric keeps ≈ its raw one-sided 2.5%."""
    detector = Performance()
    ref = detector.prepare_reference(make_window(BINARY, 20000, 1, fn_rate=0.10), BINARY)
    fpr_critical = 0
    for seed in range(10):
        found = _by_metric(detector.run(make_window(BINARY, 3000, 100 + seed, fn_rate=0.20), ref, None, context()))
        assert found["fnr"].status is Status.CRITICAL
        assert found["recall"].status is Status.CRITICAL
        fpr_critical += found["fpr"].status is Status.CRITICAL
    assert fpr_critical <= 1


def test_tiny_rise_below_margin_is_not_critical() -> None:
    """FNR 10% → 11% is below the relevance margin max(0.5 points, 20% × 10%) = 2 points: never critical."""
    detector = Performance()
    ref = detector.prepare_reference(make_window(BINARY, 20000, 1, fn_rate=0.10), BINARY)
    for seed in range(10):
        found = _by_metric(detector.run(make_window(BINARY, 3000, 200 + seed, fn_rate=0.11), ref, None, context()))
        assert found["fnr"].status is not Status.CRITICAL
        assert found["fnr"].details["relevance_margin"] == pytest.approx(0.2 * found["fnr"].details["reference_value"])


def test_false_alarm_rate_under_no_change() -> None:
    """Same FN/FP rates: the share of windows with any critical metric stays ≤ 5% (Wilson lower bound)."""
    detector = Performance()
    ref = detector.prepare_reference(make_window(BINARY, 20000, 1), BINARY)
    trials = 60
    alarms = sum(
        any(f.status is Status.CRITICAL for f in detector.run(make_window(BINARY, 1500, 300 + s), ref, None, context()))
        for s in range(trials)
    )
    assert wilson(alarms, trials)[0] <= 0.05 and alarms / trials <= 0.05


def test_window_is_judged_only_above_min_coverage_and_rejudged_later() -> None:
    """30% coverage → every metric insufficient_data (point estimate kept); the same window with all
    labels in is judged — a late-label re-run replaces the verdict."""
    detector = Performance()
    config = detector.config({"min_coverage": 0.5})
    ref = detector.prepare_reference(make_window(BINARY, 20000, 1, fn_rate=0.1), BINARY, config)
    early = _by_metric(detector.run(make_window(BINARY, 3000, 5, fn_rate=0.3, label_share=0.3), ref, config, context()))
    assert early["label_coverage"].status is Status.INSUFFICIENT_DATA
    assert early["label_coverage"].value == pytest.approx(0.3, abs=0.03)
    assert early["fnr"].status is Status.INSUFFICIENT_DATA and early["fnr"].value is not None
    late = _by_metric(detector.run(make_window(BINARY, 3000, 5, fn_rate=0.3), ref, config, context()))
    assert late["label_coverage"].status is Status.OK and late["fnr"].status is Status.CRITICAL


def test_binary_metrics_match_sklearn() -> None:
    """Precision, recall, F1 and ROC-AUC (ties averaged) equal scikit-learn's on the same rows."""
    window = make_window(BINARY, 2000, 9)
    y = np.array(window.column("label").to_pylist()) == "brake"
    p = np.array(window.column("prediction").to_pylist()) == "brake"
    score = np.round(window.column("score").to_numpy(), 2)  # force ties
    window = window.set_column(window.schema.get_field_index("score"), "score", pa.array(score))
    stats = slice_stats(window, BINARY)
    c = stats.confusion["brake"]
    assert c.tp / (c.tp + c.fp) == pytest.approx(precision_score(y, p))
    assert c.tp / (c.tp + c.fn) == pytest.approx(recall_score(y, p))
    assert 2 * c.tp / (2 * c.tp + c.fp + c.fn) == pytest.approx(f1_score(y, p))
    assert stats.auc["brake"].value == pytest.approx(roc_auc_score(y, score))
    assert stats.matrix == [[c.tn, c.fp], [c.fn, c.tp]]


def test_multiclass_per_class_metrics_and_auc() -> None:
    """Multiclass: accuracy plus one-vs-rest metrics per class, ROC-AUC from the probabilities column."""
    detector = Performance()
    ref = detector.prepare_reference(make_window(MULTICLASS, 6000, 1, fn_rate=0.1), MULTICLASS)
    found = _by_metric(detector.run(make_window(MULTICLASS, 3000, 2, fn_rate=0.3), ref, None, context()))
    assert found["accuracy"].status is Status.CRITICAL
    for cls in MULTICLASS.classes:
        assert found[f"recall:{cls}"].status is Status.CRITICAL
        assert found[f"roc_auc:{cls}"].value is not None
    window = make_window(MULTICLASS, 1000, 3)
    probs = np.array(window.column("probabilities").to_pylist())
    labels = np.array(window.column("label").to_pylist())
    stats = slice_stats(window, MULTICLASS)
    for i, cls in enumerate(MULTICLASS.classes):
        assert stats.auc[cls].value == pytest.approx(roc_auc_score(labels == cls, probs[:, i]))


def test_regression_mae_rmse() -> None:
    """Regression: larger errors flag MAE and RMSE critical beyond the 20% relative margin."""
    detector = Performance()
    ref = detector.prepare_reference(make_window(REGRESSION, 10000, 1, fn_rate=0.0), REGRESSION)
    same = _by_metric(detector.run(make_window(REGRESSION, 2000, 2, fn_rate=0.0), ref, None, context()))
    worse = _by_metric(detector.run(make_window(REGRESSION, 2000, 3, fn_rate=0.5), ref, None, context()))
    assert same["mae"].status is Status.OK and same["rmse"].status is Status.OK
    assert worse["mae"].status is Status.CRITICAL and worse["rmse"].status is Status.CRITICAL
    assert worse["rmse"].threshold == pytest.approx(same["rmse"].details["reference_value"] * 1.2)


def test_segments_need_their_own_minimum() -> None:
    """A segment with fewer labels than min_segment_rows is insufficient_data, the overall window is judged."""
    detector = Performance()
    config = detector.config({"segments": ["firmware"], "min_segment_rows": 500})
    ref = detector.prepare_reference(make_window(BINARY, 20000, 1), BINARY, config)
    window = pa.concat_tables(
        [make_window(BINARY, 2000, 2, firmware=("3.1",)), make_window(BINARY, 100, 3, fn_rate=0.9, firmware=("3.2",))]
    )
    findings = detector.run(window, ref, config, context())
    small = [f for f in findings if f.segment == {"firmware": "3.2"}]
    assert small and {f.status for f in small} == {Status.INSUFFICIENT_DATA}


def test_unknown_metric_is_a_config_error() -> None:
    """Asking for a metric that does not exist fails when the monitor is configured."""
    with pytest.raises(ValueError, match="unknown metrics"):
        Performance().config({"metrics": ["fnr", "bogus"]})
