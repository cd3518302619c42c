"""Block Kit messages for alert notices — pure functions, no I/O.

Why pure: the same notice must always render the same message, so the outbox can rebuild a
message after a restart and tests can check content without a network.

Safety rules applied to every user-provided string (model, segment, title, what changed…):

* ``&``, ``<``, ``>`` are escaped in ``mrkdwn`` (Slack's only control characters), so a model
  named ``<!channel>`` cannot ping a channel or forge a link; ``verbatim`` stops Slack from
  auto-linking ``@here``/``#channel``/URLs inside user text.
* Single-line values have control characters (newlines) replaced, so a segment value cannot
  fake extra lines in the message.
* Every text is cut to Block Kit's limits *after* escaping, never inside an ``&amp;`` entity.
* Only ``http``/``https`` URLs become link buttons.
"""

from __future__ import annotations

import json
import math
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict
from urllib.parse import urlsplit

from monitor.alerting.notice import AlertNotice

# Block Kit limits (https://docs.slack.dev/reference/block-kit/blocks).
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_FIELDS = 10
MAX_HEADER_TEXT = 150
MAX_CONTEXT_ELEMENTS = 10
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_URL = 3000
# chat.postMessage accepts 40k chars of ``text`` but truncates beyond 4k; the fallback is a
# notification line, so keep it well inside both.
MAX_FALLBACK_TEXT = 3000

ACTION_ACK = "ack"
ACTION_SILENCE_1H = "silence_1h"
ACTION_SILENCE_24H = "silence_24h"
ACTION_ROUTE_SAMPLES = "route_samples"
ACTION_OPEN_DASHBOARD = "open_dashboard"
ACTION_OPEN_RUNBOOK = "open_runbook"
#: Buttons that change alert state; ``POST /slack/actions`` acts on these.
ALERT_ACTIONS: frozenset[str] = frozenset({ACTION_ACK, ACTION_SILENCE_1H, ACTION_SILENCE_24H, ACTION_ROUTE_SAMPLES})
#: Link buttons; Slack still sends an interaction for them, which only needs a 200.
LINK_ACTIONS: frozenset[str] = frozenset({ACTION_OPEN_DASHBOARD, ACTION_OPEN_RUNBOOK})

_SEVERITY_ICON = {"critical": "🔴", "warning": "🟠", "info": "🔵"}
_RESOLVED_ICON = "✅"
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_ELLIPSIS = "…"


class SlackMessage(TypedDict):
    """What ``chat.postMessage`` / ``chat.update`` need: fallback ``text`` plus ``blocks``."""

    text: str
    blocks: list[dict[str, Any]]


# --------------------------------------------------------------------------- text helpers


def _units(text: str) -> int:
    """Length as Slack may count it (UTF-16 code units), so astral emoji never overflow a limit."""
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


def escape_mrkdwn(text: str) -> str:
    """Escape Slack's three mrkdwn control characters (and nothing else, as Slack asks)."""
    return "".join(_ESCAPES.get(ch, ch) for ch in text)


def fit_mrkdwn(text: str, limit: int) -> str:
    """Escape ``text`` and cut it to ``limit`` units, never inside an entity, marking the cut."""
    escaped = escape_mrkdwn(text)
    if _units(escaped) <= limit:
        return escaped
    out: list[str] = []
    used = 0
    for ch in text:
        piece = _ESCAPES.get(ch, ch)
        if used + _units(piece) > limit - 1:
            break
        out.append(piece)
        used += _units(piece)
    return "".join(out) + _ELLIPSIS


def fit_plain(text: str, limit: int) -> str:
    """Cut plain text (not parsed by Slack, so not escaped) to ``limit`` units."""
    if _units(text) <= limit:
        return text
    out: list[str] = []
    used = 0
    for ch in text:
        if used + _units(ch) > limit - 1:
            break
        out.append(ch)
        used += _units(ch)
    return "".join(out) + _ELLIPSIS


def one_line(text: str) -> str:
    """Replace control characters (newlines, tabs, bidi overrides…) with spaces for one-line values."""
    return "".join(" " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch for ch in text)


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


# --------------------------------------------------------------------------- value helpers


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def format_time(dt: datetime) -> str:
    """``2026-11-23 14:00 UTC`` (seconds only when they are not zero)."""
    dt = _utc(dt)
    fmt = "%Y-%m-%d %H:%M:%S" if dt.second or dt.microsecond else "%Y-%m-%d %H:%M"
    return dt.strftime(fmt) + " UTC"


def format_window(start: datetime, end: datetime) -> str:
    """``2026-11-23 13:00 → 14:00 UTC``; the end date is repeated only when it differs."""
    start, end = _utc(start), _utc(end)
    left = format_time(start).removesuffix(" UTC")
    right = format_time(end).removesuffix(" UTC")
    if start.date() == end.date():
        right = right.split(" ", 1)[1]
    return f"{left} → {right} UTC"


