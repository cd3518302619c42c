"""Parsing Label Studio webhooks (no server): payloads recorded from Label Studio 1.23.2."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from labeling.label_studio import parse_webhook, secret_matches

ANNOTATION = {
    "id": 3,
    "result": [{"from_name": "label", "to_name": "context", "type": "choices", "value": {"choices": ["brake"]}}],
    "was_cancelled": False,
    "ground_truth": False,
    "created_at": "2026-11-23T06:25:57.553584Z",
    "updated_at": "2026-11-23T06:25:57.779946Z",
    "lead_time": 4.5,
    "task": 2,
    "project": 1,
    "completed_by": 7,
    "updated_by": 7,
}
TASK = {"id": 2, "data": {"prediction_id": "p-2", "features": {"speed_kmh": "72.5"}}, "project": 1, "is_labeled": True}
PROJECT = {"id": 1, "title": "loopwatch · harsh-braking", "task_number": 2}
CREATED = {"action": "ANNOTATION_CREATED", "annotation": ANNOTATION, "task": TASK, "project": PROJECT}


def payload(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(CREATED)
    out.update(changes)
    return out


def test_created_annotation_parses_to_label_and_annotator() -> None:
    """ANNOTATION_CREATED gives the prediction id (from the task data), label, annotator id and times."""
    event = parse_webhook(payload())
    assert event.action == "ANNOTATION_CREATED"
    assert event.project_id == 1
    assert event.deleted_annotation_ids == []
    (a,) = event.annotations
    assert (a.prediction_id, a.task_id, a.annotation_id, a.label) == ("p-2", 2, 3, "brake")
    assert (a.annotator_id, a.annotator_email, a.was_cancelled, a.lead_time) == (7, None, False, 4.5)
    assert a.updated_at == datetime(2026, 11, 23, 6, 25, 57, 779946, tzinfo=UTC)


def test_updated_bulk_and_deleted_actions() -> None:
    """UPDATED parses like CREATED; bulk ANNOTATIONS_CREATED pairs annotations with tasks; DELETED gives ids."""
    assert parse_webhook(payload(action="ANNOTATION_UPDATED")).annotations[0].label == "brake"
    second = {**ANNOTATION, "id": 4, "task": 5, "result": []}
    bulk = {
        "action": "ANNOTATIONS_CREATED",
        "annotation": [ANNOTATION, second],
        "task": [TASK, {**TASK, "id": 5, "data": {"prediction_id": "p-5"}}],
        "project": PROJECT,
    }
    assert [(a.prediction_id, a.label) for a in parse_webhook(bulk).annotations] == [("p-2", "brake"), ("p-5", None)]
    deleted = parse_webhook(
        {"action": "ANNOTATIONS_DELETED", "annotations": [{"id": 3}, {"id": 9}], "project": PROJECT}
    )
    assert deleted.deleted_annotation_ids == [3, 9]
    assert deleted.annotations == []


def test_skipped_tasks_and_foreign_tasks() -> None:
    """A skipped task is a cancelled annotation without a label; tasks without a prediction_id are not ours."""
    skipped = parse_webhook(payload(annotation={**ANNOTATION, "was_cancelled": True, "result": []}))
    assert skipped.annotations[0].was_cancelled is True
    assert skipped.annotations[0].label is None
    assert parse_webhook(payload(task={**TASK, "data": {"text": "added by hand"}})).annotations == []


def test_unsubscribed_actions_are_ignored_not_refused() -> None:
    """An action loopwatch does not subscribe to parses to an empty event (Label Studio does not retry a 4xx)."""
    event = parse_webhook({"action": "PROJECT_UPDATED", "project": PROJECT})
    assert (event.action, event.annotations, event.deleted_annotation_ids) == ("PROJECT_UPDATED", [], [])


BAD: list[tuple[str, Any, str]] = [
    ("not an object", ["ANNOTATION_CREATED"], "JSON object"),
    ("no action", {"annotation": ANNOTATION}, "action"),
    ("action not a string", {"action": 3}, "action"),
    ("annotation missing", payload(annotation=None), "annotation"),
    ("task missing", payload(task=None), "task"),
    ("annotation id not an integer", payload(annotation={**ANNOTATION, "id": "3"}), "'id'"),
    ("task of another annotation", payload(task={**TASK, "id": 99}), "missing from the payload"),
    ("task data not an object", payload(task={**TASK, "data": "x"}), "data"),
    ("result not a list", payload(annotation={**ANNOTATION, "result": {"choices": []}}), "result"),
    ("bad timestamp", payload(annotation={**ANNOTATION, "updated_at": "yesterday"}), "timestamp"),
    ("bulk without lists", {"action": "ANNOTATIONS_CREATED", "annotation": ANNOTATION, "task": TASK}, "lists"),
    ("deleted without ids", {"action": "ANNOTATIONS_DELETED", "annotations": [{"pk": 1}]}, "'id'"),
    ("deleted not a list", {"action": "ANNOTATIONS_DELETED", "annotations": {"id": 1}}, "annotations"),
]


@pytest.mark.parametrize(("case", "body", "reason"), BAD, ids=[case for case, _, _ in BAD])
def test_bad_payloads_are_refused_with_a_reason(case: str, body: Any, reason: str) -> None:
    """A malformed payload raises ValueError naming what is wrong (the API answers it with a 4xx)."""
    with pytest.raises(ValueError, match=reason):
        parse_webhook(body)


def test_secret_header_comparison() -> None:
    """Only the exact configured secret matches; a missing header or an empty configured secret never does."""
    assert secret_matches("s3cret", "s3cret")
    assert not secret_matches("s3cret ", "s3cret")
    assert not secret_matches(None, "s3cret")
    assert not secret_matches("", "")
