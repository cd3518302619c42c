"""LabelStudioBackend against a real Label Studio 1.23 on loopback (see conftest.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from labeling.label_studio import (
    WEBHOOK_SECRET_HEADER,
    LabelStudioBackend,
    TaskIn,
    labeling_config,
    parse_webhook,
    project_title,
    secret_matches,
)
from labeling.label_studio.config import CONTROL_NAME, OBJECT_NAME
from monitor.schema import ModelSchema
from tests.labeling.conftest import LabelStudioServer, WebhookReceiver

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture
def backend(label_studio: LabelStudioServer) -> LabelStudioBackend:
    url, token = label_studio
    return LabelStudioBackend(url, token)


def sample(i: int, **changes: Any) -> TaskIn:
    fields: dict[str, Any] = {
        "prediction_id": f"p-{i}",
        "features": {"speed_kmh": 40.0 + i, "road_type": ["urban", "highway"][i % 2], "night": i % 3 == 0},
        "prediction": "brake" if i % 2 else "none",
        "score": (i % 10) / 10,
        "model_version": "1.0.0",
        "reason": "uncertainty",
        "segments": {"region": "eu", "firmware": "3.2"},
    }
    fields.update(changes)
    return TaskIn(**fields)


def choice(label: str) -> list[dict[str, Any]]:
    return [{"from_name": CONTROL_NAME, "to_name": OBJECT_NAME, "type": "choices", "value": {"choices": [label]}}]


def _must_not_be_called(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("an unchanged schema must not create or update a project")


def project_count(backend: LabelStudioBackend, title: str) -> int:
    return sum(1 for p in backend.sdk.projects.list(title=title) if p.title == title)


def task_count(backend: LabelStudioBackend, project_id: int) -> int:
    return sum(1 for _ in backend.sdk.tasks.list(project=project_id, include="id"))


def test_generated_configs_are_accepted_by_label_studio(backend: LabelStudioBackend, schema_factory: Any) -> None:
    """Label Studio validates a project's config on creation: every kind of schema is accepted as generated."""
    schemas = [
        schema_factory(),
        schema_factory(task="multiclass", classes=['say "hi"', "a & b", "<tag>", "it's", "$dollar", "ünï, çødé"]),
        schema_factory(task="regression", classes=[], positive_class=None, segments=[]),
        schema_factory(features={"caption": "text", "photo": "text"}, segments=[]),
    ]
    for schema in schemas:
        project_id = backend.ensure_project(schema)
        assert backend.sdk.projects.get(project_id).label_config == labeling_config(schema)


