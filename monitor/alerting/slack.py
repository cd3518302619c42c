"""The Slack channel: delivers :class:`AlertNotice` values with ``slack_sdk.WebClient``.

A channel only renders and sends; the outbox around it owns durability. So every method
either returns (delivered) or raises :class:`TransientSlackError` (outbox retries later) or
:class:`PermanentSlackError` (outbox marks the notification failed on the alert). Nothing
else escapes for Slack-side trouble, and no message ever contains the token.

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
from dataclasses import dataclass
from typing import Any, Protocol

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError

from monitor.alerting.notice import AlertNotice
from monitor.alerting.slack_errors import (
    PermanentSlackError,
    SlackError,
    TransientSlackError,
    from_api_error,
    from_transport_error,
    scrub,
)
from monitor.alerting.slack_messages import SlackMessage, fit_plain, original_message, thread_reply
from monitor.alerting.slack_retry import Sleep, retry_handlers

__all__ = [
    "DEFAULT_API_URL",
    "LogChannel",
    "NoticeChannel",
    "PermanentSlackError",
    "PostedMessage",
    "SlackChannel",
    "SlackError",
    "TransientSlackError",
    "channel_from_settings",
]

DEFAULT_API_URL = "https://slack.com/api/"
_log = logging.getLogger(__name__)


def _sdk_logger() -> logging.Logger:
    """The WebClient's logger. It logs every failed attempt at ERROR, which during an outage
    floods the log with lines ``SlackChannel`` already reports once, classified; so it is quiet
    unless an operator sets its level (``monitor.alerting.slack.sdk``) for wire debugging."""
    logger = logging.getLogger(f"{__name__}.sdk")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.CRITICAL)
    return logger


class NoticeChannel(Protocol):
    """What the pipeline's outbox calls; ``SlackChannel`` and ``LogChannel`` implement it."""

    def post(self, notice: AlertNotice) -> str:
        """Post the alert's main message; returns its ``ts`` (remember it to update/thread)."""
        ...

    def update(self, channel: str, ts: str, notice: AlertNotice) -> None:
        """Rewrite the main message (ack, silence, resolution)."""
        ...

    def reply(self, channel: str, thread_ts: str, notice: AlertNotice) -> str:
        """Post a note in the main message's thread; returns the reply's ``ts``."""
        ...


@dataclass(frozen=True)
class PostedMessage:
    """Where a message landed: Slack's channel *id* (``chat.update`` wants the id) and ``ts``."""

    channel: str
    ts: str


