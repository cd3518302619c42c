"""``PredictionLogger``: log predictions and labels from a model server without adding latency.

``log()`` only appends to an in-memory queue and returns; one background thread batches the
queue and sends it. Nothing on the caller's side raises (the constructor aside, for arguments
that can never work):

* bounded memory — when the queue is full (server down for long), new records are dropped
  and counted, never blocking the request path;
* retries with exponential backoff and jitter on connection errors, timeouts, 408, 425, 429, 5xx
  and 507, honouring ``Retry-After`` (never retrying earlier than asked) — the batch is kept until
  the server acknowledges it; re-sending is safe because the server deduplicates on
  ``prediction_id``;
* a 422 names the bad rows: those are dropped (and reported) and the rest re-sent; a 413 splits
  the batch; other 4xx (bad key, unknown model) drop the batch and say why;
* ``flush()`` waits for the queue to drain; ``close()`` (also run at interpreter exit) flushes
  with a deadline.
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
from typing import Any, Self

import httpx
import orjson

from loopwatch_client._config import endpoint
from loopwatch_client._records import Authority, label_record, prediction_record
from loopwatch_client._responses import RETRYABLE_STATUS, counts, message, retry_after, row_errors
from loopwatch_client._stats import ClientStats, Counters
from loopwatch_client._version import __version__

log = logging.getLogger("loopwatch.client")

_DUMP_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
_MIN_BACKOFF = 0.2  # seconds, the first exponential step


@dataclass
class _Channel:
    """One endpoint (predictions or labels) with its own queue and at most one batch in flight."""

    path: str
    queue: deque[dict[str, Any]] = field(default_factory=deque)
    in_flight: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class _Retry:
    """A batch to send again: after the server's ``Retry-After``, or None for exponential backoff."""

    after: float | None = None


