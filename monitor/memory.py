"""Give memory freed by the C heap back to the operating system (glibc ``malloc_trim``).

A monitor run converts a window (300k rows × 30 columns at 5k rows/s with 1-minute windows)
into NumPy arrays on one of the scheduler's worker threads. glibc gives each thread its own
malloc arena and keeps what is freed in it for reuse, so after every run tens of MB stayed
in the process as free heap: in a 3-minute soak glibc's free-but-held memory went from 4 to
168 MB with four monitors and stayed at 13 MB without them (docs/architecture.md, *Flat
memory*). ``malloc_trim(0)`` returns those free pages in every arena. DuckDB allocates with
its own bundled jemalloc and is unaffected; its buffer pool is bounded by ``memory_limit``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


def _load_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (OSError, AttributeError, TypeError):  # not glibc (musl, macOS, Windows): nothing to trim
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_TRIM = _load_trim()


def release_free_memory() -> bool:
    """Return the C heap's free pages to the OS; True if glibc released any (False elsewhere)."""
    if _TRIM is None:
        return False
    try:
        return bool(_TRIM(0))
    except OSError as exc:  # pragma: no cover - defensive: never let housekeeping fail a run
        log.debug("malloc_trim failed: %s", exc)
        return False
