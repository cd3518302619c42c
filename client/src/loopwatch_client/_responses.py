"""Reading loopwatch's answers: what to retry, when, and which rows were refused.

The server's error envelope is ``{"error": {"code", "message", "errors": [{"row", "field",
"reason", "prediction_id"}]}}``; anything else (a proxy's HTML page, a truncated body) is read as
"no details", never as an exception in the sender thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

# 507: the server's disk is full; it answers with Retry-After and nothing was written.
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504, 507})
MAX_RETRY_AFTER = 600.0  # seconds; a larger (or absurd) Retry-After is capped here


@dataclass(frozen=True)
class RowError:
    """One refused row of a batch (a 422), as the server names it."""

    row: int | None
    field: str | None
    reason: str | None


def retry_after(response: httpx.Response, now: datetime | None = None) -> float | None:
    """Seconds the server asked us to wait (``Retry-After``: delta-seconds or an HTTP date), or None."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return min(MAX_RETRY_AFTER, max(0.0, seconds))


def row_errors(response: httpx.Response) -> list[RowError]:
    """The rows a 422 names; an empty list when the body says nothing usable."""
    errors = _error(response).get("errors")
    if not isinstance(errors, list):
        return []
    found = []
    for item in errors:
        if isinstance(item, dict):
            row = item.get("row")
            found.append(
                RowError(
                    row=row if isinstance(row, int) and not isinstance(row, bool) else None,
                    field=_str_or_none(item.get("field")),
                    reason=_str_or_none(item.get("reason")),
                )
            )
    return found


def counts(response: httpx.Response) -> tuple[int, int]:
    """(duplicates, changed) from an ingestion answer; zeros when absent."""
    body = _json(response)
    if not isinstance(body, dict):
        return 0, 0
    return _int(body.get("duplicates")), _int(body.get("changed"))


def message(response: httpx.Response) -> str:
    """The server's one-line reason, or the start of whatever it sent."""
    text = _error(response).get("message")
    return str(text)[:300] if text else response.text[:300]


def _error(response: httpx.Response) -> dict[str, Any]:
    body = _json(response)
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
        return None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)
