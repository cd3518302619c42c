"""Embedding drift: has the distribution of the model's embedding vectors moved?

Vision and text models log an embedding per prediction (``embedding``, a list of floats; the
model's schema declares its dimension). Per-dimension tests would run hundreds of tests on
correlated coordinates; this detector compares the two clouds of vectors as a whole with the
**maximum mean discrepancy** (MMD; Gretton, Borgwardt, Rasch, Schölkopf & Smola, "A kernel
two-sample test", JMLR 2012) under a Gaussian kernel whose bandwidth is the median pairwise
distance of the pooled sample (the paper's median heuristic). MMD is zero exactly when the
distributions are equal, so it sees a moved centroid, a changed spread or a new cluster alike.

**Calibrated by permutation.** A fixed-size uniform sample of each side (``sample_size`` =
1,000 rows, seeded) is pooled; the null distribution of MMD² is the statistic over
``permutations`` (200) random relabellings of the pool — the permutation test is exact at any
sample size, whatever the embedding's geometry (Gretton et al. 2012, §5). The p-value is
``(1 + #{permuted ≥ observed}) / (1 + permutations)``; p-values of the window and its segments
are adjusted by Benjamini–Hochberg. The verdict is the drift rule: ``critical`` when the
adjusted p-value is below ``alpha`` (0.05) **and** MMD² is at least ``min_mmd2`` (0.005, the
relevance floor: below it two clouds overlap almost entirely); ``warning`` when that holds
only before the adjustment. The fixed sample keeps the cost flat in the window size: one
2,000 × 2,000 kernel matrix and one matrix product for all permutations.

``details.centroid_shift`` (distance between the sample means, in units of the reference's
root-mean-square spread) says how much of the change is a moved centre.

>>> from datetime import datetime, timezone
>>> import numpy as np, pyarrow as pa
>>> from detectors import EmbeddingDrift, ModelSpec, RunContext
>>> rng = np.random.default_rng(2)
>>> spec = ModelSpec(task="multiclass", classes=("car", "person", "bike"))
>>> def window(n, shift):
...     vectors = rng.normal(0, 1, (n, 64)).astype(np.float32)
...     vectors[:, :8] += shift                        # a new kind of scene: 8 directions move
...     column = pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), 64)
...     return pa.table({"embedding": column.cast(pa.list_(pa.float32()))})
>>> detector = EmbeddingDrift()
>>> stats = detector.prepare_reference(window(5_000, 0.0), spec, None)
>>> ctx = RunContext("camera", datetime(2026, 10, 8, tzinfo=timezone.utc),
...                  datetime(2026, 10, 9, tzinfo=timezone.utc))
>>> detector.run(window(5_000, 0.0), stats, None, ctx)[0].status.value
'ok'
>>> detector.run(window(5_000, 0.5), stats, None, ctx)[0].status.value
'critical'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from detectors.base import BaseDetector, Segment, SegmentKey, min_rows_for, segment_key, segment_slices
from detectors.context import RunContext
from detectors.finding import Finding, Status, verdict
from detectors.spec import ModelSpec
from detectors.stats.fdr import benjamini_hochberg

COLUMN = "embedding"


@dataclass(frozen=True)
class EmbeddingDriftConfig:
    """Parameters of the embedding drift detector (see the module docstring)."""

    sample_size: int = 1_000  # rows drawn from each side
    permutations: int = 200
    alpha: float = 0.05
    min_mmd2: float = 0.005
    fdr: bool = True
    segments: tuple[str, ...] = ()
    min_rows: int = 100
    min_segment_rows: int = 100
    seed: int = 0

    def __post_init__(self) -> None:
        if self.sample_size < 20:
            raise ValueError("sample_size must be at least 20")
        if self.permutations < 19:
            raise ValueError("permutations must be at least 19 (p-values below 0.05 need them)")
        if not 0 < self.alpha < 1:
            raise ValueError("alpha must be between 0 and 1")


def embedding_matrix(table: pa.Table) -> np.ndarray:
    """The valid embeddings of ``table`` as a float32 matrix (rows with a null, a wrong length or
    a non-finite value are left out)."""
    if COLUMN not in table.column_names or table.num_rows == 0:
        return np.zeros((0, 0), np.float32)
    column = table.column(COLUMN).combine_chunks()
    lengths = np.asarray(pc.list_value_length(column).fill_null(0).to_numpy(zero_copy_only=False))
    dim = int(np.bincount(lengths[lengths > 0]).argmax()) if (lengths > 0).any() else 0
    if dim == 0:
        return np.zeros((0, 0), np.float32)
    keep = lengths == dim
    flat = pc.list_flatten(column.filter(pa.array(keep))).cast(pa.float32())
    matrix = np.asarray(flat.to_numpy(zero_copy_only=False), dtype=np.float32).reshape(-1, dim)
    return matrix[np.isfinite(matrix).all(axis=1)]


def _sample(matrix: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    if matrix.shape[0] <= size:
        return matrix
    return matrix[np.sort(rng.choice(matrix.shape[0], size, replace=False))]


@dataclass(frozen=True)
class MmdResult:
    mmd2: float
    p_value: float
    bandwidth: float
    centroid_shift: float


def mmd_permutation_test(x: np.ndarray, y: np.ndarray, permutations: int, rng: np.random.Generator) -> MmdResult:
    """Biased MMD² of samples ``x`` and ``y`` with a Gaussian kernel (median-heuristic bandwidth)
    and its permutation p-value."""
    pool = np.concatenate([x, y]).astype(np.float64)
    m, total = x.shape[0], pool.shape[0]
    sq = np.einsum("ij,ij->i", pool, pool)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * pool @ pool.T, 0.0)
    upper = d2[np.triu_indices(total, k=1)]
    median = float(np.median(upper)) if upper.size else 0.0
    bandwidth = math.sqrt(median / 2) if median > 0 else 1.0
    kernel = np.exp(-d2 / (2 * bandwidth**2))
    labels = np.zeros((total, permutations + 1))
    labels[m:, 0] = 1.0  # column 0: the observed split
    for j in range(1, permutations + 1):
        labels[rng.permutation(total)[: total - m], j] = 1.0
    n = total - m
    k_labels = kernel @ labels
    row_sums = kernel.sum(axis=1)
    yy = np.einsum("ij,ij->j", labels, k_labels)  # bᵀKb
    xy = row_sums @ labels - yy  # aᵀKb with a = 1 − b
    xx = kernel.sum() - 2 * xy - yy  # aᵀKa
    stats = xx / m**2 + yy / n**2 - 2 * xy / (m * n)
    observed = float(stats[0])
    p = (1 + int(np.count_nonzero(stats[1:] >= observed))) / (1 + permutations)
    spread = math.sqrt(float(np.mean(np.sum((x - x.mean(axis=0)) ** 2, axis=1)))) if m > 1 else 0.0
    shift = float(np.linalg.norm(y.mean(axis=0) - x.mean(axis=0)))
    return MmdResult(observed, p, bandwidth, shift / spread if spread > 0 else 0.0)


@dataclass(frozen=True, eq=False)
class EmbeddingReference:
    segments: tuple[str, ...]
    samples: dict[SegmentKey, np.ndarray]
    dim: int


class EmbeddingDrift(BaseDetector):
    """MMD between the window's and the reference's embeddings, calibrated by permutation."""

    name: ClassVar[str] = "embedding_drift"
    config_type: ClassVar[type] = EmbeddingDriftConfig
    reads_embedding: ClassVar[bool] = True

    def window_sample(self, config: Any) -> int | None:
        """Judged on ``sample_size`` rows per slice: the store draws about that many in SQL
        (twice as many, so the detector's own sample has rows to choose from)."""
        cfg: EmbeddingDriftConfig = self.config(config)
        return 2 * cfg.sample_size

    def prepare_reference(self, reference: pa.Table, spec: ModelSpec, config: Any = None) -> EmbeddingReference:
        cfg: EmbeddingDriftConfig = self.config(config)
        rng = np.random.default_rng(cfg.seed)
        samples: dict[SegmentKey, np.ndarray] = {}
        dim = 0
        for segment, part in segment_slices(reference, cfg.segments):
            matrix = embedding_matrix(part)
            dim = dim or (matrix.shape[1] if matrix.size else 0)
            samples[segment_key(segment)] = _sample(matrix, cfg.sample_size, rng)
        return EmbeddingReference(tuple(cfg.segments), samples, dim)

    def run(self, current: pa.Table, reference: EmbeddingReference, config: Any, context: RunContext) -> list[Finding]:
        cfg: EmbeddingDriftConfig = self.config(config)
        rng = np.random.default_rng(cfg.seed + 1)
        out: list[Finding | tuple[Segment, MmdResult, int, int]] = []
        for segment, part in segment_slices(current, reference.segments):
            ref = reference.samples.get(segment_key(segment), np.zeros((0, 0), np.float32))
            cur = embedding_matrix(part)
            minimum = min_rows_for(segment, cfg.min_rows, cfg.min_segment_rows)
            reason = None
            if ref.shape[0] < minimum:
                reason = f"the reference slice has {ref.shape[0]} embeddings; needs {minimum}"
            elif cur.shape[0] < minimum:
                reason = f"the window has {cur.shape[0]} embeddings; needs {minimum}"
            elif cur.shape[1] != ref.shape[1]:
                reason = f"embedding dimension {cur.shape[1]} differs from the reference's {ref.shape[1]}"
            if reason is not None:
                out.append(
                    context.finding(
                        self.name,
                        metric="mmd2",
                        segment=segment,
                        status=Status.INSUFFICIENT_DATA,
                        n_current=int(cur.shape[0]),
                        n_reference=int(ref.shape[0]),
                        details={"reason": reason},
                    )
                )
                continue
            n_current = int(cur.shape[0])
            sample = _sample(cur, cfg.sample_size, rng)
            out.append((segment, mmd_permutation_test(ref, sample, cfg.permutations, rng), n_current, int(ref.shape[0])))
        pending = [item for item in out if not isinstance(item, Finding)]
        raw = [item[1].p_value for item in pending]
        adjusted = iter(benjamini_hochberg(raw) if cfg.fdr else raw)
        findings: list[Finding] = []
        for item in out:
            if isinstance(item, Finding):
                findings.append(item)
                continue
            segment, result, n_current, n_reference = item
            p_adjusted = next(adjusted)
            relevant = result.mmd2 >= cfg.min_mmd2
            status = verdict(relevant, p_adjusted < cfg.alpha, result.p_value < cfg.alpha)
            findings.append(
                context.finding(
                    self.name,
                    metric="mmd2",
                    segment=segment,
                    status=status,
                    value=result.mmd2,
                    threshold=cfg.min_mmd2,
                    p_value=result.p_value,
                    p_value_adjusted=p_adjusted,
                    effect_size=result.mmd2,
                    n_current=n_current,
                    n_reference=n_reference,
                    details={
                        "method": "mmd_permutation",
                        "kernel": "gaussian",
                        "bandwidth": result.bandwidth,
                        "sample_size": cfg.sample_size,
                        "permutations": cfg.permutations,
                        "centroid_shift": result.centroid_shift,
                        "relevant": relevant,
                        "dimension": reference.dim,
                    },
                )
            )
        return findings


__all__ = ["EmbeddingDrift", "EmbeddingDriftConfig", "EmbeddingReference", "embedding_matrix", "mmd_permutation_test"]
