"""Compiled inner loops of the id index (numba): XXH64 of Arrow strings and blocked-Bloom probes.

Why compiled: a Bloom filter is one random memory access per probe, and NumPy can only express
it as whole-array passes with temporaries. In NumPy, the filter's probe, its update and DuckDB's
``hash`` round trip cost ~15 ms per 50k-row batch at 10M stored ids, ~0.3 µs of the Arrow ingest
path's ~3 µs per row (docs/architecture.md, "Deduplication"). These loops do the same work in
one pass each: ~1 ms per 50k-row batch together (``bench/id_index.py``).

* :func:`xxh64_strings` is XXH64 (Yann Collet, xxHash specification v0.8,
  https://github.com/Cyan4973/xxHash/blob/dev/doc/xxhash_spec.md) of each string's UTF-8 bytes,
  seed 0, read straight from an Arrow string array's offsets and data buffers. The test suite
  checks it against the reference implementation's published values.
* :func:`bloom_add` / :func:`bloom_contains` set and test the 4 bits of each hash in its 512-bit
  block, bit for bit the layout of :class:`monitor.identity.BlockedBloom` (so a filter saved
  by an earlier version stays valid).

The first call of each kernel in a process loads it from numba's on-disk cache (compiling it
once, ~1 s, when there is none); :func:`warm_up` does that at start-up, off the ingest path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba
import numpy as np
import pyarrow as pa

F = TypeVar("F", bound=Callable[..., Any])


def _compiled(fn: F) -> F:
    """numba's ``njit`` (cached on disk, releasing the GIL), typed for mypy."""
    return cast(F, numba.njit(cache=True, nogil=True)(fn))


_P1 = np.uint64(0x9E3779B185EBCA87)
_P2 = np.uint64(0xC2B2AE3D27D4EB4F)
_P3 = np.uint64(0x165667B19E3779F9)
_P4 = np.uint64(0x85EBCA77C2B2AE63)
_P5 = np.uint64(0x27D4EB2F165667C5)


@_compiled
def _rotl(x: np.uint64, r: int) -> np.uint64:
    return (x << np.uint64(r)) | (x >> np.uint64(64 - r))


@_compiled
def _read_le(data: np.ndarray, p: int, nbytes: int) -> np.uint64:
    """``nbytes`` (4 or 8) little-endian bytes at ``data[p]`` as an unsigned integer."""
    v = np.uint64(0)
    for k in range(nbytes):
        v |= np.uint64(data[p + k]) << np.uint64(8 * k)
    return v


@_compiled
def _round(acc: np.uint64, lane: np.uint64) -> np.uint64:
    acc = acc + lane * _P2
    return _rotl(acc, 31) * _P1


@_compiled
def _merge_round(acc: np.uint64, lane: np.uint64) -> np.uint64:
    acc ^= _round(np.uint64(0), lane)
    return acc * _P1 + _P4


@_compiled
def _xxh64(data: np.ndarray, start: int, end: int) -> np.uint64:
    """XXH64 of ``data[start:end]`` with seed 0 (the specification's steps 1–6)."""
    length = end - start
    p = start
    if length >= 32:
        v1 = _P1 + _P2
        v2 = _P2
        v3 = np.uint64(0)
        v4 = np.uint64(0) - _P1
        while p + 32 <= end:
            v1 = _round(v1, _read_le(data, p, 8))
            v2 = _round(v2, _read_le(data, p + 8, 8))
            v3 = _round(v3, _read_le(data, p + 16, 8))
            v4 = _round(v4, _read_le(data, p + 24, 8))
            p += 32
        h = _rotl(v1, 1) + _rotl(v2, 7) + _rotl(v3, 12) + _rotl(v4, 18)
        h = _merge_round(h, v1)
        h = _merge_round(h, v2)
        h = _merge_round(h, v3)
        h = _merge_round(h, v4)
    else:
        h = _P5
    h += np.uint64(length)
    while p + 8 <= end:
        h ^= _round(np.uint64(0), _read_le(data, p, 8))
        h = _rotl(h, 27) * _P1 + _P4
        p += 8
    if p + 4 <= end:
        h ^= _read_le(data, p, 4) * _P1
        h = _rotl(h, 23) * _P2 + _P3
        p += 4
    while p < end:
        h ^= np.uint64(data[p]) * _P5
        h = _rotl(h, 11) * _P1
        p += 1
    h ^= h >> np.uint64(33)
    h *= _P2
    h ^= h >> np.uint64(29)
    h *= _P3
    h ^= h >> np.uint64(32)
    return h


