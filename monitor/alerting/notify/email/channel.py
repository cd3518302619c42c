"""The e-mail receiver: group notices over SMTP (stdlib ``smtplib``), one connection per mail
(alert mail is rare; a kept-open connection would be closed by the server between them).

``post`` sends the group's first mail (its ``Message-ID`` is the thread root, returned as the
message ref); ``update`` sends the group's new state as a reply in that thread; ``reply`` sends a
reminder for a *repeat* and nothing for the resolution note (the update before it was the
RESOLVED mail). Errors: a 4xx SMTP reply, a dropped connection or a timeout is transient; a 5xx
reply (bad credentials, refused sender or recipients) or a certificate failure is permanent. A
mail has no lookup, so a lost answer sends the mail again (``find_posted`` is ``None``).
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from pydantic import SecretStr

from monitor.alerting.notice import GroupNotice
from monitor.alerting.notify import Announcement, MessageRef, PermanentNotifyError
from monitor.alerting.notify.email.messages import announcement_mail, build, domain_of, root_message_id
from monitor.alerting.notify.http import transient
from monitor.monitors import RouteSpec


class EmailNotifier:
    """Mails group notices from ``sender`` to ``to`` through one SMTP server."""

    def __init__(
        self,
        host: str,
        *,
        sender: str,
        to: list[str],
        port: int | None = None,
        user: str | None = None,
        password: SecretStr | None = None,
        starttls: bool = True,
        use_ssl: bool = False,
        timeout: float = 10.0,
        name: str = "email",
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if not host.strip():
            raise ValueError(f"email receiver {name}: the SMTP host is empty")
        if "@" not in sender:
            raise ValueError(f"email receiver {name}: the sender {sender!r} is not an address")
        bad = [address for address in to if "@" not in address]
        if not to or bad:
            raise ValueError(f"email receiver {name}: recipients must be addresses (got {to!r})")
        if (user is None) != (password is None):
            raise ValueError(f"email receiver {name}: give both the SMTP user and password, or neither")
        self.name = name
        self._host = host
        self._port = port or (465 if use_ssl else 587)
        self._user = user
        self._password = password
        self._starttls = starttls and not use_ssl
        self._ssl = use_ssl
        self._timeout = timeout
        self._sender = sender
        self._to = list(to)
        self._context = ssl_context

    def __repr__(self) -> str:  # never the password
        return f"EmailNotifier(name={self.name!r}, host={self._host!r}, port={self._port})"

    def destination(self, route: RouteSpec) -> str:
        return ",".join(self._to)

    def post(self, notice: GroupNotice) -> MessageRef:
        message = build(notice, sender=self._sender, to=self._to)
        self._send(message)
        return MessageRef(channel=",".join(self._to), message_id=str(message["Message-ID"]))

    def update(self, ref: MessageRef, notice: GroupNotice) -> None:
        self._send(build(notice, sender=self._sender, to=self._to, root_id=ref.message_id))

    def reply(self, ref: MessageRef, notice: GroupNotice) -> str:
        if notice.kind != "repeat":
            return ref.message_id
        message = build(notice, sender=self._sender, to=self._to, root_id=ref.message_id)
        self._send(message)
        return str(message["Message-ID"])

    def find_posted(self, notice: GroupNotice) -> MessageRef | None:
        return None

    def announce(self, announcement: Announcement) -> MessageRef:
        message = announcement_mail(
            announcement.title,
            announcement.status,
            announcement.lines,
            announcement.link,
            sender=self._sender,
            to=self._to,
        )
        self._send(message)
        return MessageRef(channel=",".join(self._to), message_id=str(message["Message-ID"]))

    def root_id(self, group_id: str) -> str:
        """The Message-ID of a group's first mail."""
        return root_message_id(group_id, domain_of(self._sender))

    def _connect(self) -> smtplib.SMTP:
        context = self._context or ssl.create_default_context()
        if self._ssl:
            return smtplib.SMTP_SSL(self._host, self._port, timeout=self._timeout, context=context)
        client = smtplib.SMTP(self._host, self._port, timeout=self._timeout)
        if self._starttls:
            client.ehlo()
            if not client.has_extn("starttls"):
                client.close()
                raise PermanentNotifyError(
                    f"email {self.name}: {self._host} does not offer STARTTLS (set LOOPWATCH_SMTP_STARTTLS=false "
                    "only for a trusted local relay)"
                )
            client.starttls(context=context)
            client.ehlo()
        return client

    def _send(self, message: EmailMessage) -> None:
        where = f"email {self.name}: {self._host}:{self._port}"
        try:
            with self._connect() as client:
                if self._user is not None and self._password is not None:
                    client.login(self._user, self._password.get_secret_value())
                client.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = sorted({code for code, _ in exc.recipients.values()})
            if all(400 <= code < 500 for code in codes):
                raise transient(f"{where} deferred the recipients ({codes})") from None
            raise PermanentNotifyError(f"{where} refused the recipients ({codes})") from None
        except smtplib.SMTPResponseException as exc:
            text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
            detail = f"{where} answered {exc.smtp_code}: {' '.join(text.split())[:200]}"
            if 400 <= exc.smtp_code < 500:
                raise transient(detail) from None
            raise PermanentNotifyError(detail) from None
        except ssl.SSLCertVerificationError as exc:
            raise PermanentNotifyError(f"{where}: TLS certificate not trusted ({exc.verify_message})") from None
        except (smtplib.SMTPServerDisconnected, OSError) as exc:  # timeouts, refused or dropped connections
            raise transient(f"{where}: {type(exc).__name__}: {exc}") from None
        except smtplib.SMTPException as exc:
            raise PermanentNotifyError(f"{where}: {type(exc).__name__}: {exc}") from None
