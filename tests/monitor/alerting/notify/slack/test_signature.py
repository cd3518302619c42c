"""Signed Slack button presses: who may change alert state, and what a press says."""

from __future__ import annotations

import contextlib
import json
from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.alerting.notify.slack.messages import firing_message
from monitor.alerting.notify.slack.signature import (
    InvalidSlackSignature,
    SlackAction,
    parse_action,
    verify_slack_request,
)
from tests.fakes.slack_interactions import (
    SIGNING_SECRET,
    block_actions_body,
    block_actions_payload,
    form_body,
    signed_headers,
)
from tests.monitor.alerting.helpers import make_notice

NOW = 1_800_000_000
BODY = block_actions_body("ack", "al_7f3c2a")


def test_valid_signature_is_accepted() -> None:
    """A body signed with the signing secret at the current time passes."""
    verify_slack_request(BODY, signed_headers(BODY, timestamp=NOW), SIGNING_SECRET, now=NOW)


def test_header_names_are_case_insensitive() -> None:
    """Frameworks lower-case header names; verification does not depend on capitalisation."""
    headers = {k.lower(): v for k, v in signed_headers(BODY, timestamp=NOW).items()}
    verify_slack_request(BODY, headers, SIGNING_SECRET, now=NOW)


def test_wrong_secret_is_refused() -> None:
    """A request signed with another secret is refused."""
    headers = signed_headers(BODY, "another-apps-secret", timestamp=NOW)
    with pytest.raises(InvalidSlackSignature, match="does not match"):
        verify_slack_request(BODY, headers, SIGNING_SECRET, now=NOW)


def test_tampered_body_is_refused() -> None:
    """Changing the body after signing (e.g. another alert id) breaks the signature."""
    headers = signed_headers(BODY, timestamp=NOW)
    tampered = block_actions_body("ack", "al_other")
    with pytest.raises(InvalidSlackSignature, match="does not match"):
        verify_slack_request(tampered, headers, SIGNING_SECRET, now=NOW)


def test_replayed_request_is_refused_after_five_minutes() -> None:
    """A captured, validly signed request replayed more than 5 minutes later is refused as stale."""
    headers = signed_headers(BODY, timestamp=NOW)
    verify_slack_request(BODY, headers, SIGNING_SECRET, now=NOW + 300)  # the boundary still passes
    with pytest.raises(InvalidSlackSignature, match="too old"):
        verify_slack_request(BODY, headers, SIGNING_SECRET, now=NOW + 301)


def test_timestamp_far_in_the_future_is_refused() -> None:
    """A timestamp more than 5 minutes ahead of our clock is refused (it would stay replayable for longer)."""
    headers = signed_headers(BODY, timestamp=NOW + 301)
    with pytest.raises(InvalidSlackSignature, match="future"):
        verify_slack_request(BODY, headers, SIGNING_SECRET, now=NOW)


@pytest.mark.parametrize("missing", ["X-Slack-Signature", "X-Slack-Request-Timestamp"])
def test_missing_headers_are_refused(missing: str) -> None:
    """Without both Slack headers the request is refused, naming what is missing."""
    headers = signed_headers(BODY, timestamp=NOW)
    del headers[missing]
    with pytest.raises(InvalidSlackSignature, match=missing.lower()):
        verify_slack_request(BODY, headers, SIGNING_SECRET, now=NOW)


@pytest.mark.parametrize("timestamp", ["soon", "1.8e9", "-5", "١٨٠٠٠٠٠٠٠٠"])
def test_non_numeric_timestamp_is_refused(timestamp: str) -> None:
    """A timestamp that is not plain ASCII digits is refused (never crashes with ValueError)."""
    headers = signed_headers(BODY, timestamp=NOW) | {"X-Slack-Request-Timestamp": timestamp}
    with pytest.raises(InvalidSlackSignature, match="Unix time"):
        verify_slack_request(BODY, headers, SIGNING_SECRET, now=NOW)


def test_other_signature_versions_are_refused() -> None:
    """Only v0 signatures are understood."""
    headers = signed_headers(BODY, timestamp=NOW)
    headers["X-Slack-Signature"] = "v1=" + headers["X-Slack-Signature"][3:]
    with pytest.raises(InvalidSlackSignature, match="version"):
        verify_slack_request(BODY, headers, SIGNING_SECRET, now=NOW)


