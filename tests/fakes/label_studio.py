"""An in-memory Label Studio behind the ``LabelingBackend`` interface, for fast sync/routing tests.

The real server is what the labeling tests use (``tests/labeling/conftest.py``, ~3 s to start);
this fake is for tests that need what a real server cannot do on demand:

* outages: ``fake.down = True`` makes every call raise ``LabelStudioUnavailable``;
* a push interrupted half-way: ``fake.fail_after_tasks(n)`` accepts ``n`` more tasks, then fails
  (the earlier chunks stay imported, as they would on a real server);
* annotating as an annotator: ``fake.annotate(task_id, label)`` (also skip, update, delete), and
  ``fake.webhook_payload(...)`` / ``fake.deliveries`` give webhook bodies in Label Studio 1.23's
  exact shape, for the API's webhook endpoint.

It keeps the real backend's rules: idempotent import by ``prediction_id``, pre-annotations
only for labels the config can show, confidence as the prediction score, one webhook per
project. ``tests/labeling/test_contract.py`` runs the same checks on this fake and on a real
server, so the two cannot drift apart.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from labeling.label_studio.config import labeling_config, project_title, task_data
from labeling.label_studio.errors import LabelStudioError, LabelStudioUnavailable
from labeling.label_studio.models import AnnotationOut, Label, TaskIn, WebhookEvent
from labeling.label_studio.results import confidence, label_from_result, label_result
from labeling.label_studio.webhook import (
    BULK_CREATED,
    DELETED,
    WEBHOOK_ACTIONS,
    WEBHOOK_SECRET_HEADER,
    parse_annotation,
    parse_webhook,
)
from monitor.schema import ModelSchema

ADMIN_ID = 1
ADMIN_EMAIL = "admin@loopwatch.local"


@dataclass
class FakeProject:
    id: int
    title: str
    label_config: str
    schema: ModelSchema
    model_version: str = ""
    sampling: str = "Uncertainty sampling"


@dataclass
class FakeTask:
    id: int
    project: int
    data: dict[str, Any]
    predictions: list[dict[str, Any]]
    annotations: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class FakeWebhook:
    id: int
    project: int
    url: str
    headers: dict[str, str]
    actions: list[str]


class FakeLabelStudio:
    """``LabelingBackend`` in memory. ``clock`` stamps annotations (inject one for determinism)."""

    def __init__(self, clock: Any = None) -> None:
        self.clock = clock or (lambda: datetime.now(UTC))
        self.down = False
        self.projects: dict[int, FakeProject] = {}
        self.tasks: dict[int, FakeTask] = {}
        self.webhooks: dict[int, FakeWebhook] = {}
        self.users: dict[int, str] = {ADMIN_ID: ADMIN_EMAIL}
        self.deliveries: list[tuple[str, dict[str, str], dict[str, Any]]] = []  # (url, headers, payload)
        self.import_calls = 0
        self._budget: int | None = None
        self._ids = itertools.count(1)

    # --- fault injection ------------------------------------------------------------------

    def fail_after_tasks(self, n: int) -> None:
        """Accept ``n`` more imported tasks, then behave as if the server went down."""
        self._budget = n

    def _call(self, what: str) -> None:
        if self.down:
            raise LabelStudioUnavailable(f"{what}: cannot reach Label Studio (fake outage)")

    # --- LabelingBackend ------------------------------------------------------------------

    def ensure_project(self, schema: ModelSchema, *, image_features: Iterable[str] = ()) -> int:
        self._call("ensure project")
        title, config = project_title(schema.name), labeling_config(schema, image_features=image_features)
        for project in sorted(self.projects.values(), key=lambda p: p.id):
            if project.title == title:
                project.label_config, project.schema = config, schema
                return project.id
        project = FakeProject(next(self._ids), title, config, schema)
        self.projects[project.id] = project
        return project.id

    def existing_tasks(self, project_id: int, prediction_ids: Iterable[str]) -> dict[str, int]:
        self._call("look up tasks")
        wanted = set(prediction_ids)
        found: dict[str, int] = {}
        for task in sorted(self.tasks.values(), key=lambda t: t.id):
            pid = task.data.get("prediction_id")
            if task.project == project_id and pid in wanted and pid not in found:
                found[pid] = task.id
        return found

    def import_tasks(self, project_id: int, tasks: Sequence[TaskIn], *, schema: ModelSchema | None = None) -> list[int]:
        project = self._project(project_id)
        schema = schema or project.schema
        ids = self.existing_tasks(project_id, [t.prediction_id for t in tasks])
        self.import_calls += 1
        versions: Counter[str] = Counter()
        for task in tasks:
            if task.prediction_id in ids:
                continue
            if self._budget is not None:
                if self._budget <= 0:
                    self.down = True
                    raise LabelStudioUnavailable("import: Label Studio went away mid-push (fake)")
                self._budget -= 1
            predictions = []
            result = label_result(schema, task.pre_annotation)
            if result is not None:
                prediction: dict[str, Any] = {"model_version": task.model_version or "unknown", "result": result}
                score = confidence(schema, task.prediction, task.score)
                if score is not None:
                    prediction["score"] = score
                predictions.append(prediction)
                versions[task.model_version or "unknown"] += 1
            stored = FakeTask(next(self._ids), project_id, task_data(schema, task), predictions)
            self.tasks[stored.id] = stored
            ids[task.prediction_id] = stored.id
        if versions:  # like the real backend: the project shows the batch's main model version
            project.model_version = versions.most_common(1)[0][0]
        return [ids[t.prediction_id] for t in tasks]

    def fetch_annotations(self, project_id: int, since: datetime | None = None) -> list[AnnotationOut]:
        if since is not None and since.tzinfo is None:
            raise ValueError("since must be timezone-aware (loopwatch uses UTC)")
        self._call("list tasks")
        out = []
        for task in self.tasks.values():
            pid = task.data.get("prediction_id")
            if task.project != project_id or not isinstance(pid, str):
                continue
            for raw in task.annotations:
                annotation = parse_annotation(raw, prediction_id=pid, project_id=project_id, emails=self.users)
                stamp = annotation.updated_at or annotation.created_at
                if since is None or (stamp is not None and stamp >= since):
                    out.append(annotation)
        return sorted(
            out, key=lambda a: (a.updated_at or a.created_at or datetime.min.replace(tzinfo=UTC), a.annotation_id)
        )

    def resolve_annotators(self, annotations: Sequence[AnnotationOut]) -> list[AnnotationOut]:
        self._call("list users")
        return [
            a
            if a.annotator_email or a.annotator_id is None
            else replace(a, annotator_email=self.users.get(a.annotator_id))
            for a in annotations
        ]

    def ensure_webhook(
        self, project_id: int, url: str, secret_header_value: str, *, header_name: str = WEBHOOK_SECRET_HEADER
    ) -> int:
        if not secret_header_value:
            raise ValueError("a webhook secret is required: Label Studio does not sign webhooks")
        self._project(project_id)
        for hook in sorted(self.webhooks.values(), key=lambda h: h.id):
            if hook.project == project_id and (hook.url == url or header_name in hook.headers):
                hook.url, hook.headers, hook.actions = url, {header_name: secret_header_value}, list(WEBHOOK_ACTIONS)
                return hook.id
        hook = FakeWebhook(next(self._ids), project_id, url, {header_name: secret_header_value}, list(WEBHOOK_ACTIONS))
        self.webhooks[hook.id] = hook
        return hook.id

    @staticmethod
    def parse_webhook(payload: Any) -> WebhookEvent:
        return parse_webhook(payload)

    def ping(self) -> None:
        self._call("check the token")

    # --- annotators -----------------------------------------------------------------------

    def add_user(self, email: str) -> int:
        user_id = next(self._ids)
        self.users[user_id] = email
        return user_id

    def annotate(
        self, task_id: int, label: Label | None, *, annotator_id: int = ADMIN_ID, was_cancelled: bool = False
    ) -> int:
        """Submit an annotation as an annotator would; records the webhook deliveries. Its id."""
        task = self._task(task_id)
        now = self.clock().isoformat()
        result = [] if was_cancelled else (label_result(self.projects[task.project].schema, label) or [])
        raw = {
            "id": next(self._ids),
            "result": result,
            "was_cancelled": was_cancelled,
            "created_at": now,
            "updated_at": now,
            "lead_time": 1.0,
            "task": task_id,
            "project": task.project,
            "completed_by": annotator_id,
        }
        task.annotations.append(raw)
        self._deliver(task, "ANNOTATION_CREATED", raw)
        return int(raw["id"])

    def update_annotation(self, annotation_id: int, label: Label) -> None:
        task, raw = self._annotation(annotation_id)
        raw["result"] = label_result(self.projects[task.project].schema, label) or []
        raw["updated_at"] = self.clock().isoformat()
        self._deliver(task, "ANNOTATION_UPDATED", raw)

    def delete_annotation(self, annotation_id: int) -> None:
        task, raw = self._annotation(annotation_id)
        task.annotations.remove(raw)
        self._deliver(task, DELETED, raw)

    def webhook_payload(self, annotation_id: int, action: str = "ANNOTATION_CREATED") -> dict[str, Any]:
        """The body Label Studio 1.23 would POST for ``action`` on this annotation."""
        task, raw = self._annotation(annotation_id)
        return self._payload(task, action, raw)

    def label_of(self, task_id: int) -> Label | None:
        """The label of the task's latest annotation (a convenience for assertions)."""
        annotations = self._task(task_id).annotations
        return label_from_result(annotations[-1]["result"]) if annotations else None

    # --- internals ------------------------------------------------------------------------

    def _payload(self, task: FakeTask, action: str, raw: dict[str, Any]) -> dict[str, Any]:
        project = {"id": task.project, "title": self.projects[task.project].title}
        if action == DELETED:
            return {"action": action, "annotations": [{"id": raw["id"]}], "project": project}
        task_json = {"id": task.id, "data": task.data, "project": task.project, "is_labeled": bool(task.annotations)}
        if action == BULK_CREATED:
            return {"action": action, "annotation": [raw], "task": [task_json], "project": project}
        return {"action": action, "annotation": dict(raw), "task": task_json, "project": project}

    def _deliver(self, task: FakeTask, action: str, raw: dict[str, Any]) -> None:
        for hook in self.webhooks.values():
            if hook.project == task.project and action in hook.actions:
                self.deliveries.append((hook.url, dict(hook.headers), self._payload(task, action, raw)))

    def _project(self, project_id: int) -> FakeProject:
        self._call("read project")
        try:
            return self.projects[project_id]
        except KeyError:
            raise LabelStudioError(f"project {project_id}: HTTP 404: Not found.", status=404) from None

    def _task(self, task_id: int) -> FakeTask:
        try:
            return self.tasks[task_id]
        except KeyError:
            raise LabelStudioError(f"task {task_id}: HTTP 404: Not found.", status=404) from None

    def _annotation(self, annotation_id: int) -> tuple[FakeTask, dict[str, Any]]:
        for task in self.tasks.values():
            for raw in task.annotations:
                if raw["id"] == annotation_id:
                    return task, raw
        raise LabelStudioError(f"annotation {annotation_id}: HTTP 404: Not found.", status=404)
