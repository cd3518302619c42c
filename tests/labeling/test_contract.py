"""The same rules checked on the real backend (Label Studio on loopback) and on the in-memory fake.

The fake (``tests/fakes/label_studio.py``) lets sync and routing tests inject outages without
a server; running these checks on both keeps it honest.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from labeling.label_studio import LabelStudioBackend, LabelStudioUnavailable, TaskIn
from labeling.label_studio.config import BLIND, CONTROL_NAME, OBJECT_NAME
from labeling.label_studio.protocol import LabelingBackend
from tests.fakes.label_studio import FakeLabelStudio

pytestmark = pytest.mark.timeout(900)


@dataclass
class Harness:
    """A backend plus what an annotator and an inspector can do next to it."""

    backend: LabelingBackend
    annotate: Callable[[int, str, int | None], int]  # (task id, label, user id) -> annotation id
    add_user: Callable[[str], int]
    predictions: Callable[[int], list[dict[str, Any]]]  # task id -> [{"model_version", "score", "result"}]
    data: Callable[[int], dict[str, Any]]  # task id -> the task's data as annotators see it


def real_harness(url: str, token: str) -> Harness:
    backend = LabelStudioBackend(url, token)
    sdk = backend.sdk

    def annotate(task_id: int, label: str, user: int | None) -> int:
        result = [{"from_name": CONTROL_NAME, "to_name": OBJECT_NAME, "type": "choices", "value": {"choices": [label]}}]
        extra = {"completed_by": user} if user is not None else {}
        return int(sdk.annotations.create(task_id, result=result, **extra).id)

    def add_user(email: str) -> int:
        return int(sdk.users.create(email=email, username=email.split("@")[0], password=uuid.uuid4().hex).id)

    def predictions(task_id: int) -> list[dict[str, Any]]:
        return [
            {"model_version": p.model_version, "score": p.score, "result": p.result}
            for p in sdk.tasks.get(task_id).predictions or []
        ]

    def data(task_id: int) -> dict[str, Any]:
        return dict(sdk.tasks.get(task_id).data or {})

    return Harness(backend, annotate, add_user, predictions, data)


def fake_harness() -> Harness:
    fake = FakeLabelStudio()

    def annotate(task_id: int, label: str, user: int | None) -> int:
        return fake.annotate(task_id, label, annotator_id=user or 1)

    def predictions(task_id: int) -> list[dict[str, Any]]:
        return [
            {"model_version": p["model_version"], "score": p.get("score"), "result": p["result"]}
            for p in fake.tasks[task_id].predictions
        ]

    return Harness(fake, annotate, fake.add_user, predictions, lambda task_id: fake.tasks[task_id].data)


@pytest.fixture(params=["fake", pytest.param("real", marks=pytest.mark.slow)])
def harness(request: pytest.FixtureRequest) -> Harness:
    if request.param == "fake":
        return fake_harness()
    url, token = request.getfixturevalue("label_studio")
    return real_harness(url, token)


def sample(pid: str, prediction: str | None = "brake", score: float | None = 0.8, blind: bool = False) -> TaskIn:
    return TaskIn(pid, {"speed_kmh": 50.0}, prediction, score, "2.0.0", "errors", {"region": "eu"}, blind=blind)


def test_projects_are_reused(harness: Harness, schema_factory: Any) -> None:
    """ensure_project returns the same id for the same model."""
    schema = schema_factory()
    assert harness.backend.ensure_project(schema) == harness.backend.ensure_project(schema)


def test_import_is_idempotent_and_pre_annotated(harness: Harness, schema_factory: Any) -> None:
    """Ids come back in input order; repeats map to the same task; predictions carry version and confidence."""
    schema = schema_factory()
    backend = harness.backend
    project = backend.ensure_project(schema)
    ids = backend.import_tasks(project, [sample("a"), sample("b", "none", 0.2), sample("c", "other-class")])
    assert backend.import_tasks(project, [sample("c"), sample("a"), sample("a")]) == [ids[2], ids[0], ids[0]]
    assert backend.existing_tasks(project, ["a", "b", "zzz"]) == {"a": ids[0], "b": ids[1]}
    (first,) = harness.predictions(ids[0])
    assert (first["model_version"], first["score"]) == ("2.0.0", pytest.approx(0.8))
    (second,) = harness.predictions(ids[1])
    assert second["score"] == pytest.approx(0.8)  # confidence in "none" when P(brake) = 0.2
    assert harness.predictions(ids[2]) == []  # a class the config cannot show is not pre-selected


def test_blind_tasks_carry_no_answer(harness: Harness, schema_factory: Any) -> None:
    """Blind labelling: a blind task has no pre-annotation and its data hides the model's answer
    and score; the same sample not blind is pre-annotated and shows them as context."""
    schema = schema_factory()
    backend = harness.backend
    project = backend.ensure_project(schema)
    blind, shown = backend.import_tasks(project, [sample("blind", blind=True), sample("shown")])
    assert harness.predictions(blind) == []
    data = harness.data(blind)
    assert data["model_prediction"] is None and data["model_score"] is None
    assert data[OBJECT_NAME]["model prediction"] == BLIND and data[OBJECT_NAME]["score"] == BLIND
    assert data[OBJECT_NAME]["why routed"] == "errors"  # the reason stays visible
    (pre,) = harness.predictions(shown)
    assert pre["result"][0]["value"]["choices"] == ["brake"]
    assert harness.data(shown)["model_prediction"] == "brake"


def test_annotations_are_fetched_with_annotator(harness: Harness, schema_factory: Any) -> None:
    """An annotation comes back once, with label and annotator e-mail; ``since`` filters by update time."""
    schema = schema_factory()
    backend = harness.backend
    project = backend.ensure_project(schema)
    (task,) = backend.import_tasks(project, [sample("a")])
    email = f"ann-{uuid.uuid4().hex[:8]}@example.org"
    user = harness.add_user(email)
    annotation = harness.annotate(task, "none", user)
    (got,) = backend.fetch_annotations(project)
    assert (got.prediction_id, got.annotation_id, got.label, got.annotator_email) == ("a", annotation, "none", email)
    assert backend.fetch_annotations(project, since=datetime.now(UTC) + timedelta(minutes=5)) == []


def test_webhook_registration_is_idempotent(harness: Harness, schema_factory: Any) -> None:
    """Registering again, or with a new URL, keeps one webhook (same id)."""
    backend = harness.backend
    project = backend.ensure_project(schema_factory())
    hook = backend.ensure_webhook(project, "http://127.0.0.1:9/a", "s1")
    assert backend.ensure_webhook(project, "http://127.0.0.1:9/a", "s1") == hook
    assert backend.ensure_webhook(project, "http://127.0.0.1:9/b", "s2") == hook


def test_fake_push_interrupted_half_way_resumes_without_duplicates(schema_factory: Any) -> None:
    """Fake only: a push that fails half-way keeps what was imported; the retry imports only the rest."""
    fake = FakeLabelStudio()
    project = fake.ensure_project(schema_factory())
    tasks = [sample(f"p-{i}") for i in range(10)]
    fake.fail_after_tasks(4)
    with pytest.raises(LabelStudioUnavailable):
        fake.import_tasks(project, tasks)
    with pytest.raises(LabelStudioUnavailable):
        fake.fetch_annotations(project)
    fake.down = False
    fake.fail_after_tasks(100)
    ids = fake.import_tasks(project, tasks)
    assert len(set(ids)) == 10 and len(fake.tasks) == 10


def test_fake_webhook_deliveries_parse(schema_factory: Any) -> None:
    """Fake only: annotating delivers Label Studio-shaped webhook bodies that parse back to the annotation."""
    fake = FakeLabelStudio()
    project = fake.ensure_project(schema_factory())
    fake.ensure_webhook(project, "http://127.0.0.1:9/hook", "s3cret")
    (task,) = fake.import_tasks(project, [sample("a")])
    annotation = fake.annotate(task, "none")
    fake.update_annotation(annotation, "brake")
    fake.delete_annotation(annotation)
    events = [fake.parse_webhook(body) for _, _, body in fake.deliveries]
    assert [e.action for e in events] == ["ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED"]
    assert [a.label for a in events[0].annotations + events[1].annotations] == ["none", "brake"]
    assert events[2].deleted_annotation_ids == [annotation]
    assert all(headers == {"X-Loopwatch-Webhook-Secret": "s3cret"} for _, headers, _ in fake.deliveries)
