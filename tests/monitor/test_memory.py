"""Freed C heap goes back to the OS after every monitor run and on an interval (flat memory, issue 11)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from monitor import memory, scheduling
from monitor import service as service_module
from monitor.db import Database
from monitor.monitors import MonitorSpec
from monitor.schema import ModelSchema
from monitor.service import Loopwatch
from monitor.settings import Settings

MODEL = "harsh-braking"


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(memory._TRIM is None or not Path("/proc/self/status").exists(), reason="glibc/Linux only")
def test_release_free_memory_returns_a_worker_threads_freed_heap() -> None:
    """Rule: memory a worker thread allocated and freed, which glibc keeps in that thread's
    arena, leaves the process's RSS once ``release_free_memory`` runs (what a monitor run's
    window arrays leave behind)."""
    kept: list[bytes] = []

    def work() -> None:
        chunks = [bytes(2000) for _ in range(60_000)]  # ~120 MB in 2 KB malloc chunks
        kept.extend(chunks[::64])  # a few survivors pin the heap: glibc keeps the rest as free memory
        del chunks

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    before = _rss_mb()
    assert memory.release_free_memory()
    assert before - _rss_mb() > 50, "the freed heap stayed in the process"
    assert len(kept) == 60_000 // 64 + 1


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="Linux only")
def test_release_free_memory_returns_what_arrow_s_pool_kept() -> None:
    """Rule: Arrow arrays a run built and dropped (a window, a reference) leave the process's RSS
    once ``release_free_memory`` runs; Arrow's pool would otherwise keep them."""
    import numpy as np
    import pyarrow as pa

    table = pa.table({f"c{i}": pa.array(np.arange(1_000_000, dtype=np.float64) + i) for i in range(20)})
    copy = pa.concat_tables([table, table]).combine_chunks()  # ~320 MB allocated by Arrow's pool
    assert pa.total_allocated_bytes() > 300e6
    del table, copy
    before = _rss_mb()
    memory.release_free_memory()
    assert before - _rss_mb() > 100, "Arrow's freed memory stayed in the process"


