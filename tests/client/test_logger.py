"""PredictionLogger against a real loopwatch server: log() never blocks or raises in the caller,
and nothing it accepted is lost while the server is down (within its memory bound)."""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from loopwatch_client import ClientStats, PredictionLogger

from monitor.service import Loopwatch
from monitor.settings import Settings
from tests.client.conftest import Live
from tests.conftest import ServerProcess, free_port

ServerFactory = Callable[[], tuple[ServerProcess, str]]


def _log(logger: PredictionLogger, i: int, **overrides: Any) -> bool:
    kwargs: dict[str, Any] = {
        "prediction": "brake" if i % 2 else "none",
        "features": {"speed_kmh": float(i), "road_type": "urban", "night": False},
        "score": 0.5,
        "latency_ms": 3.0,
        "model_version": "1.0",
        "segments": {"firmware": "3.2"},
    }
    kwargs.update(overrides)
    return logger.log(f"c-{i}", **kwargs)


def _accounted(stats: ClientStats) -> bool:
    """Every accepted record is sent, rejected or still pending — never silently lost."""
    return stats.queued == stats.sent + stats.rejected + stats.pending


@pytest.mark.slow  # a server subprocess
def test_client_survives_a_server_outage_and_delivers_everything_once(server_factory: ServerFactory) -> None:
    """With the server down, log() stays fast and never raises; when it comes back every record
    arrives exactly once."""
    server, key = server_factory()
    logger = PredictionLogger(
        server.url, api_key=key, model="harsh-braking", batch_size=50, flush_interval=0.05, max_backoff=0.5
    )
    try:
        started = time.perf_counter()
        assert all(_log(logger, i) for i in range(300))
        assert time.perf_counter() - started < 1.0  # queuing only, no network in the request path
        assert logger.flush(timeout=0.5) is False  # nothing to talk to yet
        stats = logger.stats
        assert stats.retries > 0 and "cannot reach" in (stats.last_error or "")
        assert stats.pending == 300 and _accounted(stats)
        server.start()
        assert logger.flush(timeout=30) is True
        stats = logger.stats
        assert (stats.sent, stats.dropped, stats.pending) == (300, 0, 0) and _accounted(stats)
    finally:
        logger.close(timeout=5)
        server.stop()
    service = Loopwatch(Settings(data_dir=server.data_dir))
    try:
        ids = service.store.scan("harsh-braking").column("prediction_id").to_pylist()
        assert len(ids) == 300 and len(set(ids)) == 300
    finally:
        service.close()


@pytest.mark.slow  # a server subprocess
def test_bad_records_are_dropped_and_the_rest_delivered(live: Live, model: str) -> None:
    """A 422 naming rows drops only those rows; unserialisable values are dropped client-side."""
    with PredictionLogger(live.url, api_key=live.key, model=model, batch_size=10, flush_interval=0.05) as logger:
        _log(logger, 1)
        _log(logger, 2, prediction="skid")  # not a class: refused by the server
        _log(logger, 3, features={"speed_kmh": object()})  # cannot be JSON
        _log(logger, 4)
        assert logger.flush(timeout=20)
        stats = logger.stats
        assert (stats.sent, stats.rejected, stats.dropped) == (2, 2, 2) and _accounted(stats)
        assert "refused" in (stats.last_error or "") or "JSON" in (stats.last_error or "")
    assert live.counts(model) == (2, 0)


def test_memory_is_bounded_when_the_server_is_gone() -> None:
    """Past max_queue records, log() returns False and counts drops instead of growing memory."""
    logger = PredictionLogger(
        f"http://127.0.0.1:{free_port()}",
        api_key="lw_" + "x" * 43,
        model="harsh-braking",
        max_queue=20,
        flush_interval=10,
        max_backoff=0.2,
    )
    try:
        results = [_log(logger, i) for i in range(30)]
        stats = logger.stats
        assert results.count(True) == 20 and stats.dropped_queue_full == 10 and stats.pending == 20
    finally:
        logger.close(timeout=0.2)


@pytest.mark.slow  # a server subprocess
def test_labels_are_sent_through_the_same_client(live: Live, model: str) -> None:
    """log_label() delivers ground truth for earlier predictions, with an optional authority."""
    with PredictionLogger(live.url, api_key=live.key, model=model, batch_size=5, flush_interval=0.05) as logger:
        _log(logger, 1, timestamp=datetime.now(UTC))
        _log(logger, 2, timestamp=datetime.now(UTC))
        assert logger.log_label("c-1", "brake")
        assert logger.log_label("c-2", "none", authority="review", source="qa-desk")
        assert logger.flush(timeout=20)
        assert logger.stats.sent == 4
    assert live.counts(model) == (2, 2)
    label = httpx.get(
        f"{live.url}/v1/models/{model}/labels/c-2", headers={"Authorization": f"Bearer {live.key}"}
    ).json()
    assert label["authority"] == "review"


