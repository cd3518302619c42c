"""The id index's compiled loops: XXH64 of Arrow strings matches the reference implementation."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from monitor.kernels import xxh64_strings, xxh64_text

# XXH64, seed 0, from the reference C implementation (python-xxhash 3.x binds it). The first
# three are the specification's well-known values; "Nobody inspects…" is python-xxhash's
# documented example. Lengths 31, 32 and 33 straddle the 32-byte stripe loop.
REFERENCE = {
    "": 0xEF46DB3751D8E999,
    "a": 0xD24EC4F1A98C6E5B,
    "abc": 0x44BC2CF5AD770999,
    "x" * 31: 0x60DD0D01083B99F0,
    "y" * 32: 0x64DA1F1D3495CE66,
    "z" * 33: 0xC5241253C64E0268,
    "héllo wörld": 0x60041BFEC530413C,
    "p-000123": 0xE944F7FCDDB794FF,
    "Nobody inspects the spammish repetition": 0xFBCEA83C8A378BF1,
    "0123456789" * 10 + "abc": 0x4724A2CB8C422DAD,
}


@pytest.mark.parametrize("string_type", [pa.string(), pa.large_string(), pa.string_view()])
def test_xxh64_of_each_string_matches_the_reference_values(string_type: pa.DataType) -> None:
    """Rule: each id's key is XXH64 (seed 0) of its UTF-8 bytes, whatever Arrow string type
    carries it (short, stripe-length, multi-stripe and non-ASCII ids)."""
    values = list(REFERENCE)
    got = xxh64_strings(pa.array(values, string_type))
    assert got.dtype == np.uint64
    assert got.tolist() == list(REFERENCE.values())


def test_sliced_and_chunked_columns_hash_each_row_in_order() -> None:
    """Rule: an array slice (non-zero offset) and a column of several chunks give each row its
    own value, in row order — as the store passes a batch's ``prediction_id`` column."""
    values = list(REFERENCE)
    expected = list(REFERENCE.values())
    assert xxh64_strings(pa.array(values).slice(2, 5)).tolist() == expected[2:7]
    chunked = pa.chunked_array([pa.array(values[:4]), pa.array([], pa.string()), pa.array(values[4:])])
    assert xxh64_strings(chunked).tolist() == expected
    assert xxh64_strings(pa.array([], pa.string())).size == 0
    assert xxh64_text("abc") == REFERENCE["abc"]


def test_distinct_ids_get_distinct_keys() -> None:
    """Rule: 200k distinct sequential ids (the shape real ids take) get 200k distinct keys."""
    ids = pa.array([f"cam-{i:09d}" for i in range(200_000)])
    assert np.unique(xxh64_strings(ids)).size == 200_000
