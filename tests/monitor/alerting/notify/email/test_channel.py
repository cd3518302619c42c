"""The e-mail receiver against a real SMTP server on 127.0.0.1 (aiosmtpd): threading headers
(a stable Message-ID per group; In-Reply-To/References on every later mail), plain-text + HTML
content, STARTTLS and AUTH, and which SMTP failures are worth retrying."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from monitor.alerting.notify import PermanentNotifyError, TransientNotifyError
from monitor.alerting.notify.email import EmailNotifier
from tests.monitor.alerting.helpers import T0, make_notice
from tests.monitor.alerting.notify.email.smtp_server import PASSWORD, USER, self_signed, smtp_server
from tests.monitor.alerting.notify.http_receiver import closed_port_url

SENDER = "loopwatch <alerts@example.com>"
TO = ["oncall@example.com", "ml-team@example.com"]


def plain(port: int, **options: object) -> EmailNotifier:
    defaults: dict[str, object] = {"sender": SENDER, "to": TO, "port": port, "starttls": False, "timeout": 5.0}
    defaults.update(options)
    return EmailNotifier("127.0.0.1", **defaults)  # type: ignore[arg-type]


def parts(message) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    return text, html


def test_group_mails_thread_under_the_first_one() -> None:
    """The first mail's Message-ID is derived from the group id; the update, the resolution and a
    repeat each have their own Message-ID and name the first in In-Reply-To and References, with
    the same subject (Re:); the resolution note after the resolving update sends nothing."""
    with smtp_server() as (server, port):
        receiver = plain(port)
        ref = receiver.post(make_notice())
        receiver.update(ref, make_notice(kind="update", acked_by="maria"))
        receiver.reply(ref, make_notice(kind="repeat"))
        resolved = make_notice(kind="resolved", status="resolved", resolved_at=T0 + timedelta(hours=1))
        receiver.update(ref, resolved)
        receiver.reply(ref, resolved)
        mails = list(server.messages)
    root = "<loopwatch.grp_9d1e@example.com>"
    assert ref.message_id == root == receiver.root_id("grp_9d1e") and ref.channel == ",".join(TO)
    assert len(mails) == 4
    first, *later = mails
    assert first["Message-ID"] == root and first["In-Reply-To"] is None
    assert first["Subject"] == "[loopwatch] CRITICAL: harsh-braking · fn-rate"
    for mail in later:
        assert mail["In-Reply-To"] == root and mail["References"] == root
        assert mail["Message-ID"] != root and mail["Message-ID"].startswith("<loopwatch.grp_9d1e.")
        assert mail["Subject"] == "Re: " + first["Subject"]
    assert [m["X-Loopwatch-Status"] for m in mails] == ["firing", "firing", "firing", "resolved"]
    assert len({m["Message-ID"] for m in mails}) == 4
    assert parts(mails[1])[0].startswith("FIRING — 1 alert(s), acknowledged by maria")
    assert parts(mails[2])[0].startswith("STILL FIRING")
    assert parts(mails[3])[0].startswith("RESOLVED")
    assert server.envelopes[0] == ("alerts@example.com", TO)


def test_mail_has_plain_text_and_html_alternatives_with_escaped_content() -> None:
    """Each mail is multipart/alternative: text/plain and text/html with the alert's "what
    changed", values, links and runbook; user-controlled text is escaped in the HTML."""
    notice = make_notice(what_changed="FN rate 4.1% → 9.8% <script>alert(1)</script>", column="speed & <kmh>")
    with smtp_server() as (server, port):
        plain(port).post(notice)
        [mail] = server.messages
    assert mail.get_content_type() == "multipart/alternative"
    text, html = parts(mail)
    assert "FN rate 4.1% → 9.8% <script>alert(1)</script>" in text and "value 0.098 vs threshold 0.05" in text
    assert "https://wiki.example.com/runbooks/harsh-braking" in text and "grp_9d1e" in text
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "speed &amp; &lt;kmh&gt;" in html
    assert 'href="http://loopwatch.local:8080/models/harsh-braking/alerts/al_7f3c2a"' in html


def test_starttls_and_auth(tmp_path: Path) -> None:
    """With STARTTLS required by the server and AUTH required, the receiver upgrades the
    connection (verifying the certificate), logs in and delivers; a wrong password is a
    permanent failure (535) and is not in the error text."""
    server_tls, client_tls = self_signed(tmp_path)
    with smtp_server(tls=server_tls, auth=True) as (server, port):
        good = plain(port, starttls=True, user=USER, password=SecretStr(PASSWORD), ssl_context=client_tls)
        good.post(make_notice())
        bad = plain(port, starttls=True, user=USER, password=SecretStr("wrong-pass-99"), ssl_context=client_tls)
        with pytest.raises(PermanentNotifyError, match="535") as caught:
            bad.post(make_notice())
        assert len(server.messages) == 1
    assert "wrong-pass-99" not in str(caught.value) and "wrong-pass-99" not in repr(bad)


def test_untrusted_certificate_is_permanent(tmp_path: Path) -> None:
    """A server certificate the client does not trust is a configuration problem: permanent."""
    server_tls, _ = self_signed(tmp_path)
    with smtp_server(tls=server_tls) as (server, port), pytest.raises(PermanentNotifyError, match="certificate"):
        plain(port, starttls=True).post(make_notice())
    assert not server.messages


def test_starttls_required_but_not_offered_is_permanent() -> None:
    """STARTTLS on (the default) against a server without it: refused, never sent in clear."""
    with smtp_server() as (server, port), pytest.raises(PermanentNotifyError, match="STARTTLS"):
        plain(port, starttls=True).post(make_notice())
    assert not server.messages


@pytest.mark.parametrize(("answer", "error"), [("451 4.3.0 try again later", TransientNotifyError),
                                               ("554 5.7.1 rejected as spam", PermanentNotifyError)])  # fmt: skip
def test_temporary_smtp_replies_retry_and_permanent_ones_do_not(answer: str, error: type[Exception]) -> None:
    """A 4xx reply is transient (the outbox retries), a 5xx reply permanent; the code is in the
    error text."""
    with smtp_server() as (server, port):
        server.reject.append(answer)
        with pytest.raises(error, match=answer[:3]):
            plain(port).post(make_notice())


def test_server_down_is_transient() -> None:
    """Connection refused: transient."""
    port = int(closed_port_url().split(":")[2].split("/")[0])
    with pytest.raises(TransientNotifyError):
        plain(port).post(make_notice())


@pytest.mark.parametrize(
    ("options", "message"),
    [({"to": []}, "recipients"), ({"to": ["not-an-address"]}, "recipients"), ({"sender": "nobody"}, "sender"),
     ({"user": "u"}, "both")],
)  # fmt: skip
def test_bad_configuration_is_refused_at_construction(options: dict[str, object], message: str) -> None:
    """Missing or malformed addresses, or a user without a password, fail when the receiver is
    built (at start-up), not at the first alert."""
    with pytest.raises(ValueError, match=message):
        plain(25, **options)
