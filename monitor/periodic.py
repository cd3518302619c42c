"""Background jobs on an interval: sealing, alert delivery, labeling sync, rollups.

One small class so every loop behaves the same way: a daemon thread, a stop event that ends the
wait at once, and failures logged and retried on the next tick — never fatal to the service.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("loopwatch")


class Periodic:
    """Runs ``job`` every ``interval`` seconds (the first time after ``first_after``) until stopped."""

    def __init__(
        self, name: str, interval: float, job: Callable[[], object], *, first_after: float | None = None
    ) -> None:
        self.name = name
        self._interval = interval
        self._first_after = interval if first_after is None else first_after
        self._job = job
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)

    def _loop(self) -> None:
        wait = self._first_after
        while not self._stop.wait(wait):
            wait = self._interval
            try:
                self._job()
            except Exception:
                log.exception("%s failed; retrying in %ss", self.name, self._interval)
