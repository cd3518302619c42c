"""Block Kit content of alert messages: facts, buttons, links, escaping and limits."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.alerting.slack_messages import (
    ALERT_ACTIONS,
    MAX_BUTTON_VALUE,
    MAX_HEADER_TEXT,
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
from tests.monitor.alerting.helpers import T0, make_notice


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


def fields_text(message: dict[str, Any]) -> str:
    return "\n".join(f["text"] for b in blocks_of(message, "section") for f in b.get("fields", []))


def test_header_shows_severity_and_title() -> None:
    """The first block is a header naming the severity and the alert title."""
    message = firing_message(make_notice(severity="warning", title="Latency p95 regression"))
    header = message["blocks"][0]
    assert header["type"] == "header"
    assert "WARNING" in header["text"]["text"]
    assert "Latency p95 regression" in header["text"]["text"]


def test_fields_show_model_version_segment_metric_value_threshold_and_utc_window() -> None:
    """The facts an on-call engineer needs are fields: model, version, segment, metric, value vs threshold, window (UTC)."""
    text = fields_text(firing_message(make_notice()))
    assert "*Model*\nharsh-braking" in text
    assert "*Version*\n3.1.0" in text
    assert "*Segment*\nfirmware=3.2, region=eu" in text
    assert "*Metric*\nfn_rate (performance)" in text
    assert "*Value vs threshold*\n0.098 vs 0.05" in text
    assert "*Window*\n2026-11-23 13:00 → 14:00 UTC" in text
    assert "*Firing since*\n2026-11-23 13:00 UTC" in text


def test_model_wide_alert_says_all_traffic_and_any_version() -> None:
    """An alert without segment or version says so instead of leaving the field blank."""
    text = fields_text(firing_message(make_notice(segment=None, model_version=None, value=None)))
    assert "*Segment*\nall traffic" in text
    assert "*Version*\nany" in text
    assert "*Value vs threshold*\nn/a vs 0.05" in text


def test_what_changed_line_is_shown_verbatim() -> None:
    """The one-line "what changed" summary appears as written, right under the header."""
    message = firing_message(make_notice())
    assert message["blocks"][1]["text"]["text"] == (
        "*What changed:* FN rate 4.1% → 9.8% (95% CI 8.9–10.7%) on firmware 3.2 since 14:00"
    )


def test_buttons_carry_the_alert_id_as_json() -> None:
    """Ack, Silence 1h/24h and Send-samples buttons exist and each value is JSON naming the alert."""
    found = buttons(firing_message(make_notice(alert_id="al_42")))
    assert set(found) >= ALERT_ACTIONS
    for action_id in ALERT_ACTIONS:
        assert json.loads(found[action_id]["value"]) == {"alert_id": "al_42"}
    assert found["ack"]["style"] == "primary"


def test_dashboard_and_runbook_are_link_buttons_when_present() -> None:
    """Dashboard and runbook URLs become link buttons; without URLs there are no link buttons."""
    with_links = buttons(firing_message(make_notice()))
    assert with_links["open_dashboard"]["url"] == "http://loopwatch.local:8080/models/harsh-braking?alert=al_7f3c2a"
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


def test_fallback_text_summarises_the_alert() -> None:
    """The fallback ``text`` (notifications, screen readers) names severity, title, model, segment and change."""
    text = firing_message(make_notice())["text"]
    assert text.startswith("[CRITICAL] FN rate above threshold — harsh-braking (firmware=3.2, region=eu): FN rate 4.1%")


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
        error=HOSTILE,
        alerts_in_group=3,
    )
    for build in (firing_message, resolved_message, thread_reply):
        texts = all_mrkdwn(build(notice))
        for text in texts:
            assert "<" not in text and ">" not in text, text
        assert "&lt;!channel&gt; &amp; &lt;https://evil.example|click me&gt; &lt;@U0BOSS&gt;" in "\n".join(texts)


def test_user_text_is_verbatim_so_slack_does_not_autolink() -> None:
    """mrkdwn objects are ``verbatim`` so Slack does not turn @here, #channel or bare URLs in user text into links."""
    message = firing_message(make_notice())
    for block in message["blocks"]:
        for obj in [block.get("text"), *block.get("fields", []), *block.get("elements", [])]:
            if isinstance(obj, dict) and obj.get("type") == "mrkdwn":
                assert obj["verbatim"] is True


def test_newlines_in_names_cannot_fake_extra_lines() -> None:
    """Control characters in one-line values (segment, model) are replaced, so they cannot forge message lines."""
    text = fields_text(firing_message(make_notice(segment={"firmware": "3.2\n*Value vs threshold*\n0 vs 1"})))
    segment_field = next(f for f in text.split("*Segment*\n")[1:])
    assert segment_field.startswith("firmware=3.2 *Value vs threshold* 0 vs 1")


