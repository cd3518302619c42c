"""Domain errors. The API maps each to an HTTP status; the CLI prints its message.

Every error a user can cause says what was wrong, where (row, field) and why, so a model
server's log line is enough to fix the bad input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class FieldError:
    """One problem with one field of one row (row is ``None`` for whole-batch problems)."""

    field: str
    reason: str
    row: int | None = None
    prediction_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"field": self.field, "reason": self.reason}
        if self.row is not None:
            out["row"] = self.row
        if self.prediction_id is not None:
            out["prediction_id"] = self.prediction_id
        return out


@dataclass
class LoopwatchError(Exception):
    """Base of all errors a caller can act on."""

    message: str
    errors: list[FieldError] = field(default_factory=list)
    status: int = 400
    code: str = "bad_request"

    def __str__(self) -> str:
        if not self.errors:
            return self.message
        shown = "; ".join(_describe(e) for e in self.errors[:5])
        more = f" (+{len(self.errors) - 5} more)" if len(self.errors) > 5 else ""
        return f"{self.message}: {shown}{more}"


def _describe(err: FieldError) -> str:
    where = f"row {err.row} " if err.row is not None else ""
    return f"{where}field {err.field!r}: {err.reason}"


class InvalidInput(LoopwatchError):
    """The request is well-formed but its content is invalid (422)."""

    def __init__(self, message: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(message, errors or [], 422, "invalid_input")


class MalformedBody(LoopwatchError):
    """The body cannot be parsed at all (400)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, [], 400, "malformed_body")


class NotConfigured(LoopwatchError):
    """A capability whose settings are missing (503): e.g. Label Studio without its URL."""

    def __init__(self, message: str) -> None:
        super().__init__(message, [], 503, "not_configured")


class NotFound(LoopwatchError):
    def __init__(self, message: str) -> None:
        super().__init__(message, [], 404, "not_found")


class Conflict(LoopwatchError):
    def __init__(self, message: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(message, errors or [], 409, "conflict")


class PayloadTooLarge(LoopwatchError):
    def __init__(self, message: str) -> None:
        super().__init__(message, [], 413, "payload_too_large")


class DiskFull(LoopwatchError):
    """The data directory's disk is full: nothing was written; retry once space is freed (507)."""

    RETRY_AFTER_SECONDS = 60

    def __init__(self, message: str) -> None:
        super().__init__(message, [], 507, "disk_full")


def is_disk_full(exc: BaseException) -> bool:
    """An OSError ENOSPC (or EDQUOT), or DuckDB's IO error for the same, anywhere in the chain."""
    import errno

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        text = str(current).lower()
        if "no space left on device" in text or "disk quota exceeded" in text or "out of disk space" in text:
            return True
        current = current.__cause__ or current.__context__
    return False


class UnsupportedMediaType(LoopwatchError):
    def __init__(self, message: str) -> None:
        super().__init__(message, [], 415, "unsupported_media_type")


class StoreLocked(LoopwatchError):
    """Another process (usually a running server) holds the DuckDB file."""

    def __init__(self, message: str) -> None:
        super().__init__(message, [], 409, "store_locked")


class StorageDamaged(LoopwatchError):
    """A sealed Parquet file needed for the request does not match its recorded size/sha256 (503).

    Nothing is read from such a file: answering with its contents could silently return wrong
    rows. ``errors`` names each file (field) with the window it holds and why it is damaged."""

    def __init__(self, message: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(message, errors or [], 503, "storage_damaged")


class MirrorIncomplete(LoopwatchError):
    """The sealed-file mirror Spark reads (``spark_sealed_uri``) lacks files a window needs, or
    holds them with another size than the catalog's (503): reading it would silently miss or
    change rows. ``errors`` names each file; the message says which command pushes them."""

    def __init__(self, message: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(message, errors or [], 503, "mirror_incomplete")