def format_duration(delta: timedelta) -> str:
    """``2h 15m`` / ``45m`` / ``30s`` / ``3d 4h``: how long an alert fired."""
    seconds = max(0, int(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"


def format_number(value: float | None) -> str:
    """Four significant digits; ``n/a`` for a missing value, ``NaN``/``∞`` spelled out."""
    if value is None:
        return "n/a"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    return f"{value:.4g}"


def format_segment(segment: dict[str, str] | None) -> str:
    """``firmware=3.2, region=eu`` (sorted), or ``all traffic`` when the alert is model-wide."""
    if not segment:
        return "all traffic"
    return ", ".join(f"{one_line(str(k))}={one_line(str(v))}" for k, v in sorted(segment.items()))


def safe_url(url: str | None) -> str | None:
    """The URL if it is an absolute http(s) URL within Slack's length limit, else ``None``."""
    if not url or _units(url) > MAX_URL or any(ch.isspace() for ch in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url


def button_value(alert_id: str) -> str:
    """The JSON every button carries, so ``POST /slack/actions`` knows which alert was pressed.

    Raises ``ValueError`` if it would exceed Slack's 2,000-character limit (alert ids are ours
    and short, so this signals a bug, not user input).
    """
    value = json.dumps({"alert_id": alert_id}, separators=(",", ":"), ensure_ascii=False)
    if _units(value) > MAX_BUTTON_VALUE:
        raise ValueError(f"alert_id is too long for a Slack button value ({len(alert_id)} characters)")
    return value


# --------------------------------------------------------------------------- blocks


def _header(icon: str, label: str, title: str) -> dict[str, Any]:
    return {"type": "header", "text": _plain(fit_plain(f"{icon} {label} · {one_line(title)}", MAX_HEADER_TEXT))}


def _field(label: str, value: str) -> dict[str, Any]:
    prefix = f"*{label}*\n"
    return _mrkdwn(prefix + fit_mrkdwn(value, MAX_FIELD_TEXT - _units(prefix)))


def _section(prefix_mrkdwn: str, user_text: str) -> dict[str, Any]:
    """A section whose text is our own mrkdwn ``prefix`` followed by escaped user text."""
    body = fit_mrkdwn(user_text, MAX_SECTION_TEXT - _units(prefix_mrkdwn))
    return {"type": "section", "text": _mrkdwn(prefix_mrkdwn + body)}


def _fields_block(notice: AlertNotice) -> dict[str, Any]:
    fields = [
        _field("Model", one_line(notice.model)),
        _field("Version", one_line(notice.model_version) if notice.model_version else "any"),
        _field("Segment", format_segment(notice.segment)),
        _field("Metric", f"{one_line(notice.metric)} ({one_line(notice.detector)})"),
        _field("Value vs threshold", f"{format_number(notice.value)} vs {format_number(notice.threshold)}"),
        _field("Window", format_window(notice.window_start, notice.window_end)),
        _field("Firing since", format_time(notice.started_at)),
    ]
    return {"type": "section", "fields": fields[:MAX_FIELDS]}


def _state_notes(notice: AlertNotice) -> list[str]:
    """Escaped one-line notes on ack/silence/group state, shown in a context block."""
    notes: list[str] = []
    if notice.acked_by:
        notes.append(f"👀 Acknowledged by {fit_mrkdwn(one_line(notice.acked_by), 200)}")
    if notice.silenced_until is not None:
        notes.append(f"🔕 Silenced until {format_time(notice.silenced_until)}")
    if notice.alerts_in_group > 1:
        notes.append(f"{notice.alerts_in_group} alerts for this model in this group")
    return notes


def _context(notice: AlertNotice, extra: list[str] | None = None) -> dict[str, Any]:
    notes = [*_state_notes(notice), *(extra or [])]
    notes.append(f"alert {fit_mrkdwn(one_line(notice.alert_id), 200)}")
    elements = [_mrkdwn(note) for note in notes[:MAX_CONTEXT_ELEMENTS]]
    return {"type": "context", "elements": elements}


def _button(
    action_id: str, label: str, value: str, *, style: str | None = None, url: str | None = None
) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "action_id": action_id,
        "text": _plain(fit_plain(label, MAX_BUTTON_TEXT)),
        "value": value,
    }
    if style:
        button["style"] = style
    if url:
        button["url"] = url
    return button


def _link_buttons(notice: AlertNotice, value: str) -> list[dict[str, Any]]:
    buttons = []
    dashboard = safe_url(notice.dashboard_url)
    if dashboard:
        buttons.append(_button(ACTION_OPEN_DASHBOARD, "Open dashboard", value, url=dashboard))
    runbook = safe_url(notice.runbook_url)
    if runbook:
        buttons.append(_button(ACTION_OPEN_RUNBOOK, "Runbook", value, url=runbook))
    return buttons


def _actions(notice: AlertNotice, *, firing: bool) -> dict[str, Any]:
    value = button_value(notice.alert_id)
    elements: list[dict[str, Any]] = []
    if firing:
        if not notice.acked_by:
            elements.append(_button(ACTION_ACK, "Acknowledge", value, style="primary"))
        elements.append(_button(ACTION_SILENCE_1H, "Silence 1h", value))
        elements.append(_button(ACTION_SILENCE_24H, "Silence 24h", value))
    elements.append(_button(ACTION_ROUTE_SAMPLES, "Send samples to labeling", value))
    elements.extend(_link_buttons(notice, value))
    return {"type": "actions", "block_id": "alert_actions", "elements": elements}


def _fallback(label: str, notice: AlertNotice, line: str) -> str:
    segment = f" ({format_segment(notice.segment)})" if notice.segment else ""
    text = f"[{label}] {one_line(notice.title)} — {one_line(notice.model)}{segment}: {one_line(line)}"
    return fit_mrkdwn(text, MAX_FALLBACK_TEXT)


def _message(text: str, blocks: list[dict[str, Any]]) -> SlackMessage:
    return {"text": text, "blocks": blocks[:MAX_BLOCKS]}


# --------------------------------------------------------------------------- messages


def firing_message(notice: AlertNotice) -> SlackMessage:
    """The alert's main message: severity + title, facts, what changed, buttons and links.

    Also used with ``chat.update`` while still firing, to show an ack or silence (the
    Acknowledge button disappears once acknowledged).
    """
    severity = notice.severity.upper()
    blocks: list[dict[str, Any]] = [
        _header(_SEVERITY_ICON.get(notice.severity, "⚪"), severity, notice.title),
        _section("*What changed:* ", one_line(notice.what_changed)),
        _fields_block(notice),
    ]
    if notice.error:
        blocks.append(_section("*Error:* ", notice.error))
    blocks.append(_context(notice))
    blocks.append(_actions(notice, firing=True))
    return _message(_fallback(severity, notice, notice.what_changed), blocks)


def resolved_message(notice: AlertNotice) -> SlackMessage:
    """The original message rewritten (``chat.update``) once the alert resolves.

    Keeps the facts so the channel history still reads correctly, drops ack/silence buttons
    (nothing left to act on) but keeps "send samples" and the links for the follow-up.
    """
    fired_for = format_duration(_utc(notice.window_end) - _utc(notice.started_at))
    blocks: list[dict[str, Any]] = [
        _header(_RESOLVED_ICON, "RESOLVED", notice.title),
        _section("*Resolved:* ", one_line(notice.what_changed)),
        _fields_block(notice),
        _context(
            notice, [f"was {notice.severity}", f"fired for {fired_for}, cleared by {format_time(notice.window_end)}"]
        ),
        _actions(notice, firing=False),
    ]
    return _message(_fallback("RESOLVED", notice, notice.what_changed), blocks)


def original_message(notice: AlertNotice) -> SlackMessage:
    """What the original message should show now: resolved if resolved, else firing."""
    return resolved_message(notice) if notice.status == "resolved" else firing_message(notice)


def thread_reply(notice: AlertNotice) -> SlackMessage:
    """A short note in the alert's thread: a repeat, a resolution, or an ack/silence change."""
    window = format_window(notice.window_start, notice.window_end)
    facts = f"{format_number(notice.value)} vs {format_number(notice.threshold)} · {window}"
    if notice.kind == "resolved" or notice.status == "resolved":
        fired_for = format_duration(_utc(notice.window_end) - _utc(notice.started_at))
        prefix, label = f"{_RESOLVED_ICON} *Resolved* after {fired_for}: ", "RESOLVED"
    elif notice.kind == "update":
        prefix, label = "ℹ️ *Update*: ", "UPDATE"
    elif notice.kind == "repeat":
        prefix, label = f"🔁 *Still firing* ({notice.severity}): ", "STILL FIRING"
    else:
        prefix, label = f"{_SEVERITY_ICON.get(notice.severity, '⚪')} *Firing* ({notice.severity}): ", "FIRING"
    blocks: list[dict[str, Any]] = [
        _section(prefix, f"{one_line(notice.what_changed)} — {facts}"),
        _context(notice),
    ]
    if notice.error:
        blocks.insert(1, _section("*Error:* ", notice.error))
    return _message(_fallback(label, notice, notice.what_changed), blocks)
