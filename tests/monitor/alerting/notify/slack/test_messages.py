"""Block Kit content of group messages: the alert list, counts, buttons, links, escaping and limits."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.alerting.notice import AlertLine
from monitor.alerting.notify.slack.messages import (
    ALERT_ACTIONS,
    MAX_BUTTON_VALUE,
    MAX_HEADER_TEXT,
    MAX_LISTED,
    MAX_SECTION_TEXT,
    button_value,
    escape_mrkdwn,
    firing_message,
    fit_mrkdwn,
    format_number,
    format_window,
    original_message,
    resolved_message,
    safe_url,
    thread_reply,
)
from tests.fakes.block_kit import block_kit_errors
from tests.monitor.alerting.helpers import T0, make_line, make_notice


def blocks_of(message: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [b for b in message["blocks"] if b["type"] == kind]


def buttons(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["action_id"]: e for b in blocks_of(message, "actions") for e in b["elements"]}


def all_mrkdwn(message: dict[str, Any]) -> list[str]:
    """Every mrkdwn string in the message (Slack parses these for links and mentions)."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn":
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(message["blocks"])
    return [message["text"], *found]


def section_texts(message: dict[str, Any]) -> list[str]:
    return [b["text"]["text"] for b in blocks_of(message, "section") if "text" in b]


def context_text(message: dict[str, Any]) -> str:
    return " ".join(e["text"] for b in blocks_of(message, "context") for e in b["elements"])


def drift_lines(count: int, **overrides: Any) -> tuple[AlertLine, ...]:
    """``count`` drifting columns of one monitor (as data_drift raises them)."""
    return tuple(
        make_line(
            alert_id=f"al_{i}",
            title=f"harsh-braking: f{i} drift",
            detector="data_drift",
            metric="wasserstein",
            column=f"f{i}",
            value=0.2 + i / 100,
            threshold=0.1,
            what_changed=f"f{i} Wasserstein distance 0.02 → {0.2 + i / 100:.2f}",
            **overrides,
        )
        for i in range(count)
    )


def test_header_shows_worst_severity_and_group_title() -> None:
    """The first block is a header naming the group's worst firing severity and its title (its labels)."""
    message = firing_message(make_notice(severity="warning"))
    header = message["blocks"][0]
    assert header["type"] == "header"
    assert header["text"]["text"] == "🟠 WARNING · harsh-braking · fn-rate"


def test_summary_counts_alerts_and_names_the_group_labels() -> None:
    """Under the header: how many alerts fire (and resolved), and the group's labels."""
    lines = (*drift_lines(2), make_line(alert_id="al_r", status="resolved"))
    summary = section_texts(firing_message(make_notice(lines=lines)))[0]
    assert summary == "*2 firing, 1 resolved* · model=harsh-braking, monitor=fn-rate"


def test_each_alert_lists_title_column_segment_value_threshold_and_what_changed() -> None:
    """Every alert of the group is its own section: linked title, column/metric with detector,
    segment, value vs threshold, version, and the "what changed" line."""
    [_, first, *_] = section_texts(firing_message(make_notice(lines=drift_lines(2))))
    assert first.startswith(
        "🔴 *<http://loopwatch.local:8080/models/harsh-braking/alerts/al_7f3c2a|harsh-braking: f0 drift>*"
    )
    assert "f0 (data_drift) · firmware=3.2, region=eu · 0.2 vs 0.1 · version 3.1.0" in first
    assert first.endswith("f0 Wasserstein distance 0.02 → 0.20")


def test_model_wide_alert_says_all_traffic() -> None:
    """An alert without segment, version or value says so instead of leaving a blank."""
    [_, line] = section_texts(firing_message(make_notice(segment=None, model_version=None, value=None)))
    assert "fn_rate (performance) · all traffic · n/a vs 0.05\n" in line


def test_six_alerts_are_listed_in_one_message() -> None:
    """Six drifting columns render as one message with six alert sections, valid Block Kit."""
    message = firing_message(make_notice(lines=drift_lines(6)))
    assert block_kit_errors(message["blocks"]) == []
    listed = [t for t in section_texts(message) if "Wasserstein" in t]
    assert len(listed) == 6
    assert message["text"].startswith(
        "[CRITICAL] harsh-braking · fn-rate: harsh-braking: f0 drift — f0 Wasserstein distance 0.02 → 0.20 (+5 more)"
    )


