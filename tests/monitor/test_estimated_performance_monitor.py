"""An ``estimated_performance`` monitor judges a window before its labels arrive, from a real
store: labelled reference rows in DuckDB, unlabelled current rows (issue 12)."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa

from detectors import Status
from monitor.monitors import MonitorSpec
from monitor.schema import ModelSchema
from monitor.service import Loopwatch
from tests.monitor.test_evaluation import NOW

MODEL = "harsh-braking"


def _rows(start: datetime, n: int, spread: float, seed: int) -> tuple[pa.Table, pa.Table]:
    """Predictions of a calibrated model (P(brake) = score) and their labels."""
    rng = np.random.default_rng(seed)
    speed = rng.normal(50, spread, n)
    score = 1 / (1 + np.exp(-(speed - 50) / 5))
    offsets = np.sort(rng.uniform(0, 3600, n))
    ts = np.datetime64(start.replace(tzinfo=None), "us") + (offsets * 1e6).astype("timedelta64[us]")
    ids = [f"e-{seed}-{i}" for i in range(n)]
    predictions = pa.table(
        {
            "prediction_id": ids,
            "timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "model_version": ["1.0"] * n,
            "speed_kmh": speed,
            "road_type": rng.choice(["urban", "highway"], n),
            "night": rng.random(n) < 0.3,
            "prediction": np.where(score >= 0.5, "brake", "none"),
            "score": score,
            "region": rng.choice(["eu", "us"], n),
            "firmware": rng.choice(["3.1", "3.2"], n),
        }
    )
    labels = pa.table({"prediction_id": ids, "label": np.where(rng.random(n) < score, "brake", "none")})
    return predictions, labels


def test_a_harmful_shift_alerts_before_any_label_of_the_window(service: Loopwatch, braking_model: ModelSchema) -> None:
    """Rule: with a labelled trailing reference, a window whose rows crowd the decision boundary
    (no labels yet) gets ``critical`` estimated accuracy; an unchanged window stays ``ok``."""
    for hour in range(2, 8):  # the reference: six labelled hours
        predictions, labels = _rows(NOW - timedelta(hours=hour), 1_500, spread=10, seed=hour)
        service.store.ingest_predictions(MODEL, predictions)
        service.store.ingest_labels(MODEL, labels)
    spec = MonitorSpec.model_validate(
        {
            "name": "estimated-accuracy",
            "detector": "estimated_performance",
            "every": "1h",
            "window": "1h",
            "reference": {"kind": "trailing", "length": "6h"},
            "params": {"metrics": ["accuracy", "recall"]},
        }
    )
    service.monitors.save(MODEL, spec)
    unchanged, _ = _rows(NOW - timedelta(hours=1), 1_500, spread=10, seed=100)
    service.store.ingest_predictions(MODEL, unchanged)
    ok = service.runner.run(MODEL, "estimated-accuracy", window_end=NOW, mode="scheduled")
    assert ok is not None and ok.error is None
    statuses = {f.metric: f.status for f in ok.findings if f.segment is None}
    assert statuses == {"accuracy": Status.OK, "recall": Status.OK}

    crowded, _ = _rows(NOW, 1_500, spread=3, seed=101)
    service.store.ingest_predictions(MODEL, crowded)
    bad = service.runner.run(MODEL, "estimated-accuracy", window_end=NOW + timedelta(hours=1), mode="scheduled")
    assert bad is not None and bad.error is None
    accuracy = next(f for f in bad.findings if f.metric == "accuracy" and f.segment is None)
    assert accuracy.status is Status.CRITICAL
    assert accuracy.details["estimated"] is True and accuracy.details["reference_value"] > accuracy.value  # type: ignore[operator]
