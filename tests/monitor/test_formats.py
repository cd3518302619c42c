"""Readers refuse text that is not UTF-8 (Arrow IPC and Parquet carry raw bytes), naming the
field — nested struct fields by path — and the row."""

from __future__ import annotations

import errno

import duckdb
import pyarrow as pa
import pytest

from monitor.errors import InvalidInput, is_disk_full
from monitor.formats import check_utf8, read_arrow_stream, table_to_arrow_stream

BAD = pa.array([b"fine", b"bad\xc3\x28"], pa.binary()).view(pa.string())


def test_valid_text_passes_untouched() -> None:
    """A table whose text is valid comes back as it is."""
    table = pa.table({"a": ["x", "ü"], "n": [1, 2]})
    assert check_utf8(table) is table


@pytest.mark.parametrize(
    ("table", "field", "row"),
    [
        (pa.table({"prediction_id": BAD}), "prediction_id", 1),
        (pa.table({"segments": pa.StructArray.from_arrays([BAD], ["region"])}), "segments.region", 1),
        (pa.table({"tags": pa.ListArray.from_arrays(pa.array([0, 1, 2]), BAD)}), "tags", None),
        (pa.table({"d": pa.DictionaryArray.from_arrays(pa.array([0, 1]), BAD)}), "d", None),
        (pa.table({"c": pa.chunked_array([pa.array(["a", "b", "c"]), BAD])}), "c", 4),
    ],
    ids=["plain", "struct", "list", "dictionary", "second-chunk"],
)
def test_invalid_utf8_is_refused_naming_field_and_row(table: pa.Table, field: str, row: int | None) -> None:
    """Plain, nested, list, dictionary and multi-chunk text columns are all checked."""
    with pytest.raises(InvalidInput) as caught:
        check_utf8(table)
    [error] = caught.value.errors
    assert error.field == field and error.row == row and "UTF-8" in error.reason


def test_arrow_stream_reader_checks_text_unless_told_it_wrote_it() -> None:
    """``read_arrow_stream`` validates client bodies; streams the service wrote skip the check."""
    body = table_to_arrow_stream(pa.table({"prediction_id": BAD}))
    with pytest.raises(InvalidInput):
        read_arrow_stream(body)
    assert read_arrow_stream(body, check_text=False).num_rows == 2


@pytest.mark.parametrize(
    ("error", "full"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), True),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), True),
        (duckdb.TransactionException('Failed to commit: Could not write file "x.wal": No space left on device'), True),
        (OSError(errno.EACCES, "Permission denied"), False),
        (duckdb.IOException("IO Error: file is locked"), False),
    ],
)
def test_disk_full_is_recognised(error: Exception, full: bool) -> None:
    """ENOSPC/EDQUOT and DuckDB's out-of-space errors (also as a cause) are a full disk; others not."""
    assert is_disk_full(error) is full
    wrapped = RuntimeError("write failed")
    wrapped.__cause__ = error
    assert is_disk_full(wrapped) is full
