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
import os
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


def _glibc(name: str, argtypes: list[Any], restype: Any) -> Any:
    """glibc's function ``name`` typed for ctypes, or ``None`` where the C library lacks it
    (musl, macOS, Windows, or an older glibc)."""
    try:
        fn = getattr(ctypes.CDLL(ctypes.util.find_library("c")), name)
    except (OSError, AttributeError, TypeError):
        return None
    fn.argtypes = argtypes
    fn.restype = restype
    return fn


def _load_trim() -> Callable[[int], int] | None:
    return _glibc("malloc_trim", [ctypes.c_size_t], ctypes.c_int)


_TRIM = _load_trim()


#: ``mallopt`` parameter (glibc's malloc.h).
_M_ARENA_MAX = -8
#: At most this many glibc arenas. glibc gives every thread that meets contention its own arena
#: (up to 8 × cores) and keeps what is freed in each one: in the 75-minute soak the server's
#: free-but-resident C heap grew by ~100 MB across 16 arenas (docs/architecture.md).
ARENA_MAX = 2


def tune_allocator() -> bool:
    """Cap glibc's arenas; call once at server start, before the threads. ``MALLOC_ARENA_MAX``
    in the environment wins. True if glibc took the setting (False where there is no glibc).

    glibc's mmap threshold is left dynamic on purpose. A fixed 256 KiB threshold (tried in
    the 25-minute soak) maps and page-faults every block of 256 KiB and more afresh: the id
    filter's probe positions for a 50k-row batch took 7.7 ms instead of 0.6 ms, and the Arrow
    ingest path lost ~15 % (docs/architecture.md, "Flat memory"). What the dynamic threshold
    keeps in the arenas, :func:`release_free_memory` hands back after every monitor run."""
    mallopt = _glibc("mallopt", [ctypes.c_int, ctypes.c_int], ctypes.c_int)
    if mallopt is None:
        return False
    if "MALLOC_ARENA_MAX" in os.environ:
        return True
    return bool(mallopt(_M_ARENA_MAX, ARENA_MAX))


def release_free_memory(*, arrow: bool = True) -> bool:
    """Return free pages to the OS: Arrow's memory pool (unless ``arrow`` is False), then the
    C heap; True if glibc released any (False where there is no glibc).

    The server's periodic release between monitor runs passes ``arrow=False``: request bodies
    are read into buffers from Arrow's pool because it keeps their pages, and a 12 MB body in
    fresh pages costs ~10 ms of page faults instead of ~1 ms.

    Arrow's pool (mimalloc) keeps what it frees, like glibc: a monitor run that materialised a
    30-minute trailing reference (9M rows × 30 columns) left 2.2 GB resident in the 1-hour
    soak. Measured in isolation: 2.3 GB of Arrow arrays freed, RSS 3,540 → 2,395 MB;
    after ``release_unused()`` 55 MB."""
    if arrow:
        try:
            import pyarrow

            pyarrow.default_memory_pool().release_unused()
        except Exception as exc:  # pragma: no cover - never let housekeeping fail a run
            log.debug("releasing Arrow's pool failed: %s", exc)
    if _TRIM is None:
        return False
    try:
        return bool(_TRIM(0))
    except OSError as exc:  # pragma: no cover - defensive: never let housekeeping fail a run
        log.debug("malloc_trim failed: %s", exc)
        return False


# ---------------------------------------------------------------------------------------------
# Where the memory is: the parts an operator (and bench/soak.py) can watch over time.
# ---------------------------------------------------------------------------------------------


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _load_mallinfo2() -> Callable[[], _MallInfo2] | None:
    return _glibc("mallinfo2", [], _MallInfo2)


_MALLINFO2 = _load_mallinfo2()


def _proc_status(fields: tuple[str, ...]) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key in fields:
                    out[key] = int(value.split()[0]) * 1024  # kB
    except OSError:  # not Linux
        pass
    return out


def process_memory() -> dict[str, int]:
    """Bytes by part of this process: resident anonymous/file pages (Linux), the C heap in use
    and free-but-held (glibc), and Arrow's pool. Parts a platform cannot report are absent."""
    parts: dict[str, int] = {}
    status = _proc_status(("RssAnon", "RssFile"))
    if "RssAnon" in status:
        parts["rss_anonymous"] = status["RssAnon"]
    if "RssFile" in status:
        parts["rss_file"] = status["RssFile"]
    if _MALLINFO2 is not None:
        info = _MALLINFO2()
        parts["c_heap_in_use"] = int(info.uordblks + info.hblkhd)
        parts["c_heap_free_held"] = int(info.fordblks)
    try:
        import pyarrow

        parts["arrow_pool"] = int(pyarrow.total_allocated_bytes())
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        pass
    return parts
