"""SlackNotifier against a local Slack Web API: delivery, retries, outages, error classes, pacing;
the log notifier and the receiver chosen from settings."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from monitor.alerting.notify import MessageRef, PermanentNotifyError, TransientNotifyError
from monitor.alerting.notify.log import LogNotifier
from monitor.alerting.notify.receivers import notifier_from_settings
from monitor.alerting.notify.slack.channel import PermanentSlackError, SlackNotifier, TransientSlackError
from monitor.alerting.notify.slack.messages import firing_message, resolved_message, thread_reply
from monitor.alerting.notify.slack.retry import retry_after_seconds
from monitor.monitors import RouteSpec
from monitor.settings import Settings
from tests.fakes.slack_api import FakeSlackApi
from tests.monitor.alerting.helpers import FakeClock, make_notice

POST = "chat.postMessage"


def channel_for(api: FakeSlackApi, clock: FakeClock, **options: Any) -> SlackNotifier:
    return SlackNotifier(api.token, base_url=api.base_url, now=clock.now, sleep=clock.sleep, **options)


@pytest.fixture
def slack(clock: FakeClock) -> Iterator[FakeSlackApi]:
    """The fake Slack API stamping calls with the fake clock, so pacing is visible in its record."""
    with FakeSlackApi(clock=clock.now) as api:
        yield api


# ---------------------------------------------------------------- delivery


def test_post_sends_the_firing_message_and_returns_its_ts(slack: FakeSlackApi, clock: FakeClock) -> None:
    """post() calls chat.postMessage with the rendered text and blocks, names the group in the
    message metadata and returns Slack's ts."""
    notice = make_notice()
    ts = channel_for(slack, clock).post(notice).message_id
    [call] = slack.calls_to(POST)
    expected = firing_message(notice)
    assert call.params["channel"] == "#ml-oncall"
    assert call.params["text"] == expected["text"]
    assert call.params["blocks"] == expected["blocks"]
    assert call.params["metadata"]["event_payload"]["group_id"] == notice.group_id
    assert ts == "1700000000.000100"
    assert slack.message("#ml-oncall", ts)["blocks"] == expected["blocks"]  # type: ignore[index]


def test_bearer_token_is_sent_but_never_recorded(slack: FakeSlackApi, clock: FakeClock) -> None:
    """The token travels only in the Authorization header (validated by the fake, absent from its record)."""
    channel_for(slack, clock).post(make_notice())
    [call] = slack.calls
    assert call.token_valid
    assert "authorization" not in {k.lower() for k in call.headers}
    assert slack.token not in repr(call.params)


def test_post_returns_the_channel_id_for_later_updates(slack: FakeSlackApi, clock: FakeClock) -> None:
    """post() reports the channel id Slack resolved, which chat.update needs."""
    posted = channel_for(slack, clock).post(make_notice())
    assert posted == MessageRef(channel="C0ONCALL01", message_id="1700000000.000100")


def test_update_rewrites_the_original_message_as_resolved(slack: FakeSlackApi, clock: FakeClock) -> None:
    """update() with a resolved notice rewrites the original message (chat.update) to the resolved layout."""
    channel = channel_for(slack, clock)
    posted = channel.post(make_notice())
    resolved = make_notice(status="resolved", kind="resolved", acked_by="alice")
    channel.update(posted, resolved)
    message = slack.message(posted.channel, posted.message_id)
    assert message is not None and message["edits"] == 1
    assert message["blocks"] == resolved_message(resolved)["blocks"]
    assert len(slack.messages()) == 1


def test_update_by_channel_name_uses_the_learned_id(slack: FakeSlackApi, clock: FakeClock) -> None:
    """After a post, updating by the channel *name* is sent with the channel id Slack returned."""
    channel = channel_for(slack, clock)
    ts = channel.post(make_notice()).message_id
    channel.update(MessageRef("#ml-oncall", ts), make_notice(kind="update", acked_by="bob"))
    assert slack.calls_to("chat.update")[0].params["channel"] == "C0ONCALL01"


