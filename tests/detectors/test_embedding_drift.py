"""Embedding drift (detectors/embedding_drift.py): MMD with a permutation null keeps false alarms
at the test's level and catches moved, spread and new-cluster embeddings."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest

from detectors import EmbeddingDrift, ModelSpec, RunContext, Status
from detectors.embedding_drift import embedding_matrix

SPEC = ModelSpec(task="multiclass", classes=("car", "person", "bike"), segments=("camera",))
CTX = RunContext("m", datetime(2026, 10, 8, tzinfo=UTC), datetime(2026, 10, 9, tzinfo=UTC))
FAST = {"sample_size": 300, "permutations": 99}


def _window(rng: np.random.Generator, n: int, *, shift: float = 0.0, scale: float = 1.0, cluster: float = 0.0) -> pa.Table:
    """64-d embeddings: N(0, I), with the first 8 directions shifted / scaled, or a share
    ``cluster`` of rows moved to a new cluster."""
    vectors = rng.normal(0, 1, (n, 64)).astype(np.float32)
    vectors[:, :8] = vectors[:, :8] * scale + shift
    moved = rng.random(n) < cluster
    vectors[moved, 8:16] += 3.0
    return pa.table(
        {
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), 64).cast(pa.list_(pa.float32())),
            "camera": rng.choice(["front", "rear"], n),
        }
    )


def test_no_change_is_critical_in_at_most_about_five_percent_of_windows() -> None:
    """Rule: under no change (window and two camera segments, BH across them) at most 9 of 100
    seeded windows have a ``critical`` finding (a loose bound on a 5%-level permutation test)."""
    rng = np.random.default_rng(0)
    detector = EmbeddingDrift()
    cfg = detector.config({**FAST, "segments": ["camera"]})
    reference = detector.prepare_reference(_window(rng, 3_000), SPEC, cfg)
    alarms = sum(
        any(f.status is Status.CRITICAL for f in detector.run(_window(rng, 1_000), reference, cfg, CTX))
        for _ in range(100)
    )
    assert alarms <= 9, alarms


def test_moved_spread_and_new_cluster_embeddings_are_caught() -> None:
    """Rule: at a 300-row sample, a 0.3 shift of 8 of 64 directions, and 20% of rows in a new
    cluster, are ``critical`` in at least 90 of 100 windows; the centroid shift reports the
    move (a 1.0 shift: over twice its size under no change)."""
    rng = np.random.default_rng(1)
    detector = EmbeddingDrift()
    cfg = detector.config(FAST)
    reference = detector.prepare_reference(_window(rng, 3_000), SPEC, cfg)
    for change in ({"shift": 0.3}, {"cluster": 0.2}):
        caught = sum(
            detector.run(_window(rng, 1_000, **change), reference, cfg, CTX)[0].status is Status.CRITICAL
            for _ in range(100)
        )
        assert caught >= 90, (change, caught)
    moved = detector.run(_window(rng, 1_000, shift=1.0), reference, cfg, CTX)[0]
    same = detector.run(_window(rng, 1_000), reference, cfg, CTX)[0]
    assert moved.details["centroid_shift"] > 2 * same.details["centroid_shift"]


def test_the_sample_keeps_a_big_window_as_cheap_as_a_small_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rule: the statistic uses ``sample_size`` rows of each side, so a 20,000-row window is
    judged on the same kernel size (the finding still counts every valid embedding)."""
    from detectors import embedding_drift

    sizes: list[tuple[int, int]] = []
    real_test = embedding_drift.mmd_permutation_test

    def counting(x: np.ndarray, y: np.ndarray, permutations: int, rng: np.random.Generator) -> object:
        sizes.append((x.shape[0], y.shape[0]))
        return real_test(x, y, permutations, rng)

    monkeypatch.setattr(embedding_drift, "mmd_permutation_test", counting)
    rng = np.random.default_rng(2)
    detector = EmbeddingDrift()
    cfg = detector.config(FAST)
    reference = detector.prepare_reference(_window(rng, 3_000), SPEC, cfg)
    finding = detector.run(_window(rng, 20_000), reference, cfg, CTX)[0]
    assert sizes == [(300, 300)]
    assert finding.n_current == 20_000


def test_bad_embeddings_are_left_out_and_missing_ones_are_insufficient_data() -> None:
    """Rule: rows with a null, a wrong-length or a non-finite embedding are left out; a window
    or reference without embeddings is ``insufficient_data`` with the reason."""
    table = pa.table(
        {"embedding": pa.array([[1.0, 2.0], None, [1.0], [float("nan"), 0.0], [3.0, 4.0]], pa.list_(pa.float32()))}
    )
    assert embedding_matrix(table).tolist() == [[1.0, 2.0], [3.0, 4.0]]
    rng = np.random.default_rng(3)
    detector = EmbeddingDrift()
    reference = detector.prepare_reference(_window(rng, 500), SPEC, FAST)
    finding = detector.run(pa.table({"x": [1, 2, 3]}), reference, FAST, CTX)[0]
    assert finding.status is Status.INSUFFICIENT_DATA and "0 embeddings" in finding.details["reason"]
