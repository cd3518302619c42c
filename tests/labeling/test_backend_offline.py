"""LabelStudioBackend's handling of responses, with the SDK's HTTP calls replaced (no server needed).

The full behaviour is checked against a real Label Studio in ``test_backend.py`` (slow); these
tests cover answers a current server does not give, such as an older one's import response.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from label_studio_sdk.core.unchecked_base_model import construct_type
from label_studio_sdk.projects.types.import_tasks_projects_response import ImportTasksProjectsResponse

from labeling.label_studio import LabelStudioBackend, TaskIn
from monitor.schema import ModelSchema


def _schema() -> ModelSchema:
    return ModelSchema.model_validate({"name": "x", "task": "binary", "classes": ["x", "y"]})


class _OldServer:
    """Imports tasks and lists them, but ignores ``return_task_ids`` (its answer has no ``task_ids``)."""

    def __init__(self) -> None:
        self.tasks: list[SimpleNamespace] = []

    def import_tasks(self, project_id: int, *, request: list[dict[str, Any]], **kwargs: Any) -> Any:
        for payload in request:
            self.tasks.append(SimpleNamespace(id=100 + len(self.tasks), data=payload["data"]))
        return construct_type(type_=ImportTasksProjectsResponse, object_={"task_count": len(request)})

    def list_tasks(self, **kwargs: Any) -> list[SimpleNamespace]:
        return list(self.tasks)


def test_import_without_returned_task_ids_looks_the_ids_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server whose import response carries no ``task_ids`` (older Label Studio) is not an error: the
    task ids are looked up by prediction id instead, in the order the tasks were given."""
    backend = LabelStudioBackend("http://127.0.0.1:9", "token", max_retries=0)
    server = _OldServer()
    monkeypatch.setattr(backend.sdk.projects, "import_tasks", server.import_tasks)
    monkeypatch.setattr(backend.sdk.tasks, "list", server.list_tasks)
    monkeypatch.setattr(backend.sdk.projects, "get", lambda project_id: SimpleNamespace(model_version="1"))
    monkeypatch.setattr(backend.sdk.projects, "update", lambda *args, **kwargs: None)
    tasks = [TaskIn(f"p-{i}", {}, "x", 0.5, "1", "random") for i in range(3)]

    ids = backend.import_tasks(7, tasks, schema=_schema())

    assert ids == [100, 101, 102]
    assert [t.data["prediction_id"] for t in server.tasks] == ["p-0", "p-1", "p-2"]
