"""Multivariate drift: has the *joint* distribution of the features moved, even where no single
column has?

Two features whose correlation flips while both marginals stay put pass every per-column test.
This detector uses **PCA reconstruction error**, NannyML's multivariate method ("Data
Reconstruction with PCA"; Jolliffe, *Principal Component Analysis*, 2002, §10.1 on detecting
outliers by residuals): the features of the reference are standardised and compressed to the
principal components that explain ``variance_explained`` (65 %) of their variance. A row that
follows the reference's correlation structure is reconstructed from those components with a
small error; a row that breaks it is not. The window's statistic is the **mean reconstruction
error** per row.

Encoding (as NannyML): numeric and boolean features as numbers, categorical ones by their
frequency in the reference (an unseen value is 0); missing values take the reference mean.

**Calibrated band, not a heuristic.** NannyML flags a chunk outside the reference chunks'
mean ± 3 standard deviations. Here the reference is split in two halves: the PCA is fitted on
one and the per-row errors of the *other* half are the null distribution — errors of rows the
PCA never saw, exactly like the current window's (an in-sample error would be biased low and
turn every big window into an alarm). The window mean is compared with it by Welch's test
(one-sided: only a larger error is drift), and the verdict is the drift rule of the other
detectors (docs/detectors.md):

* **relevant** — the standardised increase ``(mean_current − mean_reference) / sd_reference``
  is at least ``min_effect`` (0.1 of the reference rows' error spread);
* **established** — the one-sided p-value, adjusted by Benjamini–Hochberg across the whole
  window and its segments, is below ``alpha`` (0.05).

``critical`` = both; ``warning`` = relevant and significant before the adjustment. Findings
name the features whose reconstruction residuals grew most (``details.features``): where to
look first. Rows with no feature value are skipped. Measured error rates are in
docs/detectors.md (``bench/multivariate_drift.py``).

>>> from datetime import datetime, timezone
>>> import numpy as np, pyarrow as pa
>>> from detectors import ModelSpec, MultivariateDrift, RunContext
>>> rng = np.random.default_rng(5)
>>> spec = ModelSpec(task="binary", classes=("no", "yes"), positive_class="yes",
...                  features={"a": "numeric", "b": "numeric", "c": "numeric"})
>>> def window(n, rho):
...     a = rng.normal(0, 1, n)
...     b = rho * a + np.sqrt(1 - rho**2) * rng.normal(0, 1, n)   # N(0, 1) whatever rho is
...     return pa.table({"a": a, "b": b, "c": rng.normal(0, 1, n)})
>>> detector = MultivariateDrift()
>>> stats = detector.prepare_reference(window(10_000, 0.8), spec, None)
>>> ctx = RunContext("press", datetime(2026, 10, 8, tzinfo=timezone.utc),
...                  datetime(2026, 10, 9, tzinfo=timezone.utc))
>>> f = detector.run(window(5_000, 0.8), stats, None, ctx)[0]
>>> f.metric, f.status.value
('reconstruction_error', 'ok')
>>> f = detector.run(window(5_000, -0.8), stats, None, ctx)[0]   # the correlation flipped
>>> f.status.value, [x["feature"] for x in f.details["features"][:2]]
('critical', ['a', 'b'])
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
from detectors.spec import FeatureKind, ModelSpec
from detectors.stats.columns import to_numpy
from detectors.stats.fdr import benjamini_hochberg
from detectors.stats.pvalues import normal_cdf


@dataclass(frozen=True)
class MultivariateDriftConfig:
    """Parameters of the multivariate drift detector (see the module docstring)."""

    variance_explained: float = 0.65
    min_effect: float = 0.1  # relevance: increase of the mean error in reference error SDs
    alpha: float = 0.05
    fdr: bool = True
    features: tuple[str, ...] | None = None  # default: every numeric, boolean and categorical feature
    segments: tuple[str, ...] = ()
    min_rows: int = 100
    min_segment_rows: int = 100
    min_reference_rows: int = 200
    top_features: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.variance_explained < 1:
            raise ValueError("variance_explained must be between 0 and 1 (exclusive)")
        if self.min_effect < 0:
            raise ValueError("min_effect must be non-negative")
        if not 0 < self.alpha < 1:
            raise ValueError("alpha must be between 0 and 1")


@dataclass(frozen=True, eq=False)
class Encoder:
    """Features → standardised numbers: frequency encoding, mean imputation, z-scores."""

    features: tuple[str, ...]
    frequencies: dict[str, dict[str, float]]
    mean: np.ndarray
    std: np.ndarray

    def _column(self, table: pa.Table, name: str) -> np.ndarray:
        """One feature as numbers (NaN where missing): frequency-encoded if categorical."""
        n = table.num_rows
        if name not in table.column_names:
            return np.full(n, np.nan)
        if name not in self.frequencies:
            return to_numpy(table.column(name).cast(pa.float64()))
        values = table.column(name).cast(pa.string())
        table_of = self.frequencies[name]
        keys = pa.array(list(table_of), pa.string())
        idx = pc.index_in(values, value_set=keys)
        freq = np.array([*table_of.values(), 0.0])
        encoded = freq[to_numpy(idx.fill_null(len(table_of))).astype(np.int64)]
        encoded[~np.asarray(values.is_valid().to_numpy(zero_copy_only=False), dtype=bool)] = np.nan
        return encoded

    def raw(self, table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        """(matrix with NaN for missing, rows with at least one value)."""
        x = np.empty((table.num_rows, len(self.features)), order="F")  # column by column: each copy is contiguous
        for j, name in enumerate(self.features):
            x[:, j] = self._column(table, name)
        present = np.asarray(np.isfinite(x).any(axis=1), dtype=bool) if x.size else np.zeros(table.num_rows, dtype=bool)
        return x, present

    def standardise(self, x: np.ndarray) -> np.ndarray:
        """z-scores, **in place** (``x`` is the caller's own matrix from :meth:`raw`); a missing
        value takes the mean, i.e. 0. A 1M × 25 window is 200 MB: every extra array of that size
        costs a fresh mapping and its page faults (0.7 s with two temporaries, 0.1 s without)."""
        x -= self.mean
        x /= self.std
        np.nan_to_num(x, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        return x

    def rows(self, table: pa.Table, dtype: type[np.floating[Any]] = np.float64) -> np.ndarray:
        """The standardised matrix of the rows with at least one feature value: :meth:`raw` and
        :meth:`standardise` in one pass per column, each written once into its contiguous
        column of the matrix (half the time of the two steps on a 1M-row window)."""
        n = table.num_rows
        z = np.empty((n, len(self.features)), dtype=dtype, order="F")
        present = np.zeros(n, dtype=bool)
        for j, name in enumerate(self.features):
            out = z[:, j]
            np.subtract(self._column(table, name), self.mean[j], out=out)
            out /= self.std[j]
            finite = np.isfinite(out)
            if finite.all():
                present[:] = True
            else:
                present |= finite
                out[~finite] = 0.0
        return z if present.all() else z[present]


@dataclass(frozen=True, eq=False)
class Reconstruction:
    """A PCA of standardised features: ``components`` (k × d)."""

    components: np.ndarray

    def errors(self, encoder: Encoder, table: pa.Table, chunk_rows: int = 65_536) -> ErrorSample:
        """The reconstruction errors of ``table``'s rows, summarised chunk by chunk.

        The components are orthonormal, so a row's squared error is ``‖z‖² − ‖Cz‖²``, and the
        mean squared residual of feature j is ``((I − CᵀC) Σ (I − CᵀC))_jj`` with ``Σ = zᵀz/n``,
        so no reconstruction is built. Chunks keep the working set at ~7 MB whatever the
        window: a 1M × 25 window as one matrix is 200 MB, and on these machines its page faults
        alone cost more than the arithmetic.

        The chunk's arithmetic is single precision (z-scores need no more), its sums double:
        the products, row norms and Gram matrix took 143 ms per 1M rows in float64 and 62 ms in
        float32, and a row's error moves by ~1e-6 of itself. Reference and window take this same
        path, so the null and the statistic agree to that precision."""
        d = len(encoder.features)
        n, total, total_sq = 0, 0.0, 0.0
        gram = np.zeros((d, d))
        components = self.components.astype(np.float32)
        for start in range(0, max(table.num_rows, 1), chunk_rows):
            z = encoder.rows(table.slice(start, chunk_rows), np.float32)
            if z.shape[0] == 0:
                continue
            projected = z @ components.T
            squared = np.einsum("ij,ij->i", z, z) - np.einsum("ij,ij->i", projected, projected)
            err = np.sqrt(np.clip(squared, 0.0, None)).astype(np.float64)
            n += z.shape[0]
            total += float(err.sum())
            total_sq += float(err @ err)
            gram += z.T @ z
        if n < 2:
            return ErrorSample(float("nan"), float("nan"), n, np.zeros(d))
        mean = total / n
        sd = math.sqrt(max(total_sq - n * mean * mean, 0.0) / (n - 1))
        rest = np.eye(d) - self.components.T @ self.components
        per_feature = np.diag(rest @ (gram / n) @ rest).copy()
        return ErrorSample(mean, sd, n, per_feature)


@dataclass(frozen=True, eq=False)
class ErrorSample:
    """Out-of-sample reconstruction errors of one reference slice: their mean, spread, count,
    and the mean squared residual per feature (to name the features that changed)."""

    mean: float
    sd: float
    n: int
    per_feature: np.ndarray


@dataclass(frozen=True, eq=False)
class MultivariateReference:
    spec: ModelSpec
    segments: tuple[str, ...]
    encoder: Encoder | None
    pca: Reconstruction | None
    slices: dict[SegmentKey, ErrorSample]
    components: int
    explained: float
    problem: str | None = None


def _feature_names(spec: ModelSpec, cfg: MultivariateDriftConfig, table: pa.Table) -> tuple[str, ...]:
    kinds = (FeatureKind.NUMERIC, FeatureKind.BOOLEAN, FeatureKind.CATEGORICAL)
    names = cfg.features or tuple(n for n, k in spec.features.items() if k in kinds)
    return tuple(n for n in names if n in table.column_names and n in spec.features)


class MultivariateDrift(BaseDetector):
    """PCA reconstruction error of the window against the reference, with a calibrated band."""

    name: ClassVar[str] = "multivariate_drift"
    config_type: ClassVar[type] = MultivariateDriftConfig

    def prepare_reference(self, reference: pa.Table, spec: ModelSpec, config: Any = None) -> MultivariateReference:
        cfg: MultivariateDriftConfig = self.config(config)
        segments = tuple(cfg.segments)
        features = _feature_names(spec, cfg, reference)

        def unusable(problem: str) -> MultivariateReference:
            return MultivariateReference(spec, segments, None, None, {}, 0, 0.0, problem)

        if len(features) < 2:
            return unusable(f"needs at least 2 features to have a joint distribution, found {list(features)}")
        frequencies: dict[str, dict[str, float]] = {}
        for name in features:
            if spec.features[name] is FeatureKind.CATEGORICAL:
                counts = pc.value_counts(reference.column(name).cast(pa.string()).drop_null())
                total = max(sum(c.as_py() for c in counts.field("counts")), 1)
                frequencies[name] = {
                    str(v.as_py()): c.as_py() / total
                    for v, c in zip(counts.field("values"), counts.field("counts"), strict=True)
                }
        shell = Encoder(features, frequencies, np.zeros(len(features)), np.ones(len(features)))
        # Two halves: the PCA learns on one, the other's errors are the out-of-sample null. The
        # learning half is the whole-window slice (a sampled reference keeps extra rows for
        # small segments, which must not weigh in the PCA).
        rng = np.random.default_rng(cfg.seed)
        fit_half = rng.random(reference.num_rows) < 0.5
        _, fit_rows = next(iter(segment_slices(reference.filter(pa.array(fit_half)), ())))
        fit, present = shell.raw(fit_rows)
        fit = fit[present]
        if 2 * fit.shape[0] < cfg.min_reference_rows:
            return unusable(f"the reference has about {2 * fit.shape[0]} rows with features; needs {cfg.min_reference_rows}")
        mean = np.nanmean(fit, axis=0)
        mean = np.where(np.isfinite(mean), mean, 0.0)
        std = np.nanstd(fit, axis=0)
        std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
        encoder = Encoder(features, frequencies, mean, std)
        z = encoder.standardise(fit)
        # The principal axes from the d × d scatter matrix (symmetric eigendecomposition):
        # the same axes as an SVD of the centred rows without building their n × d left
        # factor (2 ms instead of 50 ms for 50k × 25); eigh sorts ascending, PCA wants descending.
        centred = z - z.mean(axis=0)
        eigenvalues, eigenvectors = np.linalg.eigh(centred.T @ centred)
        variance = np.clip(eigenvalues[::-1], 0.0, None)
        vt = eigenvectors[:, ::-1].T
        share = np.cumsum(variance) / variance.sum() if variance.sum() > 0 else np.ones_like(variance)
        k = int(np.searchsorted(share, cfg.variance_explained) + 1)
        k = min(k, len(features) - 1)  # keep at least one dimension of residual
        pca = Reconstruction(vt[:k])
        explained = float(share[k - 1]) if share.size else 0.0
        held_out = reference.filter(pa.array(~fit_half))
        slices: dict[SegmentKey, ErrorSample] = {}
        for segment, part in segment_slices(held_out, segments):
            slices[segment_key(segment)] = pca.errors(encoder, part)
        return MultivariateReference(spec, segments, encoder, pca, slices, k, explained)

    def run(self, current: pa.Table, reference: MultivariateReference, config: Any, context: RunContext) -> list[Finding]:
        cfg: MultivariateDriftConfig = self.config(config)
        pending: list[tuple[Segment, ErrorSample, ErrorSample, float, float]] = []
        out: list[Finding | int] = []
        for segment, part in segment_slices(current, reference.segments):
            ref = reference.slices.get(segment_key(segment))
            minimum = min_rows_for(segment, cfg.min_rows, cfg.min_segment_rows)
            reason = reference.problem
            cur: ErrorSample | None = None
            if reason is None and reference.encoder is not None and reference.pca is not None:
                cur = reference.pca.errors(reference.encoder, part)
                if ref is None or ref.n < minimum:
                    reason = f"reference slice has fewer than {minimum} rows"
                elif cur.n < minimum:
                    reason = f"fewer than {minimum} rows with features in the window"
            if reason is not None or cur is None or ref is None:
                out.append(
                    context.finding(
                        self.name,
                        metric="reconstruction_error",
                        segment=segment,
                        status=Status.INSUFFICIENT_DATA,
                        value=cur.mean if cur is not None and cur.n else None,
                        n_current=cur.n if cur is not None else part.num_rows,
                        n_reference=ref.n if ref is not None else 0,
                        details={"reason": reason},
                    )
                )
                continue
            se = math.sqrt(cur.sd**2 / cur.n + ref.sd**2 / ref.n)
            z = (cur.mean - ref.mean) / se if se > 0 else (math.inf if cur.mean > ref.mean else 0.0)
            p = 1 - normal_cdf(z) if math.isfinite(z) else 0.0
            out.append(len(pending))
            pending.append((segment, cur, ref, p, z))
        p_values = [item[3] for item in pending]
        adjusted = benjamini_hochberg(p_values) if cfg.fdr else p_values
        findings: list[Finding] = []
        for item in out:
            if isinstance(item, Finding):
                findings.append(item)
                continue
            segment, cur, ref, p, z = pending[item]
            findings.append(self._finding(segment, cur, ref, p, adjusted[item], reference, cfg, context))
        return findings

    def _finding(
        self,
        segment: Segment,
        cur: ErrorSample,
        ref: ErrorSample,
        p: float,
        p_adjusted: float,
        reference: MultivariateReference,
        cfg: MultivariateDriftConfig,
        context: RunContext,
    ) -> Finding:
        effect = (cur.mean - ref.mean) / ref.sd if ref.sd > 0 else (math.inf if cur.mean > ref.mean else 0.0)
        relevant = effect >= cfg.min_effect
        status = verdict(relevant, p_adjusted < cfg.alpha, p < cfg.alpha)
        assert reference.encoder is not None
        growth = cur.per_feature - ref.per_feature
        total = float(np.clip(growth, 0, None).sum())
        order = np.argsort(-growth)[: cfg.top_features]
        features = [
            {
                "feature": reference.encoder.features[i],
                "residual_growth": float(growth[i]),
                "share": float(max(growth[i], 0.0) / total) if total > 0 else 0.0,
            }
            for i in order
            if growth[i] > 0
        ]
        return context.finding(
            self.name,
            metric="reconstruction_error",
            segment=segment,
            status=status,
            value=cur.mean,
            threshold=ref.mean + cfg.min_effect * ref.sd,
            p_value=p,
            p_value_adjusted=p_adjusted,
            effect_size=effect if math.isfinite(effect) else None,
            n_current=cur.n,
            n_reference=ref.n,
            details={
                "reference_value": ref.mean,
                "reference_sd": ref.sd,
                "relevant": relevant,
                "components": reference.components,
                "variance_explained": reference.explained,
                "features": features,
                "method": "pca_reconstruction",
            },
        )


__all__ = ["MultivariateDrift", "MultivariateDriftConfig", "MultivariateReference"]
