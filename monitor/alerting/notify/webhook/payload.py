"""A group notice as Alertmanager's webhook JSON (``webhook_config``, payload version 4), so
anything that already consumes Alertmanager webhooks (incident tools, chat bridges, home-grown
handlers) consumes loopwatch's unchanged. Pure: notice in, dict out.

Alert labels are loopwatch's routing labels (``model``, ``monitor``, ``detector``, ``severity``,
``metric``, ``column``, ``model_version``, ``segment.<name>``) plus ``alertname`` (the monitor).
A firing alert's ``endsAt`` is Alertmanager's zero time. The extra ``loopwatch`` object carries
what Alertmanager has no field for (group id, why it was sent, acknowledgement, silence).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from monitor.alerting.notice import AlertLine, GroupNotice

VERSION = "4"
ZERO_TIME = "0001-01-01T00:00:00Z"


def rfc3339(value: datetime | None) -> str:
    if value is None:
        return ZERO_TIME
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def alert_labels(line: AlertLine, model: str) -> dict[str, str]:
    labels = {
        "alertname": line.monitor or line.detector,
        "model": model,
        "monitor": line.monitor,
        "detector": line.detector,
        "severity": line.severity,
        "metric": line.metric,
        "column": line.column or "",
        "model_version": line.model_version or "",
    }
    labels.update({f"segment.{k}": str(v) for k, v in sorted((line.segment or {}).items())})
    return {k: v for k, v in labels.items() if v}


def fingerprint(labels: dict[str, str]) -> str:
    """Stable across episodes of the same alert, like Alertmanager's label-set fingerprint."""
    return hashlib.sha256(json.dumps(sorted(labels.items())).encode()).hexdigest()[:16]


def alert_annotations(line: AlertLine, notice: GroupNotice) -> dict[str, str]:
    annotations = {
        "summary": line.title,
        "description": line.what_changed,
        "runbook_url": notice.runbook_url or "",
        "dashboard_url": line.dashboard_url or "",
        "value": "" if line.value is None else f"{line.value:.6g}",
        "threshold": "" if line.threshold is None else f"{line.threshold:.6g}",
        "window": f"{rfc3339(line.window_start)}/{rfc3339(line.window_end)}",
        "acked_by": line.acked_by or "",
        "silenced_until": rfc3339(line.silenced_until) if line.silenced_until else "",
    }
    return {k: v for k, v in annotations.items() if v}


def _common(maps: list[dict[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    first, *rest = maps
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in rest)}


def group_key(notice: GroupNotice) -> str:
    """Alertmanager's form, ``{}:{label="value", …}``: the same for every message of the group."""
    inner = ", ".join(f"{k}={json.dumps(v)}" for k, v in notice.labels.items())
    return "{}:{" + inner + "}"


def payload(notice: GroupNotice, *, receiver: str, external_url: str | None) -> dict[str, Any]:
    """The webhook body for ``notice`` as delivered by ``receiver``."""
    alerts: list[dict[str, Any]] = []
    all_labels: list[dict[str, str]] = []
    all_annotations: list[dict[str, str]] = []
    for line in notice.alerts:
        labels = alert_labels(line, notice.model)
        annotations = alert_annotations(line, notice)
        all_labels.append(labels)
        all_annotations.append(annotations)
        alerts.append(
            {
                "status": line.status,
                "labels": labels,
                "annotations": annotations,
                "startsAt": rfc3339(line.started_at),
                "endsAt": rfc3339(line.resolved_at) if line.status == "resolved" else ZERO_TIME,
                "generatorURL": line.dashboard_url or "",
                "fingerprint": fingerprint(labels),
            }
        )
    return {
        "version": VERSION,
        "groupKey": group_key(notice),
        "truncatedAlerts": 0,
        "status": notice.status,
        "receiver": receiver,
        "groupLabels": {k: v for k, v in notice.labels.items() if v},
        "commonLabels": _common(all_labels),
        "commonAnnotations": _common(all_annotations),
        "externalURL": (external_url or "").rstrip("/"),
        "alerts": alerts,
        "loopwatch": {
            "groupId": notice.group_id,
            "kind": notice.kind,
            "title": notice.title,
            "severity": notice.severity,
            "ackedBy": notice.acked_by,
            "silencedUntil": rfc3339(notice.silenced_until) if notice.silenced_until else None,
            "dashboardURL": notice.dashboard_url,
        },
    }


def encode(body: dict[str, Any]) -> bytes:
    """The exact bytes sent and signed (compact, UTF-8)."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
