"""The fake Slack Web API behaves like Slack where our tests rely on it (so passing tests mean something)."""

from __future__ import annotations

import socket

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from tests.fakes.block_kit import block_kit_errors
from tests.fakes.slack_api import FakeSlackApi


def test_auth_is_checked(slack_api: FakeSlackApi) -> None:
    """A valid bearer token passes auth.test; a wrong one gets invalid_auth; none gets not_authed."""
    assert WebClient(token=slack_api.token, base_url=slack_api.base_url).auth_test()["ok"] is True
    with pytest.raises(SlackApiError) as wrong:
        WebClient(token="xoxb-wrong", base_url=slack_api.base_url).auth_test()
    assert wrong.value.response["error"] == "invalid_auth"
    with pytest.raises(SlackApiError) as missing:
        WebClient(base_url=slack_api.base_url).auth_test()
    assert missing.value.response["error"] == "not_authed"


def test_ts_values_increase_like_slacks(slack_api: FakeSlackApi) -> None:
    """chat.postMessage returns ok, the channel id and increasing ts strings in Slack's format."""
    client = WebClient(token=slack_api.token, base_url=slack_api.base_url)
    first = client.chat_postMessage(channel="#ml-oncall", text="one")
    second = client.chat_postMessage(channel="C0ONCALL01", text="two")
    assert (first["channel"], first["ts"], second["ts"]) == ("C0ONCALL01", "1700000000.000100", "1700000000.000200")
    assert first["message"]["text"] == "one"


def test_invalid_blocks_are_refused_with_pointers(slack_api: FakeSlackApi) -> None:
    """Blocks over Block Kit limits are refused with invalid_blocks and a JSON pointer, as Slack does."""
    client = WebClient(token=slack_api.token, base_url=slack_api.base_url)
    blocks = [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}]
    with pytest.raises(SlackApiError) as caught:
        client.chat_postMessage(channel="#ml-oncall", text="x", blocks=blocks)
    assert caught.value.response["error"] == "invalid_blocks"
    assert "json-pointer:/blocks/0/text" in caught.value.response["response_metadata"]["messages"][0]


@pytest.mark.parametrize(
    "blocks",
    [
        [{"type": "divider"}] * 51,
        [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}],
        [{"type": "section", "fields": [{"type": "mrkdwn", "text": "x" * 2001}]}],
        [
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "a",
                        "text": {"type": "plain_text", "text": "x"},
                        "value": "v" * 2001,
                    }
                ],
            }
        ],
        [
            {
                "type": "actions",
                "elements": [{"type": "button", "action_id": "a", "text": {"type": "plain_text", "text": "x" * 76}}],
            }
        ],
        [{"type": "bogus"}],
    ],
)
def test_block_kit_checker_catches_limit_breaches(blocks: list[dict[str, object]]) -> None:
    """The Block Kit checker (used by message tests and the fake) flags each limit Slack enforces."""
    assert block_kit_errors(blocks) != []


def test_outage_refuses_connections_then_restarts_on_the_same_port(slack_api: FakeSlackApi) -> None:
    """During an outage nothing listens on the port; afterwards the same base_url works again."""
    base_url, port = slack_api.base_url, slack_api.port
    with slack_api.outage():
        assert not slack_api.running
        with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=1):
            pass
    assert slack_api.base_url == base_url
    assert WebClient(token=slack_api.token, base_url=base_url).auth_test()["ok"] is True


def test_update_needs_an_existing_message(slack_api: FakeSlackApi) -> None:
    """chat.update of an unknown ts answers message_not_found; a known one is edited in place."""
    client = WebClient(token=slack_api.token, base_url=slack_api.base_url)
    ts = client.chat_postMessage(channel="#ml-oncall", text="before")["ts"]
    client.chat_update(channel="C0ONCALL01", ts=ts, text="after")
    assert slack_api.message("#ml-oncall", ts)["text"] == "after"  # type: ignore[index]
    with pytest.raises(SlackApiError) as caught:
        client.chat_update(channel="C0ONCALL01", ts="1.000000", text="x")
    assert caught.value.response["error"] == "message_not_found"


def test_history_lists_top_level_messages_with_metadata(slack_api: FakeSlackApi) -> None:
    """conversations.history returns the channel's top-level messages, newest first, with their metadata."""
    client = WebClient(token=slack_api.token, base_url=slack_api.base_url)
    meta = {"event_type": "loopwatch_alert", "event_payload": {"alert_id": "al_1"}}
    parent = client.chat_postMessage(channel="#ml-oncall", text="alert", metadata=meta)["ts"]
    client.chat_postMessage(channel="#ml-oncall", text="note", thread_ts=parent)
    history = client.conversations_history(channel="C0ONCALL01")["messages"]
    assert [m["ts"] for m in history] == [parent]
    assert history[0]["metadata"] == meta