def test_reply_posts_in_the_thread(slack: FakeSlackApi, clock: FakeClock) -> None:
    """reply() posts the thread note with thread_ts set and returns the reply's own, later ts."""
    channel = channel_for(slack, clock)
    posted = channel.post(make_notice())
    repeat = make_notice(kind="repeat")
    reply_ts = channel.reply(posted, repeat)
    assert float(reply_ts) > float(posted.message_id)
    [_, call] = slack.calls_to(POST)
    assert call.params["thread_ts"] == posted.message_id
    assert call.params["blocks"] == thread_reply(repeat)["blocks"]


def test_check_reports_the_bot_identity(slack: FakeSlackApi, clock: FakeClock) -> None:
    """check() runs auth.test so start-up can log which workspace and bot the token belongs to."""
    identity = channel_for(slack, clock).check()
    assert identity["team"] == "loopwatch test" and identity["user_id"] == "U0LOOPBOT"


# ---------------------------------------------------------------- 429 and 5xx


def test_429_storm_is_waited_out_per_retry_after(slack: FakeSlackApi, clock: FakeClock) -> None:
    """Three 429s with Retry-After: 2 are each waited out for exactly 2 s, then the post succeeds once."""
    slack.rate_limit(3, retry_after=2)
    channel_for(slack, clock, max_retries=3).post(make_notice())
    assert [c.status for c in slack.calls_to(POST)] == [429, 429, 429, 200]
    assert clock.sleeps == [2, 2, 2]
    assert len(slack.messages()) == 1


def test_retry_after_is_honoured_in_real_time(slack: FakeSlackApi) -> None:
    """With the real clock, the retry reaches Slack no sooner than Retry-After (1 s) after the 429."""
    slack.clock = time.monotonic
    slack.rate_limit(1, retry_after=1)
    SlackNotifier(slack.token, base_url=slack.base_url).post(make_notice())
    first, second = slack.calls_to(POST)
    assert first.status == 429 and second.status == 200
    assert second.at - first.at >= 1.0


def test_rate_limit_outlasting_retries_is_transient_with_retry_after(slack: FakeSlackApi, clock: FakeClock) -> None:
    """A 429 storm longer than the retry budget raises TransientSlackError carrying Retry-After; nothing is posted."""
    slack.rate_limit(10, retry_after=3)
    with pytest.raises(TransientSlackError) as caught:
        channel_for(slack, clock, max_retries=2).post(make_notice())
    assert caught.value.error == "ratelimited" and caught.value.retry_after == 3
    assert len(slack.calls_to(POST)) == 3  # bounded: 1 + 2 retries
    assert slack.messages() == []


def test_long_retry_after_is_handed_to_the_outbox_not_slept(slack: FakeSlackApi, clock: FakeClock) -> None:
    """A Retry-After above max_retry_after is not slept in-process; the error carries it for the outbox."""
    slack.rate_limit(1, retry_after=120)
    with pytest.raises(TransientSlackError) as caught:
        channel_for(slack, clock, max_retry_after=30).post(make_notice())
    assert caught.value.retry_after == 120
    assert clock.sleeps == [] and len(slack.calls) == 1


def test_5xx_storm_then_recovery(slack: FakeSlackApi, clock: FakeClock) -> None:
    """5xx answers are retried with growing backoff; a storm past the budget is transient; after recovery posting works."""
    channel = channel_for(slack, clock, max_retries=3)
    slack.server_error(2, status=503)
    channel.post(make_notice())
    assert [c.status for c in slack.calls_to(POST)] == [503, 503, 200]
    first, second = clock.sleeps  # backoff 0.5 s · 2^attempt, plus up to 1 s of jitter
    assert 0.5 <= first < 1.5 and 1.0 <= second < 2.0

    slack.server_error(10, status=500)
    with pytest.raises(TransientSlackError) as caught:
        channel.post(make_notice(alert_id="al_2"))
    assert caught.value.status == 500 and not isinstance(caught.value, PermanentSlackError)
    slack.clear_faults()
    channel.post(make_notice(alert_id="al_2"))
    assert len(slack.messages()) == 2  # one per successful post, no duplicates


