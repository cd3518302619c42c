"""What the client did, as counters a model server can export to its own metrics."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime


@dataclass(frozen=True)
class ClientStats:
    """A consistent snapshot (``PredictionLogger.stats`` returns a new one on each read).

    Every record ``log()``/``log_label()`` accepted ends up in exactly one of ``sent``,
    ``rejected`` or ``pending`` (``pending`` = queued or in flight, not yet acknowledged).
    """

    queued: int = 0  # records accepted by log()/log_label()
    sent: int = 0  # records the server acknowledged (2xx)
    pending: int = 0  # accepted, not yet acknowledged
    duplicates: int = 0  # acknowledged ids the server already had (a resend: harmless)
    changed_resends: int = 0  # resent ids whose fields differ from the stored row (the server kept its row)
    dropped_queue_full: int = 0  # refused by log() because the queue was at max_queue
    rejected: int = 0  # refused by the server (4xx) or not JSON-serialisable
    retries: int = 0  # failed attempts that will be retried (network errors, 408/429/5xx)
    last_error: str | None = None
    last_error_at: datetime | None = None

    @property
    def dropped(self) -> int:
        """Records that will never arrive: the queue was full, or they were refused."""
        return self.dropped_queue_full + self.rejected


@dataclass
class Counters:
    """The logger's live counters (guarded by the logger's lock); read them through a snapshot."""

    queued: int = 0
    sent: int = 0
    duplicates: int = 0
    changed_resends: int = 0
    dropped_queue_full: int = 0
    rejected: int = 0
    retries: int = 0
    last_error: str | None = None
    last_error_at: datetime | None = None

    def snapshot(self, pending: int) -> ClientStats:
        return ClientStats(pending=pending, **asdict(self))
