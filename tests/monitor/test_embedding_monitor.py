"""Embedding monitors on a real store (issue 12): an ``embedding_drift`` monitor judges a sample
drawn in SQL, and no other detector's scan carries the embedding column."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from detectors import Status
from monitor.monitors import MonitorSpec
from monitor.schema import ModelSchema
from monitor.service import Loopwatch
from monitor.store import PredictionStore
from tests.monitor.test_evaluation import NOW

MODEL = "camera"
DIM = 32


@pytest.fixture
def camera(service: Loopwatch) -> ModelSchema:
    spec = ModelSchema.model_validate(
        {
            "name": MODEL,
            "task": "multiclass",
            "classes": ["car", "person", "bike"],
            "features": {"brightness": "numeric"},
            "segments": ["site"],
            "embedding": {"dim": DIM},
        }
    )
    service.registry.register(spec)
    return spec


def _rows(start: datetime, n: int, shift: float, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(0, 1, (n, DIM)).astype(np.float32)
    vectors[:, :4] += shift
    offsets = np.sort(rng.uniform(0, 3600, n))
    ts = np.datetime64(start.replace(tzinfo=None), "us") + (offsets * 1e6).astype("timedelta64[us]")
    return pa.table(
        {
            "prediction_id": [f"c-{seed}-{i}" for i in range(n)],
            "timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "model_version": ["1"] * n,
            "brightness": rng.normal(0.5, 0.1, n),
            "prediction": rng.choice(["car", "person", "bike"], n),
            "site": rng.choice(["depot", "gate"], n),
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), DIM),
        }
    )


def test_an_embedding_monitor_alerts_on_moved_embeddings_judging_a_sample(
    service: Loopwatch, camera: ModelSchema
) -> None:
    """Rule: an ``embedding_drift`` monitor is ``ok`` on an unchanged hour and ``critical`` when
    the embeddings move, and it judges a SQL-drawn sample (about twice ``sample_size`` rows), not
    the whole 6,000-row window."""
    for hour in range(2, 6):
        service.store.ingest_predictions(MODEL, _rows(NOW - timedelta(hours=hour), 3_000, 0.0, hour))
    spec = MonitorSpec.model_validate(
        {
            "name": "scene-drift",
            "detector": "embedding_drift",
            "every": "1h",
            "window": "1h",
            "reference": {"kind": "trailing", "length": "4h"},
            "params": {"sample_size": 500, "permutations": 99},
        }
    )
    service.monitors.save(MODEL, spec)
    service.store.ingest_predictions(MODEL, _rows(NOW - timedelta(hours=1), 6_000, 0.0, 100))
    ok = service.runner.run(MODEL, "scene-drift", window_end=NOW, mode="scheduled")
    assert ok is not None and ok.error is None, ok.error if ok else None
    whole = ok.findings[0]
    assert whole.status is Status.OK
    assert 700 <= whole.n_current <= 1_300  # ~2 × 500 of 6,000 rows, drawn in SQL
    service.store.ingest_predictions(MODEL, _rows(NOW, 6_000, 0.6, 101))
    moved = service.runner.run(MODEL, "scene-drift", window_end=NOW + timedelta(hours=1), mode="scheduled")
    assert moved is not None and moved.findings[0].status is Status.CRITICAL


def test_other_detectors_never_scan_the_embedding_column(
    service: Loopwatch, camera: ModelSchema, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule: a ``data_drift`` monitor of a model with embeddings reads every column but the
    embedding, for its window and for its reference."""
    service.store.ingest_predictions(MODEL, _rows(NOW - timedelta(hours=3), 2_000, 0.0, 1))
    service.store.ingest_predictions(MODEL, _rows(NOW - timedelta(hours=1), 2_000, 0.0, 2))
    seen: list[list[str]] = []
    for name in ("scan", "reference_sample"):
        original = getattr(PredictionStore, name)

        def spy(self: PredictionStore, *args: Any, _original: Any = original, **kwargs: Any) -> pa.Table:
            table = _original(self, *args, **kwargs)
            seen.append(table.column_names)
            return table

        monkeypatch.setattr(PredictionStore, name, spy)
    spec = MonitorSpec.model_validate(
        {
            "name": "inputs",
            "detector": "data_drift",
            "every": "1h",
            "window": "1h",
            "reference": {"kind": "trailing", "length": "3h"},
        }
    )
    service.monitors.save(MODEL, spec)
    outcome = service.runner.run(MODEL, "inputs", window_end=NOW, mode="scheduled")
    assert outcome is not None and outcome.error is None
    assert len(seen) == 2 and all("brightness" in cols and "embedding" not in cols for cols in seen)
