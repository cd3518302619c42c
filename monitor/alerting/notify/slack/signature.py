"""Trust and parse Slack button presses (``POST /slack/actions``).

Why this matters: the endpoint changes alert state (ack, silence), so only requests signed
with the app's signing secret, and signed recently, are accepted. The timestamp window
(5 minutes either way) stops a captured request from being replayed later; the signature
covers the exact raw body, so verify *before* parsing and parse the same bytes.

The HMAC check itself is ``slack_sdk.signature.SignatureVerifier`` (fed our clock); the
checks before it exist to say precisely *why* a request was refused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from slack_sdk.signature import Clock, SignatureVerifier

MAX_AGE_SECONDS = 60 * 5
SIGNATURE_HEADER = "x-slack-signature"
TIMESTAMP_HEADER = "x-slack-request-timestamp"


class InvalidSlackSignature(Exception):
    """The request is not provably from Slack (answer 401); the message says why."""


class _FixedClock(Clock):
    """``SignatureVerifier`` takes a clock object; ours reports the caller's ``now``."""

    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


def verify_slack_request(body: bytes, headers: Mapping[str, str], signing_secret: str, now: float) -> None:
    """Raise :class:`InvalidSlackSignature` unless Slack signed ``body`` within 5 minutes of ``now``.

    ``headers`` may use any capitalisation. An empty ``signing_secret`` is a configuration
    error (``ValueError``), not a bad request: the endpoint should not be served without one.
    """
    if not signing_secret or not signing_secret.strip():
        raise ValueError("the Slack signing secret is not configured (LOOPWATCH_SLACK_SIGNING_SECRET)")
    lowered = {key.lower(): value for key, value in headers.items()}
    timestamp = (lowered.get(TIMESTAMP_HEADER) or "").strip()
    signature = (lowered.get(SIGNATURE_HEADER) or "").strip()
    if not timestamp or not signature:
        missing = [name for name, value in ((TIMESTAMP_HEADER, timestamp), (SIGNATURE_HEADER, signature)) if not value]
        raise InvalidSlackSignature(f"missing Slack signature header(s): {', '.join(missing)}")
    if not timestamp.isascii() or not timestamp.isdigit():
        raise InvalidSlackSignature("X-Slack-Request-Timestamp is not a Unix time in seconds")
    age = now - int(timestamp)
    if age > MAX_AGE_SECONDS:
        raise InvalidSlackSignature(f"request is too old ({int(age)} s > {MAX_AGE_SECONDS} s): stale or replayed")
    if age < -MAX_AGE_SECONDS:
        raise InvalidSlackSignature(f"request timestamp is {int(-age)} s in the future (> {MAX_AGE_SECONDS} s)")
    if not signature.startswith("v0="):
        raise InvalidSlackSignature("unsupported signature version (expected v0=)")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidSlackSignature("request body is not UTF-8") from None
    verifier = SignatureVerifier(signing_secret, clock=_FixedClock(now))
    if not verifier.is_valid(body=body, timestamp=timestamp, signature=signature):
        raise InvalidSlackSignature("signature does not match (wrong signing secret or altered body)")


@dataclass(frozen=True)
class SlackAction:
    """One button press, reduced to what loopwatch acts on and records in the audit log."""

    action_id: str
    group_id: str | None
    alert_id: str | None  # buttons of messages posted before grouping carried one alert
    user_id: str
    user_name: str
    channel: str | None
    message_ts: str | None
    response_url: str | None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def parse_action(body: bytes) -> SlackAction:
    """Parse the form-encoded ``payload=`` of a ``block_actions`` interaction.

    Raises ``ValueError`` with a message naming what is wrong (no payload, not JSON, not a
    block action, no action, no user, button value without a ``group_id`` or ``alert_id``).
    """
    try:
        form = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=20)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"Slack action body is not a UTF-8 form: {exc}") from None
    raw = form.get("payload")
    if not raw or not raw[0]:
        raise ValueError("Slack action body has no payload= field")
    try:
        payload = json.loads(raw[0])
    except json.JSONDecodeError as exc:
        raise ValueError(f"Slack action payload is not JSON: {exc.msg} at position {exc.pos}") from None
    except RecursionError:  # e.g. 50,000 nested arrays: Python's parser runs out of stack
        raise ValueError("Slack action payload is nested too deeply") from None
    if not isinstance(payload, dict):
        raise ValueError("Slack action payload is not a JSON object")
    if payload.get("type") != "block_actions":
        raise ValueError(f"unsupported Slack interaction type {payload.get('type')!r} (expected 'block_actions')")
    actions = payload.get("actions")
    if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
        raise ValueError("Slack block_actions payload has no actions")
    action = actions[0]
    action_id = _str(action.get("action_id"))
    if action_id is None:
        raise ValueError("Slack action has no action_id")
    group_id, alert_id = _target(action.get("value"))
    user = _dict(payload.get("user"))
    user_id = _str(user.get("id"))
    if user_id is None:
        raise ValueError("Slack action payload has no user.id")
    user_name = _str(user.get("username")) or _str(user.get("name")) or user_id
    container = _dict(payload.get("container"))
    channel = _str(_dict(payload.get("channel")).get("id")) or _str(container.get("channel_id"))
    message_ts = _str(_dict(payload.get("message")).get("ts")) or _str(container.get("message_ts"))
    return SlackAction(
        action_id=action_id,
        group_id=group_id,
        alert_id=alert_id,
        user_id=user_id,
        user_name=user_name,
        channel=channel,
        message_ts=message_ts,
        response_url=_str(payload.get("response_url")),
    )


def _target(value: Any) -> tuple[str | None, str | None]:
    """``(group_id, alert_id)`` from a button value written by ``messages.button_value``
    (``{"group_id": …}``), or by the per-alert messages of earlier versions (``{"alert_id": …}``)."""
    if not isinstance(value, str) or not value:
        raise ValueError("Slack action has no value (expected JSON with a group_id)")
    try:
        decoded = json.loads(value)
    except (json.JSONDecodeError, RecursionError):
        raise ValueError('Slack action value is not JSON (expected {"group_id": …})') from None
    if not isinstance(decoded, dict):
        raise ValueError("Slack action value has no group_id")
    group_id, alert_id = decoded.get("group_id"), decoded.get("alert_id")
    if isinstance(group_id, str) and group_id:
        return group_id, None
    if isinstance(alert_id, str) and alert_id:
        return None, alert_id
    raise ValueError("Slack action value has no group_id")
