"""Checking sealed Parquet files against the catalog: size and sha256, with bounded I/O.

The store records each sealed file's size and sha256 when it seals it. A file that no longer
matches (truncated, zeroed, bit-flipped, missing) must never be read: its rows would be wrong
without any error. This module only compares a file with its record; the store decides when
(background pass, first use in a process, a failed read) and keeps the list of damaged files.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

CHUNK = 1 << 20


@dataclass(frozen=True)
class SealedRecord:
    """One row of the sealed-file catalog (path relative to the sealed directory)."""

    path: str
    model: str
    date: date
    rows: int
    min_ts: datetime
    max_ts: datetime
    bytes: int
    sha256: str


@dataclass(frozen=True)
class Problem:
    """A sealed file that does not match its record, and why."""

    path: str
    model: str
    date: date
    window_start: datetime
    window_end: datetime
    reason: str
    detected_at: datetime

    def to_dict(self) -> dict[str, Any]:
        from monitor.clock import iso_z

        return {
            "path": self.path,
            "model": self.model,
            "date": self.date.isoformat(),
            "window_start": iso_z(self.window_start),
            "window_end": iso_z(self.window_end),
            "reason": self.reason,
            "detected_at": iso_z(self.detected_at),
        }


class Stopped(Exception):
    """Verification was asked to stop (shutdown)."""


class Throttle:
    """Caps hashing to ``bytes_per_second`` (0 = unlimited), shared by every file of one pass."""

    def __init__(self, bytes_per_second: int, stop: threading.Event | None = None) -> None:
        self._rate = bytes_per_second
        self._stop = stop
        self._start = time.monotonic()
        self._done = 0

    def consumed(self, n: int) -> None:
        if self._stop is not None and self._stop.is_set():
            raise Stopped
        self._done += n
        if self._rate <= 0:
            return
        ahead = self._done / self._rate - (time.monotonic() - self._start)
        if ahead > 0:
            if self._stop is not None:
                if self._stop.wait(ahead):
                    raise Stopped
            else:
                time.sleep(ahead)


def check_file(full_path: Path, size: int, sha256: str, throttle: Throttle | None = None) -> str | None:
    """``None`` when the file has the recorded size and sha256, else the reason it does not.

    The size is checked first (a truncated file costs one ``stat``); the hash reads the file in
    1 MiB chunks, so memory stays flat whatever the file's size."""
    try:
        actual = full_path.stat().st_size
    except FileNotFoundError:
        return "missing: the file is not on disk"
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"
    if actual != size:
        return f"size {actual} bytes, recorded {size} bytes (truncated or replaced)"
    digest = hashlib.sha256()
    try:
        with full_path.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
                if throttle is not None:
                    throttle.consumed(len(chunk))
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"
    if digest.hexdigest() != sha256:
        return f"sha256 {digest.hexdigest()[:16]}…, recorded {sha256[:16]}… (contents changed)"
    return None


def file_signature(full_path: Path) -> tuple[int, int] | None:
    """(size, mtime_ns): a file whose signature changed since it was verified is verified again."""
    try:
        st = os.stat(full_path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


__all__ = ["Problem", "SealedRecord", "Stopped", "Throttle", "check_file", "file_signature"]