def test_ensure_project_is_idempotent_and_follows_the_schema(
    backend: LabelStudioBackend, schema_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same schema reuses its project (by title) untouched; an added class updates its config in place."""
    schema = schema_factory(task="multiclass", classes=["a", "b"], positive_class=None)
    first = backend.ensure_project(schema)
    with monkeypatch.context() as patch:
        patch.setattr(backend.sdk.projects, "update", _must_not_be_called)
        patch.setattr(backend.sdk.projects, "create", _must_not_be_called)
        assert backend.ensure_project(schema) == first
    assert project_count(backend, project_title(schema.name)) == 1
    project = backend.sdk.projects.get(first)
    assert project.sampling == "Uncertainty sampling"

    grown = ModelSchema.model_validate({**schema.model_dump(), "classes": ["a", "b", "c"]})
    assert backend.ensure_project(grown) == first
    assert 'value="c"' in backend.sdk.projects.get(first).label_config
    assert project_count(backend, project_title(schema.name)) == 1


def test_import_shows_the_model_prediction_as_a_pre_annotation(
    backend: LabelStudioBackend, schema_factory: Any
) -> None:
    """Each imported task carries the model's label as a prediction with model_version and its confidence."""
    schema = schema_factory()
    project_id = backend.ensure_project(schema)
    ids = backend.import_tasks(project_id, [sample(1, score=0.8), sample(2, score=0.3), sample(3, prediction=None)])
    assert len(set(ids)) == 3

    brake = backend.sdk.tasks.get(ids[0])
    assert brake.data["prediction_id"] == "p-1"
    assert brake.data["features"]["speed_kmh"] == "41"
    (prediction,) = brake.predictions
    assert prediction.model_version == "1.0.0"
    assert prediction.score == pytest.approx(0.8)  # P(brake) for a "brake" prediction
    assert prediction.result == choice("brake")

    (none,) = backend.sdk.tasks.get(ids[1]).predictions
    assert none.result == choice("none")
    assert none.score == pytest.approx(0.7)  # confidence in "none" when P(brake) = 0.3

    assert backend.sdk.tasks.get(ids[2]).predictions == []  # nothing to confirm
    assert backend.sdk.projects.get(project_id).model_version == "1.0.0"  # the version shown to annotators


def test_reimport_never_duplicates(backend: LabelStudioBackend, schema_factory: Any) -> None:
    """Importing the same prediction ids again (also odd ones, also within one batch) creates no new task."""
    schema = schema_factory()
    project_id = backend.ensure_project(schema)
    odd = ["with space", 'quo"te', "comma,semi;colon", "ünïcødé-✓", "100%_like", "a" * 200]
    tasks = [sample(i, prediction_id=pid) for i, pid in enumerate(odd)]
    first = backend.import_tasks(project_id, tasks)
    again = backend.import_tasks(project_id, [*tasks, tasks[0]])
    assert again == [*first, first[0]]
    assert task_count(backend, project_id) == len(odd)

    extended = backend.import_tasks(project_id, [sample(99), *tasks[:2]])
    assert extended[1:] == first[:2]
    assert task_count(backend, project_id) == len(odd) + 1


def test_import_needs_the_schema(backend: LabelStudioBackend) -> None:
    """Without ensure_project (or schema=) the backend cannot build pre-annotations, and says so."""
    fresh = LabelStudioBackend(backend.url, "unused-token")
    with pytest.raises(ValueError, match="ensure_project"):
        fresh.import_tasks(123456, [sample(1)])


def test_annotations_come_back_with_label_and_annotator(backend: LabelStudioBackend, schema_factory: Any) -> None:
    """An annotator's annotation (made through the SDK) is fetched with its label, annotator and times."""
    schema = schema_factory()
    project_id = backend.ensure_project(schema)
    ids = backend.import_tasks(project_id, [sample(1), sample(2), sample(3)])
    email = f"annotator-{uuid.uuid4().hex[:8]}@example.org"
    annotator = backend.sdk.users.create(email=email, username=email.split("@")[0], password=uuid.uuid4().hex)
    before = datetime.now(UTC) - timedelta(seconds=1)

    backend.sdk.annotations.create(ids[0], result=choice("none"), completed_by=annotator.id, lead_time=3.5)
    backend.sdk.annotations.create(ids[1], result=[], was_cancelled=True, completed_by=annotator.id)

    got = {a.prediction_id: a for a in backend.fetch_annotations(project_id)}
    assert set(got) == {"p-1", "p-2"}  # the unannotated task is not returned
    confirmed = got["p-1"]
    assert (confirmed.label, confirmed.annotator_id, confirmed.annotator_email) == ("none", annotator.id, email)
    assert (confirmed.task_id, confirmed.project_id, confirmed.was_cancelled) == (ids[0], project_id, False)
    assert confirmed.lead_time == pytest.approx(3.5)
    assert confirmed.updated_at is not None and confirmed.updated_at >= before
    assert (got["p-2"].label, got["p-2"].was_cancelled) == (None, True)

    assert backend.fetch_annotations(project_id, since=datetime.now(UTC) + timedelta(minutes=1)) == []
    assert {a.prediction_id for a in backend.fetch_annotations(project_id, since=before)} == {"p-1", "p-2"}
    with pytest.raises(ValueError, match="timezone"):
        backend.fetch_annotations(project_id, since=datetime(2026, 1, 1))


def test_regression_annotations_are_numbers(backend: LabelStudioBackend, schema_factory: Any) -> None:
    """A regression model's pre-annotation and annotation are ``number`` results read back as floats."""
    schema = schema_factory(task="regression", classes=[], positive_class=None)
    project_id = backend.ensure_project(schema)
    (task_id,) = backend.import_tasks(project_id, [sample(1, prediction=12.5, score=None)])
    (prediction,) = backend.sdk.tasks.get(task_id).predictions
    assert prediction.result[0]["value"] == {"number": 12.5}
    result = [{"from_name": CONTROL_NAME, "to_name": OBJECT_NAME, "type": "number", "value": {"number": 14}}]
    backend.sdk.annotations.create(task_id, result=result)
    (annotation,) = backend.fetch_annotations(project_id)
    assert annotation.label == 14.0


def test_fetch_pages_through_every_task(backend: LabelStudioBackend, schema_factory: Any) -> None:
    """Annotations beyond the first page of tasks are found (OSS ignores only_annotated; we page ourselves)."""
    schema = schema_factory()
    project_id = backend.ensure_project(schema)
    ids = backend.import_tasks(project_id, [sample(i) for i in range(130)])
    for task_id in (ids[0], ids[101], ids[129]):
        backend.sdk.annotations.create(task_id, result=choice("brake"))
    assert {a.task_id for a in backend.fetch_annotations(project_id)} == {ids[0], ids[101], ids[129]}


def test_webhook_is_registered_once_and_delivers_annotations(
    backend: LabelStudioBackend, schema_factory: Any, webhook_receiver: WebhookReceiver
) -> None:
    """ensure_webhook is idempotent, and a new/updated/deleted annotation reaches a local receiver with the secret."""
    schema = schema_factory()
    project_id = backend.ensure_project(schema)
    (task_id,) = backend.import_tasks(project_id, [sample(1)])
    hook = backend.ensure_webhook(project_id, webhook_receiver.url, "s3cret")
    assert backend.ensure_webhook(project_id, webhook_receiver.url, "s3cret") == hook
    assert len(backend.sdk.webhooks.list(project=str(project_id))) == 1

    annotation = backend.sdk.annotations.create(task_id, result=choice("brake"))
    headers, body = webhook_receiver.next(timeout=15)
    assert secret_matches(headers.get(WEBHOOK_SECRET_HEADER.lower()), "s3cret")
    event = parse_webhook(body)
    assert event.action == "ANNOTATION_CREATED"
    (got,) = event.annotations
    assert (got.prediction_id, got.annotation_id, got.label, got.project_id) == (
        "p-1",
        annotation.id,
        "brake",
        project_id,
    )
    (resolved,) = backend.resolve_annotators(event.annotations)
    assert resolved.annotator_email is not None

    backend.sdk.annotations.update(annotation.id, result=choice("none"))
    _, body = webhook_receiver.next(timeout=15)
    updated = parse_webhook(body)
    assert (updated.action, updated.annotations[0].label) == ("ANNOTATION_UPDATED", "none")

    backend.sdk.annotations.delete(annotation.id)
    _, body = webhook_receiver.next(timeout=15)
    assert parse_webhook(body).deleted_annotation_ids == [annotation.id]


def test_webhook_follows_a_new_url_in_place(
    backend: LabelStudioBackend, schema_factory: Any, webhook_receiver: WebhookReceiver
) -> None:
    """When loopwatch's URL or secret changes, its existing webhook is updated rather than a second one added."""
    project_id = backend.ensure_project(schema_factory())
    hook = backend.ensure_webhook(project_id, "http://127.0.0.1:9/old", "old-secret")
    assert backend.ensure_webhook(project_id, webhook_receiver.url, "new-secret") == hook
    (stored,) = backend.sdk.webhooks.list(project=str(project_id))
    assert stored.url == webhook_receiver.url
    assert stored.headers == {WEBHOOK_SECRET_HEADER: "new-secret"}
    with pytest.raises(ValueError, match="secret"):
        backend.ensure_webhook(project_id, webhook_receiver.url, "")