def test_every_monitor_run_releases_free_memory_even_a_failed_one(
    service: Loopwatch, braking_model: ModelSchema, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule: the runner hands freed heap back after each run, whether it succeeded or failed."""
    calls: list[int] = []

    def release() -> bool:
        calls.append(1)
        return True

    monkeypatch.setattr(scheduling, "release_free_memory", release)
    spec = {"name": "volume", "detector": "volume", "every": "1h", "window": "1h"}
    service.monitors.save(MODEL, MonitorSpec.model_validate(spec))
    ok = service.runner.run(MODEL, "volume")
    assert ok is not None and ok.error is None
    broken = {**spec, "name": "broken", "detector": "latency", "reference": {"kind": "dataset", "path": "gone.parquet"}}
    service.monitors.save(MODEL, MonitorSpec.model_validate(broken))
    outcome = service.runner.run(MODEL, "broken")
    assert outcome is not None and outcome.error
    assert len(calls) == 2


_ARENAS_OF_EIGHT_THREADS = """
import ctypes, ctypes.util, sys, threading
from monitor import memory
if sys.argv[1] == "tuned":
    assert memory.tune_allocator()
held = []
barrier = threading.Barrier(8)
def work():
    barrier.wait()  # all eight alive at once: none can inherit an arena another thread left
    held.append(bytearray(100_000))
    barrier.wait()
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
ctypes.CDLL(ctypes.util.find_library("c")).malloc_stats()  # one "Arena N:" block per arena
"""


@pytest.mark.skipif(memory._MALLINFO2 is None, reason="glibc only")
def test_tuned_allocator_caps_the_arenas_of_many_threads() -> None:
    """Rule: after ``tune_allocator`` eight threads that allocate at once share at most
    ``ARENA_MAX`` glibc arenas (by default each gets its own, and keeps what it frees)."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    repo = Path(__file__).resolve().parents[2]

    def arenas(mode: str) -> int:
        out = subprocess.run(
            [sys.executable, "-c", _ARENAS_OF_EIGHT_THREADS, mode],
            capture_output=True,
            text=True,
            env=env,
            cwd=repo,
            check=True,
        )
        return sum(line.startswith("Arena ") for line in out.stderr.splitlines())

    assert arenas("default") > memory.ARENA_MAX
    assert 1 <= arenas("tuned") <= memory.ARENA_MAX


@pytest.mark.parametrize("interval", [0.05, 0.0])
def test_the_server_releases_free_memory_on_its_interval_between_monitor_runs(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, interval: float
) -> None:
    """Rule: a running server hands freed heap back every memory_release_interval_seconds, not
    only after monitor runs (ingest and index merges free memory between runs); 0 turns the
    job off."""
    from api import app as app_module

    calls: list[int] = []
    monkeypatch.setattr(app_module, "release_free_memory", lambda arrow=True: calls.append(arrow) or True)
    names = _serve_briefly(settings, {"memory_release_interval_seconds": interval}, calls)
    if interval:
        assert len(calls) >= 3 and "loopwatch-memory-release" in names
        assert not any(calls), "the periodic release emptied Arrow's pool (the request-body buffers' pages)"
    else:
        assert not calls and "loopwatch-memory-release" not in names


def _serve_briefly(settings: Settings, update: dict[str, float], calls: list[Any]) -> set[str]:
    """Run the app with its background jobs until ``calls`` has 3 entries (at most 10 s; not at
    all when the setting turns the job off) and return the names of the threads it ran."""
    from fastapi.testclient import TestClient

    from api import app as app_module

    with TestClient(app_module.create_app(settings.model_copy(update=update), background=True)):
        deadline = time.monotonic() + 10
        while any(update.values()) and len(calls) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        return {t.name for t in threading.enumerate()}


def _cached_table(db: Database) -> int:
    """Write and checkpoint a ~40 MB table, then read it: its blocks sit in DuckDB's pool."""
    db.query("CREATE TABLE filler AS SELECT range AS i, random() AS x, md5(range::VARCHAR) AS s FROM range(1500000)")
    db.checkpoint()
    db.query("SELECT sum(i), sum(x), max(s) FROM filler")
    return db.memory_by_tag().get("base_table", 0)


@pytest.mark.parametrize("configured", ["256MB", None])
def test_release_cache_evicts_the_cached_blocks_and_restores_the_limit(tmp_path: Path, configured: str | None) -> None:
    """Rule: DuckDB's cached table blocks are evicted (BASE_TABLE falls to about the reserve),
    the memory_limit is exactly as before afterwards (configured or DuckDB's default), and the
    data still reads the same."""
    db = Database(tmp_path / "lw.duckdb", memory_limit=configured)
    try:
        limit = db.query("SELECT current_setting('memory_limit')")[0][0]
        cached = _cached_table(db)
        assert cached > 20e6, f"setup: only {cached} bytes cached"
        released = db.release_cache(reserve_bytes=1 << 20)
        assert released > 0.8 * cached
        assert db.memory_by_tag().get("base_table", 0) < 4e6
        assert db.query("SELECT current_setting('memory_limit')")[0][0] == limit
        assert db.query("SELECT count(*), sum(i) FROM filler")[0] == (1500000, 1500000 * 1499999 // 2)
        assert db.release_cache(reserve_bytes=1 << 30) == 0  # less cached than the reserve: nothing to do
    finally:
        db.close()


def test_the_cache_is_not_released_while_a_monitor_run_is_in_progress(
    service: Loopwatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule: the release waits for monitor runs to be idle (a run's scan may need the pool's
    headroom), and a run cannot start while a release holds the limit down."""
    monkeypatch.setattr(service_module, "CACHE_RELEASE_RESERVE_BYTES", 1 << 20)
    cached = _cached_table(service.db)
    started = threading.Event()
    finish = threading.Event()

    def busy() -> None:  # registers a run in progress the way MonitorRunner._execute does
        with service.runner._idle:
            service.runner._inflight["r-1"] = None  # type: ignore[assignment]
        started.set()
        finish.wait(10)
        with service.runner._idle:
            service.runner._inflight.pop("r-1")

    worker = threading.Thread(target=busy)
    worker.start()
    started.wait(10)
    try:
        assert service.release_duckdb_cache() == 0
        assert service.db.memory_by_tag().get("base_table", 0) >= 0.8 * cached
    finally:
        finish.set()
        worker.join(10)
    assert service.release_duckdb_cache() > 0.8 * cached


@pytest.mark.parametrize("interval", [0.05, 0.0])
def test_the_server_releases_duckdbs_cache_on_its_interval(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, interval: float
) -> None:
    """Rule: a running server evicts DuckDB's cached blocks every
    duckdb_cache_release_interval_seconds; 0 turns the job off."""
    calls: list[int] = []
    monkeypatch.setattr(Loopwatch, "release_duckdb_cache", lambda self: calls.append(1) or 0)
    names = _serve_briefly(settings, {"duckdb_cache_release_interval_seconds": interval}, calls)
    if interval:
        assert len(calls) >= 3 and "loopwatch-duckdb-cache-release" in names
    else:
        assert not calls and "loopwatch-duckdb-cache-release" not in names
