"""The Slack receiver: delivers :class:`GroupNotice` values with ``slack_sdk.WebClient``.

A receiver only renders and sends; the outbox around it owns durability. So every method
either returns (delivered) or raises :class:`TransientSlackError` (outbox retries later) or
:class:`PermanentSlackError` (outbox marks the group's notification failed). Both are the
generic notify errors the pipeline understands. Nothing else escapes for Slack-side
trouble, and no message ever contains the token.

Pacing: Slack allows about one message per second per channel, so calls to one channel are
serialised and spaced at least ``min_interval`` apart (the clock and sleep are injected, so
tests run instantly). Different channels do not wait for each other.
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError

from monitor.alerting.notice import GroupNotice
from monitor.alerting.notify import Announcement, MessageRef
from monitor.alerting.notify.slack.errors import (
    PermanentSlackError,
    SlackError,
    TransientSlackError,
    from_api_error,
    from_transport_error,
    scrub,
)
from monitor.alerting.notify.slack.messages import SlackMessage, announcement_message, original_message, thread_reply
from monitor.alerting.notify.slack.retry import Sleep, retry_handlers
from monitor.monitors import RouteSpec

__all__ = [
    "DEFAULT_API_URL",
    "EVENT_TYPE",
    "PermanentSlackError",
    "SlackError",
    "SlackNotifier",
    "TransientSlackError",
    "notifier_from_settings",
]

DEFAULT_API_URL = "https://slack.com/api/"
#: Where alerts go when neither the route nor ``LOOPWATCH_SLACK_CHANNEL`` names a channel.
DEFAULT_CHANNEL = "#ml-alerts"
#: Message metadata event type naming a group's message (to find it again without its text).
EVENT_TYPE = "loopwatch_alert_group"
ANNOUNCEMENT_EVENT_TYPE = "loopwatch_announcement"
_log = logging.getLogger(__name__)


def _sdk_logger() -> logging.Logger:
    """The WebClient's logger. It logs every failed attempt at ERROR, which during an outage
    floods the log with lines ``SlackNotifier`` already reports once, classified; so it is quiet
    unless an operator sets its level (``monitor.alerting.notify.slack.channel.sdk``) for wire debugging."""
    logger = logging.getLogger(f"{__name__}.sdk")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.CRITICAL)
    return logger


class SlackNotifier:
    """Group delivery over Slack's Web API with bounded retries, pacing and clear errors.

    ``base_url`` points the client elsewhere (tests use a loopback fake). Retries inside one
    call are bounded by ``max_retries``; a 429 is waited out in-process only while its
    ``Retry-After`` is at most ``max_retry_after`` seconds, otherwise the error carries the
    delay for the outbox.
    """

    name: str = "slack"

    def __init__(
        self,
        token: str,
        *,
        base_url: str = DEFAULT_API_URL,
        default_channel: str = DEFAULT_CHANNEL,
        timeout: int = 10,
        max_retries: int = 3,
        max_retry_after: float = 15.0,
        backoff_factor: float = 0.5,
        min_interval: float = 1.0,
        now: Callable[[], float] = time.monotonic,
        sleep: Sleep = time.sleep,
        logger: logging.Logger | None = None,
        name: str = "slack",
    ) -> None:
        self.name = name  # the receiver's name (a routing file may define several Slack receivers)
        if not token or not token.strip():
            raise ValueError("a Slack bot token is required (LOOPWATCH_SLACK_TOKEN); use the log notifier without one")
        if max_retries < 0 or min_interval < 0 or max_retry_after < 0:
            raise ValueError("max_retries, min_interval and max_retry_after must not be negative")
        self._token = token.strip()
        self._default_channel = default_channel
        self._base_url = base_url if base_url.endswith("/") else base_url + "/"
        self._max_retries = max_retries
        self._min_interval = min_interval
        self._now = now
        self._sleep = sleep
        self._log = logger or _log
        self._client = WebClient(
            token=self._token,
            base_url=self._base_url,
            timeout=timeout,
            logger=_sdk_logger(),
            retry_handlers=retry_handlers(
                max_retries=max_retries, max_retry_after=max_retry_after, backoff_factor=backoff_factor, sleep=sleep
            ),
        )
        self._state_lock = threading.Lock()
        self._channel_locks: dict[str, threading.Lock] = {}
        self._last_sent: dict[str, float] = {}
        self._ids: dict[str, str] = {}  # "#ml-oncall" → "C0…", learned from responses

    def __repr__(self) -> str:  # never show the token
        return f"SlackNotifier(base_url={self._base_url!r})"

    # ------------------------------------------------------------------ public API

    def destination(self, route: RouteSpec) -> str:
        """The route's ``slack_channel``, else the default (``LOOPWATCH_SLACK_CHANNEL``)."""
        return route.slack_channel or self._default_channel

    def post(self, notice: GroupNotice) -> MessageRef:
        """``chat.postMessage`` of the group's message; returns the channel *id* and ``ts``
        (``chat.update`` needs the id, which also survives channel renames)."""
        message = self._render(original_message, notice, "chat.postMessage")
        data = self._call(
            "chat.postMessage",
            notice.channel,
            lambda channel: self._client.chat_postMessage(
                channel=channel,
                **message,
                unfurl_links=False,
                unfurl_media=False,
                metadata=_metadata(notice),
            ),
        )
        return MessageRef(channel=str(data.get("channel") or notice.channel), message_id=_ts(data, notice.channel))

    def update(self, ref: MessageRef, notice: GroupNotice) -> None:
        """``chat.update`` of the group's message to show its current state."""
        message = self._render(original_message, notice, "chat.update")
        self._call(
            "chat.update",
            ref.channel,
            lambda channel_id: self._client.chat_update(channel=channel_id, ts=ref.message_id, **message),
        )

    def reply(self, ref: MessageRef, notice: GroupNotice) -> str:
        """Post a repeat/resolution note in the group's thread; returns the reply's ``ts``."""
        message = self._render(thread_reply, notice, "chat.postMessage")
        data = self._call(
            "chat.postMessage",
            ref.channel,
            lambda channel_id: self._client.chat_postMessage(
                channel=channel_id, thread_ts=ref.message_id, **message, unfurl_links=False, unfurl_media=False
            ),
        )
        return _ts(data, ref.channel)

    def find_posted(self, notice: GroupNotice, limit: int = 100) -> MessageRef | None:
        """The message already posted for this group, if Slack has one.

        Used before re-posting after a failure that may have been delivered (the connection
        dropped after Slack accepted the post): posts carry the group id in their metadata.
        Needs the ``channels:history`` scope; errors propagate as SlackErrors."""
        data = self._call(
            "conversations.history",
            notice.channel,
            lambda target: self._client.conversations_history(channel=target, limit=limit, include_all_metadata=True),
        )
        for message in data.get("messages", []):
            metadata = message.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            if (
                metadata.get("event_type") == EVENT_TYPE
                and payload.get("group_id") == notice.group_id
                and message.get("ts")
            ):
                return MessageRef(channel=self._resolve(notice.channel), message_id=str(message["ts"]))
        return None

    def announce(self, announcement: Announcement) -> MessageRef:
        """``chat.postMessage`` of a one-off result to its channel (or the default); the key
        (a gate run's id) goes into the message metadata."""
        channel = announcement.channel or self._default_channel
        try:
            message = announcement_message(announcement)
        except ValueError as exc:
            raise PermanentSlackError(
                f"announcement {announcement.key} cannot be rendered: {exc}",
                method="chat.postMessage",
                channel=channel,
                error="render_failed",
            ) from exc
        data = self._call(
            "chat.postMessage",
            channel,
            lambda target: self._client.chat_postMessage(
                channel=target,
                **message,
                unfurl_links=False,
                unfurl_media=False,
                metadata={"event_type": ANNOUNCEMENT_EVENT_TYPE, "event_payload": {"key": announcement.key}},
            ),
        )
        return MessageRef(channel=str(data.get("channel") or channel), message_id=_ts(data, channel))

    def check(self) -> dict[str, Any]:
        """``auth.test``: confirms the token at start-up; returns the bot's team/user names."""
        data = self._call("auth.test", None, lambda _channel: self._client.auth_test())
        return {key: data.get(key) for key in ("team", "team_id", "user", "user_id", "bot_id", "url")}

    # ------------------------------------------------------------------ internals

    def _render(self, build: Callable[[GroupNotice], SlackMessage], notice: GroupNotice, method: str) -> SlackMessage:
        try:
            return build(notice)
        except ValueError as exc:
            raise PermanentSlackError(
                f"Slack {method} to {notice.channel}: cannot build the message for group {notice.group_id[:80]}: {exc}",
                method=method,
                channel=notice.channel,
                error="bad_message",
            ) from None

    def _remember_id(self, name: str, channel_id: str) -> None:
        """Learn that ``name`` is ``channel_id`` so both share one pacing budget from now on.

        Called while the ``name`` lock is held, so a caller queued on that lock sees the alias
        when it gets the lock and moves over to the id's lock (see :meth:`_paced`).
        """
        if not channel_id or name == channel_id:
            return
        with self._state_lock:
            self._ids[name] = channel_id
            last = self._last_sent.pop(name, None)
            if last is not None:
                self._last_sent[channel_id] = max(last, self._last_sent.get(channel_id, last))

    def _resolve(self, channel: str) -> str:
        with self._state_lock:
            return self._ids.get(channel, channel)

    def _lock_for(self, key: str) -> threading.Lock:
        with self._state_lock:
            return self._channel_locks.setdefault(key, threading.Lock())

    def _acquire(self, channel: str) -> tuple[str, threading.Lock]:
        """Take the lock of the channel's final key (name or id) and return both.

        A name becomes an alias of an id at most once (ids never change), so one re-check after
        taking the lock is enough: a caller queued behind the post that taught us the id moves
        over to the id's lock.
        """
        key = self._resolve(channel)
        lock = self._lock_for(key)
        lock.acquire()
        resolved = self._resolve(channel)
        if resolved == key:
            return key, lock
        lock.release()
        lock = self._lock_for(resolved)
        lock.acquire()
        return resolved, lock

    @contextmanager
    def _paced(self, channel: str) -> Iterator[str]:
        """Serialise calls to one channel and start them ``min_interval`` apart; yields the key to send to."""
        key, lock = self._acquire(channel)
        try:
            with self._state_lock:
                last = self._last_sent.get(key)
            if last is not None:
                wait = last + self._min_interval - self._now()
                if wait > 0:
                    self._sleep(wait)
            with self._state_lock:
                self._last_sent[key] = self._now()
            yield key
        finally:
            lock.release()

    def _call(self, method: str, channel: str | None, send: Callable[[str], Any]) -> dict[str, Any]:
        """Run one Web API call (paced per channel) and turn every failure into a SlackError."""
        try:
            if channel:
                with self._paced(channel) as target:
                    response = send(target)
                    returned = response.data.get("channel") if isinstance(response.data, dict) else None
                    if isinstance(returned, str):
                        self._remember_id(channel, returned)
            else:
                response = send("")
        except SlackApiError as exc:
            error: SlackError = from_api_error(exc, method=method, channel=channel, retries=self._max_retries)
        except (SlackRequestError, OSError, http.client.HTTPException) as exc:
            error = from_transport_error(exc, method=method, channel=channel, base_url=self._base_url)
        else:
            data = response.data
            return data if isinstance(data, dict) else {}
        error.args = (scrub(str(error), (self._token,)),)
        level = logging.WARNING if isinstance(error, TransientSlackError) else logging.ERROR
        self._log.log(level, "%s", error)
        raise error from None


