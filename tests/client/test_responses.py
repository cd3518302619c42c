"""Reading the server's answers: Retry-After in both of its forms, and error bodies that are not
loopwatch's envelope, never break the sender."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from loopwatch_client._responses import MAX_RETRY_AFTER, counts, retry_after, row_errors

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("2", 2.0),
        ("0.5", 0.5),
        (" 7 ", 7.0),
        (format_datetime(NOW + timedelta(seconds=30), usegmt=True), 30.0),  # an HTTP date
        (format_datetime(NOW - timedelta(seconds=30), usegmt=True), 0.0),  # already past
        ("86400", MAX_RETRY_AFTER),  # absurd values are capped
        ("-3", 0.0),
        ("soon", None),
        ("nan", None),
        ("", None),
    ],
)
def test_retry_after_reads_seconds_and_http_dates(header: str, seconds: float | None) -> None:
    """Retry-After is delta-seconds or an HTTP date (RFC 9110 §10.2.3); garbage means 'no advice'."""
    response = httpx.Response(503, headers={"Retry-After": header} if header else {})
    assert retry_after(response, now=NOW) == seconds


def test_row_errors_from_the_envelope_and_from_anything_else() -> None:
    """422 rows come from loopwatch's error envelope; other bodies (HTML, lists, bad types) give none."""
    envelope = {"error": {"errors": [{"row": 1, "field": "prediction", "reason": "not a class"}, {"row": True}, 5]}}
    named = row_errors(httpx.Response(422, json=envelope))
    assert [(e.row, e.field, e.reason) for e in named] == [(1, "prediction", "not a class"), (None, None, None)]
    for body in (b"<html>bad gateway</html>", b"[1, 2]", b'{"error": "text"}', b'{"error": {"errors": {}}}'):
        assert row_errors(httpx.Response(422, content=body)) == []


def test_counts_tolerate_missing_or_odd_fields() -> None:
    """Duplicate/changed counts default to zero unless the answer carries integers."""
    assert counts(httpx.Response(200, json={"duplicates": 3, "changed": 1})) == (3, 1)
    assert counts(httpx.Response(200, json={"duplicates": "3", "changed": None})) == (0, 0)
    assert counts(httpx.Response(200, content=b"ok")) == (0, 0)
