"""Column cleaning and summaries: missing values handled the way Evidently handles them."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from detectors.stats.columns import numeric_values, value_counts
from detectors.stats.summary import CategoricalSummary, NumericSummary


def test_numeric_values_drop_null_nan_and_inf() -> None:
    """Nulls, NaN and ±inf are dropped and counted as missing (Evidently: replace inf → NaN, dropna)."""
    values, missing = numeric_values(pa.chunked_array([[1.0, None, float("nan")], [float("inf"), 2.0]]))
    assert values.tolist() == [1.0, 2.0] and missing == 3


def test_value_counts_on_dictionary_and_plain_strings_agree() -> None:
    """Dictionary-encoded and plain string columns give the same counts; nulls are missing, not a category."""
    plain = pa.chunked_array([["a", "b", None, "a"], ["c", "a"]])
    encoded = pa.chunked_array([c.dictionary_encode() for c in plain.chunks])
    for col in (plain, encoded):
        keys, counts, missing = value_counts(col)
        assert dict(zip(keys, counts.tolist(), strict=True)) == {"a": 3, "b": 1, "c": 1} and missing == 1


def test_numeric_summary_facts() -> None:
    """Sorted values, population std (like np.std), distinct count and small-value counts."""
    s = NumericSummary.from_values(np.array([3.0, 1.0, 2.0, 2.0, np.nan]))
    assert s.sorted_values.tolist() == [1.0, 2.0, 2.0, 3.0]
    assert s.std == np.std([3.0, 1.0, 2.0, 2.0]) and s.n_unique == 3 and s.n_missing == 1
    assert s.counts() == {1.0: 1, 2.0: 2, 3.0: 1}
    assert NumericSummary.from_values(np.arange(100.0)).distinct(5) is None


def test_empty_summaries() -> None:
    """An all-null column summarises to n == 0 rather than raising."""
    assert NumericSummary.from_values(pa.nulls(5, pa.float64())).n == 0
    assert CategoricalSummary.from_values(pa.nulls(5, pa.string())).n == 0


def test_sorted_quantile_equals_numpy() -> None:
    """The O(1) quantile on sorted values equals np.quantile's default (linear) method."""
    from detectors.stats.summary import sorted_quantile

    rng = np.random.default_rng(0)
    for n in (1, 2, 3, 10, 101, 1000):
        x = np.sort(rng.normal(size=n))
        for q in (0.0, 0.05, 0.5, 0.95, 0.99, 1.0):
            assert (
                sorted_quantile(x, q) == np.float64(np.quantile(x, q)).item()
                or abs(sorted_quantile(x, q) - np.quantile(x, q)) < 1e-12
            )


def test_to_numpy_reads_buffers_like_pyarrow() -> None:
    """Buffer-level conversion equals pyarrow's to_numpy for floats, ints, bools, nulls and sliced arrays."""
    from detectors.stats.columns import to_numpy

    cases = [
        pa.array([1.5, None, 3.0]),
        pa.array([1, 2, 3], pa.int32()),
        pa.array([1, None, 3], pa.uint8()),
        pa.array([True, False, None, True]),
        pa.array([True, False, True, True, False, True, False, False, True]).slice(3, 5),
        pa.array([0.5, 1.5, 2.5, 3.5]).slice(1, 2),
        pa.nulls(3),
        pa.chunked_array([[1.0, 2.0], [3.0]]),
    ]
    for arr in cases:
        expected = np.asarray(arr.to_pandas(), dtype=np.float64) if arr.null_count else np.asarray(arr)
        np.testing.assert_array_equal(to_numpy(arr).astype(np.float64), expected.astype(np.float64))