def test_long_groups_are_capped_with_and_n_more_and_the_dashboard_link() -> None:
    """Beyond MAX_LISTED alerts the rest are counted in an "and N more" line linking the dashboard."""
    message = firing_message(make_notice(lines=drift_lines(MAX_LISTED + 7)))
    assert block_kit_errors(message["blocks"]) == []
    assert len([t for t in section_texts(message) if "Wasserstein" in t]) == MAX_LISTED
    assert "…and 7 more alerts: <http://loopwatch.local:8080/models/harsh-braking#alerts|see them all" in context_text(
        message
    )


def test_buttons_carry_the_group_id_as_json() -> None:
    """Ack, Silence 1h/24h and Send-samples buttons exist and each value is JSON naming the group."""
    found = buttons(firing_message(make_notice(group_id="grp_42")))
    assert set(found) >= ALERT_ACTIONS
    for action_id in ALERT_ACTIONS:
        assert json.loads(found[action_id]["value"]) == {"group_id": "grp_42"}
    assert found["ack"]["style"] == "primary"


def test_send_samples_button_only_where_labels_help() -> None:
    """A group offers "Send samples to labeling" unless labels cannot help with any of its
    alerts (latency, volume, freshness, data quality): then the button is left out."""
    assert "route_samples" in buttons(firing_message(make_notice()))
    assert "route_samples" not in buttons(firing_message(make_notice(labels_can_help=False)))


def test_dashboard_and_runbook_are_link_buttons_when_present() -> None:
    """Dashboard and runbook URLs become link buttons; without URLs there are no link buttons."""
    with_links = buttons(firing_message(make_notice()))
    assert with_links["open_dashboard"]["url"] == "http://loopwatch.local:8080/models/harsh-braking#alerts"
    assert with_links["open_runbook"]["url"] == "https://wiki.example.com/runbooks/harsh-braking"
    without = buttons(firing_message(make_notice(dashboard_url=None, runbook_url=None)))
    assert "open_dashboard" not in without and "open_runbook" not in without


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "file:///etc/passwd", "/relative/path", "http://", "https://x y", "h" * 3001]
)
def test_only_absolute_http_urls_become_links(url: str) -> None:
    """A runbook URL that is not absolute http(s) (or too long) is dropped, not linked."""
    assert safe_url(url) is None
    assert "open_runbook" not in buttons(firing_message(make_notice(runbook_url=url)))


def test_fallback_text_summarises_the_group() -> None:
    """The fallback ``text`` (notifications, screen readers) names severity, group and the first change."""
    text = firing_message(make_notice())["text"]
    assert text.startswith("[CRITICAL] harsh-braking · fn-rate: FN rate above threshold — FN rate 4.1% → 9.8%")


HOSTILE = "<!channel> & <https://evil.example|click me> <@U0BOSS>"


def test_hostile_names_are_escaped_in_every_mrkdwn_text() -> None:
    """User-provided strings cannot inject mentions or links: & < > are escaped everywhere Slack parses mrkdwn."""
    notice = make_notice(
        model=HOSTILE,
        title=HOSTILE,
        segment={"firmware": HOSTILE, "<b>": "x"},
        what_changed=HOSTILE,
        metric=HOSTILE,
        acked_by=HOSTILE,
        dashboard_url=None,
    )
    notice = dataclasses.replace(
        notice, alerts=tuple(dataclasses.replace(a, dashboard_url=None) for a in notice.alerts)
    )
    for build in (firing_message, resolved_message, thread_reply):
        texts = all_mrkdwn(build(notice))
        for text in texts:
            assert "<" not in text and ">" not in text, text
        assert "&lt;!channel&gt; &amp; &lt;https://evil.example|click me&gt; &lt;@U0BOSS&gt;" in "\n".join(texts)


def test_only_our_own_links_reach_mrkdwn() -> None:
    """The only ``<…>`` in a message are the alert links we build from http(s) URLs."""
    notice = make_notice(model=HOSTILE, title=HOSTILE, what_changed=HOSTILE)
    for text in all_mrkdwn(firing_message(notice))[1:]:
        for link in re.findall(r"<([^>]*)>", text):
            assert link.startswith("http://loopwatch.local:8080/models/"), link


def test_user_text_is_verbatim_so_slack_does_not_autolink() -> None:
    """mrkdwn objects are ``verbatim`` so Slack does not turn @here, #channel or bare URLs in user text into links."""
    message = firing_message(make_notice())
    for block in message["blocks"]:
        for obj in [block.get("text"), *block.get("fields", []), *block.get("elements", [])]:
            if isinstance(obj, dict) and obj.get("type") == "mrkdwn":
                assert obj["verbatim"] is True