# ---------------------------------------------------------------- outages and timeouts


def test_outage_is_transient_and_recovers_on_the_same_port(slack: FakeSlackApi, clock: FakeClock) -> None:
    """With Slack unreachable, post() raises TransientSlackError (not sent, no token in it); after recovery it posts."""
    channel = channel_for(slack, clock, max_retries=2)
    port = slack.port
    with slack.outage():
        for _ in range(3):
            with pytest.raises(TransientSlackError) as caught:
                channel.post(make_notice())
            assert caught.value.maybe_delivered is False
            assert caught.value.error == "connection_error"
            assert slack.token not in str(caught.value)
            assert caught.value.__cause__ is None
    assert slack.port == port
    assert len(clock.sleeps) == 3 * 2  # bounded retries, all through the injected sleep
    channel.post(make_notice())
    assert len(slack.messages()) == 1


def test_timeout_waiting_for_the_answer_is_transient_and_maybe_delivered(slack: FakeSlackApi, clock: FakeClock) -> None:
    """A timeout after the request was sent is not retried in-process (Slack may have posted): transient, maybe_delivered."""
    slack.slow(1, seconds=1.5)
    with pytest.raises(TransientSlackError) as caught:
        channel_for(slack, clock, timeout=1).post(make_notice())
    assert caught.value.error == "timeout" and caught.value.maybe_delivered is True
    assert clock.sleeps == []


def test_dropped_connection_after_posting_is_not_retried_blindly(slack: FakeSlackApi, clock: FakeClock) -> None:
    """If the connection drops after Slack acted, the channel does not re-post by itself (no duplicate)."""
    slack.drop(1, after_processing=True)
    with pytest.raises(TransientSlackError) as caught:
        channel_for(slack, clock).post(make_notice())
    assert caught.value.maybe_delivered is True
    assert len(slack.calls) == 1 and len(slack.messages()) == 1


# ---------------------------------------------------------------- permanent errors


def test_invalid_token_is_permanent_and_never_shown(slack: FakeSlackApi, clock: FakeClock) -> None:
    """A wrong token raises PermanentSlackError(invalid_auth) once, with a hint and without the token."""
    secret = "xoxb-1111-2222-SUPERSECRET"
    channel = SlackNotifier(secret, base_url=slack.base_url, now=clock.now, sleep=clock.sleep)
    with pytest.raises(PermanentSlackError) as caught:
        channel.post(make_notice())
    assert caught.value.error == "invalid_auth"
    assert "LOOPWATCH_SLACK_TOKEN" in str(caught.value)
    assert secret not in str(caught.value) and secret not in repr(channel)
    assert len(slack.calls) == 1


def test_revoked_token_is_permanent(slack: FakeSlackApi, clock: FakeClock) -> None:
    """A revoked token is a permanent failure that says to reinstall the app."""
    slack.revoke_token()
    with pytest.raises(PermanentSlackError, match="token_revoked"):
        channel_for(slack, clock).post(make_notice())


@pytest.mark.parametrize(
    ("channel", "error", "hint"),
    [
        ("#no-such-channel", "channel_not_found", "check the route's slack_channel"),
        ("#ml-team", "not_in_channel", "/invite"),
        ("#ml-alerts", "is_archived", "archived"),
    ],
)
def test_channel_problems_are_permanent_with_a_hint(clock: FakeClock, channel: str, error: str, hint: str) -> None:
    """Unknown, not-joined or archived channels raise PermanentSlackError naming the channel and the fix."""
    api = FakeSlackApi(clock=clock.now, archived=["#ml-alerts"], not_in_channel=["#ml-team"])
    with api, pytest.raises(PermanentSlackError) as caught:
        channel_for(api, clock).post(make_notice(channel=channel))
    assert caught.value.error == error and caught.value.channel == channel
    assert hint in str(caught.value) and channel in str(caught.value)