class SlackChannel:
    """Alert delivery over Slack's Web API with bounded retries, pacing and clear errors.

    ``base_url`` points the client elsewhere (tests use a loopback fake). Retries inside one
    call are bounded by ``max_retries``; a 429 is waited out in-process only while its
    ``Retry-After`` is at most ``max_retry_after`` seconds, otherwise the error carries the
    delay for the outbox.
    """

    def __init__(
        self,
        token: str,
        *,
        base_url: str = DEFAULT_API_URL,
        timeout: int = 10,
        max_retries: int = 3,
        max_retry_after: float = 15.0,
        backoff_factor: float = 0.5,
        min_interval: float = 1.0,
        now: Callable[[], float] = time.monotonic,
        sleep: Sleep = time.sleep,
        logger: logging.Logger | None = None,
    ) -> None:
        if not token or not token.strip():
            raise ValueError("a Slack bot token is required (LOOPWATCH_SLACK_TOKEN); use LogChannel without one")
        if max_retries < 0 or min_interval < 0 or max_retry_after < 0:
            raise ValueError("max_retries, min_interval and max_retry_after must not be negative")
        self._token = token.strip()
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
        return f"SlackChannel(base_url={self._base_url!r})"

    # ------------------------------------------------------------------ public API

    def post(self, notice: AlertNotice) -> str:
        """``chat.postMessage`` of the alert's main message; returns its ``ts``."""
        return self.post_message(notice).ts

    def post_message(self, notice: AlertNotice) -> PostedMessage:
        """Like :meth:`post`, but also returns the channel id the pipeline should store."""
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
        return PostedMessage(channel=str(data.get("channel") or notice.channel), ts=_ts(data, notice.channel))

    def update(self, channel: str, ts: str, notice: AlertNotice) -> None:
        """``chat.update`` of the main message to show ack/silence state or the resolution."""
        message = self._render(original_message, notice, "chat.update")
        self._call(
            "chat.update",
            channel,
            lambda channel_id: self._client.chat_update(channel=channel_id, ts=ts, **message),
        )

    def reply(self, channel: str, thread_ts: str, notice: AlertNotice) -> str:
        """Post a repeat/resolution note in the alert's thread; returns the reply's ``ts``."""
        message = self._render(thread_reply, notice, "chat.postMessage")
        data = self._call(
            "chat.postMessage",
            channel,
            lambda channel_id: self._client.chat_postMessage(
                channel=channel_id, thread_ts=thread_ts, **message, unfurl_links=False, unfurl_media=False
            ),
        )
        return _ts(data, channel)

    def find_posted(self, notice: AlertNotice, limit: int = 100) -> PostedMessage | None:
        """The message already posted for this alert's first notification, if Slack has one.

        Used before re-posting after a failure that may have been delivered (the connection
        dropped after Slack accepted the post): posts carry the alert id in their metadata.
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
                metadata.get("event_type") == "loopwatch_alert"
                and payload.get("alert_id") == notice.alert_id
                and payload.get("kind") == "new"
                and message.get("ts")
            ):
                return PostedMessage(channel=self._resolve(notice.channel), ts=str(message["ts"]))
        return None

    def check(self) -> dict[str, Any]:
        """``auth.test``: confirms the token at start-up; returns the bot's team/user names."""
        data = self._call("auth.test", None, lambda _channel: self._client.auth_test())
        return {key: data.get(key) for key in ("team", "team_id", "user", "user_id", "bot_id", "url")}

    # ------------------------------------------------------------------ internals

    def _render(self, build: Callable[[AlertNotice], SlackMessage], notice: AlertNotice, method: str) -> SlackMessage:
        try:
            return build(notice)
        except ValueError as exc:
            raise PermanentSlackError(
                f"Slack {method} to {notice.channel}: cannot build the message for alert {notice.alert_id[:80]}: {exc}",
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


def _metadata(notice: AlertNotice) -> dict[str, Any]:
    """Message metadata naming the alert, so a message can be found again (e.g. to reconcile
    a post whose response was lost) without parsing its text."""
    return {
        "event_type": "loopwatch_alert",
        "event_payload": {"alert_id": notice.alert_id, "fingerprint": notice.fingerprint, "kind": notice.kind},
    }


class LogChannel:
    """The notifier used when Slack is not configured: alerts go to the service log.

    Same interface as :class:`SlackChannel`, so the pipeline does not care which it has.
    Returns synthetic, increasing ``ts`` values so updates and threads still line up.
    """

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or logging.getLogger("monitor.alerting.notify")
        self._lock = threading.Lock()
        self._counter = 0

    def _next_ts(self) -> str:
        with self._lock:
            self._counter += 1
            return f"log.{self._counter:06d}"

    def _emit(self, action: str, notice: AlertNotice, message: SlackMessage) -> None:
        level = logging.WARNING if notice.status == "firing" and notice.kind in ("new", "repeat") else logging.INFO
        self._log.log(
            level,
            "alert %s %s [%s/%s] to %s: %s",
            notice.alert_id,
            action,
            notice.status,
            notice.kind,
            notice.channel,
            fit_plain(message["text"], 1000),
        )

    def post(self, notice: AlertNotice) -> str:
        """Log the alert; returns a synthetic ``ts``."""
        self._emit("posted", notice, original_message(notice))
        return self._next_ts()

    def update(self, channel: str, ts: str, notice: AlertNotice) -> None:
        """Log the changed state of the alert."""
        self._emit(f"updated ({ts})", notice, original_message(notice))

    def reply(self, channel: str, thread_ts: str, notice: AlertNotice) -> str:
        """Log a thread note; returns a synthetic ``ts``."""
        self._emit(f"noted in thread {thread_ts}", notice, thread_reply(notice))
        return self._next_ts()


def channel_from_settings(settings: Any, **options: Any) -> SlackChannel | LogChannel:
    """A ``SlackChannel`` when ``LOOPWATCH_SLACK_TOKEN`` is set, else a ``LogChannel``.

    ``settings`` is a ``monitor.settings.Settings`` (typed loosely so this module does not pull
    the settings stack into tests); ``options`` go to ``SlackChannel`` (clock, sleep, limits).
    """
    secret = getattr(settings, "slack_token", None)
    token = secret.get_secret_value() if secret is not None else ""
    if not token.strip():
        return LogChannel()
    return SlackChannel(token, base_url=getattr(settings, "slack_api_url", DEFAULT_API_URL), **options)
