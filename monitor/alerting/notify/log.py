"""The receiver used when no other is configured: group notices go to the service log.

Same interface as every notifier, so the pipeline does not care which it has. Returns
synthetic, increasing message ids so updates and thread notes still line up in the log.
"""

from __future__ import annotations

import logging
import threading

from monitor.alerting.notice import GroupNotice
from monitor.alerting.notify import Announcement, MessageRef
from monitor.monitors import RouteSpec


def summary(notice: GroupNotice) -> str:
    """One plain line for the log: title, counts and the first alert's "what changed"."""
    firing, resolved = len(notice.firing), len(notice.resolved)
    first = (notice.firing or notice.alerts)[0].what_changed if notice.alerts else ""
    line = f"{notice.title}: {firing} firing, {resolved} resolved"
    if first:
        line += f" — {first}"
    return " ".join(line.split())[:1000]


class LogNotifier:
    """Logs each group notice (group id, state, kind, destination, summary)."""

    name: str = "log"

    def __init__(self, logger: logging.Logger | None = None, *, name: str = "log") -> None:
        self.name = name
        self._log = logger or logging.getLogger("monitor.alerting.notify")
        self._lock = threading.Lock()
        self._counter = 0

    def _next_id(self) -> str:
        with self._lock:
            self._counter += 1
            return f"log.{self._counter:06d}"

    def _emit(self, action: str, notice: GroupNotice) -> None:
        level = logging.WARNING if notice.status == "firing" and notice.kind in ("new", "repeat") else logging.INFO
        self._log.log(
            level,
            "alert group %s %s [%s/%s] to %s: %s",
            notice.group_id,
            action,
            notice.status,
            notice.kind,
            notice.channel,
            summary(notice),
        )

    def destination(self, route: RouteSpec) -> str:
        """One log: a group is identified by its labels alone."""
        return "log"

    def post(self, notice: GroupNotice) -> MessageRef:
        """Log the group; returns a synthetic message id."""
        self._emit("posted", notice)
        return MessageRef(channel=notice.channel, message_id=self._next_id())

    def update(self, ref: MessageRef, notice: GroupNotice) -> None:
        """Log the group's changed state."""
        self._emit(f"updated ({ref.message_id})", notice)

    def reply(self, ref: MessageRef, notice: GroupNotice) -> str:
        """Log a thread note; returns a synthetic id."""
        self._emit(f"noted in thread {ref.message_id}", notice)
        return self._next_id()

    def find_posted(self, notice: GroupNotice) -> MessageRef | None:
        """A log cannot be searched; a lost post is simply logged again."""
        return None

    def announce(self, announcement: Announcement) -> MessageRef:
        """Log a one-off result (a gate verdict) on one line."""
        level = logging.WARNING if announcement.status != "ok" else logging.INFO
        details = "; ".join(announcement.lines)
        self._log.log(
            level, "%s: %s%s", announcement.status.upper(), announcement.title, f" — {details}" if details else ""
        )
        return MessageRef(channel="log", message_id=self._next_id())
