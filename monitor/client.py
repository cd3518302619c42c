"""A logging client for model servers: log predictions and labels without adding latency.

``log()`` only appends to an in-memory queue and returns; a background thread batches the
queue and sends it. The client never raises into the caller's code:

* bounded memory — when the queue is full (server down for long), new records are dropped
  and counted, never blocking the request path;
* retries with exponential backoff and jitter on connection errors, timeouts, 408, 429
  (honouring ``Retry-After``) and 5xx — the batch is kept until the server acknowledges it;
  re-sending is safe because the server deduplicates on ``prediction_id``;
* a 422 names the bad rows: those are dropped (and logged) and the rest re-sent;
  a 413 splits the batch;
* ``flush()`` waits for the queue to drain; ``close()`` (also run at interpreter exit) flushes
  with a deadline.

Example::

    from monitor.client import PredictionLogger

    logger = PredictionLogger("http://loopwatch:8080", api_key="lw_…", model="harsh-braking")
    logger.log(prediction_id=request_id, features={"speed_kmh": 72.5}, prediction="brake",
               score=0.91, latency_ms=14.2, model_version="3.1.0", segments={"firmware": "3.2"})
"""

from __future__ import annotations

import atexit
import logging
import random
import threading
import time
import weakref
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

log = logging.getLogger("loopwatch.client")

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504, 507})  # 507: disk full, retried after Retry-After
_DUMP_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


@dataclass
class ClientStats:
    """Counters a model server can export to its own metrics."""

    queued: int = 0
    sent: int = 0
    duplicates: int = 0
    changed_resends: int = 0  # resent ids whose fields differ from the stored row (server kept its row)
    dropped_queue_full: int = 0
    rejected: int = 0
    retries: int = 0
    last_error: str | None = None
    last_error_at: datetime | None = None


@dataclass
class _Channel:
    """One endpoint (predictions or labels) with its own queue."""

    path: str
    queue: deque[dict[str, Any]] = field(default_factory=deque)
    in_flight: list[dict[str, Any]] = field(default_factory=list)


