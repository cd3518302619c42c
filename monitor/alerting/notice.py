"""The contract between the alert pipeline and its channels.

The pipeline decides *what* to say and *when* (state machine, silences, grouping, dedup); a
channel only renders and delivers one :class:`AlertNotice`. Keeping the notice a plain frozen
value means channels stay pure formatting + transport, and an outbox row can be rebuilt into
exactly the same message after a restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Status = Literal["firing", "resolved"]
Severity = Literal["info", "warning", "critical"]
NoticeKind = Literal["new", "repeat", "resolved", "update"]

SEVERITIES: tuple[Severity, ...] = ("info", "warning", "critical")
KINDS: tuple[NoticeKind, ...] = ("new", "repeat", "resolved", "update")


@dataclass(frozen=True)
class AlertNotice:
    """One notification about one alert (or a group of alerts for one model).

    ``kind`` says why the pipeline is notifying: ``new`` (first post), ``repeat`` (still firing
    after ``repeat_interval``; goes in the thread), ``resolved`` (original message updated and a
    note in its thread) or ``update`` (ack/silence changed; original message updated).
    ``what_changed`` is the one line an on-call engineer reads first, e.g.
    "FN rate 4.1% → 9.8% (95% CI 8.9–10.7%) on firmware 3.2 since 14:00".
    Datetimes should be timezone-aware; naive ones are read as UTC when rendered.
    """

    alert_id: str
    fingerprint: str
    status: Status
    severity: Severity
    title: str
    model: str
    model_version: str | None
    segment: dict[str, str] | None
    detector: str
    metric: str
    value: float | None
    threshold: float | None
    window_start: datetime
    window_end: datetime
    what_changed: str
    started_at: datetime
    dashboard_url: str | None
    runbook_url: str | None
    channel: str
    kind: NoticeKind = "new"
    acked_by: str | None = None
    silenced_until: datetime | None = None
    alerts_in_group: int = 1
    error: str | None = None