class PredictionLogger:
    """Queue predictions and labels for one model; a background thread delivers them.

    >>> logger = PredictionLogger("http://loopwatch:8080", api_key="lw_…", model="harsh-braking")  # doctest: +SKIP

    Thread-safe: any number of threads may call ``log()``/``log_label()`` at once. Create the
    logger in the process that logs (after a pre-fork server forks its workers): a forked child
    does not inherit the sender thread.
    """

    def __init__(
        self,
        url: str,
        *,
        api_key: str,
        model: str,
        batch_size: int = 500,
        flush_interval: float = 1.0,
        max_queue: int = 100_000,
        timeout: float = 10.0,
        max_backoff: float = 30.0,
        exit_timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """``url`` of the loopwatch server, an ``ingest`` (or ``admin``) ``api_key``, the registered
        ``model``. ``batch_size`` records per request; a partial batch goes out after
        ``flush_interval`` seconds; at most ``max_queue`` records wait in memory; ``timeout`` per
        request; backoff grows to ``max_backoff``; ``close()`` at exit waits ``exit_timeout``."""
        target = endpoint(url, api_key, model)
        for name, value in (("batch_size", batch_size), ("max_queue", max_queue)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        for name, number in (("flush_interval", flush_interval), ("timeout", timeout), ("max_backoff", max_backoff)):
            if not number > 0:
                raise ValueError(f"{name} must be a positive number of seconds, got {number!r}")
        if not exit_timeout >= 0:
            raise ValueError(f"exit_timeout must be >= 0 seconds, got {exit_timeout!r}")
        self.model = model.strip()
        self._batch_size = batch_size
        self._flush_interval = float(flush_interval)
        self._max_queue = max_queue
        self._max_backoff = float(max_backoff)
        self._exit_timeout = float(exit_timeout)
        self._counters = Counters()
        self._http = httpx.Client(
            base_url=target.base_url,
            headers={  # bytes throughout: the key may hold non-ASCII text (see _config)
                b"Authorization": target.authorization,
                b"Content-Type": b"application/json",
                b"User-Agent": f"loopwatch-client/{__version__}".encode(),
            },
            timeout=timeout,
            transport=transport,
        )
        self._channels = {
            "predictions": _Channel(target.predictions_path),
            "labels": _Channel(target.labels_path),
        }
        self._cond = threading.Condition()  # guards the queues, the counters and the flags below
        self._closing = False  # the sender must stop
        self._close_started = False
        self._flush_requested = False
        if target.key_warning:
            self._note_error(target.key_warning)
        self._thread = threading.Thread(target=self._run, name=f"loopwatch-logger-{self.model}", daemon=True)
        self._thread.start()
        ref = weakref.ref(self)

        def close_at_exit() -> None:  # holds only a weak reference to the logger
            logger = ref()
            if logger is not None:
                logger.close()

        self._close_at_exit = close_at_exit
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
        """Queue one prediction (``timestamp`` defaults to now). True if queued; False if it had
        to be dropped (queue full, logger closed, or unusable arguments) — never an exception."""
        try:
            record = prediction_record(
                prediction_id,
                prediction=prediction,
                features=features,
                timestamp=timestamp,
                score=score,
                probabilities=probabilities,
                latency_ms=latency_ms,
                model_version=model_version,
                segments=segments,
                embedding=embedding,
            )
            return self._enqueue("predictions", record)
        except Exception as exc:  # never raise into the model server
            self._note_error(f"could not queue prediction: {exc!r}")
            return False

    def log_label(
        self,
        prediction_id: str,
        label: Any,
        timestamp: datetime | str | None = None,
        *,
        authority: Authority | None = None,
        source: str | None = None,
    ) -> bool:
        """Queue the ground-truth ``label`` of a prediction (it may arrive before the prediction).
        ``authority`` defaults to the server's ``ground_truth``. Same return rule as ``log()``."""
        try:
            record = label_record(prediction_id, label, timestamp=timestamp, authority=authority, source=source)
            return self._enqueue("labels", record)
        except Exception as exc:
            self._note_error(f"could not queue label: {exc!r}")
            return False

    @property
    def stats(self) -> ClientStats:
        """A snapshot of the counters (sent, dropped, retries, pending, last error …)."""
        with self._cond:
            return self._counters.snapshot(self._pending())

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything queued now and wait; True if the queues drained within ``timeout``
        seconds (None: wait as long as it takes). False at once if the logger is closed with
        records unsent."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._flush_requested = True
            self._cond.notify_all()
            while self._pending() > 0:
                if self._closing or not self._thread.is_alive():
                    return False
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(timeout=0.05 if remaining is None else min(0.05, remaining))
            return True

    def close(self, timeout: float | None = None) -> None:
        """Flush (waiting at most ``timeout``, default ``exit_timeout``), stop the sender and
        release the connection. Records still unsent are reported, not raised. Idempotent."""
        with self._cond:
            if self._close_started:
                return
            self._close_started = True
        try:
            self.flush(self._exit_timeout if timeout is None else timeout)
            with self._cond:
                self._closing = True
                self._cond.notify_all()
            self._thread.join(timeout=2)
            unsent = self.stats.pending
            if unsent:
                log.warning("loopwatch logger closed with %d records unsent (server unreachable)", unsent)
            self._http.close()
        except Exception as exc:  # close() runs at exit too: report, never raise
            log.warning("loopwatch logger did not close cleanly: %r", exc)
        finally:
            atexit.unregister(self._close_at_exit)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals --------------------------------------------------------------------------

    def _enqueue(self, kind: str, record: dict[str, Any]) -> bool:
        with self._cond:
            if self._closing or self._close_started:
                return False
            if self._pending() >= self._max_queue:
                self._counters.dropped_queue_full += 1
                dropped = self._counters.dropped_queue_full
                if dropped in (1, 10, 100, 1000) or dropped % 10_000 == 0:
                    log.warning("loopwatch logger queue full (%d records): dropped %d so far", self._max_queue, dropped)
                return False
            channel = self._channels[kind]
            channel.queue.append(record)
            self._counters.queued += 1
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
            retry: _Retry | None = None
            for channel in batches:
                try:
                    outcome = self._send(channel)
                except Exception as exc:  # the sender must never die; treat as transient
                    self._retrying(f"unexpected error while sending: {exc!r}")
                    outcome = _Retry()
                if outcome is not None and (retry is None or (outcome.after or 0) > (retry.after or 0)):
                    retry = outcome
            if retry is None:
                backoff = 0.0
            elif retry.after is not None:  # the server said when: never earlier, a little later
                backoff = max(0.05, retry.after) * random.uniform(1.0, 1.2)
            else:
                backoff = min(self._max_backoff, max(_MIN_BACKOFF, backoff * 2)) * random.uniform(0.8, 1.2)
            with self._cond:
                self._cond.notify_all()

    def _send(self, channel: _Channel) -> _Retry | None:
        """Send the channel's in-flight batch: None when it is settled (acknowledged, or refused
        and dropped), a ``_Retry`` when it must be sent again."""
        body = self._serialize(channel)
        if body is None:
            return None
        batch = channel.in_flight
        try:
            response = self._http.post(channel.path, content=body)
        except httpx.HTTPError as exc:
            self._retrying(f"cannot reach loopwatch: {exc.__class__.__name__}: {exc}")
            return _Retry()
        status = response.status_code
        if status < 300:
            duplicates, changed = counts(response)
            with self._cond:
                self._counters.sent += len(batch)
                self._counters.duplicates += duplicates
                self._counters.changed_resends += changed
                channel.in_flight = []
            return None
        if status in RETRYABLE_STATUS:
            self._retrying(f"loopwatch answered {status}; retrying")
            return _Retry(retry_after(response))
        if status == 413 and len(batch) > 1:  # too large: send halves, and smaller batches from now on
            with self._cond:
                half = len(batch) // 2
                channel.in_flight = batch[:half]
                channel.queue.extendleft(reversed(batch[half:]))
                self._batch_size = max(1, self._batch_size // 2)
            return None
        if status == 422:
            errors = row_errors(response)
            bad_rows = {e.row for e in errors if e.row is not None and 0 <= e.row < len(batch)}
            reasons = "; ".join(f"row {e.row} {e.field}: {e.reason}" for e in errors[:3])
            with self._cond:
                if bad_rows and len(bad_rows) < len(batch):
                    self._counters.rejected += len(bad_rows)
                    channel.in_flight = [r for i, r in enumerate(batch) if i not in bad_rows]
                else:
                    self._counters.rejected += len(batch)
                    channel.in_flight = []
            self._note_error(f"loopwatch refused {len(bad_rows) or len(batch)} records: {reasons or message(response)}")
            return None
        # 400/401/403/404 or a one-row 413: configuration or data problems that a resend cannot fix.
        with self._cond:
            self._counters.rejected += len(batch)
            channel.in_flight = []
        hint = {401: " (check api_key)", 403: " (the key needs the ingest scope)", 404: " (is the model registered?)"}
        self._note_error(
            f"loopwatch refused a batch of {len(batch)} ({status}{hint.get(status, '')}): {message(response)}"
        )
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
                with self._cond:
                    self._counters.rejected += 1
                self._note_error(f"dropped record {record.get('prediction_id')!r}: not JSON-serialisable ({exc})")
        with self._cond:
            channel.in_flight = keep
        return orjson.dumps(keep, option=_DUMP_OPTIONS) if keep else None

    def _retrying(self, reason: str) -> None:
        with self._cond:
            self._counters.retries += 1
        self._note_error(reason)

    def _note_error(self, reason: str) -> None:
        with self._cond:
            self._counters.last_error = reason
            self._counters.last_error_at = datetime.now(UTC)
        log.warning(reason)
