"""The per-run facts a detector stamps on its findings: which model, which window, which reference.

Detectors never read a clock: the scheduler passes the window bounds here, and detectors that
need "now" (freshness) use ``window_end``. That is what makes a re-run of the same window
reproduce the same findings bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from detectors.finding import Finding, Status


@dataclass(frozen=True)
class RunContext:
    """Identity of one detector run.

    >>> from datetime import datetime, timezone
    >>> ctx = RunContext("m", datetime(2026, 1, 1, tzinfo=timezone.utc),
    ...                  datetime(2026, 1, 1, 1, tzinfo=timezone.utc), reference="trailing 7d")
    >>> ctx.finding("volume", metric="rows", status="ok", value=10).status
    <Status.OK: 'ok'>
    """

    model: str
    window_start: datetime
    window_end: datetime
    reference: str = ""
    model_version: str | None = None

    def __post_init__(self) -> None:
        if self.window_end < self.window_start:
            raise ValueError("window_end is before window_start")

    def finding(
        self,
        detector: str,
        *,
        metric: str,
        status: Status | str,
        segment: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Finding:
        """Build a :class:`Finding` pre-filled with this context's model, window and reference."""
        kwargs.setdefault("model_version", self.model_version)
        kwargs.setdefault("reference", self.reference)
        return Finding(
            detector=detector,
            model=self.model,
            window_start=self.window_start,
            window_end=self.window_end,
            metric=metric,
            status=Status(status),
            segment=segment,
            **kwargs,
        )
