"""Estimated performance (detectors/estimated_performance.py): CBPE and DLE estimates track the
truth, verdicts keep the calibrated rule's error rates, and the realized check catches a broken
calibration."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from detectors import EstimatedPerformance, ModelSpec, RunContext, Status
from detectors.finding import Finding

BINARY = ModelSpec(task="binary", classes=("ok", "fault"), positive_class="fault", features={"x": "numeric"})
MULTI = ModelSpec(task="multiclass", classes=("a", "b", "c"), features={"x": "numeric"})
REGRESSION = ModelSpec(task="regression", features={"x": "numeric", "zone": "categorical"})
CTX = RunContext("m", datetime(2026, 10, 8, tzinfo=UTC), datetime(2026, 10, 9, tzinfo=UTC))


def _binary(
    rng: np.random.Generator, n: int, *, spread: float = 1.0, labelled: bool = True, power: float = 1.0
) -> pa.Table:
    """A calibrated binary model (P(fault) = score) on x ~ N(0, spread); ``power`` ≠ 1 breaks the
    calibration of the labels (P(fault) = score**power)."""
    x = rng.normal(0, spread, n)
    score = 1 / (1 + np.exp(-2 * x))
    fault = rng.random(n) < score**power
    return pa.table(
        {
            "x": x,
            "score": score,
            "prediction": np.where(score >= 0.5, "fault", "ok"),
            "label": pa.array(np.where(fault, "fault", "ok")) if labelled else pa.nulls(n, pa.string()),
            "region": np.where(rng.random(n) < 0.5, "north", "south"),
        }
    )


def _by_metric(findings: list[Finding]) -> dict[str, Finding]:
    return {f.metric: f for f in findings if f.segment is None}


def test_cbpe_estimates_track_the_realized_metrics_under_covariate_shift() -> None:
    """Rule: with calibrated scores, every binary metric's estimate on an unlabelled 5k-row window
    lies within 0.02 of the metric realized once its labels are known, with or without a shift
    of the inputs, and ROC-AUC within 0.02 in each of 20 windows."""
    rng = np.random.default_rng(1)
    detector = EstimatedPerformance()
    cfg = detector.config({})
    reference = detector.prepare_reference(_binary(rng, 20_000), BINARY, cfg)
    worst: dict[str, float] = {}
    for trial in range(20):
        spread = (1.0, 0.5, 1.5, 0.8)[trial % 4]
        window = _binary(rng, 5_000, spread=spread)
        estimated = _by_metric(detector.run(window.drop_columns(["label"]), reference, cfg, CTX))
        realized = _by_metric(detector.run(window, reference, cfg, CTX))
        for metric in ("fpr", "fnr", "precision", "recall", "f1", "accuracy", "roc_auc"):
            gap = abs(estimated[metric].value - realized[metric].details["realized"])  # type: ignore[operator]
            worst[metric] = max(worst.get(metric, 0.0), gap)
    assert all(gap < 0.03 for gap in worst.values()), worst
    assert worst["roc_auc"] < 0.02, worst


def test_no_change_rarely_alerts_and_a_harmful_shift_is_caught() -> None:
    """Rule: under no change, a window has any ``critical`` metric in at most ~5% of 60 seeded
    trials (2k unlabelled rows each, BH across metrics); when rows crowd the decision boundary
    (accuracy 0.77 → 0.70) ``accuracy`` is ``critical`` in at least 90% of 30 trials."""
    rng = np.random.default_rng(2)
    detector = EstimatedPerformance()
    cfg = detector.config({"metrics": ["accuracy", "precision", "recall", "fpr", "roc_auc"]})
    reference = detector.prepare_reference(_binary(rng, 10_000), BINARY, cfg)
    false_alarms = 0
    for _ in range(60):
        findings = detector.run(_binary(rng, 2_000, labelled=False), reference, cfg, CTX)
        false_alarms += any(f.status is Status.CRITICAL for f in findings)
    caught = 0
    for _ in range(30):
        findings = _by_metric(detector.run(_binary(rng, 2_000, spread=0.6, labelled=False), reference, cfg, CTX))
        caught += findings["accuracy"].status is Status.CRITICAL
    assert false_alarms <= 6, false_alarms  # 10%: a loose bound on 60 trials of a ~2.5% rule
    assert caught >= 27, caught


def test_a_broken_calibration_is_flagged_once_labels_arrive() -> None:
    """Rule: when the labels of a window no longer follow the reference's calibration (concept
    drift: P(fault) = score² instead of score), ``estimator_check`` is a ``warning`` naming the
    metrics that disagree; when calibration holds it is ``ok`` in at least 18 of 20 windows."""
    rng = np.random.default_rng(3)
    detector = EstimatedPerformance()
    cfg = detector.config({"metrics": ["precision", "recall", "accuracy"]})
    reference = detector.prepare_reference(_binary(rng, 10_000), BINARY, cfg)
    drifted = _by_metric(detector.run(_binary(rng, 3_000, power=2.0), reference, cfg, CTX))["estimator_check"]
    assert drifted.status is Status.WARNING
    assert "precision" in drifted.details["disagreeing"]
    agreeing = sum(
        _by_metric(detector.run(_binary(rng, 3_000), reference, cfg, CTX))["estimator_check"].status is Status.OK
        for _ in range(20)
    )
    assert agreeing >= 18, agreeing


def test_findings_carry_estimate_band_reference_and_realized() -> None:
    """Rule: each metric finding says it is an estimate (method CBPE) and carries its band
    (``current_ci``) and the reference's realized value; realized values appear only once the
    window has ``check_min_labeled`` labels."""
    rng = np.random.default_rng(4)
    detector = EstimatedPerformance()
    cfg = detector.config({"metrics": ["recall"], "check_min_labeled": 500})
    reference = detector.prepare_reference(_binary(rng, 5_000), BINARY, cfg)
    window = _binary(rng, 1_000)
    few_labels = window.set_column(
        window.schema.get_field_index("label"),
        "label",
        pa.array(window.column("label").to_pylist()[:300] + [None] * 700, pa.string()),
    )
    recall = _by_metric(detector.run(few_labels, reference, cfg, CTX))["recall"]
    assert recall.details["estimated"] is True and recall.details["method"] == "CBPE"
    low, high = recall.details["current_ci"]
    assert low < recall.value < high  # type: ignore[operator]
    assert 0.7 < recall.details["reference_value"] < 0.85
    assert "realized" not in recall.details
    assert "realized" in _by_metric(detector.run(window, reference, cfg, CTX))["recall"].details


def test_segments_get_their_own_estimates() -> None:
    """Rule: with ``segments``, every segment value gets its estimate against its own reference slice."""
    rng = np.random.default_rng(5)
    detector = EstimatedPerformance()
    cfg = detector.config({"metrics": ["accuracy"], "segments": ["region"]})
    reference = detector.prepare_reference(_binary(rng, 6_000), BINARY, cfg)
    findings = detector.run(_binary(rng, 2_000, labelled=False), reference, cfg, CTX)
    segments = {tuple(f.segment.items()) for f in findings if f.segment and f.metric == "accuracy"}
    assert segments == {(("region", "north"),), (("region", "south"),)}


def test_a_reference_without_enough_labels_gives_insufficient_data_with_the_reason() -> None:
    """Rule: too few labelled reference rows (or no score) is not an exception: every metric is
    ``insufficient_data`` and says why."""
    rng = np.random.default_rng(6)
    detector = EstimatedPerformance()
    reference = detector.prepare_reference(_binary(rng, 300), BINARY, detector.config({}))
    findings = detector.run(_binary(rng, 500, labelled=False), reference, None, CTX)
    assert {f.status for f in findings} == {Status.INSUFFICIENT_DATA}
    assert "300 labelled rows" in findings[0].details["reason"]
    no_score = detector.prepare_reference(_binary(rng, 2_000).drop_columns(["score"]), BINARY, None)
    assert "no score" in str(detector.run(_binary(rng, 500), no_score, None, CTX)[0].details["reason"])


def _multiclass(rng: np.random.Generator, n: int, *, shift: float = 0.0, labelled: bool = True) -> pa.Table:
    x = rng.normal(shift, 1.0, n)
    logits = np.column_stack([-1.5 * x, np.zeros(n), 1.5 * x])
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    truth = (rng.random(n)[:, None] > np.cumsum(probs, axis=1)).sum(axis=1)
    classes = np.array(["a", "b", "c"])
    return pa.table(
        {
            "x": x,
            "probabilities": pa.array(probs.tolist(), pa.list_(pa.float64())),
            "prediction": classes[probs.argmax(axis=1)],
            "label": pa.array(classes[truth]) if labelled else pa.nulls(n, pa.string()),
        }
    )


def test_multiclass_accuracy_and_per_class_recall_are_estimated_from_probabilities() -> None:
    """Rule: a multiclass model's accuracy and per-class recall, estimated from its calibrated
    probabilities on a shifted 5k-row window, lie within 0.03 of the realized values."""
    rng = np.random.default_rng(7)
    detector = EstimatedPerformance()
    cfg = detector.config({"metrics": ["accuracy", "recall"]})
    reference = detector.prepare_reference(_multiclass(rng, 20_000), MULTI, cfg)
    window = _multiclass(rng, 5_000, shift=0.8)
    findings = _by_metric(detector.run(window, reference, cfg, CTX))
    for metric in ("accuracy", "recall:a", "recall:b", "recall:c"):
        assert abs(findings[metric].value - findings[metric].details["realized"]) < 0.03, metric  # type: ignore[operator]


def _regression(rng: np.random.Generator, n: int, *, shift: float = 0.0, labelled: bool = True) -> pa.Table:
    """Noise grows with |x| and in zone 'rough': moving rows there raises the error."""
    x = rng.normal(shift, 1.0, n)
    zone = np.where(rng.random(n) < 0.3, "rough", "smooth")
    sigma = 0.5 + 0.8 * np.abs(x) + np.where(zone == "rough", 1.0, 0.0)
    truth = 3 * x + rng.normal(0, sigma)
    return pa.table(
        {
            "x": x,
            "zone": zone,
            "prediction": 3 * x,
            "label": pa.array(truth) if labelled else pa.nulls(n, pa.float64()),
        }
    )


def test_dle_estimates_mae_and_rmse_and_flags_a_shift_into_the_noisy_region() -> None:
    """Rule: DLE's MAE and RMSE estimates lie within 10% of the realized values; with no change
    both are ``ok``; when rows move where the noise is larger, MAE is ``critical``."""
    rng = np.random.default_rng(8)
    detector = EstimatedPerformance()
    cfg = detector.config({})
    reference = detector.prepare_reference(_regression(rng, 10_000), REGRESSION, cfg)
    same = _by_metric(detector.run(_regression(rng, 3_000), reference, cfg, CTX))
    for metric in ("mae", "rmse"):
        assert same[metric].status is Status.OK
        realized = same[metric].details["realized"]
        assert abs(same[metric].value - realized) / realized < 0.1, (metric, same[metric].value, realized)  # type: ignore[operator]
    assert same[metric].details["method"] == "DLE"
    shifted = _by_metric(detector.run(_regression(rng, 3_000, shift=1.5, labelled=False), reference, cfg, CTX))
    assert shifted["mae"].status is Status.CRITICAL


def test_fdr_false_judges_each_estimator_check_on_its_own_p_value() -> None:
    """Rule: with ``fdr: false`` the estimator check compares each raw p-value with the level
    (as the metric verdicts do); with the default the p-values are BH-adjusted."""
    rng = np.random.default_rng(9)
    detector = EstimatedPerformance()
    reference = detector.prepare_reference(_binary(rng, 10_000), BINARY, None)
    window = _binary(rng, 3_000, power=1.3)
    for fdr in (True, False):
        cfg = detector.config({"metrics": ["precision", "recall", "accuracy", "f1", "fpr"], "fdr": fdr})
        check = _by_metric(detector.run(window, reference, cfg, CTX))["estimator_check"]
        assert check.p_value is not None and 0 < check.p_value < 1
        if fdr:  # the smallest of five p-values, BH-adjusted, grows
            assert check.p_value_adjusted is not None and check.p_value_adjusted > check.p_value
        else:
            assert check.p_value_adjusted == check.p_value
