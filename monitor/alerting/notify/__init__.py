"""Receivers of group notices, one package each (after Alertmanager's ``notify/``).

The pipeline talks to every receiver through :class:`Notifier` and understands only the
generic errors below, so a receiver (``slack/``, ``webhook/``, ``pagerduty/``, ``email/``,
``log``) is its own package plus a few lines in :mod:`monitor.alerting.notify.receivers` — the
pipeline does not change. ``http`` classifies the HTTP receivers' answers. Where a group's message landed is kept by :mod:`monitor.alerting.notify.messages`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from monitor.alerting.notice import GroupNotice
from monitor.monitors import RouteSpec


class NotifyError(Exception):
    """A delivery failed; subclasses say whether retrying can help."""


class TransientNotifyError(NotifyError):
    """Try again later. ``retry_after`` is the receiver's requested delay (seconds) when it gave
    one; ``maybe_delivered`` is set when the receiver may have acted before the failure, so a
    blind re-post could duplicate (the pipeline then looks the message up first)."""

    retry_after: float | None = None
    maybe_delivered: bool = False


class PermanentNotifyError(NotifyError):
    """Retrying cannot help (bad credentials, unknown destination, malformed message)."""


@dataclass(frozen=True)
class MessageRef:
    """Where a posted message lives at its receiver: the destination's stable id (Slack wants
    the channel *id* for updates) and the message's id there (Slack's ``ts``)."""

    channel: str
    message_id: str


@dataclass(frozen=True)
class Announcement:
    """A one-off result for people, not an alert group: a release gate's verdict. Posted once,
    never updated or resolved; ``key`` (the gate run's id) travels in the message metadata."""

    key: str
    title: str
    status: Literal["ok", "warning", "critical"]
    lines: list[str] = field(default_factory=list)  # user text, one line each (escaped by the receiver)
    link: str | None = None
    channel: str | None = None  # None: the receiver's default destination


class Notifier(Protocol):
    """What the pipeline calls to deliver a group's notices.

    Every method returns (delivered) or raises :class:`TransientNotifyError` /
    :class:`PermanentNotifyError`; nothing else escapes for receiver-side trouble.
    """

    #: The receiver's name (``slack``, ``log``…): labels metrics and delivery records.
    name: str

    def destination(self, route: RouteSpec) -> str:
        """Where this receiver sends a route's alerts (Slack: the route's channel or the
        default). Part of a group's identity: one group, one message, one destination."""
        ...

    def post(self, notice: GroupNotice) -> MessageRef:
        """Post the group's message; returns where it landed (kept to update and thread)."""
        ...

    def update(self, ref: MessageRef, notice: GroupNotice) -> None:
        """Rewrite the group's message in place to show its current state."""
        ...

    def reply(self, ref: MessageRef, notice: GroupNotice) -> str:
        """Post a note in the message's thread (repeat, resolution); returns the note's id."""
        ...

    def find_posted(self, notice: GroupNotice) -> MessageRef | None:
        """The message already posted for this group, if the receiver can tell (used after a
        post that may have been delivered); ``None`` when it cannot or there is none."""
        ...

    def announce(self, announcement: Announcement) -> MessageRef:
        """Post a one-off result (a gate verdict) to its channel or the default."""
        ...


__all__ = ["Announcement", "MessageRef", "Notifier", "NotifyError", "PermanentNotifyError", "TransientNotifyError"]
