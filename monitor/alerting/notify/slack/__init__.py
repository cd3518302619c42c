"""The Slack receiver (after Alertmanager's ``notify/slack/``): the Web API notifier
(``channel``), its Block Kit messages (``messages``), error classes (``errors``), in-process
retries (``retry``) and the trust check for button presses (``signature``).

This package is the only place that knows Slack; the pipeline sees a ``Notifier``.
"""

from __future__ import annotations

from monitor.alerting.notify.slack.channel import DEFAULT_API_URL, SlackNotifier, notifier_from_settings

__all__ = ["DEFAULT_API_URL", "SlackNotifier", "notifier_from_settings"]