@pytest.mark.slow  # a server subprocess
def test_log_never_raises_and_refuses_after_close(live: Live, model: str) -> None:
    """Arguments that cannot make a record give False (and a reason in stats), not an exception;
    after close() log() returns False."""

    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no")

    logger = PredictionLogger(live.url, api_key=live.key, model=model, flush_interval=0.05)
    try:
        assert logger.log(Unprintable(), prediction="brake") is False  # type: ignore[arg-type]
        assert logger.log("c-1", prediction="brake", features=5) is False  # type: ignore[arg-type]
        assert "could not queue" in (logger.stats.last_error or "")
        assert logger.log("c-2", prediction="brake") is True
    finally:
        logger.close(timeout=10)
    assert logger.log("c-3", prediction="brake") is False
    assert logger.log_label("c-2", "brake") is False
    assert logger.stats.sent == 1 and live.counts(model) == (1, 0)
    logger.close()  # idempotent


def test_stats_are_a_snapshot() -> None:
    """stats is a frozen copy: reading it twice gives consistent values the caller cannot corrupt."""
    logger = PredictionLogger(f"http://127.0.0.1:{free_port()}", api_key="lw_" + "y" * 43, model="m", flush_interval=10)
    try:
        before = logger.stats
        assert logger.log("a", prediction="brake")
        with pytest.raises(dataclasses.FrozenInstanceError):
            before.sent = 5  # type: ignore[misc]
        assert (before.queued, logger.stats.queued) == (0, 1)
    finally:
        logger.close(timeout=0)


@pytest.mark.slow  # a server subprocess
def test_many_threads_log_at_once_and_each_record_arrives_once(live: Live, model: str) -> None:
    """log() is thread-safe: 8 threads x 250 records, all delivered exactly once."""
    logger = PredictionLogger(live.url, api_key=live.key, model=model, batch_size=100, flush_interval=0.05)
    results: list[bool] = []
    lock = threading.Lock()

    def work(t: int) -> None:
        mine = [_log(logger, t * 1000 + i) for i in range(250)]
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert len(results) == 2000 and all(results)
        assert logger.flush(timeout=60)
        stats = logger.stats
        assert (stats.queued, stats.sent, stats.dropped) == (2000, 2000, 0)
    finally:
        logger.close(timeout=5)
    assert live.counts(model) == (2000, 0)


@pytest.mark.slow  # a server subprocess
def test_retry_after_from_an_overloaded_server_is_honoured(server_factory: ServerFactory) -> None:
    """The server's 503 + Retry-After (max_inflight_ingest reached) makes the client wait at least
    that long before the one retry, instead of hammering it with exponential backoff."""
    server, key = server_factory()
    server.env = {"LOOPWATCH_MAX_INFLIGHT_INGEST": "1", "LOOPWATCH_OVERLOAD_RETRY_AFTER_SECONDS": "2"}
    server.start()
    # Hold the only ingest slot: a request whose body has not arrived yet.
    holder = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        holder.sendall(
            (
                "POST /v1/models/harsh-braking/predictions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n"
            ).encode()
        )
        time.sleep(0.5)  # let the server count it in flight
        with PredictionLogger(
            server.url, api_key=key, model="harsh-braking", flush_interval=0.05, max_backoff=0.3
        ) as logger:
            assert _log(logger, 1)
            deadline = time.monotonic() + 10
            while logger.stats.retries == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            refused_at = logger.stats.last_error_at
            assert refused_at is not None and "503" in (logger.stats.last_error or "")
            time.sleep(1.0)  # still inside the 2 s the server asked for: free the slot
            holder.sendall(b"[]")
            while logger.stats.sent == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            delivered_at = datetime.now(UTC)
            stats = logger.stats
            assert stats.sent == 1 and stats.retries == 1
            assert (delivered_at - refused_at).total_seconds() >= 2.0
    finally:
        holder.close()


@pytest.mark.slow  # a server subprocess
def test_a_too_large_batch_is_split_until_it_fits(server_factory: ServerFactory) -> None:
    """413 from the server's body limit halves the batch (and later batches) until every record
    fits, and nothing is lost."""
    server, key = server_factory()
    server.env = {"LOOPWATCH_MAX_BODY_BYTES": "4096"}
    server.start()
    with PredictionLogger(server.url, api_key=key, model="harsh-braking", batch_size=100, flush_interval=5) as logger:
        assert all(_log(logger, i) for i in range(100))
        assert logger.flush(timeout=30)
        stats = logger.stats
        assert (stats.sent, stats.rejected) == (100, 0), stats
    response = httpx.get(f"{server.url}/v1/models/harsh-braking/stats", headers={"Authorization": f"Bearer {key}"})
    assert response.json()["predictions"] == 100


@pytest.mark.slow  # a server subprocess
def test_records_still_queued_are_sent_at_interpreter_exit(live: Live, model: str) -> None:
    """A process that exits without close() still delivers what it queued (atexit flush)."""
    script = textwrap.dedent(
        f"""
        from loopwatch_client import PredictionLogger
        logger = PredictionLogger({live.url!r}, api_key={live.key!r}, model={model!r}, flush_interval=60)
        for i in range(50):
            assert logger.log(f"exit-{{i}}", prediction="brake", score=0.7)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert live.counts(model) == (50, 0)
