"""The injected clock. Everything that needs "now" takes a ``Clock`` so tests control time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_time(value: str | datetime) -> datetime:
    """Parse an ISO-8601 time (``Z`` or offset; no zone means UTC) into an aware UTC datetime."""
    if isinstance(value, datetime):
        dt = value
    else:
        text = value.strip()
        try:
            dt = datetime.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not an ISO-8601 time such as 2026-11-23T10:00:00Z") from exc
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def iso_z(value: datetime | None) -> str | None:
    """UTC ISO-8601 with a ``Z`` (how every API response writes times), or ``None``."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None
