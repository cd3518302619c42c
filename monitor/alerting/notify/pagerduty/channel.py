"""The PagerDuty receiver: Events API v2 (``POST /v2/enqueue``, answered ``202 {status,
message, dedup_key}``).

``post`` triggers; ``update`` sends what the group's state now means (``trigger`` again while
firing — PagerDuty deduplicates it into the same alert and refreshes nothing else —,
``acknowledge`` once every firing alert is acknowledged in loopwatch, ``resolve`` when the group
resolved). ``reply`` sends nothing: PagerDuty has no thread, the resolution was already sent by
the update before it, and re-notifying on-call is PagerDuty's escalation policy's job, not
loopwatch's repeats. Retries are safe: the ``dedup_key`` makes a repeated trigger a no-op.
"""

from __future__ import annotations

import json

import httpx
from pydantic import SecretStr

from monitor.alerting.notice import GroupNotice
from monitor.alerting.notify import Announcement, MessageRef, PermanentNotifyError
from monitor.alerting.notify.http import host_of, post
from monitor.alerting.notify.pagerduty.events import dedup_key, event
from monitor.monitors import RouteSpec

DEFAULT_URL = "https://events.pagerduty.com/v2/enqueue"


class PagerDutyNotifier:
    """Sends group notices as Events v2 events to one integration (``routing_key``)."""

    def __init__(
        self,
        routing_key: SecretStr,
        *,
        url: str = DEFAULT_URL,
        name: str = "pagerduty",
        external_url: str | None = None,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not routing_key.get_secret_value().strip():
            raise ValueError(f"PagerDuty receiver {name}: the routing key is empty")
        self.name = name
        self._key = routing_key
        self._url = url
        self._external_url = external_url
        self._client = httpx.Client(timeout=timeout, transport=transport)

    def __repr__(self) -> str:  # never the routing key
        return f"PagerDutyNotifier(name={self.name!r}, host={host_of(self._url)!r})"

    def close(self) -> None:
        self._client.close()

    def destination(self, route: RouteSpec) -> str:
        return self.name

    def post(self, notice: GroupNotice) -> MessageRef:
        key = self._send(notice)
        return MessageRef(channel=self.name, message_id=key)

    def update(self, ref: MessageRef, notice: GroupNotice) -> None:
        self._send(notice)

    def reply(self, ref: MessageRef, notice: GroupNotice) -> str:
        return ref.message_id

    def find_posted(self, notice: GroupNotice) -> MessageRef | None:
        """The group's PagerDuty alert is known by its key: adopting it (then ``update``) after a
        lost answer is exactly as safe as triggering again."""
        return MessageRef(channel=self.name, message_id=dedup_key(notice.group_id))

    def announce(self, announcement: Announcement) -> MessageRef:
        raise PermanentNotifyError("PagerDuty pages people about incidents; it does not take announcements")

    def _send(self, notice: GroupNotice) -> str:
        body = event(notice, routing_key=self._key.get_secret_value(), external_url=self._external_url)
        raw = json.dumps(body, separators=(",", ":")).encode()
        response = post(self._client, self._url, raw, {"Content-Type": "application/json"}, f"PagerDuty {self.name}")
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        returned = answer.get("dedup_key") if isinstance(answer, dict) else None
        return str(returned or body["dedup_key"])
