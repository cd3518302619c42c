"""``LabelStudioBackend``: the calls loopwatch makes to Label Studio (label-studio-sdk 2.x).

Pure client code: no access to loopwatch's store. Every method is safe to repeat — that is what
lets the caller retry after :class:`LabelStudioUnavailable` without duplicating anything:

* ``ensure_project`` finds the model's project by title (or creates it) and updates its config
  when the schema changed;
* ``import_tasks`` looks up the prediction ids already in the project first and imports only the
  others, each with the model's answer as a pre-annotation;
* ``fetch_annotations`` pages through every task (OSS 1.23 ignores ``only_annotated``) and
  filters annotations itself;
* ``ensure_webhook`` updates loopwatch's webhook in place instead of adding another.

Writes are sent without the SDK's automatic retries: a retried POST whose first attempt did
reach the server would import twice. Reads retry (``max_retries``) since they are harmless.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from label_studio_sdk import LabelStudio
from label_studio_sdk.core.request_options import RequestOptions

from labeling.label_studio.config import INSTRUCTIONS, describe, labeling_config, project_title, task_data
from labeling.label_studio.errors import translated
from labeling.label_studio.models import AnnotationOut, TaskIn, WebhookEvent
from labeling.label_studio.results import confidence, label_result
from labeling.label_studio.webhook import WEBHOOK_ACTIONS, WEBHOOK_SECRET_HEADER, parse_annotation, parse_webhook
from monitor.schema import ModelSchema

if TYPE_CHECKING:
    from label_studio_sdk import AllRolesProjectList, RoleBasedTask

log = logging.getLogger(__name__)

UNCERTAINTY_SAMPLING = "Uncertainty sampling"
PAGE_SIZE = 100
IMPORT_CHUNK = 200  # tasks per import request
LOOKUP_CHUNK = 50  # prediction ids per filtered task query
NO_RETRY: RequestOptions = {"max_retries": 0}


class LabelStudioBackend:
    """One Label Studio server, authenticated with a (legacy or personal access) token.

    ``timeout`` bounds each HTTP request; a stopped server fails fast (connection refused).
    """

    def __init__(self, url: str, token: str, *, timeout: float = 10.0, max_retries: int = 1) -> None:
        self.url = url.rstrip("/")
        self._client = LabelStudio(base_url=self.url, api_key=token, timeout=timeout, max_retries=max_retries)
        self._schemas: dict[int, ModelSchema] = {}

    @property
    def sdk(self) -> LabelStudio:
        """The underlying SDK client, for calls this class does not wrap."""
        return self._client

    # --- projects -------------------------------------------------------------------------

    def ensure_project(self, schema: ModelSchema, *, image_features: Iterable[str] = ()) -> int:
        """The id of the model's project, created on first use; its config follows the schema.

        The project is found by its title (``loopwatch · <model>``). If the generated config
        differs from the stored one (a class or feature was added) the project is updated;
        Label Studio refuses the update (:class:`LabelStudioError`) if existing annotations use
        something the new config lacks.
        """
        title = project_title(schema.name)
        config = labeling_config(schema, image_features=image_features)
        with translated(f"find project {title!r}"):
            projects: Iterable[AllRolesProjectList] = self._client.projects.list(title=title, page_size=PAGE_SIZE)
            found = [p.id for p in projects if p.title == title and p.id is not None]
        if found:
            project_id = min(found)
            with translated(f"read project {project_id}"):
                stored = self._client.projects.get(project_id).label_config
            if (stored or "").strip() != config.strip():
                log.info("updating the labeling config of project %s (%s)", project_id, title)
                with translated(f"update the config of project {project_id}"):
                    self._client.projects.update(project_id, label_config=config, request_options=NO_RETRY)
        else:
            with translated(f"create project {title!r}"):
                created = self._client.projects.create(
                    title=title,
                    description=describe(schema),
                    label_config=config,
                    expert_instruction=INSTRUCTIONS,
                    show_instruction=False,
                    show_skip_button=True,
                    show_collab_predictions=True,  # pre-annotations visible to annotators
                    sampling=UNCERTAINTY_SAMPLING,  # lowest-confidence tasks first
                    request_options=NO_RETRY,
                )
                if created.id is None:
                    raise ValueError("the created project has no id")
            project_id = created.id
            log.info("created Label Studio project %s (%s)", project_id, title)
        self._schemas[project_id] = schema
        return project_id

    def _schema_for(self, project_id: int, schema: ModelSchema | None) -> ModelSchema:
        if schema is not None:
            self._schemas[project_id] = schema
            return schema
        try:
            return self._schemas[project_id]
        except KeyError:
            raise ValueError(f"project {project_id}: call ensure_project(schema) first or pass schema=") from None

    # --- tasks ----------------------------------------------------------------------------

    def existing_tasks(self, project_id: int, prediction_ids: Iterable[str]) -> dict[str, int]:
        """``{prediction_id: task id}`` for the ids already in the project.

        Queried with a Data Manager filter on ``data.prediction_id`` and checked again here, so
        a server that ignored the filter would only make this slower, never wrong.
        """
        wanted = list(dict.fromkeys(prediction_ids))
        found: dict[str, int] = {}
        for start in range(0, len(wanted), LOOKUP_CHUNK):
            chunk = set(wanted[start : start + LOOKUP_CHUNK])
            items = [
                {"filter": "filter:tasks:data.prediction_id", "operator": "equal", "type": "String", "value": pid}
                for pid in chunk
            ]
            query = json.dumps({"filters": {"conjunction": "or", "items": items}})
            with translated(f"look up tasks in project {project_id}"):
                pager: Iterable[RoleBasedTask] = self._client.tasks.list(
                    project=project_id, query=query, include="id,data", page_size=PAGE_SIZE
                )
                for task in pager:
                    pid = (task.data or {}).get("prediction_id")
                    if task.id is not None and pid in chunk and (pid not in found or task.id < found[pid]):
                        found[pid] = task.id
        return found

    def import_tasks(self, project_id: int, tasks: Sequence[TaskIn], *, schema: ModelSchema | None = None) -> list[int]:
        """Import ``tasks`` (skipping prediction ids already there); their task ids, in order.

        Each task carries the model's answer as a Label Studio *prediction* (``model_version``
        and ``score`` = the model's confidence), so annotators confirm or correct it and
        uncertainty sampling serves the least confident first; a ``blind`` task carries none. Label Studio OSS shows the
        predictions of one model version per project: the project is switched to the version
        most of this batch carries. ``schema`` defaults to the one given to ``ensure_project``.
        """
        schema = self._schema_for(project_id, schema)
        unique = list({task.prediction_id: task for task in reversed(tasks)}.values())[::-1]  # first wins
        ids = self.existing_tasks(project_id, [task.prediction_id for task in unique])
        new = [task for task in unique if task.prediction_id not in ids]
        for start in range(0, len(new), IMPORT_CHUNK):
            chunk = new[start : start + IMPORT_CHUNK]
            payload = [self._task_payload(schema, task) for task in chunk]
            with translated(f"import {len(chunk)} tasks into project {project_id}"):
                response = self._client.projects.import_tasks(
                    project_id,
                    # Stub gap: typed Sequence[ImportApiRequest], but the SDK serializes plain task dicts as they are.
                    request=payload,  # type: ignore[arg-type]
                    return_task_ids=True,
                    request_options=NO_RETRY,
                )
            # ``task_ids`` is not a declared field of the response model: present only when the server honours
            # return_task_ids, so an older server's response has no such attribute at all.
            created = list(getattr(response, "task_ids", None) or [])
            if len(created) == len(chunk):
                ids.update({task.prediction_id: int(task_id) for task, task_id in zip(chunk, created, strict=True)})
            else:  # an older server without return_task_ids: ask again
                ids.update(self.existing_tasks(project_id, [task.prediction_id for task in chunk]))
        if new:
            self._follow_model_version(project_id, new)
        return [ids[task.prediction_id] for task in tasks]

    def _task_payload(self, schema: ModelSchema, task: TaskIn) -> dict[str, Any]:
        payload: dict[str, Any] = {"data": task_data(schema, task)}
        result = label_result(schema, task.pre_annotation)
        if result is not None:
            prediction: dict[str, Any] = {"model_version": task.model_version or "unknown", "result": result}
            score = confidence(schema, task.prediction, task.score)
            if score is not None:
                prediction["score"] = score
            payload["predictions"] = [prediction]
        return payload

    def _follow_model_version(self, project_id: int, tasks: Sequence[TaskIn]) -> None:
        versions = Counter(task.model_version or "unknown" for task in tasks if task.pre_annotation is not None)
        if not versions:
            return
        version = versions.most_common(1)[0][0]
        with translated(f"read project {project_id}"):
            current = self._client.projects.get(project_id).model_version
        if current != version:
            with translated(f"set model version of project {project_id}"):
                self._client.projects.update(project_id, model_version=version, request_options=NO_RETRY)

    # --- annotations ----------------------------------------------------------------------

    def fetch_annotations(self, project_id: int, since: datetime | None = None) -> list[AnnotationOut]:
        """Every annotation on loopwatch's tasks, or those updated at or after ``since``.

        Pages through all tasks: Label Studio OSS 1.23 ignores ``only_annotated``, so the
        filtering happens here. Drafts are not annotations and are not returned. Sorted by
        (updated time, annotation id) so a caller can keep a high-water mark.
        """
        if since is not None and since.tzinfo is None:
            raise ValueError("since must be timezone-aware (loopwatch uses UTC)")
        emails = self._user_emails()
        out: list[AnnotationOut] = []
        with translated(f"list tasks of project {project_id}"):
            tasks: Iterable[RoleBasedTask] = self._client.tasks.list(
                project=project_id, fields="all", page_size=PAGE_SIZE
            )
            for task in tasks:
                prediction_id = (task.data or {}).get("prediction_id")
                if not isinstance(prediction_id, str) or not prediction_id:
                    continue
                for raw in task.annotations or []:
                    item = _as_dict(raw)
                    item.setdefault("task", task.id)
                    annotation = parse_annotation(
                        item, prediction_id=prediction_id, project_id=project_id, emails=emails
                    )
                    stamp = annotation.updated_at or annotation.created_at
                    if since is None or (stamp is not None and stamp >= since):
                        out.append(annotation)
        return sorted(out, key=lambda a: (a.updated_at or a.created_at or _EPOCH, a.annotation_id))

    def resolve_annotators(self, annotations: Sequence[AnnotationOut]) -> list[AnnotationOut]:
        """Fill ``annotator_email`` (webhooks carry only the user id) with one users request."""
        if all(a.annotator_email is not None or a.annotator_id is None for a in annotations):
            return list(annotations)
        emails = self._user_emails()
        return [
            a if a.annotator_email is not None or a.annotator_id is None else _with_email(a, emails.get(a.annotator_id))
            for a in annotations
        ]

    def _user_emails(self) -> dict[int, str]:
        with translated("list users"):
            return {int(user.id): user.email for user in self._client.users.list() if user.email}

    # --- webhooks -------------------------------------------------------------------------

    def ensure_webhook(
        self, project_id: int, url: str, secret_header_value: str, *, header_name: str = WEBHOOK_SECRET_HEADER
    ) -> int:
        """Register (or repair) the project's annotation webhook to ``url``; its id.

        Label Studio does not sign webhooks, so every call carries ``header_name:
        secret_header_value``. An existing webhook is reused when it has the same URL or
        carries ``header_name`` (loopwatch's public URL changed), so there is never a second.
        The server must allow private addresses (``SSRF_PROTECTION_ENABLED=false``) to call a
        loopwatch on loopback or a private network.
        """
        if not secret_header_value:
            raise ValueError("a webhook secret is required: Label Studio does not sign webhooks")
        wanted = {
            "url": url,
            "headers": {header_name: secret_header_value},
            "actions": list(WEBHOOK_ACTIONS),
            "is_active": True,
            "send_payload": True,
            "send_for_all_actions": False,
        }
        with translated(f"list webhooks of project {project_id}"):
            hooks = [h for h in self._client.webhooks.list(project=str(project_id)) if h.project == project_id]
        ours = [h for h in hooks if h.url == url or header_name in (h.headers or {})]
        if not ours:
            with translated(f"create webhook for project {project_id}"):
                return int(self._client.webhooks.create(project=project_id, **wanted, request_options=NO_RETRY).id)
        hook = min(ours, key=lambda h: h.id)
        current = {
            "url": hook.url,
            "headers": hook.headers or {},
            "actions": sorted(hook.actions or []),
            "is_active": hook.is_active,
            "send_payload": hook.send_payload,
            "send_for_all_actions": hook.send_for_all_actions,
        }
        if current != {**wanted, "actions": sorted(WEBHOOK_ACTIONS)}:
            with translated(f"update webhook {hook.id}"):
                self._client.webhooks.update(hook.id, **wanted, request_options=NO_RETRY)
        return int(hook.id)

    @staticmethod
    def parse_webhook(payload: Any) -> WebhookEvent:
        """See :func:`labeling.label_studio.webhook.parse_webhook` (pure, no network)."""
        return parse_webhook(payload)

    def ping(self) -> None:
        """Raise :class:`LabelStudioUnavailable` / :class:`LabelStudioError` unless the token works."""
        with translated("check the token"):
            self._client.users.whoami()


_EPOCH = datetime.fromisoformat("1970-01-01T00:00:00+00:00")


def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return dict(value)
    return dict(value.model_dump() if hasattr(value, "model_dump") else value.dict())


def _with_email(annotation: AnnotationOut, email: str | None) -> AnnotationOut:
    return replace(annotation, annotator_email=email)
