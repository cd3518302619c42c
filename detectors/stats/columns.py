"""Arrow columns → clean numpy arrays and value counts, the way Evidently cleans them.

Evidently drops nulls, NaN and ±inf before testing a column (``replace([inf, -inf], nan)
.dropna()``); every drift method here sees data cleaned the same way so scores match. The
helpers avoid pandas entirely: importing pandas costs ~0.7 s of process start, which matters
for ``loopwatch drift`` in CI.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ArrayLike: TypeAlias = pa.Array | pa.ChunkedArray | np.ndarray | Sequence[Any]


def _bits(buffer: pa.Buffer, offset: int, length: int) -> np.ndarray:
    """Arrow's little-endian bitmap as a bool array."""
    raw = np.frombuffer(buffer, dtype=np.uint8)
    return np.unpackbits(raw, bitorder="little")[offset : offset + length].astype(bool)


def _numpy_dtype(t: pa.DataType) -> np.dtype | None:
    if pa.types.is_floating(t):
        return np.dtype(f"float{t.bit_width}")
    if pa.types.is_signed_integer(t):
        return np.dtype(f"int{t.bit_width}")
    if pa.types.is_unsigned_integer(t):
        return np.dtype(f"uint{t.bit_width}")
    return None


def _chunk_to_numpy(chunk: pa.Array) -> np.ndarray:
    length, offset = len(chunk), chunk.offset
    t = chunk.type
    if pa.types.is_null(t):
        return np.full(length, np.nan)
    buffers = chunk.buffers()
    if pa.types.is_boolean(t):
        values: np.ndarray = _bits(buffers[1], offset, length) if length else np.zeros(0, bool)
    else:
        dtype = _numpy_dtype(t)
        if dtype is None:
            return _chunk_to_numpy(chunk.cast(pa.float64()))
        values = np.frombuffer(buffers[1], dtype=dtype, count=offset + length)[offset:] if length else (
            np.zeros(0, dtype))
    if chunk.null_count == 0:
        return values
    out = values.astype(np.float64)
    out[~_bits(buffers[0], offset, length)] = np.nan
    return out


def to_numpy(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Numeric or boolean Arrow data as numpy, zero-copy when there is one chunk and no nulls.

    Nulls become NaN (so integer/boolean data with nulls comes back as float64). This reads
    Arrow buffers directly: ``pyarrow``'s own ``to_numpy`` goes through its pandas shim and
    imports pandas (~0.3 s of start-up for the ``loopwatch drift`` command).
    """
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    parts = [_chunk_to_numpy(c) for c in chunks if len(c)]
    if not parts:
        dtype = _numpy_dtype(values.type)
        return np.zeros(0, dtype if dtype is not None and values.null_count == 0 else np.float64)
    if len(parts) == 1:
        return parts[0]
    if len({p.dtype for p in parts}) > 1:
        parts = [p.astype(np.float64) for p in parts]
    return np.concatenate(parts)


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
        if not pa.types.is_floating(col.type) or col.type != pa.float64():
            col = col.cast(pa.float64())
        arr = to_numpy(col)  # nulls become NaN
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
            raw = to_numpy(chunk.indices)
            if raw.dtype.kind == "f":  # null indices came back as NaN
                raw = raw[~np.isnan(raw)]
            dictionary = chunk.dictionary.to_pylist()
            counts = np.bincount(raw.astype(np.int64), minlength=len(dictionary))
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