@pytest.mark.parametrize(
    ("error", "expected", "maybe_delivered"),
    [
        ("invalid_blocks", PermanentSlackError, False),
        ("msg_too_long", PermanentSlackError, False),
        ("some_new_error", PermanentSlackError, False),
        ("internal_error", TransientSlackError, True),
        ("service_unavailable", TransientSlackError, False),
    ],
)
def test_slack_error_codes_are_classified(
    slack: FakeSlackApi, clock: FakeClock, error: str, expected: type, maybe_delivered: bool
) -> None:
    """ok:false answers are split into permanent (fix config/message) and transient (retry later) by error code."""
    slack.slack_error(1, error)
    with pytest.raises(expected) as caught:
        channel_for(slack, clock).post(make_notice())
    assert caught.value.error == error
    assert getattr(caught.value, "maybe_delivered", False) is maybe_delivered


def test_invalid_blocks_report_slacks_reason(slack: FakeSlackApi, clock: FakeClock) -> None:
    """When Slack refuses blocks, the error includes Slack's pointer to the offending block."""
    slack.slack_error(
        1, "invalid_blocks", messages=["[ERROR] must be less than 151 characters [json-pointer:/blocks/0/text]"]
    )
    with pytest.raises(PermanentSlackError) as caught:
        channel_for(slack, clock).post(make_notice())
    assert caught.value.error == "invalid_blocks"
    assert "[json-pointer:/blocks/0/text]" in str(caught.value)


def test_unbuildable_message_is_permanent(slack: FakeSlackApi, clock: FakeClock) -> None:
    """A notice that cannot be rendered (group id too long for a button) fails permanently without calling Slack."""
    with pytest.raises(PermanentSlackError, match="cannot build the message"):
        channel_for(slack, clock).post(make_notice(alert_id="x" * 3000))
    assert slack.calls == []


def test_no_log_line_contains_the_token(
    slack: FakeSlackApi, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Across failures (bad auth, 5xx, outage) nothing logged contains the bot token."""
    caplog.set_level(logging.DEBUG)
    channel = channel_for(slack, clock, max_retries=1)
    slack.server_error(5)
    with pytest.raises(TransientSlackError):
        channel.post(make_notice())
    slack.clear_faults()
    with slack.outage(), pytest.raises(TransientSlackError):
        channel.post(make_notice())
    slack.revoke_token()
    with pytest.raises(PermanentSlackError):
        channel.post(make_notice())
    assert caplog.records, "failures should be logged"
    assert slack.token not in caplog.text


# ---------------------------------------------------------------- pacing


def test_at_most_one_message_per_second_per_channel(slack: FakeSlackApi, clock: FakeClock) -> None:
    """Calls to one channel (posts, replies, updates; by name or id) reach Slack ≥ 1 s apart; other channels don't wait."""
    channel = channel_for(slack, clock)
    posted = channel.post(make_notice())
    for i in range(3):
        channel.reply(posted, make_notice(kind="repeat", alert_id=f"r{i}"))
    channel.update(MessageRef("#ml-oncall", posted.message_id), make_notice(kind="update", acked_by="alice"))
    channel.post(make_notice(channel="#ml-oncall", alert_id="second"))
    oncall = [c.at for c in slack.calls]
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(oncall))
    before = clock.t
    channel.post(make_notice(channel="#ml-alerts"))  # another channel: no wait
    channel.post(make_notice(channel="#ml-team"))
    assert clock.t == before


