"""The logging client never blocks or raises in the caller, and loses nothing it acknowledged
queuing while the server is down (within its memory bound)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx

from monitor.client import PredictionLogger
from monitor.service import Loopwatch
from monitor.settings import Settings
from tests.conftest import free_port


def _log(logger: PredictionLogger, i: int, **overrides: object) -> bool:
    kwargs: dict = {
        "prediction": "brake" if i % 2 else "none",
        "features": {"speed_kmh": float(i), "road_type": "urban", "night": False},
        "score": 0.5,
        "latency_ms": 3.0,
        "model_version": "1.0",
        "segments": {"firmware": "3.2"},
    }
    kwargs.update(overrides)
    return logger.log(f"c-{i}", **kwargs)


def test_client_survives_a_server_outage_and_delivers_everything_once(server_factory) -> None:
    """With the server down, log() stays fast and never raises; when it comes back every record
    arrives exactly once."""
    server, key = server_factory()
    logger = PredictionLogger(server.url, key, "harsh-braking", batch_size=50, flush_interval=0.05, max_backoff=0.5)
    try:
        started = time.perf_counter()
        assert all(_log(logger, i) for i in range(300))
        assert time.perf_counter() - started < 1.0  # queuing only, no network in the request path
        assert logger.flush(timeout=0.5) is False  # nothing to talk to yet
        assert logger.stats.retries > 0 and "cannot reach" in (logger.stats.last_error or "")
        server.start()
        assert logger.flush(timeout=30) is True
        assert logger.stats.sent == 300 and logger.stats.dropped_queue_full == 0
    finally:
        logger.close(timeout=5)
        server.stop()
    service = Loopwatch(Settings(data_dir=server.data_dir))
    try:
        table = service.store.scan("harsh-braking")
        ids = table.column("prediction_id").to_pylist()
        assert len(ids) == 300 and len(set(ids)) == 300
    finally:
        service.close()


def test_bad_records_are_dropped_and_the_rest_delivered(server_factory) -> None:
    """A 422 naming rows drops only those rows; unserialisable values are dropped client-side."""
    server, key = server_factory()
    server.start()
    with PredictionLogger(server.url, key, "harsh-braking", batch_size=10, flush_interval=0.05) as logger:
        _log(logger, 1)
        _log(logger, 2, prediction="skid")  # not a class: refused by the server
        _log(logger, 3, features={"speed_kmh": object()})  # cannot be JSON
        _log(logger, 4)
        assert logger.flush(timeout=20)
        assert logger.stats.sent == 2 and logger.stats.rejected == 2
    stats = httpx.get(f"{server.url}/v1/models/harsh-braking/stats", headers={"Authorization": f"Bearer {key}"}).json()
    assert stats["predictions"] == 2


def test_memory_is_bounded_when_the_server_is_gone() -> None:
    """Past max_queue records, log() returns False and counts drops instead of growing memory."""
    logger = PredictionLogger(
        f"http://127.0.0.1:{free_port()}", "lw_x", "harsh-braking", max_queue=20, flush_interval=10, max_backoff=0.2
    )
    try:
        results = [_log(logger, i) for i in range(30)]
        assert results.count(True) == 20 and logger.stats.dropped_queue_full == 10
    finally:
        logger.close(timeout=0.2)


def test_labels_are_sent_through_the_same_client(server_factory) -> None:
    """log_label() delivers ground truth for earlier predictions."""
    server, key = server_factory()
    server.start()
    with PredictionLogger(server.url, key, "harsh-braking", batch_size=5, flush_interval=0.05) as logger:
        _log(logger, 1, timestamp=datetime.now(UTC))
        logger.log_label("c-1", "brake")
        assert logger.flush(timeout=20)
    stats = httpx.get(f"{server.url}/v1/models/harsh-braking/stats", headers={"Authorization": f"Bearer {key}"}).json()
    assert (stats["predictions"], stats["labels"]) == (1, 1)
