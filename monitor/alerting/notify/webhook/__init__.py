"""The generic webhook receiver (after Alertmanager's ``notify/webhook/``): Alertmanager's
webhook JSON (``payload``), HMAC-SHA256 signatures with a signed timestamp (``signature``) and
the notifier (``channel``)."""

from __future__ import annotations

from monitor.alerting.notify.webhook.channel import WebhookNotifier
from monitor.alerting.notify.webhook.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify

__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "WebhookNotifier", "sign", "verify"]
