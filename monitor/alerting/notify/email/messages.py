"""Group notices as e-mails that mail clients thread. Pure: notice in, ``EmailMessage`` out.

Threading: the group's first mail has a ``Message-ID`` derived from the group id (stable, so a
retried first mail is recognisably the same message); every later mail of the group (update,
resolution, repeat) has its own ``Message-ID`` and names the first in ``In-Reply-To`` and
``References`` — what Thunderbird, Outlook, Apple Mail and Gmail group a conversation by. The
subject stays the same for the whole group (clients that thread by subject, such as Gmail, split
a thread when it changes); the state is the first line of the body and ``X-Loopwatch-Status``.
Each mail has a plain-text part and an HTML alternative (Jinja2, autoescaped).
"""

from __future__ import annotations

import uuid
from email.message import EmailMessage
from email.utils import formatdate, parseaddr

import jinja2

from monitor.alerting.notice import GroupNotice

_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("monitor.alerting.notify.email", "templates"),
    autoescape=jinja2.select_autoescape(["html.j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=jinja2.StrictUndefined,
)
_COLOURS = {"critical": "#b00020", "warning": "#b26a00", "info": "#1565c0"}


def domain_of(address: str) -> str:
    """The sender's domain names the Message-IDs (RFC 5322 wants a unique right-hand side)."""
    _, addr = parseaddr(address)
    return addr.rpartition("@")[2] or "loopwatch.local"


def root_message_id(group_id: str, domain: str) -> str:
    return f"<loopwatch.{group_id}@{domain}>"


def subject(notice: GroupNotice) -> str:
    return " ".join(f"[loopwatch] {notice.severity.upper()}: {notice.title}".split())[:200]


def headline(notice: GroupNotice) -> str:
    if notice.status == "resolved":
        return f"RESOLVED — all {len(notice.alerts)} alert(s) of this group resolved"
    firing = len(notice.firing)
    if notice.kind == "repeat":
        return f"STILL FIRING — {firing} alert(s), not acknowledged"
    if notice.acked_by:
        return f"FIRING — {firing} alert(s), acknowledged by {notice.acked_by}"
    return f"FIRING — {firing} alert(s)"


def build(notice: GroupNotice, *, sender: str, to: list[str], root_id: str | None = None) -> EmailMessage:
    """The mail for ``notice``: the group's first (``root_id`` None) or a reply in its thread."""
    domain = domain_of(sender)
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Date"] = formatdate(localtime=False)
    message["X-Loopwatch-Group"] = notice.group_id
    message["X-Loopwatch-Status"] = notice.status
    if root_id is None:
        message["Subject"] = subject(notice)
        message["Message-ID"] = root_message_id(notice.group_id, domain)
    else:
        message["Subject"] = "Re: " + subject(notice)
        message["Message-ID"] = f"<loopwatch.{notice.group_id}.{uuid.uuid4().hex[:12]}@{domain}>"
        message["In-Reply-To"] = root_id
        message["References"] = root_id
    context = {
        "notice": notice,
        "headline": headline(notice),
        "colour": "#2e7d32" if notice.status == "resolved" else _COLOURS.get(notice.severity, "#333"),
    }
    message.set_content(_TEMPLATES.get_template("notice.txt.j2").render(context))
    message.add_alternative(_TEMPLATES.get_template("notice.html.j2").render(context), subtype="html")
    return message


def announcement_mail(
    title: str, status: str, lines: list[str], link: str | None, *, sender: str, to: list[str]
) -> EmailMessage:
    """A one-off result (a release gate's verdict), plain text."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Date"] = formatdate(localtime=False)
    message["Subject"] = " ".join(f"[loopwatch] {status.upper()}: {title}".split())[:200]
    message["Message-ID"] = f"<loopwatch.announce.{uuid.uuid4().hex[:12]}@{domain_of(sender)}>"
    message.set_content("\n".join([*lines, *([link] if link else [])]) + "\n")
    return message
