"""Prediction and label drift reuse the drift engine on output and ground-truth columns."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from detectors import LabelDrift, PredictionDrift, Status
from tests.detectors.conftest import BINARY, MULTICLASS, REGRESSION, context, make_window


def test_prediction_drift_watches_prediction_and_score() -> None:
    """Classification: prediction is categorical (total variation), score numeric (Wasserstein); unchanged → ok."""
    detector = PredictionDrift()
    ref = detector.prepare_reference(make_window(BINARY, 5000, 1), BINARY)
    found = {f.column: f for f in detector.run(make_window(BINARY, 2000, 2), ref, None, context())}
    assert {c: f.metric for c, f in found.items()} == {"prediction": "tvd", "score": "wasserstein"}
    assert {f.status for f in found.values()} == {Status.OK}


def test_prediction_drift_detects_a_shift_in_predicted_classes() -> None:
    """Many more predicted positives (FP rate 5% → 40%) is critical on prediction and score."""
    detector = PredictionDrift()
    ref = detector.prepare_reference(make_window(BINARY, 5000, 1), BINARY)
    found = {f.column: f for f in detector.run(make_window(BINARY, 2000, 2, fp_rate=0.4), ref, None, context())}
    assert found["prediction"].status is Status.CRITICAL and found["score"].status is Status.CRITICAL


def test_regression_prediction_is_numeric_and_null_scores_are_skipped() -> None:
    """Regression predictions are compared as numbers; an all-null score column is not watched."""
    detector = PredictionDrift()
    ref = detector.prepare_reference(make_window(REGRESSION, 3000, 1), REGRESSION)
    found = detector.run(make_window(REGRESSION, 1000, 2, speed_shift=1.0), ref, None, context())
    assert [(f.column, f.metric, f.status) for f in found] == [("prediction", "wasserstein", Status.CRITICAL)]


def test_label_drift_uses_labelled_rows_only() -> None:
    """Unlabelled rows are ignored; a prior shift among labelled rows is detected."""
    detector = LabelDrift()
    ref = detector.prepare_reference(make_window(MULTICLASS, 4000, 1), MULTICLASS)
    same = detector.run(make_window(MULTICLASS, 3000, 2, label_share=0.5), ref, None, context())
    assert same[0].status is Status.OK and 1300 < same[0].n_current < 1700
    rng = np.random.default_rng(3)
    shifted = pa.table({"label": rng.choice(["walk", "bike", "car", None], 3000, p=[0.6, 0.1, 0.1, 0.2])})
    assert detector.run(shifted, ref, None, context())[0].status is Status.CRITICAL


def test_label_drift_waits_for_labels() -> None:
    """With no labels yet the window is insufficient_data, not drift."""
    detector = LabelDrift()
    ref = detector.prepare_reference(make_window(BINARY, 2000, 1), BINARY)
    found = detector.run(make_window(BINARY, 1000, 2, label_share=0.0), ref, None, context())
    assert [f.status for f in found] == [Status.INSUFFICIENT_DATA]