def test_non_utf8_body_is_refused_not_crashing() -> None:
    """A body that is not UTF-8 is refused as invalid rather than raising UnicodeDecodeError."""
    body = b"payload=\xff\xfe"
    headers = signed_headers(b"payload=", timestamp=NOW)
    with pytest.raises(InvalidSlackSignature, match="UTF-8"):
        verify_slack_request(body, headers, SIGNING_SECRET, now=NOW)


def test_missing_signing_secret_is_a_configuration_error() -> None:
    """Without a configured signing secret nothing can be verified: ValueError, not a silent pass."""
    with pytest.raises(ValueError, match="LOOPWATCH_SLACK_SIGNING_SECRET"):
        verify_slack_request(BODY, signed_headers(BODY, timestamp=NOW), "", now=NOW)


# ---------------------------------------------------------------- parsing


def test_parse_action_reads_a_button_press() -> None:
    """A block_actions payload yields the action, the group id from the button value, the user and the message."""
    action = parse_action(block_actions_body("silence_1h", "grp_7f3c2a"))
    assert action == SlackAction(
        action_id="silence_1h",
        group_id="grp_7f3c2a",
        alert_id=None,
        user_id="U0ALICE01",
        user_name="alice",
        channel="C0ONCALL01",
        message_ts="1700000000.000100",
        response_url="https://hooks.slack.com/actions/T0/1/abc",
    )


def test_buttons_of_per_alert_messages_still_work() -> None:
    """Messages posted before grouping carry {"alert_id": …}; their buttons still parse (to that alert)."""
    action = parse_action(block_actions_body("ack", "al_1", target="alert_id"))
    assert (action.group_id, action.alert_id) == (None, "al_1")


def test_parse_action_falls_back_to_the_container() -> None:
    """Without channel/message objects the container's channel_id and message_ts are used; user name falls back to id."""
    payload = block_actions_payload("ack", "al_1")
    del payload["channel"], payload["message"], payload["user"]["username"], payload["user"]["name"]
    action = parse_action(form_body(payload))
    assert (action.channel, action.message_ts, action.user_name) == ("C0ONCALL01", "1700000000.000100", "U0ALICE01")


def test_button_values_from_our_messages_round_trip() -> None:
    """Every button value written by firing_message parses back to the group id."""
    notice = make_notice(group_id="grp_round_trip")
    elements = [e for b in firing_message(notice)["blocks"] if b["type"] == "actions" for e in b["elements"]]
    for element in elements:
        payload = block_actions_payload(element["action_id"], "ignored")
        payload["actions"][0]["value"] = element["value"]
        action = parse_action(form_body(payload))
        assert (action.action_id, action.group_id) == (element["action_id"], "grp_round_trip")


def _with(mutate: object) -> bytes:
    payload = block_actions_payload("ack", "al_1")
    assert callable(mutate)
    mutate(payload)
    return form_body(payload)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "no payload"),
        (b"text=hello", "no payload"),
        (urlencode({"payload": "{not json"}).encode(), "not JSON"),
        (urlencode({"payload": "[1, 2]"}).encode(), "not a JSON object"),
        (form_body({"type": "view_submission"}), "unsupported Slack interaction type"),
        (_with(lambda p: p.update(actions=[])), "no actions"),
        (_with(lambda p: p["actions"][0].pop("action_id")), "no action_id"),
        (_with(lambda p: p.pop("user")), "no user.id"),
        (_with(lambda p: p["actions"][0].pop("value")), "no value"),
        (_with(lambda p: p["actions"][0].update(value="al_1")), "value is not JSON"),
        (_with(lambda p: p["actions"][0].update(value=json.dumps({"id": "al_1"}))), "no group_id"),
        (b"payload=\xff", "not a UTF-8 form"),
    ],
)
def test_malformed_payloads_raise_value_error(body: bytes, message: str) -> None:
    """A malformed interaction raises ValueError saying what is wrong (the endpoint answers 400)."""
    with pytest.raises(ValueError, match=message):
        parse_action(body)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=500) | st.text(max_size=300).map(lambda t: urlencode({"payload": t}).encode()))
def test_parse_action_only_ever_raises_value_error(body: bytes) -> None:
    """Whatever arrives, parse_action returns a SlackAction or raises ValueError — never anything else."""
    with contextlib.suppress(ValueError):
        parse_action(body)
