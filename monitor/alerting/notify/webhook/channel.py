"""The generic webhook receiver: every notification POSTs the group's current state as
Alertmanager webhook JSON, signed (see ``signature``).

There is no message to edit at a webhook, so the receiver maps the pipeline's calls onto the
stream of states Alertmanager sends: ``post`` and ``update`` send the group as it is now
(``firing`` or ``resolved``); ``reply`` sends again only for a *repeat* (Alertmanager re-sends a
still-firing group every ``repeat_interval``) — the resolution note that follows an update is
not sent, the update already carried ``status: resolved``. A lost answer is not looked up
(``find_posted`` is ``None``): the state is sent again, which webhook consumers must tolerate
anyway (Alertmanager delivers at least once).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
from pydantic import SecretStr

from monitor.alerting.notice import GroupNotice
from monitor.alerting.notify import Announcement, MessageRef
from monitor.alerting.notify.http import host_of, post
from monitor.alerting.notify.webhook.payload import encode, payload
from monitor.alerting.notify.webhook.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from monitor.monitors import RouteSpec

USER_AGENT = "loopwatch-webhook/1"


class WebhookNotifier:
    """POSTs group notices to ``url``; signs them when a ``secret`` is given."""

    def __init__(
        self,
        url: str,
        *,
        secret: SecretStr | None = None,
        name: str = "webhook",
        external_url: str | None = None,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"webhook receiver {name}: the URL must be http(s)")
        self.name = name
        self._url = url
        self._secret = secret
        self._external_url = external_url
        self._clock = clock
        self._client = httpx.Client(timeout=timeout, transport=transport, headers={"User-Agent": USER_AGENT})

    def __repr__(self) -> str:  # the URL's path and the secret stay out of logs
        return f"WebhookNotifier(name={self.name!r}, host={host_of(self._url)!r})"

    def close(self) -> None:
        self._client.close()

    def destination(self, route: RouteSpec) -> str:
        """One URL per receiver: a group is identified by its labels and this receiver."""
        return self.name

    def post(self, notice: GroupNotice) -> MessageRef:
        self._send(notice)
        return MessageRef(channel=self.name, message_id=notice.group_id)

    def update(self, ref: MessageRef, notice: GroupNotice) -> None:
        self._send(notice)

    def reply(self, ref: MessageRef, notice: GroupNotice) -> str:
        if notice.kind == "repeat":
            self._send(notice)
        return ref.message_id

    def find_posted(self, notice: GroupNotice) -> MessageRef | None:
        return None

    def announce(self, announcement: Announcement) -> MessageRef:
        """A one-off result (gate verdict) as ``{"version": "4", "announcement": …}``."""
        body = {
            "version": "4",
            "receiver": self.name,
            "announcement": {
                "key": announcement.key,
                "title": announcement.title,
                "status": announcement.status,
                "lines": announcement.lines,
                "link": announcement.link,
            },
        }
        self._post(encode(body))
        return MessageRef(channel=self.name, message_id=announcement.key)

    def _send(self, notice: GroupNotice) -> None:
        self._post(encode(payload(notice, receiver=self.name, external_url=self._external_url)))

    def _post(self, body: bytes) -> None:
        timestamp = int(self._clock())
        headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: str(timestamp)}
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = sign(self._secret.get_secret_value(), timestamp, body)
        post(self._client, self._url, body, headers, f"webhook {self.name}")
