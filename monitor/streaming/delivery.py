"""What every consumer (MQTT, Kafka) does with one message, and what it reports about its source.

:func:`store_with_retry` hands a message to the store and, while the store refuses, retries the
same message with exponential backoff — waiting through a function the consumer supplies, so
each broker's own way of holding back the rest (MQTT: a full in-flight window; Kafka: paused
partitions) happens while it waits. :class:`SourceTally` counts the outcomes for the status,
the page and the metrics listener, so both consumers report the same fields the same way.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any

from monitor.clock import Clock, iso_z, utcnow
from monitor.streaming.ingest import Outcome, StoreRefused

log = logging.getLogger("loopwatch")

# (where the message came from: an MQTT topic, or topic[partition]@offset; payload) → outcome,
# or raises StoreRefused
Handler = Callable[[str, bytes], Outcome]
Listener = Callable[[str, str, int], None]  # (source, result, rows); result: stored|dead_letter|error|commit_failed
Wait = Callable[[float], bool]  # sleep about this long (doing the broker's upkeep); False = give the message up

BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0
RATE_WINDOW_S = 60.0  # rows/s on the page: over the last minute


class SourceTally:
    """Counts, rows, the last error and the last minute's throughput of one source's consumer."""

    def __init__(self, name: str, listener: Listener | None = None, now: Clock = utcnow) -> None:
        self.name = name
        self._listener = listener
        self._now = now
        self.counts = {"stored": 0, "dead_letter": 0, "error": 0, "commit_failed": 0}
        self.rows = 0
        self.last_error: str | None = None
        self.last_message_at: datetime | None = None
        self._last_monotonic: float | None = None
        self._recent: deque[tuple[float, int]] = deque()  # (monotonic time, rows) of the last minute

    def refused(self, reason: str, delay: float) -> None:
        self.last_error = f"store refused, retrying in {delay:.1f}s: {reason}"
        self.counts["error"] += 1
        self._notify("error", 0)
        log.warning("source %s: %s", self.name, self.last_error)

    def handled(self, outcome: Outcome) -> None:
        moment = time.monotonic()
        self.last_message_at = self._now()
        self._last_monotonic = moment
        self.counts[outcome.result] += 1
        self.rows += outcome.rows
        self._recent.append((moment, outcome.rows))
        if outcome.result == "dead_letter":
            self.last_error = f"dead letter: {outcome.reason}"
        elif self.last_error and self.last_error.startswith("store refused"):
            self.last_error = None
        self._notify(outcome.result, outcome.rows)

    def commit_failed(self, reason: str) -> None:
        """The rows are durable but the broker did not take the acknowledgement: the message
        will be redelivered and deduplicated by its ids."""
        self.last_error = f"commit failed (the message will be redelivered, its rows are stored): {reason}"
        self.counts["commit_failed"] += 1
        self._notify("commit_failed", 0)
        log.warning("source %s: %s", self.name, self.last_error)

    def rows_per_second(self) -> float:
        """Rows stored per second over the last minute (or since the consumer started, if sooner)."""
        horizon = time.monotonic() - RATE_WINDOW_S
        while self._recent and self._recent[0][0] < horizon:
            self._recent.popleft()
        return round(sum(rows for _, rows in list(self._recent)) / RATE_WINDOW_S, 1)

    def seconds_since_last_message(self) -> float | None:
        return None if self._last_monotonic is None else round(time.monotonic() - self._last_monotonic, 1)

    def status(self) -> dict[str, Any]:
        return {
            "last_error": self.last_error,
            "last_message_at": iso_z(self.last_message_at),
            "seconds_since_last_message": self.seconds_since_last_message(),
            "messages": dict(self.counts),
            "rows": self.rows,
            "rows_per_second_1m": self.rows_per_second(),
        }

    def _notify(self, result: str, rows: int) -> None:
        if self._listener is not None:
            try:
                self._listener(self.name, result, rows)
            except Exception:
                log.exception("source listener failed")


def store_with_retry(
    handle: Callable[[], Outcome], tally: SourceTally, wait: Wait, backoff_max_s: float = BACKOFF_MAX_S
) -> Outcome | None:
    """The message's outcome once stored or dead-lettered; ``None`` when ``wait`` gave it up
    (stopping, or the partition moved to another consumer) before it was stored — the caller
    then acknowledges nothing and the broker redelivers it."""
    delay = BACKOFF_FIRST_S
    while True:
        try:
            outcome = handle()
        except StoreRefused as exc:
            tally.refused(str(exc), delay)
            if not wait(delay):
                return None
            delay = min(delay * 2, backoff_max_s)
            continue
        tally.handled(outcome)
        return outcome
