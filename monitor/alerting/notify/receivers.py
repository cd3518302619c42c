"""Which receiver the service delivers to, chosen from settings (Alertmanager's receiver
config, in one function): Slack when a token is set, else the log. Later receivers
(webhook, PagerDuty, email) are added here and in their own package; the pipeline does not
change."""

from __future__ import annotations

from typing import Any

from monitor.alerting.notify import Notifier
from monitor.alerting.notify.log import LogNotifier
from monitor.alerting.notify.slack import notifier_from_settings as slack_from_settings


def notifier_from_settings(settings: Any, **options: Any) -> Notifier:
    """The configured receiver; ``options`` go to the Slack notifier (clock, sleep, limits)."""
    slack = slack_from_settings(settings, **options)
    return slack if slack is not None else LogNotifier()
