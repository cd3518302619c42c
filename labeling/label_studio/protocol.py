"""The interface sync and routing code depend on, so tests can substitute an in-process fake.

``LabelStudioBackend`` implements it against a real server; ``tests/fakes/label_studio.py``
implements it in memory with fault injection (outages, a failure in the middle of a push).
A contract test runs the same checks on both so the fake cannot drift from the real thing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol

from labeling.label_studio.models import AnnotationOut, TaskIn, WebhookEvent
from monitor.schema import ModelSchema


class LabelingBackend(Protocol):
    def ensure_project(self, schema: ModelSchema, *, image_features: Iterable[str] = ()) -> int: ...

    def existing_tasks(self, project_id: int, prediction_ids: Iterable[str]) -> dict[str, int]: ...

    def import_tasks(
        self, project_id: int, tasks: Sequence[TaskIn], *, schema: ModelSchema | None = None
    ) -> list[int]: ...

    def fetch_annotations(self, project_id: int, since: datetime | None = None) -> list[AnnotationOut]: ...

    def resolve_annotators(self, annotations: Sequence[AnnotationOut]) -> list[AnnotationOut]: ...

    def ensure_webhook(self, project_id: int, url: str, secret_header_value: str, *, header_name: str = ...) -> int: ...

    @staticmethod
    def parse_webhook(payload: Any) -> WebhookEvent: ...

    def ping(self) -> None: ...
