"""Evidently's ``get_binned_data``: the shared histogramming behind PSI and Jensen–Shannon.

Reproduced rule by rule so PSI/JS scores match Evidently:

* numeric column with more than 20 distinct *reference* values → Sturges bins over the
  pooled min..max (``np.histogram_bin_edges(pooled, "sturges")``), last bin closed;
* otherwise (categorical, or numeric with few values) → one bin per distinct value seen in
  either sample;
* shares are counts divided by each sample's size; for PSI, empty bins are "filled" with a
  tiny share (``min_nonzero / 1e6`` if that minimum is ≤ 1e-4, else 1e-4) to keep ln finite.

With sorted reference values cached, binning the reference is a ``searchsorted`` of the
edges (O(bins · log n)) instead of a pass over the data.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from detectors.stats.summary import SMALL_UNIQUE_LIMIT, NumericSummary, Summary


def sturges_edges(minimum: float, maximum: float, n_total: int) -> np.ndarray:
    """Bin edges numpy's ``histogram_bin_edges(pooled, bins="sturges")`` would return."""
    first, last = minimum, maximum
    ptp = maximum - minimum
    if first == last:
        first, last = first - 0.5, last + 0.5
    width = ptp / (np.log2(n_total) + 1.0)
    n_bins = int(np.ceil((last - first) / width)) if width else 1
    return np.linspace(first, last, n_bins + 1, endpoint=True, dtype=np.float64)


def histogram_sorted(sorted_values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``np.histogram(values, edges)[0]`` computed on already sorted values."""
    positions = np.concatenate(
        (sorted_values.searchsorted(edges[:-1], "left"), sorted_values.searchsorted(edges[-1:], "right"))
    )
    return np.diff(positions)


def _value_shares(reference: Summary, current: Summary) -> tuple[list[Any], np.ndarray, np.ndarray]:
    ref_counts = reference.counts()
    cur_counts = current.counts()
    keys = list(set(ref_counts) | set(cur_counts))
    ref = np.array([ref_counts.get(k, 0) for k in keys], dtype=np.float64) / reference.n
    cur = np.array([cur_counts.get(k, 0) for k in keys], dtype=np.float64) / current.n
    return keys, ref, cur


def _fill_zeroes(shares: np.ndarray) -> np.ndarray:
    nonzero = shares[shares != 0]
    smallest = float(nonzero.min())
    filler = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    out = shares.copy()
    out[out == 0] = filler
    return out


def binned_shares(
    reference: Summary, current: Summary, *, fill_zeroes: bool
) -> tuple[list[Any], np.ndarray, np.ndarray]:
    """Bin labels and the reference/current share of each bin (Evidently's rules)."""
    if (
        isinstance(reference, NumericSummary)
        and isinstance(current, NumericSummary)
        and reference.n_unique > SMALL_UNIQUE_LIMIT
    ):
        edges = sturges_edges(
            min(reference.min, current.min), max(reference.max, current.max), reference.n + current.n
        )
        ref = histogram_sorted(reference.sorted_values, edges) / reference.n
        cur = histogram_sorted(current.sorted_values, edges) / current.n
        labels: list[Any] = [[float(a), float(b)] for a, b in itertools.pairwise(edges)]
    else:
        labels, ref, cur = _value_shares(reference, current)
    if fill_zeroes:
        ref, cur = _fill_zeroes(ref), _fill_zeroes(cur)
    return labels, ref, cur
