"""Arrow columns → clean numpy arrays and value counts, the way Evidently cleans them.

Evidently drops nulls, NaN and ±inf before testing a column (``replace([inf, -inf], nan)
.dropna()``); every drift method here sees data cleaned the same way so scores match. The
helpers avoid pandas entirely: importing pandas costs ~0.7 s of process start, which matters
for ``loopwatch drift`` in CI.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ArrayLike = pa.Array | pa.ChunkedArray | np.ndarray | Sequence[Any]


def as_chunked(values: ArrayLike) -> pa.ChunkedArray:
    """Wrap any supported input as a ``pa.ChunkedArray``."""
    if isinstance(values, pa.ChunkedArray):
        return values
    if isinstance(values, pa.Array):
        return pa.chunked_array([values])
    if isinstance(values, np.ndarray):
        return pa.chunked_array([pa.array(values, from_pandas=True)])
    return pa.chunked_array([pa.array(list(values), from_pandas=True)])


def numeric_values(values: ArrayLike) -> tuple[np.ndarray, int]:
    """Finite float64 values of a column and how many entries were dropped (null/NaN/±inf).

    Booleans become 0/1 and integers become floats, as pandas would present them.
    """
    if isinstance(values, np.ndarray) and values.dtype.kind == "f":
        arr = values.astype(np.float64, copy=False)
    else:
        col = as_chunked(values)
        if pa.types.is_dictionary(col.type):
            col = col.cast(col.type.value_type)
        if not pa.types.is_floating(col.type):
            col = col.cast(pa.float64())
        elif col.type != pa.float64():
            col = col.cast(pa.float64())
        if col.num_chunks == 1 and col.null_count == 0:
            arr = col.chunk(0).to_numpy(zero_copy_only=False)
        else:
            arr = col.to_numpy()  # nulls become NaN for floats
    finite = np.isfinite(arr)
    if finite.all():
        return arr, 0
    kept = arr[finite]
    return kept, int(arr.size - kept.size)


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and value != value


def value_counts(values: ArrayLike) -> tuple[list[Any], np.ndarray, int]:
    """Distinct non-missing values (Python objects), their counts, and the number of missing.

    Missing means null, and NaN/±inf for float columns (Evidently drops them before testing).
    Dictionary-encoded columns are counted on their indices, which is much faster than
    decoding strings.
    """
    if isinstance(values, np.ndarray) and values.dtype.kind == "f":
        finite, missing = numeric_values(values)
        uniq, counts = np.unique(finite, return_counts=True)
        return uniq.tolist(), counts.astype(np.int64), missing
    col = as_chunked(values)
    if pa.types.is_floating(col.type):
        finite, missing = numeric_values(col)
        uniq, counts = np.unique(finite, return_counts=True)
        return uniq.tolist(), counts.astype(np.int64), missing
    totals: dict[Any, int] = {}
    missing = col.null_count
    if pa.types.is_dictionary(col.type):
        for chunk in col.chunks:
            if len(chunk) == 0:
                continue
            indices = chunk.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
            dictionary = chunk.dictionary.to_pylist()
            counts = np.bincount(indices[indices >= 0], minlength=len(dictionary))
            for key, count in zip(dictionary, counts.tolist(), strict=True):
                if count and key is not None:
                    totals[key] = totals.get(key, 0) + count
    else:
        vc = pc.value_counts(col)
        keys = vc.field("values").to_pylist()
        counts_list = vc.field("counts").to_pylist()
        for key, count in zip(keys, counts_list, strict=True):
            if key is not None and not _is_nan(key):
                totals[key] = totals.get(key, 0) + count
    return list(totals.keys()), np.fromiter(totals.values(), dtype=np.int64, count=len(totals)), missing


def text_lengths(values: ArrayLike) -> pa.ChunkedArray:
    """Character length of each string (null stays null); the proxy used for text drift."""
    col = as_chunked(values)
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        col = col.cast(pa.string())
    return pc.utf8_length(col)