@_compiled
def _xxh64_rows(offsets: np.ndarray, data: np.ndarray, out: np.ndarray) -> None:
    for i in range(out.size):
        out[i] = _xxh64(data, offsets[i], offsets[i + 1])


_NO_BYTES = np.zeros(1, dtype=np.uint8)
_NO_BYTES.flags.writeable = False


def xxh64_strings(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """XXH64 (seed 0) of each string's UTF-8 bytes, as uint64, in row order (a null hashes as
    the empty string)."""
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    out = np.empty(len(values), dtype=np.uint64)
    at = 0
    for chunk in chunks:
        n = len(chunk)
        if n == 0:
            continue
        if chunk.type not in (pa.string(), pa.large_string()):
            chunk = chunk.cast(pa.large_string())
        offset_type = np.int32 if chunk.type == pa.string() else np.int64
        _, offsets_buf, data_buf = chunk.buffers()
        offsets = np.frombuffer(
            offsets_buf, dtype=offset_type, count=n + 1, offset=chunk.offset * np.dtype(offset_type).itemsize
        )
        data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None and data_buf.size else _NO_BYTES
        # Read-only views whatever the buffer (an IPC body's are immutable, a built array's are
        # not): numba compiles one version per array type, and a second would compile mid-ingest.
        offsets.flags.writeable = False
        data.flags.writeable = False
        _xxh64_rows(offsets, data, out[at : at + n])
        at += n
    return out


def xxh64_text(text: str) -> int:
    """XXH64 (seed 0) of one string's UTF-8 bytes."""
    return int(xxh64_strings(pa.array([text], pa.string()))[0])


# -- the blocked Bloom filter (layout: monitor.identity.BlockedBloom) ------------------------

_MIX = np.uint64(0x9E3779B97F4A7C15)


@_compiled
def bloom_add(words: np.ndarray, blocks: np.uint64, hashes: np.ndarray) -> None:
    """Set the 4 bits of each hash: block = top 28 bits scaled to ``blocks`` (Lemire's
    multiply-shift reduction), bits = 4 × 9 top bits of the hash times a Fibonacci constant."""
    for i in range(hashes.size):
        h = hashes[i]
        mixed = h * _MIX
        base = (((h >> np.uint64(36)) * blocks) >> np.uint64(28)) * np.uint64(8)
        for shift in (np.uint64(55), np.uint64(46), np.uint64(37), np.uint64(28)):
            bit = (mixed >> shift) & np.uint64(511)
            words[base + (bit >> np.uint64(6))] |= np.uint64(1) << (bit & np.uint64(63))


@_compiled
def bloom_contains(words: np.ndarray, blocks: np.uint64, hashes: np.ndarray, out: np.ndarray) -> None:
    """``out[i]``: whether all 4 bits of ``hashes[i]`` are set (false positives possible)."""
    for i in range(hashes.size):
        h = hashes[i]
        mixed = h * _MIX
        base = (((h >> np.uint64(36)) * blocks) >> np.uint64(28)) * np.uint64(8)
        found = True
        for shift in (np.uint64(55), np.uint64(46), np.uint64(37), np.uint64(28)):
            bit = (mixed >> shift) & np.uint64(511)
            if (words[base + (bit >> np.uint64(6))] >> (bit & np.uint64(63))) & np.uint64(1) == np.uint64(0):
                found = False
                break
        out[i] = found


def warm_up() -> None:
    """Load (or compile) every kernel now, so the first ingest does not wait for it."""
    words = np.zeros(8, dtype=np.uint64)
    h = xxh64_strings(pa.array(["warm-up", "a longer id to take the 32-byte path of XXH64"], pa.string()))
    bloom_add(words, np.uint64(1), h)
    bloom_contains(words, np.uint64(1), h, np.empty(h.size, dtype=np.bool_))
    xxh64_strings(pa.array(["large"], pa.large_string()))