def test_pacing_holds_across_threads() -> None:
    """Concurrent senders to one channel are serialised and spaced by min_interval (real clock)."""
    with FakeSlackApi() as api:
        channel = SlackNotifier(api.token, base_url=api.base_url, min_interval=0.3)
        threads = [threading.Thread(target=channel.post, args=(make_notice(alert_id=f"t{i}"),)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
        times = sorted(c.at for c in api.calls)
    assert len(times) == 4
    assert all(b - a >= 0.25 for a, b in itertools.pairwise(times))


# ---------------------------------------------------------------- log notifier and settings


def test_slack_errors_are_the_generic_notify_errors() -> None:
    """The pipeline catches only the generic notify errors; Slack's are subclasses of them."""
    assert issubclass(TransientSlackError, TransientNotifyError)
    assert issubclass(PermanentSlackError, PermanentNotifyError)
    error = TransientSlackError("x", method="chat.update", channel=None, error="timeout", retry_after=3)
    assert error.retry_after == 3 and error.maybe_delivered is False


def test_log_notifier_logs_notices_when_slack_is_not_configured(caplog: pytest.LogCaptureFixture) -> None:
    """Without Slack, LogNotifier logs each group notice (group id, state, summary) and returns unique ids."""
    caplog.set_level(logging.INFO)
    notifier = LogNotifier()
    ref = notifier.post(make_notice())
    notifier.update(ref, make_notice(status="resolved", kind="resolved"))
    reply = notifier.reply(ref, make_notice(kind="repeat"))
    assert ref.message_id != reply and notifier.name == "log"
    assert "grp_9d1e posted [firing/new]" in caplog.text
    assert "FN rate 4.1% → 9.8%" in caplog.text
    assert "[resolved/resolved]" in caplog.text
    assert [r.levelname for r in caplog.records] == ["WARNING", "INFO", "WARNING"]
    assert notifier.find_posted(make_notice()) is None


def test_notifier_from_settings_picks_slack_only_with_a_token(
    slack: FakeSlackApi, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """notifier_from_settings returns a SlackNotifier pointed at LOOPWATCH_SLACK_API_URL when a token is set, else LogNotifier."""
    for name in ("LOOPWATCH_SLACK_TOKEN", "SLACK_BOT_TOKEN", "LOOPWATCH_SLACK_API_URL"):
        monkeypatch.delenv(name, raising=False)
    assert isinstance(notifier_from_settings(Settings(data_dir=tmp_path)), LogNotifier)
    configured = Settings(data_dir=tmp_path, slack_token=SecretStr(slack.token), slack_api_url=slack.base_url)
    notifier = notifier_from_settings(configured, sleep=lambda _s: None)
    assert isinstance(notifier, SlackNotifier) and notifier.name == "slack"
    notifier.post(make_notice())
    assert len(slack.messages()) == 1


def test_empty_token_is_refused_up_front() -> None:
    """Constructing a SlackNotifier without a token is a configuration error, not a later surprise."""
    with pytest.raises(ValueError, match="token is required"):
        SlackNotifier("  ")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [({"Retry-After": ["2"]}, 2.0), ({"retry-after": "1.5"}, 1.5), ({"Retry-After": ["soon"]}, 1.0), ({}, 1.0)],
)
def test_retry_after_parsing(headers: dict[str, Any], expected: float) -> None:
    """Retry-After is read case-insensitively; a missing or non-numeric value means 1 s."""
    assert retry_after_seconds(headers) == expected


def test_destination_is_the_routes_channel_or_the_default() -> None:
    """Slack sends a route's alerts to its slack_channel, else to LOOPWATCH_SLACK_CHANNEL; the log
    notifier has one destination."""
    notifier = SlackNotifier("xoxb-test", default_channel="#ml-default")
    assert notifier.destination(RouteSpec(slack_channel="#ml-oncall")) == "#ml-oncall"
    assert notifier.destination(RouteSpec()) == "#ml-default"
    assert LogNotifier().destination(RouteSpec(slack_channel="#ml-oncall")) == "log"