def _ts(data: dict[str, Any], channel: str) -> str:
    """The posted message's ``ts``; an ``ok`` answer without one was not Slack's (a proxy?)."""
    ts = data.get("ts")
    if not isinstance(ts, str) or not ts:
        raise TransientSlackError(
            f"Slack chat.postMessage to {channel}: answer was ok but had no ts; it may have been posted",
            method="chat.postMessage",
            channel=channel,
            error="bad_response",
            maybe_delivered=True,
        )
    return ts


def _metadata(notice: GroupNotice) -> dict[str, Any]:
    """Message metadata naming the group, so its message can be found again (e.g. to reconcile
    a post whose response was lost) without parsing its text."""
    return {"event_type": EVENT_TYPE, "event_payload": {"group_id": notice.group_id, "kind": notice.kind}}


def notifier_from_settings(settings: Any, **options: Any) -> SlackNotifier | None:
    """A ``SlackNotifier`` when ``LOOPWATCH_SLACK_TOKEN`` is set, else ``None``.

    ``settings`` is a ``monitor.settings.Settings`` (typed loosely so this module does not pull
    the settings stack into tests); ``options`` go to ``SlackNotifier`` (clock, sleep, limits).
    """
    secret = getattr(settings, "slack_token", None)
    token = secret.get_secret_value() if secret is not None else ""
    if not token.strip():
        return None
    options.setdefault("default_channel", getattr(settings, "slack_channel", None) or DEFAULT_CHANNEL)
    return SlackNotifier(token, base_url=getattr(settings, "slack_api_url", DEFAULT_API_URL), **options)
