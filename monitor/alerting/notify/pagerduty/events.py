"""Group notices as PagerDuty Events API v2 events. Pure: notice in, event dict out.

One PagerDuty alert per loopwatch group: ``dedup_key`` is derived from the group id, so every
event of the group (trigger, acknowledge, resolve, re-trigger after a retry) lands on the same
PagerDuty alert, and a retried trigger is deduplicated by PagerDuty instead of paging twice.
"""

from __future__ import annotations

from typing import Any, Literal

from monitor.alerting.notice import GroupNotice
from monitor.alerting.notify.webhook.payload import rfc3339

EventAction = Literal["trigger", "acknowledge", "resolve"]
PdSeverity = Literal["critical", "error", "warning", "info"]
SUMMARY_LIMIT = 1024  # PagerDuty refuses longer summaries
DEDUP_PREFIX = "loopwatch/"


def dedup_key(group_id: str) -> str:
    return DEDUP_PREFIX + group_id


def pd_severity(notice: GroupNotice) -> PdSeverity:
    """critical → critical, warning → warning, info → info; a failed detector run (``run_error``)
    that is not critical is PagerDuty's ``error`` (the monitor is broken, not the model)."""
    if notice.severity == "critical":
        return "critical"
    if any(line.detector == "run_error" for line in notice.firing):
        return "error"
    return notice.severity


def action(notice: GroupNotice) -> EventAction:
    """What the group's current state means to PagerDuty."""
    if notice.status == "resolved":
        return "resolve"
    if notice.acked_by:
        return "acknowledge"
    return "trigger"


def summary(notice: GroupNotice) -> str:
    firing = notice.firing
    first = (firing or notice.alerts)[0].what_changed if notice.alerts else ""
    text = f"[{notice.severity.upper()}] {notice.title}: {len(firing)} firing"
    if first:
        text += f" — {first}"
    text = " ".join(text.split())
    return text if len(text) <= SUMMARY_LIMIT else text[: SUMMARY_LIMIT - 1] + "…"


def event(notice: GroupNotice, *, routing_key: str, external_url: str | None) -> dict[str, Any]:
    """The Events v2 body for the group's current state."""
    key = dedup_key(notice.group_id)
    kind = action(notice)
    body: dict[str, Any] = {"routing_key": routing_key, "event_action": kind, "dedup_key": key}
    if kind != "trigger":  # acknowledge/resolve carry only the key (PagerDuty ignores a payload)
        return body
    body["payload"] = {
        "summary": summary(notice),
        "source": f"loopwatch/{notice.model}" if notice.model else "loopwatch",
        "severity": pd_severity(notice),
        "timestamp": rfc3339(notice.started_at),
        "component": notice.labels.get("monitor") or None,
        "group": notice.model or None,
        "class": ",".join(sorted({line.detector for line in notice.alerts})) or None,
        "custom_details": {
            "group_id": notice.group_id,
            "labels": notice.labels,
            "firing": len(notice.firing),
            "resolved": len(notice.resolved),
            "alerts": [
                {
                    "alert_id": line.alert_id,
                    "status": line.status,
                    "severity": line.severity,
                    "title": line.title,
                    "what_changed": line.what_changed,
                    "detector": line.detector,
                    "metric": line.metric,
                    "column": line.column,
                    "segment": line.segment,
                    "value": line.value,
                    "threshold": line.threshold,
                    "started_at": rfc3339(line.started_at),
                }
                for line in notice.alerts[:50]
            ],
            "silenced_until": rfc3339(notice.silenced_until) if notice.silenced_until else None,
        },
    }
    body["payload"] = {k: v for k, v in body["payload"].items() if v is not None}
    links = [{"href": notice.dashboard_url, "text": "loopwatch dashboard"}] if notice.dashboard_url else []
    if notice.runbook_url:
        links.append({"href": notice.runbook_url, "text": "Runbook"})
    if links:
        body["links"] = links
    body["client"] = "loopwatch"
    if external_url:
        body["client_url"] = external_url.rstrip("/")
    return body
