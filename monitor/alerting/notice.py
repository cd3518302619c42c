"""The contract between the alert pipeline and its receivers: one notice per alert *group*.

The pipeline decides *what* to say and *when* (state machine, silences, grouping, timers,
dedup); a receiver only renders and delivers one :class:`GroupNotice`. The notice is always
built from the group's *current* state at delivery time, so several changes that piled up
(an outage, a burst of alerts joining) collapse into one message that is simply right.
Keeping it a plain frozen value means receivers stay pure formatting + transport.
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
class AlertLine:
    """One alert as listed in its group's message.

    ``what_changed`` is the line on-call reads first, e.g.
    "FN rate 4.1% → 9.8% (95% CI 8.9–10.7%) on firmware 3.2 vs trailing 7d".
    Datetimes should be timezone-aware; naive ones are read as UTC when rendered.
    """

    alert_id: str
    status: Status
    severity: Severity
    title: str
    detector: str
    metric: str
    column: str | None
    segment: dict[str, str] | None
    model_version: str | None
    value: float | None
    threshold: float | None
    what_changed: str
    window_start: datetime
    window_end: datetime
    started_at: datetime
    resolved_at: datetime | None = None
    acked_by: str | None = None
    silenced_until: datetime | None = None
    dashboard_url: str | None = None
    #: The monitor that raised it (a label for receivers that carry labels: webhook, PagerDuty).
    monitor: str = ""


@dataclass(frozen=True)
class GroupNotice:
    """What a group's message should show now, and why the pipeline is sending it.

    ``kind``: ``new`` (first post of the group's message), ``update`` (alerts joined, resolved,
    were acknowledged or silenced: rewrite the message in place), ``resolved`` (every alert
    resolved: rewrite the message and leave a note in its thread), ``repeat`` (still firing
    and unacknowledged after ``repeat_interval``: a note in the thread).
    ``status`` is ``resolved`` only when every alert of the group is resolved.
    ``acked_by``/``silenced_until`` are set when they hold for every firing alert.
    """

    group_id: str
    kind: NoticeKind
    status: Status
    severity: Severity
    title: str
    model: str
    labels: dict[str, str]
    alerts: tuple[AlertLine, ...]
    channel: str
    started_at: datetime
    ended_at: datetime | None = None
    dashboard_url: str | None = None
    runbook_url: str | None = None
    acked_by: str | None = None
    silenced_until: datetime | None = None
    #: False when no alert of the group is one that labels can help with (latency, volume …):
    #: receivers then leave out the "send samples to labeling" action.
    labels_can_help: bool = True

    @property
    def firing(self) -> tuple[AlertLine, ...]:
        return tuple(a for a in self.alerts if a.status == "firing")

    @property
    def resolved(self) -> tuple[AlertLine, ...]:
        return tuple(a for a in self.alerts if a.status == "resolved")