def test_newlines_in_names_cannot_fake_extra_lines() -> None:
    """Control characters in one-line values (segment, what changed) are replaced, so they cannot forge lines."""
    [_, line] = section_texts(firing_message(make_notice(segment={"firmware": "3.2\n*Resolved*\n0 vs 1"})))
    assert "firmware=3.2 *Resolved* 0 vs 1" in line
    assert line.count("\n") == 2  # title, facts, what changed — nothing more


def test_long_texts_are_cut_to_block_kit_limits_without_breaking_entities() -> None:
    """Oversized user text is cut (with …) to Slack's limits, never in the middle of an &amp; entity."""
    message = firing_message(make_notice(what_changed="&" * 5000, title="T" * 400, model="m" * 5000))
    assert block_kit_errors(message["blocks"]) == []
    for text in section_texts(message):
        assert len(text) <= MAX_SECTION_TEXT
    line = section_texts(message)[1]
    assert re.search(r"\n(&amp;)+…$", line)
    assert len(message["blocks"][0]["text"]["text"]) <= MAX_HEADER_TEXT
    assert len(message["text"]) <= 3000


def test_fit_mrkdwn_counts_astral_characters_twice() -> None:
    """Emoji outside the BMP count as two UTF-16 units, so a cut text never exceeds Slack's limit."""
    cut = fit_mrkdwn("😀" * 100, 11)
    assert cut == "😀" * 5 + "…"


def test_button_value_refuses_oversized_group_ids() -> None:
    """A button value above 2,000 characters is a bug, reported as ValueError rather than sent."""
    assert len(button_value("a" * 100)) < MAX_BUTTON_VALUE
    with pytest.raises(ValueError, match="too long"):
        button_value("a" * 2000)


def test_acknowledged_group_drops_the_ack_button_and_says_who() -> None:
    """Once every firing alert is acknowledged, the message says who and offers no Acknowledge button."""
    message = firing_message(make_notice(kind="update", acked_by="alice"))
    assert "ack" not in buttons(message)
    assert {"silence_1h", "silence_24h", "route_samples"} <= set(buttons(message))
    assert "Acknowledged by alice" in context_text(message)
    assert "_(acknowledged by alice)_" in section_texts(message)[1]


def test_partly_acknowledged_group_keeps_the_ack_button() -> None:
    """While one firing alert is not acknowledged, Acknowledge stays (it acks the rest)."""
    lines = (make_line(alert_id="a", acked_by="alice"), make_line(alert_id="b"))
    assert "ack" in buttons(firing_message(make_notice(lines=lines)))


def test_context_says_since_when_and_the_last_window_in_utc() -> None:
    """The context line gives the group's start and the latest judged window, in UTC."""
    context = context_text(firing_message(make_notice()))
    assert "since 2026-11-23 13:00 UTC" in context and "last window 2026-11-23 13:00 → 14:00 UTC" in context


def test_silenced_group_shows_until_when() -> None:
    """A silenced group's message shows the silence end in UTC."""
    until = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)
    message = firing_message(make_notice(kind="update", silenced_until=until))
    assert "Silenced until 2026-11-23 16:00 UTC" in context_text(message)


def test_resolved_message_replaces_actions_and_keeps_history() -> None:
    """The resolved version keeps the list, shows how long the group fired, and offers no ack/silence."""
    lines = drift_lines(3, status="resolved")
    notice = make_notice(lines=lines, status="resolved", kind="resolved", ended_at=T0 + timedelta(hours=2, minutes=15))
    message = resolved_message(notice)
    assert message["blocks"][0]["text"]["text"] == "✅ RESOLVED · harsh-braking · fn-rate"
    assert message["text"].startswith("[RESOLVED] harsh-braking · fn-rate: harsh-braking: f0 drift")
    assert set(buttons(message)) == {"route_samples", "open_dashboard", "open_runbook"}
    assert section_texts(message)[0].startswith("*All 3 alerts resolved · fired for 2h 15m*")
    assert "was critical" in context_text(message)
    assert all("_(resolved)_" in t for t in section_texts(message)[1:])
    assert original_message(notice) == message


def test_original_message_is_firing_while_any_alert_fires() -> None:
    """``original_message`` picks the firing layout while one alert still fires."""
    notice = make_notice(lines=(make_line(alert_id="a", status="resolved"), make_line(alert_id="b")))
    assert notice.status == "firing"
    assert original_message(notice) == firing_message(notice)


