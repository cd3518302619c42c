"""Parsing Label Studio's annotation webhooks (and annotations listed by the API).

Label Studio does not sign webhooks, so loopwatch registers them with a shared secret in a
custom header (``WEBHOOK_SECRET_HEADER``) and checks it with :func:`secret_matches` before
parsing. Payload shapes (Label Studio OSS 1.23, ``send_payload=True``)::

    ANNOTATION_CREATED / ANNOTATION_UPDATED  {"action", "annotation": {...}, "task": {...}, "project": {...}}
    ANNOTATIONS_CREATED (bulk)               {"action", "annotation": [...], "task": [...], "project": {...}}
    ANNOTATIONS_DELETED                      {"action", "annotations": [{"id": n}, ...], "project": {...}}

Parsing is pure (no network), so the API can refuse a malformed payload with a 4xx before it
touches anything. Annotations on tasks without a ``prediction_id`` (added by hand in Label
Studio) are not loopwatch's and are skipped.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from labeling.label_studio.models import AnnotationOut, WebhookEvent
from labeling.label_studio.results import label_from_result

WEBHOOK_SECRET_HEADER = "X-Loopwatch-Webhook-Secret"
SINGLE_ACTIONS = frozenset({"ANNOTATION_CREATED", "ANNOTATION_UPDATED"})
BULK_CREATED = "ANNOTATIONS_CREATED"
DELETED = "ANNOTATIONS_DELETED"
WEBHOOK_ACTIONS = (*sorted(SINGLE_ACTIONS), BULK_CREATED, DELETED)


def secret_matches(received: str | None, expected: str) -> bool:
    """Constant-time comparison of the secret header with the configured value."""
    if not received or not expected:
        return False
    return hmac.compare_digest(received.encode(), expected.encode())


def parse_webhook(payload: Any) -> WebhookEvent:
    """The annotations a webhook reports; ``ValueError`` (with the reason) for a malformed one."""
    if not isinstance(payload, dict):
        raise ValueError("webhook payload must be a JSON object")
    action = payload.get("action")
    if not isinstance(action, str) or not action:
        raise ValueError("webhook payload has no 'action'")
    project_id = _project_id(payload)
    if action == DELETED:
        return WebhookEvent(action, project_id, deleted_annotation_ids=_deleted_ids(payload))
    annotations: object
    tasks: object
    if action in SINGLE_ACTIONS:
        annotations, tasks = [payload.get("annotation")], [payload.get("task")]
    elif action == BULK_CREATED:
        annotations, tasks = payload.get("annotation"), payload.get("task")
        if not isinstance(annotations, list) or not isinstance(tasks, list):
            raise ValueError(f"{action} payload needs 'annotation' and 'task' lists")
    else:
        return WebhookEvent(action, project_id)  # not an action loopwatch subscribes to
    by_id = {_int(task, "id", "task"): task for task in _objects(tasks, "task")}
    out = []
    for raw in _objects(annotations, "annotation"):
        task_id = _int(raw, "task", "annotation")
        if task_id not in by_id:
            raise ValueError(f"annotation {raw.get('id')!r} refers to task {task_id} missing from the payload")
        data = by_id[task_id].get("data")
        if not isinstance(data, dict):
            raise ValueError(f"task {task_id} has no 'data' object")
        prediction_id = data.get("prediction_id")
        if isinstance(prediction_id, str) and prediction_id:
            out.append(parse_annotation(raw, prediction_id=prediction_id, project_id=project_id))
    return WebhookEvent(action, project_id, annotations=out)


def parse_annotation(
    raw: Mapping[str, Any],
    *,
    prediction_id: str,
    project_id: int | None,
    emails: Mapping[int, str] | None = None,
) -> AnnotationOut:
    """One Label Studio annotation object (webhook or task listing) as an :class:`AnnotationOut`."""
    annotator_id, email = _annotator(raw.get("completed_by"))
    if email is None and annotator_id is not None and emails:
        email = emails.get(annotator_id)
    if email is None:
        email = _email_from_username(raw.get("created_username"))
    lead_time = raw.get("lead_time")
    project = raw.get("project")
    return AnnotationOut(
        prediction_id=prediction_id,
        project_id=project_id if project_id is not None else (project if isinstance(project, int) else None),
        task_id=_int(raw, "task", "annotation"),
        annotation_id=_int(raw, "id", "annotation"),
        label=label_from_result(raw.get("result")),
        annotator_id=annotator_id,
        annotator_email=email,
        created_at=parse_time(raw.get("created_at")),
        updated_at=parse_time(raw.get("updated_at")),
        was_cancelled=bool(raw.get("was_cancelled", False)),
        lead_time=float(lead_time) if isinstance(lead_time, (int, float)) and not isinstance(lead_time, bool) else None,
    )


def parse_time(value: Any) -> datetime | None:
    """Label Studio's ISO timestamps (``...Z`` or ``+00:00``); naive ones are UTC."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"timestamp must be a string, got {type(value).__name__}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"not an ISO timestamp: {value[:40]!r}") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _project_id(payload: Mapping[str, Any]) -> int | None:
    project = payload.get("project")
    if isinstance(project, dict):
        project = project.get("id")
    return project if isinstance(project, int) and not isinstance(project, bool) else None


def _deleted_ids(payload: Mapping[str, Any]) -> list[int]:
    items = payload.get("annotations")
    if not isinstance(items, list):
        raise ValueError(f"{DELETED} payload needs an 'annotations' list")
    return [_int(item, "id", "deleted annotation") for item in _objects(items, "deleted annotation")]


def _objects(items: Any, what: str) -> list[Mapping[str, Any]]:
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise ValueError(f"webhook payload: each {what} must be a JSON object")
    return items


def _int(obj: Mapping[str, Any], key: str, what: str) -> int:
    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{what} needs an integer {key!r}")
    return value


def _annotator(value: Any) -> tuple[int | None, str | None]:
    """``completed_by`` is a user id in OSS 1.23; some versions nest ``{"id", "email"}``."""
    if isinstance(value, dict):
        user_id, email = value.get("id"), value.get("email")
        return (user_id if isinstance(user_id, int) else None), (email if isinstance(email, str) else None)
    if isinstance(value, int) and not isinstance(value, bool):
        return value, None
    return None, None


def _email_from_username(value: Any) -> str | None:
    """``created_username`` reads ``"<first> <last> <email>, <id>"``; take the e-mail if present."""
    if not isinstance(value, str):
        return None
    words = value.rsplit(",", 1)[0].split()
    return words[-1] if words and "@" in words[-1] else None