def test_long_texts_are_cut_to_block_kit_limits_without_breaking_entities() -> None:
    """Oversized user text is cut (with …) to Slack's limits, never in the middle of an &amp; entity."""
    message = firing_message(make_notice(what_changed="&" * 5000, title="T" * 400, model="m" * 5000))
    assert block_kit_errors(message["blocks"]) == []
    what = message["blocks"][1]["text"]["text"]
    assert len(what) <= MAX_SECTION_TEXT and what.endswith("…")
    assert re.fullmatch(r"\*What changed:\* (&amp;)+…", what)
    assert len(message["blocks"][0]["text"]["text"]) <= MAX_HEADER_TEXT
    assert len(message["text"]) <= 3000


def test_fit_mrkdwn_counts_astral_characters_twice() -> None:
    """Emoji outside the BMP count as two UTF-16 units, so a cut text never exceeds Slack's limit."""
    cut = fit_mrkdwn("😀" * 100, 11)
    assert cut == "😀" * 5 + "…"


def test_button_value_refuses_oversized_alert_ids() -> None:
    """A button value above 2,000 characters is a bug, reported as ValueError rather than sent."""
    assert len(button_value("a" * 100)) < MAX_BUTTON_VALUE
    with pytest.raises(ValueError, match="too long"):
        button_value("a" * 2000)


def test_acknowledged_alert_drops_the_ack_button_and_says_who() -> None:
    """Once acknowledged, the updated message shows who acknowledged it and offers no Acknowledge button."""
    message = firing_message(make_notice(kind="update", acked_by="alice"))
    assert "ack" not in buttons(message)
    assert {"silence_1h", "silence_24h", "route_samples"} <= set(buttons(message))
    context = " ".join(e["text"] for b in blocks_of(message, "context") for e in b["elements"])
    assert "Acknowledged by alice" in context


def test_silenced_alert_shows_until_when() -> None:
    """A silenced alert's message shows the silence end in UTC."""
    until = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)
    message = firing_message(make_notice(kind="update", silenced_until=until))
    context = " ".join(e["text"] for b in blocks_of(message, "context") for e in b["elements"])
    assert "Silenced until 2026-11-23 16:00 UTC" in context


def test_group_size_and_detector_error_are_shown() -> None:
    """A grouped notice says how many alerts it covers; a detector error is shown, escaped."""
    message = firing_message(make_notice(alerts_in_group=4, error="KeyError: <speed_kmh>"))
    texts = "\n".join(all_mrkdwn(message))
    assert "4 alerts for this model" in texts
    assert "*Error:* KeyError: &lt;speed_kmh&gt;" in texts


def test_resolved_message_replaces_actions_and_keeps_history() -> None:
    """The resolved version keeps the facts, shows how long it fired and who acked, and offers no ack/silence."""
    notice = make_notice(
        status="resolved",
        kind="resolved",
        acked_by="bob",
        what_changed="FN rate back to 4.3%",
        window_end=T0 + timedelta(hours=2, minutes=15),
    )
    message = resolved_message(notice)
    assert "RESOLVED" in message["blocks"][0]["text"]["text"]
    assert message["text"].startswith("[RESOLVED] FN rate above threshold")
    assert set(buttons(message)) == {"route_samples", "open_dashboard", "open_runbook"}
    texts = "\n".join(all_mrkdwn(message))
    assert "*Resolved:* FN rate back to 4.3%" in texts
    assert "fired for 2h 15m" in texts and "Acknowledged by bob" in texts and "was critical" in texts
    assert original_message(notice) == message


def test_original_message_is_firing_while_firing() -> None:
    """``original_message`` picks the firing layout for a firing alert (ack/silence updates)."""
    notice = make_notice(kind="update", acked_by="alice")
    assert original_message(notice) == firing_message(notice)


@pytest.mark.parametrize(
    ("kind", "status", "expected"),
    [
        ("repeat", "firing", "🔁 *Still firing* (critical): FN rate 4.1%"),
        ("resolved", "resolved", "✅ *Resolved* after 1h: FN rate 4.1%"),
        ("update", "firing", "ℹ️ *Update*: FN rate 4.1%"),
    ],
)
def test_thread_reply_says_what_happened(kind: str, status: str, expected: str) -> None:
    """Thread notes start with what happened (repeat, resolution, update) and include value, threshold and window."""
    message = thread_reply(make_notice(kind=kind, status=status))
    text = message["blocks"][0]["text"]["text"]
    assert text.startswith(expected)
    assert "0.098 vs 0.05 · 2026-11-23 13:00 → 14:00 UTC" in text
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
        model=model, title=title, what_changed=what, segment={seg_key: seg_value}, alert_id=alert_id, acked_by=acked
    )
    for build in (firing_message, resolved_message, thread_reply):
        message = build(notice)
        assert block_kit_errors(message["blocks"]) == []
        assert len(message["text"]) <= 3000
        for text in all_mrkdwn(message):
            assert "<" not in text and ">" not in text
        for element in buttons(message).values():
            assert json.loads(element["value"]) == {"alert_id": alert_id}
