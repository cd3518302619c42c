"""Slack delivery errors, split by what the outbox should do about them.

* :class:`TransientSlackError` — try again later (with backoff, or after ``retry_after``):
  rate limits and server errors that outlasted the in-process retries, connection failures,
  timeouts. ``maybe_delivered`` is set when Slack may have acted on the request before the
  failure (a read timeout, a reset, ``internal_error``), so a blind re-post could duplicate.
* :class:`PermanentSlackError` — retrying cannot help (bad token, unknown channel, bot not
  invited, malformed message): mark the notification failed on the group and log it.

Both are the generic :mod:`monitor.alerting.notify` errors too, which is all the pipeline
catches: it never needs to know it is talking to Slack.

Messages are written for the service log and the alert's error field; they never contain
the token (it is scrubbed, and the sdk's exception — whose request carries the
``Authorization`` header — is not chained).
"""

from __future__ import annotations

import http.client
from collections.abc import Mapping
from typing import Any

from slack_sdk.errors import SlackApiError, SlackRequestError

from monitor.alerting.notify import NotifyError, PermanentNotifyError, TransientNotifyError
from monitor.alerting.notify.slack.retry import failed_before_sending, retry_after_seconds

#: Error codes that will fail again however often they are retried.
PERMANENT_ERRORS: frozenset[str] = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "token_revoked",
        "token_expired",
        "account_inactive",
        "no_permission",
        "missing_scope",
        "not_allowed_token_type",
        "org_login_required",
        "team_access_not_granted",
        "ekm_access_denied",
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "restricted_action",
        "restricted_action_read_only_channel",
        "restricted_action_thread_only_channel",
        "restricted_action_non_threadable_channel",
        "msg_too_long",
        "no_text",
        "invalid_blocks",
        "invalid_blocks_format",
        "invalid_attachments",
        "invalid_metadata_format",
        "invalid_metadata_schema",
        "metadata_too_large",
        "too_many_attachments",
        "invalid_arguments",
        "invalid_arg_name",
        "invalid_array_arg",
        "invalid_charset",
        "invalid_form_data",
        "invalid_post_type",
        "missing_post_type",
        "message_not_found",
        "cant_update_message",
        "edit_window_closed",
        "unknown_method",
        "method_deprecated",
        "deprecated_endpoint",
    }
)
#: Error codes Slack documents as temporary.
TRANSIENT_ERRORS: frozenset[str] = frozenset(
    {"ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
#: Transient codes after which Slack says the operation may partly have succeeded.
AMBIGUOUS_ERRORS: frozenset[str] = frozenset({"internal_error", "fatal_error", "request_timeout"})
# How slack-sdk reports a body that is not JSON (it puts this text in place of the error code).
_NON_JSON = "Received a response in a non-JSON format"

_HINTS: dict[str, str] = {
    "invalid_auth": "the bot token is not valid; check LOOPWATCH_SLACK_TOKEN",
    "not_authed": "no bot token was sent; set LOOPWATCH_SLACK_TOKEN",
    "token_revoked": "the bot token was revoked; install the app again and update LOOPWATCH_SLACK_TOKEN",
    "token_expired": "the bot token expired; rotate it and update LOOPWATCH_SLACK_TOKEN",
    "account_inactive": "the bot's account or workspace is deactivated",
    "missing_scope": "the Slack app lacks a scope (needs chat:write)",
    "channel_not_found": "the channel does not exist or the bot cannot see it; check the route's slack_channel",
    "not_in_channel": "the bot is not a member of the channel; invite it with /invite",
    "is_archived": "the channel is archived; route the monitor to another channel",
    "msg_too_long": "the message text is too long",
    "invalid_blocks": "Slack refused the message blocks",
    "message_not_found": "the message to update no longer exists",
    "ratelimited": "Slack rate-limited the request",
}


class SlackError(NotifyError):
    """A Slack call failed. ``error`` is Slack's error code (or a short code of ours)."""

    def __init__(self, message: str, *, method: str, channel: str | None, error: str, status: int | None = None):
        super().__init__(message)
        self.method = method
        self.channel = channel
        self.error = error
        self.status = status


class PermanentSlackError(SlackError, PermanentNotifyError):
    """Retrying will not help: fix configuration (token, channel, invite) or the message."""


class TransientSlackError(SlackError, TransientNotifyError):
    """Try again later; ``retry_after`` (seconds) is Slack's requested delay when it gave one."""

    def __init__(
        self,
        message: str,
        *,
        method: str,
        channel: str | None,
        error: str,
        status: int | None = None,
        retry_after: float | None = None,
        maybe_delivered: bool = False,
    ):
        super().__init__(message, method=method, channel=channel, error=error, status=status)
        self.retry_after = retry_after
        self.maybe_delivered = maybe_delivered


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """Remove every secret from ``text`` (defence in depth: nothing should contain them)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


def _where(method: str, channel: str | None) -> str:
    return f"Slack {method}" + (f" to {channel}" if channel else "")


def _details(data: Mapping[str, Any]) -> str:
    """Slack's own explanation (e.g. which block was invalid), kept short."""
    metadata = data.get("response_metadata")
    messages = metadata.get("messages") if isinstance(metadata, Mapping) else None
    if not messages:
        return ""
    text = "; ".join(str(m) for m in list(messages)[:3])
    return f" ({text[:300]})"


def from_api_error(exc: SlackApiError, *, method: str, channel: str | None, retries: int) -> SlackError:
    """Classify a Web API error response (HTTP status + Slack error code)."""
    response = exc.response
    status = int(getattr(response, "status_code", 0) or 0)
    data = response.data if isinstance(getattr(response, "data", None), Mapping) else {}
    raw_error = str(data.get("error") or "")
    non_json = raw_error.startswith(_NON_JSON)
    code = "bad_response" if non_json else (raw_error or f"http_{status}")
    where = _where(method, channel)
    hint = _HINTS.get(code, "")
    if status == 429 or code in ("ratelimited", "rate_limited"):
        delay = retry_after_seconds(getattr(response, "headers", None))
        return TransientSlackError(
            f"{where} failed: rate limited, Retry-After {delay:g}s (gave up after at most {retries} retries)",
            method=method,
            channel=channel,
            error="ratelimited",
            status=status,
            retry_after=delay,
        )
    if status >= 500 or code in TRANSIENT_ERRORS or (non_json and status == 200):
        return TransientSlackError(
            f"{where} failed: {code}, HTTP {status} (gave up after at most {retries} retries); Slack is having trouble",
            method=method,
            channel=channel,
            error=code,
            status=status,
            maybe_delivered=code in AMBIGUOUS_ERRORS,
        )
    if non_json:
        hint = f"HTTP {status} that is not Slack's JSON; check LOOPWATCH_SLACK_API_URL"
    suffix = f": {hint}" if hint else ("" if code in PERMANENT_ERRORS else "; unrecognised Slack error, not retried")
    return PermanentSlackError(
        f"{where} failed: {code}{suffix}{_details(data)}", method=method, channel=channel, error=code, status=status
    )


def from_transport_error(exc: BaseException, *, method: str, channel: str | None, base_url: str) -> SlackError:
    """Classify a failure to talk to Slack at all (refused, DNS, timeout, reset, bad URL)."""
    where = _where(method, channel)
    if isinstance(exc, SlackRequestError):
        return PermanentSlackError(
            f"{where} failed: invalid Slack API URL {base_url!r} (LOOPWATCH_SLACK_API_URL)",
            method=method,
            channel=channel,
            error="invalid_api_url",
        )
    if failed_before_sending(exc):
        reason = getattr(exc, "reason", exc)
        return TransientSlackError(
            f"{where} failed: cannot reach {base_url} ({type(reason).__name__}: {reason}); request was not sent",
            method=method,
            channel=channel,
            error="connection_error",
        )
    kind = "timeout" if isinstance(exc, TimeoutError) else "connection_error"
    if isinstance(exc, (TimeoutError, OSError, http.client.HTTPException)):
        return TransientSlackError(
            f"{where} failed: {type(exc).__name__} while waiting for {base_url} ({exc}); "
            "Slack may or may not have acted on it",
            method=method,
            channel=channel,
            error=kind,
            maybe_delivered=True,
        )
    raise exc
