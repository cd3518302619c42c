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


# --- Calibration: the verdict's error rates, measured in seeded trials (bench/performance_quality.py
# runs the same trials at full size; these are the small, fast versions).


def test_null_rate_is_bounded_at_small_sizes() -> None:
    """Rule: under no change, the share of windows with any critical metric (7 metrics × the whole
    window and 2 segments, Benjamini–Hochberg across them) is ≤ the one-sided 2.5% by design;
    asserted ≤ 5% over 300 seeded windows (labelled 500 and 2,000; base FN rates 5/10/30%),
    a tolerance that a true 2.5% exceeds with probability < 1%."""
    from bench.performance_quality import Population, Scenario, measure

    windows = alarms = 0
    for i, (fnr, n) in enumerate([(0.05, 500), (0.10, 500), (0.30, 500), (0.10, 2000), (0.30, 2000)]):
        cell = measure(Scenario("null", n, Population(fnr), Population(fnr)), 60, seed=7, index=i)
        windows += cell["any_critical"]["trials"]
        alarms += cell["any_critical"]["hits"]
    assert windows == 300 and alarms / windows <= 0.05


def test_fn_rate_up_34_percent_fires_at_a_realistic_size() -> None:
    """Rule: an FN rate rising 7.1% → 9.5% (+34%, 2.4 points) is relevant (margin max(0.5 pt,
    20% × 7.1%) = 1.42 points) and, with 10,000 labelled rows (3,000 positives) against a
    50,000-row reference, established: critical in ≥ 85% of seeded windows (measured ≈ 95%).
    The old fixed 2-point margin on the interval's lower bound missed it almost always."""
    from bench.performance_quality import Population, Scenario, measure

    cell = measure(Scenario("power", 10_000, Population(0.071), Population(0.095), watched="fnr"), 30, seed=3, index=0)
    assert cell["watched_critical"]["rate"] >= 0.85


def _exact_window(n: int, fnr: float, fpr: float = 0.05, prevalence: float = 0.5) -> pa.Table:
    """A window with exactly these rates (counts, not draws), built fast for millions of rows."""
    pos = round(n * prevalence)
    neg = n - pos
    fn, fp = round(pos * fnr), round(neg * fpr)
    truth = np.repeat([1, 1, 0, 0], [pos - fn, fn, fp, neg - fp]).astype(np.int8)
    pred = np.repeat([1, 0, 1, 0], [pos - fn, fn, fp, neg - fp]).astype(np.int8)
    classes = pa.array(list(BINARY.classes))
    return pa.table(
        {
            "prediction": pa.DictionaryArray.from_arrays(pa.array(pred), classes),
            "label": pa.DictionaryArray.from_arrays(pa.array(truth), classes),
        }
    )


def test_small_change_on_a_huge_window_is_established_but_not_critical() -> None:
    """Rule: a 0.2-point FN rate change (10.0% → 10.2%) on 2M labelled rows per side is
    established — its interval is clear of zero — but below the relevance margin (2 points),
    so it is ok, never critical (and not even warning)."""
    detector = Performance()
    config = detector.config({"metrics": ["fnr", "fpr", "precision", "recall"]})
    ref = detector.prepare_reference(_exact_window(2_000_000, 0.100), BINARY, config)
    found = _by_metric(detector.run(_exact_window(2_000_000, 0.102), ref, config, context()))
    fnr = found["fnr"]
    assert fnr.details["difference_ci"][0] > 0 and fnr.details["established"]
    assert not fnr.details["relevant"] and fnr.status is Status.OK
    assert not any(f.status is Status.CRITICAL for f in found.values())


def test_reported_intervals_cover_the_truth_about_95_percent() -> None:
    """Rule: the reported 95% intervals of the current metric (Wilson; bootstrap for F1;
    Hanley–McNeil for ROC-AUC) and of the difference (Newcombe; bootstrap; Hanley–McNeil) contain
    the true population value in ≈ 95% of windows: asserted within [91%, 99%] over 200 seeded
    windows (2,000 labelled rows, with and without an FN rate change; ±2.5 binomial SDs)."""
    from bench.performance_quality import METRICS, Population, Scenario, measure

    cells = [
        measure(Scenario("null", 2000, Population(0.10), Population(0.10)), 100, seed=11, index=0),
        measure(Scenario("power", 2000, Population(0.071), Population(0.095), watched="fnr"), 100, seed=11, index=1),
    ]
    for metric in METRICS:
        for key in ("current", "difference"):
            hits = sum(c["coverage"][metric][key][0] for c in cells)
            total = sum(c["coverage"][metric][key][1] for c in cells)
            assert total == 200
            assert 0.91 <= hits / total <= 0.99, (metric, key, hits / total)


def test_relevant_but_unestablished_change_is_only_a_warning() -> None:
    """Rule: FNR 10% → 20% (relevant) on 100 labelled rows is established by its own interval
    (raw p < 0.025) but not after BH across four metrics: a warning (suggestive only), never
    critical. On 60 rows its interval still reaches zero: ok, not even a warning."""
    detector = Performance()
    config = detector.config({"metrics": ["fnr", "fpr", "precision", "accuracy"]})
    ref = detector.prepare_reference(_exact_window(20_000, 0.10), BINARY, config)
    fnr = _by_metric(detector.run(_exact_window(100, 0.20), ref, config, context()))["fnr"]
    assert fnr.details["relevant"] and not fnr.details["established"]
    assert fnr.p_value < 0.025 <= fnr.p_value_adjusted and fnr.status is Status.WARNING
    fnr = _by_metric(detector.run(_exact_window(60, 0.20), ref, config, context()))["fnr"]
    assert fnr.details["difference_ci"][0] <= 0 and fnr.status is Status.OK


def test_fnr_and_recall_are_one_hypothesis_and_fdr_can_be_switched_off() -> None:
    """Rule: recall = 1 − fnr (same counts), so both get the same p-value, adjusted p-value and
    verdict; with ``fdr: false`` each metric is judged on its own interval (adjusted = raw)."""
    detector = Performance()
    ref = detector.prepare_reference(make_window(BINARY, 20000, 1, fn_rate=0.10), BINARY)
    window = make_window(BINARY, 3000, 5, fn_rate=0.14)
    found = _by_metric(detector.run(window, ref, None, context()))
    fnr, recall = found["fnr"], found["recall"]
    assert fnr.p_value == pytest.approx(recall.p_value) and fnr.p_value_adjusted == recall.p_value_adjusted
    assert fnr.status is recall.status
    raw = _by_metric(detector.run(window, ref, detector.config({"fdr": False}), context()))
    assert all(f.p_value_adjusted == f.p_value for f in raw.values() if f.p_value is not None)
