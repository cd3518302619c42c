"""The PagerDuty receiver (after Alertmanager's ``notify/pagerduty/``): Events API v2 events
(``events``, pure) and the notifier (``channel``)."""

from __future__ import annotations

from monitor.alerting.notify.pagerduty.channel import DEFAULT_URL, PagerDutyNotifier
from monitor.alerting.notify.pagerduty.events import dedup_key, event

__all__ = ["DEFAULT_URL", "PagerDutyNotifier", "dedup_key", "event"]
