"""Sufficient statistics of one column, computed once and reused by every drift method.

A reference window is summarised once (``prepare_reference``) and cached by the monitor;
each scheduled run then only summarises the current window. For numeric columns the
summary keeps the *sorted* finite values: that is what exact Wasserstein, KS and
Anderson–Darling need, and sorting is the only O(n log n) step, so it is paid once per
reference instead of once per run. Categorical columns keep value counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from detectors.stats.columns import ArrayLike, numeric_values, value_counts

#: Evidently switches from value-count bins to Sturges histograms above this many distinct
#: reference values (``get_binned_data``); up to this many we keep the distinct values.
SMALL_UNIQUE_LIMIT = 20


def sorted_quantile(sorted_values: np.ndarray, q: float) -> float:
    """``np.quantile(values, q)`` (linear method) for already sorted values, in O(1).

    ``np.quantile`` partitions and copies its input on every call, which dominated the cost
    of a drift run's dashboard details; on sorted data the answer is two lookups.

    >>> sorted_quantile(np.array([1.0, 2.0, 4.0]), 0.75)
    3.0
    """
    n = int(sorted_values.size)
    if n == 0:
        return float("nan")
    pos = q * (n - 1)
    lo = int(np.floor(pos))
    hi = min(lo + 1, n - 1)
    frac = pos - lo
    a, b = float(sorted_values[lo]), float(sorted_values[hi])
    return a + (b - a) * frac if frac else a


@dataclass(frozen=True, eq=False)
class NumericSummary:
    """Sorted finite values of a numeric column plus the cheap facts derived from them."""

    sorted_values: np.ndarray
    n_missing: int
    std: float
    n_unique: int
    small_values: np.ndarray | None  # distinct values when n_unique <= SMALL_UNIQUE_LIMIT
    small_counts: np.ndarray | None

    kind = "numeric"

    @property
    def n(self) -> int:
        return int(self.sorted_values.size)

    @property
    def min(self) -> float:
        return float(self.sorted_values[0]) if self.n else float("nan")

    @property
    def max(self) -> float:
        return float(self.sorted_values[-1]) if self.n else float("nan")

    def quantile(self, q: float) -> float:
        """Linear-interpolated quantile (numpy's default method) from the sorted values."""
        return sorted_quantile(self.sorted_values, q)

    @classmethod
    def from_values(cls, values: ArrayLike, *, assume_sorted: bool = False) -> NumericSummary:
        """Summarise a column; nulls, NaN and ±inf are dropped and counted as missing."""
        finite, missing = numeric_values(values)
        # np.std on the unsorted data, exactly like Evidently's normaliser.
        std = float(np.std(finite)) if finite.size else float("nan")
        ordered = finite if assume_sorted else np.sort(finite)
        return cls._from_sorted(ordered, missing, std)

    @classmethod
    def _from_sorted(cls, ordered: np.ndarray, missing: int, std: float) -> NumericSummary:
        if ordered.size == 0:
            return cls(ordered, missing, std, 0, np.empty(0), np.empty(0, dtype=np.int64))
        change = ordered[1:] != ordered[:-1]
        n_unique = 1 + int(np.count_nonzero(change))
        small_values: np.ndarray | None = None
        small_counts: np.ndarray | None = None
        if n_unique <= SMALL_UNIQUE_LIMIT:
            starts = np.concatenate(([0], np.flatnonzero(change) + 1))
            small_values = ordered[starts]
            small_counts = np.diff(np.append(starts, ordered.size)).astype(np.int64)
        return cls(ordered, missing, std, n_unique, small_values, small_counts)

    def counts(self) -> dict[Any, int]:
        """Value counts (only meaningful for few distinct values; computed on demand otherwise)."""
        if self.small_values is not None and self.small_counts is not None:
            return dict(zip(self.small_values.tolist(), self.small_counts.tolist(), strict=True))
        uniq, cnt = np.unique(self.sorted_values, return_counts=True)
        return dict(zip(uniq.tolist(), cnt.tolist(), strict=True))

    def distinct(self, limit: int) -> set[Any] | None:
        """The distinct values if there are at most ``limit`` of them, else ``None``."""
        if self.n_unique > limit or self.small_values is None:
            return None
        return set(self.small_values.tolist())


@dataclass(frozen=True, eq=False)
class CategoricalSummary:
    """Value counts of a categorical (string, boolean, low-cardinality integer) column."""

    count_map: dict[Any, int]
    n_missing: int

    kind = "categorical"

    @property
    def n(self) -> int:
        return int(sum(self.count_map.values()))

    @property
    def n_unique(self) -> int:
        return len(self.count_map)

    def counts(self) -> dict[Any, int]:
        return self.count_map

    def distinct(self, limit: int) -> set[Any] | None:
        return set(self.count_map) if len(self.count_map) <= limit else None

    @classmethod
    def from_values(cls, values: ArrayLike) -> CategoricalSummary:
        keys, counts, missing = value_counts(values)
        return cls(dict(zip(keys, counts.tolist(), strict=True)), missing)


Summary = NumericSummary | CategoricalSummary


def summarize(values: ArrayLike, kind: str) -> Summary:
    """Summarise ``values`` as ``"numeric"`` or ``"categorical"``."""
    if kind == "numeric":
        return NumericSummary.from_values(values)
    if kind == "categorical":
        return CategoricalSummary.from_values(values)
    raise ValueError(f"unknown column kind {kind!r}")
