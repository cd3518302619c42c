"""The e-mail receiver (after Alertmanager's ``notify/email/``): threaded plain-text + HTML mails
(``messages``, pure; templates in ``templates/``) sent over SMTP (``channel``)."""

from __future__ import annotations

from monitor.alerting.notify.email.channel import EmailNotifier

__all__ = ["EmailNotifier"]
