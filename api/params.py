"""Query-parameter parsing shared by routers (time windows, segment filters)."""

from __future__ import annotations

from datetime import datetime

from monitor.clock import parse_time
from monitor.errors import FieldError, InvalidInput


def parse_window(start: str | None, end: str | None) -> tuple[datetime | None, datetime | None]:
    errors = []
    parsed: dict[str, datetime | None] = {"start": None, "end": None}
    for name, value in (("start", start), ("end", end)):
        if value:
            try:
                parsed[name] = parse_time(value)
            except ValueError as exc:
                errors.append(FieldError(field=f"query.{name}", reason=str(exc)))
    if errors:
        raise InvalidInput("time window is not valid", errors)
    lo, hi = parsed["start"], parsed["end"]
    if lo and hi and hi <= lo:
        raise InvalidInput("time window is empty", [FieldError(field="query.end", reason="must be after start")])
    return lo, hi


def parse_time_field(field: str, value: str) -> datetime:
    """One time given by a caller (``at``, ``from``, ``to``) → a 422 naming the field if bad."""
    try:
        return parse_time(value)
    except ValueError as exc:
        raise InvalidInput("time is not valid", [FieldError(field=field, reason=str(exc))]) from None


def parse_segments(values: list[str] | None) -> dict[str, str]:
    """``segment=firmware:3.2`` query values → ``{"firmware": "3.2"}``."""
    out: dict[str, str] = {}
    for value in values or []:
        name, sep, seg_value = value.partition(":")
        if not sep or not name:
            raise InvalidInput(
                "segment filter is not valid",
                [FieldError(field="query.segment", reason=f"{value!r} must look like name:value")],
            )
        out[name] = seg_value
    return out
