"""Shared builders: a run context and seeded windows in the store's flat layout."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from detectors import ModelSpec, RunContext

START = datetime(2026, 10, 8, 0, 0, tzinfo=UTC)

BINARY = ModelSpec(
    task="binary",
    classes=("none", "brake"),
    positive_class="brake",
    features={"speed": "numeric", "road": "categorical", "night": "boolean", "note": "text"},
    segments=("firmware",),
    name="harsh-braking",
)
MULTICLASS = ModelSpec(
    task="multiclass",
    classes=("walk", "bike", "car"),
    features={"speed": "numeric", "road": "categorical"},
    segments=("firmware",),
    name="mode",
)
REGRESSION = ModelSpec(
    task="regression", features={"speed": "numeric", "road": "categorical"}, segments=("firmware",), name="eta"
)


def context(hours: int = 1) -> RunContext:
    return RunContext("harsh-braking", START, START + timedelta(hours=hours), reference="test reference")


@pytest.fixture
def ctx() -> RunContext:
    return context()


def make_window(
    spec: ModelSpec,
    n: int,
    seed: int,
    *,
    speed_shift: float = 0.0,
    fn_rate: float = 0.1,
    fp_rate: float = 0.05,
    latency_scale: float = 1.0,
    label_share: float = 1.0,
    versions: tuple[str, ...] = ("v1",),
    firmware: tuple[str, ...] = ("3.1", "3.2"),
) -> pa.Table:
    """A seeded window with every column of the flat layout (speed ~ N(50, 10) + shift·10)."""
    rng = np.random.default_rng(seed)
    speed = rng.normal(50 + 10 * speed_shift, 10, n)
    road = rng.choice(["urban", "rural", "highway"], n, p=[0.5, 0.3, 0.2])
    cols: dict[str, pa.Array] = {
        "prediction_id": pa.array([f"p{seed}-{i}" for i in range(n)], pa.string()),
        "timestamp": pa.array(
            [START + timedelta(seconds=int(i * 3600 / max(n, 1))) for i in range(n)], pa.timestamp("us", tz="UTC")
        ),
        "model_version": pa.array([versions[i * len(versions) // max(n, 1)] for i in range(n)], pa.string()),
        "speed": pa.array(speed, pa.float64()),
        "road": pa.array(road, pa.string()),
        "night": pa.array(rng.random(n) < 0.3, pa.bool_()),
        "note": pa.array([f"note {'x' * int(k)}" for k in rng.integers(0, 20, n)], pa.string()),
        "latency_ms": pa.array(latency_scale * rng.lognormal(3, 0.4, n), pa.float64()),
        "firmware": pa.array(rng.choice(list(firmware), n), pa.string()),
    }
    labelled = rng.random(n) < label_share
    if spec.task == "binary":
        truth = rng.random(n) < 0.3
        pred = np.where(truth, rng.random(n) >= fn_rate, rng.random(n) < fp_rate)
        score = np.clip(np.where(pred, rng.uniform(0.5, 1, n), rng.uniform(0, 0.5, n)), 0, 1)
        cols["prediction"] = pa.array(np.where(pred, "brake", "none"), pa.string())
        cols["score"] = pa.array(score, pa.float64())
        cols["label"] = pa.array(np.where(truth, "brake", "none"), pa.string(), mask=~labelled)
    elif spec.task == "multiclass":
        k = len(spec.classes)
        truth = rng.integers(0, k, n)
        correct = rng.random(n) >= fn_rate
        pred = np.where(correct, truth, (truth + rng.integers(1, k, n)) % k)
        probs = rng.dirichlet(np.ones(k), n)
        probs[np.arange(n), pred] += 1.0
        probs /= probs.sum(axis=1, keepdims=True)
        classes = np.array(spec.classes)
        cols["prediction"] = pa.array(classes[pred], pa.string())
        cols["score"] = pa.array(probs.max(axis=1), pa.float64())
        cols["probabilities"] = pa.array(probs.tolist(), pa.list_(pa.float64()))
        cols["label"] = pa.array(classes[truth], pa.string(), mask=~labelled)
    else:
        truth = speed / 10 + rng.normal(0, 1, n)
        cols["prediction"] = pa.array(speed / 10 + rng.normal(0, 1 + fn_rate, n), pa.float64())
        cols["score"] = pa.nulls(n, pa.float64())
        cols["label"] = pa.array(truth, pa.float64(), mask=~labelled)
    return pa.table(cols)


@pytest.fixture
def window() -> Callable[..., pa.Table]:
    return make_window
