"""Block Kit messages for group notices — pure functions, no I/O.

One message per alert group: a header with the group's worst severity, a summary line, one
section per alert (title, column, segment, value vs threshold, what changed) up to
``MAX_LISTED`` alerts and an "and N more" line with the dashboard link, then the group's
ack/silence state and its buttons. Why pure: the same notice must always render the same
message, so a delivery retried after a restart rewrites exactly what the group shows now,
and tests can check content without a network.

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

from monitor.alerting.notice import AlertLine, GroupNotice
from monitor.alerting.notify import Announcement

# Block Kit limits (https://docs.slack.dev/reference/block-kit/blocks).
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
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
#: Alerts listed one by one in a group's message; the rest are counted and linked.
MAX_LISTED = 10
#: Buttons that change alert state; ``POST /slack/actions`` acts on these (for the whole group).
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


def button_value(group_id: str) -> str:
    """The JSON every button carries, so ``POST /slack/actions`` knows which group was pressed.

    Raises ``ValueError`` if it would exceed Slack's 2,000-character limit (group ids are ours
    and short, so this signals a bug, not user input).
    """
    value = json.dumps({"group_id": group_id}, separators=(",", ":"), ensure_ascii=False)
    if _units(value) > MAX_BUTTON_VALUE:
        raise ValueError(f"group_id is too long for a Slack button value ({len(group_id)} characters)")
    return value


# --------------------------------------------------------------------------- blocks


def _header(icon: str, label: str, title: str) -> dict[str, Any]:
    return {"type": "header", "text": _plain(fit_plain(f"{icon} {label} · {one_line(title)}", MAX_HEADER_TEXT))}


def _section(prefix_mrkdwn: str, user_text: str) -> dict[str, Any]:
    """A section whose text is our own mrkdwn ``prefix`` followed by escaped user text."""
    body = fit_mrkdwn(user_text, MAX_SECTION_TEXT - _units(prefix_mrkdwn))
    return {"type": "section", "text": _mrkdwn(prefix_mrkdwn + body)}


def format_labels(labels: dict[str, str]) -> str:
    """``model=harsh-braking, monitor=feature-drift`` (in the route's group_by order)."""
    return ", ".join(f"{one_line(str(k))}={one_line(str(v))}" for k, v in labels.items())


def _subject(alert: AlertLine) -> str:
    """What the alert is about: the column (drift, quality) or the metric, with its detector."""
    what = alert.column if alert.column else alert.metric
    return f"{one_line(what)} ({one_line(alert.detector)})"


def _alert_section(alert: AlertLine) -> dict[str, Any]:
    """One alert of the group: title (linked to its page), subject, segment, value vs threshold,
    version and what changed, and its own state when it differs from the group's."""
    icon = _RESOLVED_ICON if alert.status == "resolved" else _SEVERITY_ICON.get(alert.severity, "⚪")
    title = fit_mrkdwn(one_line(alert.title), 300)
    url = safe_url(alert.dashboard_url)
    if url and not any(ch in url for ch in "<>|"):
        title = f"<{url}|{title}>"
    facts = " · ".join(
        [
            fit_mrkdwn(_subject(alert), 300),
            fit_mrkdwn(format_segment(alert.segment), 400),
            f"{format_number(alert.value)} vs {format_number(alert.threshold)}",
            *([f"version {fit_mrkdwn(one_line(alert.model_version), 100)}"] if alert.model_version else []),
        ]
    )
    state: list[str] = []
    if alert.status == "resolved":
        state.append("resolved")
    else:
        if alert.acked_by:
            state.append(f"acknowledged by {fit_mrkdwn(one_line(alert.acked_by), 100)}")
        if alert.silenced_until is not None:
            state.append(f"silenced until {format_time(alert.silenced_until)}")
    suffix = f" _({'; '.join(state)})_" if state else ""
    prefix = f"{icon} *{title}*{suffix}\n{facts}\n"
    return _section(prefix, one_line(alert.what_changed))


def _alert_sections(notice: GroupNotice) -> list[dict[str, Any]]:
    """The listed alerts (firing first), then "and N more" with the dashboard link."""
    ordered = [*notice.firing, *notice.resolved]
    blocks = [_alert_section(alert) for alert in ordered[:MAX_LISTED]]
    hidden = len(ordered) - MAX_LISTED
    if hidden > 0:
        more = f"…and {hidden} more alert{'s' if hidden != 1 else ''}"
        url = safe_url(notice.dashboard_url)
        if url and not any(ch in url for ch in "<>|"):
            more += f": <{url}|see them all on the dashboard>"
        blocks.append({"type": "context", "elements": [_mrkdwn(more)]})
    return blocks


def _summary(notice: GroupNotice) -> str:
    firing, resolved = len(notice.firing), len(notice.resolved)
    if notice.status == "resolved":
        lasted = format_duration(_utc(notice.ended_at or notice.started_at) - _utc(notice.started_at))
        count = f"All {resolved} alert{'s' if resolved != 1 else ''} resolved · fired for {lasted}"
    else:
        count = f"{firing} firing" + (f", {resolved} resolved" if resolved else "")
    return f"*{count}* · "


def _state_notes(notice: GroupNotice) -> list[str]:
    """Escaped one-line notes on the group's ack/silence state, shown in a context block."""
    notes: list[str] = []
    if notice.acked_by:
        notes.append(f"👀 Acknowledged by {fit_mrkdwn(one_line(notice.acked_by), 200)}")
    if notice.silenced_until is not None:
        notes.append(f"🔕 Silenced until {format_time(notice.silenced_until)}")
    return notes


def _context(notice: GroupNotice, extra: list[str] | None = None) -> dict[str, Any]:
    notes = [*_state_notes(notice), *(extra or [])]
    notes.append(f"since {format_time(notice.started_at)}")
    if notice.alerts:
        latest = max(notice.alerts, key=lambda a: _utc(a.window_end))
        notes.append(f"last window {format_window(latest.window_start, latest.window_end)}")
    notes.append(f"group {fit_mrkdwn(one_line(notice.group_id), 200)}")
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


def _link_buttons(notice: GroupNotice, value: str) -> list[dict[str, Any]]:
    buttons = []
    dashboard = safe_url(notice.dashboard_url)
    if dashboard:
        buttons.append(_button(ACTION_OPEN_DASHBOARD, "Open dashboard", value, url=dashboard))
    runbook = safe_url(notice.runbook_url)
    if runbook:
        buttons.append(_button(ACTION_OPEN_RUNBOOK, "Runbook", value, url=runbook))
    return buttons


def _actions(notice: GroupNotice, *, firing: bool) -> dict[str, Any]:
    value = button_value(notice.group_id)
    elements: list[dict[str, Any]] = []
    if firing:
        if any(a.acked_by is None for a in notice.firing):
            elements.append(_button(ACTION_ACK, "Acknowledge", value, style="primary"))
        elements.append(_button(ACTION_SILENCE_1H, "Silence 1h", value))
        elements.append(_button(ACTION_SILENCE_24H, "Silence 24h", value))
    if notice.labels_can_help:
        elements.append(_button(ACTION_ROUTE_SAMPLES, "Send samples to labeling", value))
    elements.extend(_link_buttons(notice, value))
    return {"type": "actions", "block_id": "group_actions", "elements": elements}


def _fallback(label: str, notice: GroupNotice, line: str) -> str:
    text = f"[{label}] {one_line(notice.title)}: {one_line(line)}"
    return fit_mrkdwn(text, MAX_FALLBACK_TEXT)


def _first_line(notice: GroupNotice) -> str:
    listed = notice.firing or notice.alerts
    if not listed:
        return "no alerts"
    more = len(listed) - 1
    return f"{listed[0].title} — {listed[0].what_changed}" + (f" (+{more} more)" if more else "")


def _message(text: str, blocks: list[dict[str, Any]]) -> SlackMessage:
    return {"text": text, "blocks": blocks[:MAX_BLOCKS]}


# --------------------------------------------------------------------------- messages


def firing_message(notice: GroupNotice) -> SlackMessage:
    """The group's main message while any alert fires: worst severity + title, counts and group
    labels, one section per alert, ack/silence state and buttons acting on the whole group.

    Also what ``chat.update`` sends as alerts join or resolve or are acknowledged (the
    Acknowledge button disappears once every firing alert is acknowledged).
    """
    severity = notice.severity.upper()
    blocks: list[dict[str, Any]] = [
        _header(_SEVERITY_ICON.get(notice.severity, "⚪"), severity, notice.title),
        _section(_summary(notice), format_labels(notice.labels)),
        *_alert_sections(notice),
    ]
    blocks.append(_context(notice))
    blocks.append(_actions(notice, firing=True))
    return _message(_fallback(severity, notice, _first_line(notice)), blocks)


def resolved_message(notice: GroupNotice) -> SlackMessage:
    """The group's message rewritten once every alert resolved.

    Keeps the list so the channel history still reads correctly, drops ack/silence buttons
    (nothing left to act on) but keeps "send samples" and the links for the follow-up.
    """
    blocks: list[dict[str, Any]] = [
        _header(_RESOLVED_ICON, "RESOLVED", notice.title),
        _section(_summary(notice), format_labels(notice.labels)),
        *_alert_sections(notice),
        _context(notice, [f"was {notice.severity}"]),
        _actions(notice, firing=False),
    ]
    return _message(_fallback("RESOLVED", notice, _first_line(notice)), blocks)


def original_message(notice: GroupNotice) -> SlackMessage:
    """What the group's message should show now: resolved if every alert resolved, else firing."""
    return resolved_message(notice) if notice.status == "resolved" else firing_message(notice)


def _titles(alerts: tuple[AlertLine, ...]) -> str:
    names = [one_line(a.title) for a in alerts[:MAX_LISTED]]
    more = len(alerts) - len(names)
    return "; ".join(names) + (f"; and {more} more" if more > 0 else "")


def thread_reply(notice: GroupNotice) -> SlackMessage:
    """A short note in the group's thread: a repeat, the resolution, or what changed."""
    if notice.kind == "resolved" or notice.status == "resolved":
        lasted = format_duration(_utc(notice.ended_at or notice.started_at) - _utc(notice.started_at))
        count = len(notice.alerts)
        prefix = f"{_RESOLVED_ICON} *Resolved*: all {count} alert{'s' if count != 1 else ''} cleared after {lasted}: "
        label, body = "RESOLVED", _titles(notice.alerts)
    elif notice.kind == "repeat":
        count = len(notice.firing)
        prefix = f"🔁 *Still firing* ({notice.severity}): {count} alert{'s' if count != 1 else ''}: "
        label, body = "STILL FIRING", _titles(notice.firing)
    elif notice.kind == "update":
        prefix, label, body = "ℹ️ *Update*: ", "UPDATE", _titles(notice.alerts)
    else:
        icon = _SEVERITY_ICON.get(notice.severity, "⚪")
        prefix, label, body = f"{icon} *Firing* ({notice.severity}): ", "FIRING", _titles(notice.firing)
    blocks: list[dict[str, Any]] = [_section(prefix, body), _context(notice)]
    return _message(_fallback(label, notice, body), blocks)


# --------------------------------------------------------------------------- announcements

_ANNOUNCE_ICON = {"ok": "✅", "warning": "🟠", "critical": "🔴"}


def announcement_message(announcement: Announcement) -> SlackMessage:
    """A one-off result (a release gate's verdict): header with the status icon and title, one
    section with the lines (user text escaped, cut to Block Kit's limits), an optional link
    button. Pure, like the group messages."""
    icon = _ANNOUNCE_ICON.get(announcement.status, "⚪")
    blocks: list[dict[str, Any]] = [_header(icon, announcement.status.upper(), announcement.title)]
    if announcement.lines:
        body = "\n".join(one_line(line) for line in announcement.lines)  # fit_mrkdwn escapes
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": fit_mrkdwn(body, MAX_SECTION_TEXT), "verbatim": True},
            }
        )
    link = safe_url(announcement.link)
    if link:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": _plain("Open the report"),
                        "url": link,
                        "action_id": ACTION_OPEN_DASHBOARD,
                    }
                ],
            }
        )
    text = fit_mrkdwn(f"[{announcement.status.upper()}] {one_line(announcement.title)}", MAX_FALLBACK_TEXT)
    return _message(text, blocks)