@pytest.mark.parametrize(
    ("kind", "status", "expected"),
    [
        ("repeat", "firing", "🔁 *Still firing* (critical): 1 alert: FN rate above threshold"),
        ("resolved", "resolved", "✅ *Resolved*: all 1 alert cleared after 1h: FN rate above threshold"),
        ("update", "firing", "ℹ️ *Update*: FN rate above threshold"),
    ],
)
def test_thread_reply_says_what_happened(kind: str, status: str, expected: str) -> None:
    """Thread notes start with what happened (repeat, resolution, update) and name the alerts."""
    message = thread_reply(make_notice(kind=kind, status=status))
    assert message["blocks"][0]["text"]["text"] == expected
    assert block_kit_errors(message["blocks"]) == []


def test_window_is_rendered_in_utc_whatever_the_input_zone() -> None:
    """Windows are shown in UTC: aware times are converted, naive ones read as UTC, dates repeat across midnight."""
    cet = timezone(timedelta(hours=1))
    assert format_window(datetime(2026, 11, 23, 14, 0, tzinfo=cet), datetime(2026, 11, 23, 15, 0, tzinfo=cet)) == (
        "2026-11-23 13:00 → 14:00 UTC"
    )
    assert format_window(datetime(2026, 11, 23, 23, 30), datetime(2026, 11, 24, 0, 30, 15)) == (
        "2026-11-23 23:30 → 2026-11-24 00:30:15 UTC"
    )


def test_numbers_are_short_and_never_crash() -> None:
    """Values use four significant digits; missing, NaN and infinite values are spelled out."""
    assert [format_number(v) for v in (0.098765, 12345.6, None, float("nan"), float("inf"))] == [
        "0.09877",
        "1.235e+04",
        "n/a",
        "NaN",
        "∞",
    ]


def test_escape_mrkdwn_escapes_only_the_three_control_characters() -> None:
    """Only & < > are escaped (Slack decodes only those), so quotes and accents stay readable."""
    assert escape_mrkdwn("a<b>&\"'é") == "a&lt;b&gt;&amp;\"'é"


_texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=4000)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    model=_texts,
    title=_texts,
    what=_texts,
    seg_key=st.text(max_size=300),
    seg_value=_texts,
    alert_id=st.text(min_size=1, max_size=300),
    acked=st.none() | st.text(max_size=500),
)
def test_any_input_yields_valid_block_kit(
    model: str, title: str, what: str, seg_key: str, seg_value: str, alert_id: str, acked: str | None
) -> None:
    """Whatever users name their models and segments, every message stays within Block Kit limits and unescaped < > never reach mrkdwn."""
    notice = make_notice(
        model=model,
        title=title,
        what_changed=what,
        segment={seg_key: seg_value},
        alert_id=alert_id,
        acked_by=acked,
        dashboard_url=None,
    )
    for build in (firing_message, resolved_message, thread_reply):
        message = build(notice)
        assert block_kit_errors(message["blocks"]) == []
        assert len(message["text"]) <= 3000
        for text in all_mrkdwn(message):
            assert "<" not in text and ">" not in text
        for element in buttons(message).values():
            assert json.loads(element["value"]) == {"group_id": "grp_" + alert_id}


def test_an_announcement_escapes_user_text_and_fits_block_kit() -> None:
    """Rule: a gate verdict's message escapes user text (a gate named `<!channel>` pings no one),
    keeps each line on one line, links only http(s) URLs, and passes Block Kit's limits even with
    very long lines."""
    from monitor.alerting.notify import Announcement
    from monitor.alerting.notify.slack.messages import announcement_message

    announcement = Announcement(
        key="20261203t010203000000-abcd1234",
        title="Gate <!channel> for m: no ship",
        status="critical",
        lines=["fails: recall ≥ 0.8 [region=<@U123>]", "multi\nline", "x" * 5000],
        link="javascript:alert(1)",
    )
    message = announcement_message(announcement)
    mrkdwn = json.dumps([message["text"], *(b["text"]["text"] for b in message["blocks"] if b["type"] == "section")])
    assert "<!channel>" not in mrkdwn and "&lt;!channel&gt;" in mrkdwn and "&lt;@U123&gt;" in mrkdwn
    assert "multi\\nline" not in mrkdwn  # the header is plain_text, which Slack never interprets
    assert not any(block["type"] == "actions" for block in message["blocks"])  # no javascript: link
    assert block_kit_errors(message["blocks"]) == []
    linked = announcement_message(Announcement("k", "t", "ok", [], link="https://loopwatch.example/r"))
    assert linked["blocks"][-1]["elements"][0]["url"] == "https://loopwatch.example/r"