class PredictionLogger:
    def __init__(
        self,
        url: str,
        api_key: str,
        model: str,
        *,
        batch_size: int = 500,
        flush_interval: float = 1.0,
        max_queue: int = 100_000,
        timeout: float = 10.0,
        max_backoff: float = 30.0,
        exit_timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.model = model
        self.stats = ClientStats()
        self._batch_size = max(1, batch_size)
        self._flush_interval = flush_interval
        self._max_queue = max_queue
        self._max_backoff = max_backoff
        self._exit_timeout = exit_timeout
        self._http = httpx.Client(
            base_url=url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
            timeout=timeout,
            transport=transport,
        )
        self._channels = {
            "predictions": _Channel(f"/v1/models/{model}/predictions"),
            "labels": _Channel(f"/v1/models/{model}/labels"),
        }
        self._cond = threading.Condition()
        self._closing = False
        self._flush_requested = False
        self._thread = threading.Thread(target=self._run, name=f"loopwatch-logger-{model}", daemon=True)
        self._thread.start()
        ref = weakref.ref(self)

        def close_at_exit() -> None:  # holds only the weak reference: the logger can still be collected
            logger = ref()
            if logger is not None:
                logger.close()

        atexit.register(close_at_exit)

    # -- the caller's side: cheap, never raises -------------------------------------------

    def log(
        self,
        prediction_id: str,
        *,
        prediction: Any,
        features: Mapping[str, Any] | None = None,
        timestamp: datetime | str | None = None,
        score: float | None = None,
        probabilities: Sequence[float] | Mapping[str, float] | None = None,
        latency_ms: float | None = None,
        model_version: str | None = None,
        segments: Mapping[str, Any] | None = None,
        embedding: Sequence[float] | None = None,
    ) -> bool:
        """Queue one prediction. Returns False (and counts it) if it had to be dropped."""
        try:
            record: dict[str, Any] = {
                "prediction_id": str(prediction_id),
                "timestamp": _iso(timestamp),
                "prediction": prediction,
            }
            if features:
                record["features"] = dict(features)
            if score is not None:
                record["score"] = score
            if probabilities is not None:
                record["probabilities"] = (
                    dict(probabilities) if isinstance(probabilities, Mapping) else list(probabilities)
                )
            if latency_ms is not None:
                record["latency_ms"] = latency_ms
            if model_version is not None:
                record["model_version"] = str(model_version)
            if segments:
                record["segments"] = dict(segments)
            if embedding is not None:
                record["embedding"] = list(embedding)
            return self._enqueue("predictions", record)
        except Exception as exc:  # never raise into the model server
            self._note_error(f"could not queue prediction: {exc}")
            return False

    def log_label(self, prediction_id: str, label: Any, timestamp: datetime | str | None = None) -> bool:
        """Queue one ground-truth label for an earlier prediction."""
        try:
            return self._enqueue(
                "labels", {"prediction_id": str(prediction_id), "label": label, "timestamp": _iso(timestamp)}
            )
        except Exception as exc:
            self._note_error(f"could not queue label: {exc}")
            return False

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything queued now; True if the queues drained within ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._flush_requested = True
            self._cond.notify_all()
            while self._pending() > 0:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(timeout=0.05 if remaining is None else min(0.05, remaining))
            return True

    def close(self, timeout: float | None = None) -> None:
        """Flush (bounded by ``timeout``, default ``exit_timeout``) and stop the sender."""
        if self._closing:
            return
        self.flush(self._exit_timeout if timeout is None else timeout)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout=2)
        if self._pending():
            log.warning("loopwatch logger closed with %d records unsent (server unreachable)", self._pending())
        self._http.close()

    def __enter__(self) -> PredictionLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals --------------------------------------------------------------------------

    def _enqueue(self, kind: str, record: dict[str, Any]) -> bool:
        with self._cond:
            if self._closing:
                return False
            if self._pending() >= self._max_queue:
                self.stats.dropped_queue_full += 1
                if self.stats.dropped_queue_full in (1, 10, 100, 1000) or self.stats.dropped_queue_full % 10_000 == 0:
                    log.warning(
                        "loopwatch logger queue full (%d records): dropped %d so far",
                        self._max_queue,
                        self.stats.dropped_queue_full,
                    )
                return False
            channel = self._channels[kind]
            channel.queue.append(record)
            self.stats.queued += 1
            if len(channel.queue) >= self._batch_size:
                self._cond.notify_all()
            return True

    def _pending(self) -> int:
        return sum(len(c.queue) + len(c.in_flight) for c in self._channels.values())

    def _run(self) -> None:
        backoff = 0.0
        while True:
            with self._cond:
                if backoff:  # a deadline: new records must not make us hammer a server that is down
                    deadline = time.monotonic() + backoff
                    while not self._closing and (remaining := deadline - time.monotonic()) > 0:
                        self._cond.wait(timeout=remaining)
                else:
                    self._cond.wait_for(
                        lambda: (
                            self._closing
                            or self._flush_requested
                            or any(len(c.queue) >= self._batch_size for c in self._channels.values())
                        ),
                        timeout=self._flush_interval,
                    )
                if self._closing:
                    return
                batches = []
                for channel in self._channels.values():
                    if not channel.in_flight and channel.queue:
                        n = min(self._batch_size, len(channel.queue))
                        channel.in_flight = [channel.queue.popleft() for _ in range(n)]
                    if channel.in_flight:
                        batches.append(channel)
                if not batches:
                    self._flush_requested = False
                    self._cond.notify_all()
                    continue
            ok = True
            for channel in batches:
                try:
                    delay = self._send(channel)
                except Exception as exc:  # the sender must never die; treat as transient
                    self._note_error(f"unexpected error while sending: {exc!r}")
                    delay = 0.0
                if delay is not None:
                    ok = False
                    backoff = delay if delay > 0 else min(self._max_backoff, max(0.2, backoff * 2 or 0.2))
                    backoff *= random.uniform(0.8, 1.2)
            if ok:
                backoff = 0.0
            with self._cond:
                self._cond.notify_all()

    def _send(self, channel: _Channel) -> float | None:
        """Send the channel's in-flight batch. None = done; a number = retry after that delay
        (0 means "use exponential backoff")."""
        batch = channel.in_flight
        body = self._serialize(channel)
        if body is None:
            return None
        batch = channel.in_flight
        try:
            response = self._http.post(channel.path, content=body)
        except httpx.HTTPError as exc:
            self.stats.retries += 1
            self._note_error(f"cannot reach loopwatch: {exc.__class__.__name__}: {exc}")
            return 0.0
        status = response.status_code
        if status < 300:
            body = _json(response)
            with self._cond:
                self.stats.sent += len(batch)
                self.stats.duplicates += int(body.get("duplicates", 0)) if isinstance(body, dict) else 0
                self.stats.changed_resends += int(body.get("changed", 0)) if isinstance(body, dict) else 0
                channel.in_flight = []
            return None
        if status in RETRYABLE_STATUS:
            self.stats.retries += 1
            self._note_error(f"loopwatch answered {status}; retrying")
            retry_after = response.headers.get("retry-after", "")
            return float(retry_after) if retry_after.replace(".", "", 1).isdigit() else 0.0
        if status == 413 and len(batch) > 1:
            with self._cond:
                half = len(batch) // 2
                channel.in_flight = batch[:half]
                channel.queue.extendleft(reversed(batch[half:]))
            self._batch_size = max(1, self._batch_size // 2)
            return None
        if status == 422:
            bad_rows = {e["row"] for e in _json(response).get("error", {}).get("errors", []) if "row" in e}
            reasons = "; ".join(
                f"row {e.get('row')} {e.get('field')}: {e.get('reason')}"
                for e in _json(response).get("error", {}).get("errors", [])[:3]
            )
            with self._cond:
                if bad_rows and len(bad_rows) < len(batch):
                    self.stats.rejected += len(bad_rows)
                    channel.in_flight = [r for i, r in enumerate(batch) if i not in bad_rows]
                else:
                    self.stats.rejected += len(batch)
                    channel.in_flight = []
            self._note_error(f"loopwatch refused {len(bad_rows) or len(batch)} records: {reasons}")
            return None
        with self._cond:  # 400/401/403/404/413 of one row: configuration or data problems; drop
            self.stats.rejected += len(batch)
            channel.in_flight = []
        self._note_error(f"loopwatch refused a batch of {len(batch)} ({status}): {response.text[:300]}")
        return None

    def _serialize(self, channel: _Channel) -> bytes | None:
        """JSON for the in-flight batch; records that cannot be serialised are dropped and counted."""
        try:
            return orjson.dumps(channel.in_flight, option=_DUMP_OPTIONS)
        except TypeError:
            pass
        keep = []
        for record in channel.in_flight:
            try:
                orjson.dumps(record, option=_DUMP_OPTIONS)
                keep.append(record)
            except TypeError as exc:
                self.stats.rejected += 1
                self._note_error(f"dropped prediction {record.get('prediction_id')!r}: not JSON-serialisable ({exc})")
        with self._cond:
            channel.in_flight = keep
        return orjson.dumps(keep, option=_DUMP_OPTIONS) if keep else None

    def _note_error(self, message: str) -> None:
        self.stats.last_error = message
        self.stats.last_error_at = datetime.now(UTC)
        log.warning(message)


def _iso(value: datetime | str | None) -> str:
    if value is None:
        return datetime.now(UTC).isoformat()
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    return str(value)


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return {}
