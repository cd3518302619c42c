"""Build signed Slack interaction requests (button presses) as Slack sends them.

For tests of ``verify_slack_request`` / ``parse_action`` and of ``POST /slack/actions``:
``block_actions_body`` makes the form-encoded body, ``signed_headers`` signs it the way
Slack does (``v0=HMAC-SHA256(secret, "v0:{ts}:{body}")``).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


def signed_headers(body: bytes, secret: str = SIGNING_SECRET, *, timestamp: int) -> dict[str, str]:
    """The two headers Slack adds to every request, for ``body`` sent at ``timestamp``."""
    signature = SignatureVerifier(secret).generate_signature(timestamp=str(timestamp), body=body)
    assert signature is not None
    return {
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": signature,
        "Content-Type": "application/x-www-form-urlencoded",
    }


def block_actions_payload(
    action_id: str,
    target_id: str,
    *,
    target: str = "group_id",
    user_id: str = "U0ALICE01",
    user_name: str = "alice",
    channel: str = "C0ONCALL01",
    message_ts: str = "1700000000.000100",
    response_url: str = "https://hooks.slack.com/actions/T0/1/abc",
) -> dict[str, Any]:
    """A ``block_actions`` payload shaped like Slack's (only the fields loopwatch reads, plus context).

    The button value names ``target`` = ``target_id``: ``group_id`` as loopwatch's group
    messages write it, or ``alert_id`` as per-alert messages of earlier versions did."""
    return {
        "type": "block_actions",
        "team": {"id": "T0LOOPWATCH", "domain": "loopwatch-test"},
        "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": "T0LOOPWATCH"},
        "api_app_id": "A0LOOPWATCH",
        "token": "legacy-verification-token",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": False},
        "trigger_id": "1.2.3",
        "channel": {"id": channel, "name": "ml-oncall"},
        "message": {"type": "message", "ts": message_ts, "text": "alert"},
        "response_url": response_url,
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": "alert_actions",
                "text": {"type": "plain_text", "text": action_id},
                "value": json.dumps({target: target_id}),
                "action_ts": "1700000001.000200",
            }
        ],
    }


def form_body(payload: dict[str, Any]) -> bytes:
    """Slack posts interactions as ``application/x-www-form-urlencoded`` with one ``payload``."""
    return urlencode({"payload": json.dumps(payload)}).encode()


def block_actions_body(action_id: str, target_id: str, **kwargs: Any) -> bytes:
    """The raw body of a button press (see :func:`block_actions_payload` for options)."""
    return form_body(block_actions_payload(action_id, target_id, **kwargs))
