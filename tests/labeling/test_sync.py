"""Sync logic between the queue and an annotation backend: push survives an outage, annotations
become labels with majority and agreement, and applying twice changes nothing. (The same flow
against a real Label Studio is in test_label_studio_e2e.py.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from labeling.label_studio.errors import LabelStudioUnavailable
from labeling.label_studio.models import AnnotationOut, TaskIn
from labeling.queue import LabelingQueue, RouteRequest
from labeling.sync import LabelSync
from monitor.schema import ModelSchema
from monitor.service import Loopwatch
from tests.monitor.test_evaluation import NOW, _load

MODEL = "harsh-braking"


class MemoryBackend:
    """An annotation backend held in memory (same protocol as LabelStudioBackend)."""

    def __init__(self) -> None:
        self.down = False
        self.tasks: dict[str, int] = {}
        self.imported: list[TaskIn] = []

    def _check(self) -> None:
        if self.down:
            raise LabelStudioUnavailable("connection refused")

    def ensure_project(self, schema: ModelSchema, *, image_features=()) -> int:
        self._check()
        return 7

    def existing_tasks(self, project_id: int, prediction_ids) -> dict[str, int]:
        return {p: self.tasks[p] for p in prediction_ids if p in self.tasks}

    def import_tasks(self, project_id: int, tasks, *, schema=None) -> list[int]:
        self._check()
        new = [t for t in tasks if t.prediction_id not in self.tasks]
        for task in new:
            self.tasks[task.prediction_id] = 1000 + len(self.tasks)
            self.imported.append(task)
        return [self.tasks[t.prediction_id] for t in new]

    def ensure_webhook(self, project_id: int, url: str, secret: str, **_: object) -> int:
        self.webhooks = [*getattr(self, "webhooks", []), (project_id, url, secret)]
        return 1

    def fetch_annotations(self, project_id: int, since=None) -> list[AnnotationOut]:
        return []

    def resolve_annotators(self, annotations):
        return list(annotations)


def annotation(pid: str, aid: int, label: str | None, who: str, cancelled: bool = False) -> AnnotationOut:
    t = datetime(2026, 11, 22, 10, aid % 60, tzinfo=UTC)
    return AnnotationOut(pid, 7, 1, aid, label, aid, who, t, t, cancelled)


def test_push_survives_an_outage_and_never_imports_twice(service: Loopwatch, braking_model: ModelSchema) -> None:
    """With the backend down samples stay queued (error noted); once up they are pushed exactly once."""
    _load(service, NOW - timedelta(hours=1), 1, 100, seed=1)
    queue = LabelingQueue(service)
    queue.route(RouteRequest(MODEL, "random", budget=10, start=NOW - timedelta(hours=1), end=NOW))
    backend = MemoryBackend()
    sync = LabelSync(service, backend)
    backend.down = True
    result = sync.push(MODEL)
    assert result["pushed"] == 0 and result["error"] and queue.depth() == {"queued": 10}
    assert all(s["push_error"] for s in queue.list(MODEL))
    backend.down = False
    assert sync.push(MODEL)["pushed"] == 10 and sync.push(MODEL)["pushed"] == 0
    assert len(backend.imported) == 10 and queue.depth() == {"pushed": 10}
    task = backend.imported[0]
    assert set(task.features) == set(braking_model.features) and task.reason


def test_annotations_become_labels_with_majority_and_agreement(service: Loopwatch, braking_model: ModelSchema) -> None:
    """Three annotators (2 vs 1): the majority label is stored as ground truth with its
    annotators; agreement 2/3 flags the sample for review; re-applying changes nothing."""
    rows = _load(service, NOW - timedelta(hours=1), 1, 20, seed=2)
    queue = LabelingQueue(service)
    queue.route(RouteRequest(MODEL, "random", budget=5, start=NOW - timedelta(hours=1), end=NOW))
    sync = LabelSync(service, MemoryBackend())
    sync.push(MODEL)
    pid = queue.list(MODEL)[0]["prediction_id"]
    anns = [
        annotation(pid, 1, "brake", "ana@x"),
        annotation(pid, 2, "brake", "bo@x"),
        annotation(pid, 3, "none", "cy@x"),
    ]
    assert sync.apply(MODEL, anns) == {"labels": 1, "needs_review": 1}
    [sample] = [s for s in queue.list(MODEL) if s["prediction_id"] == pid]
    assert sample["status"] == "annotated" and sample["label"] == "brake" and abs(sample["agreement"] - 2 / 3) < 1e-9
    history = service.store.label_history(MODEL, pid)
    assert history[-1]["label"] == "brake" and history[-1]["source"] == "label_studio"
    assert history[-1]["annotator"] == "ana@x, bo@x"
    assert service.store.stats(MODEL)["labels"] >= 1 and rows.num_rows == 20
    before = len(service.store.label_history(MODEL, pid))
    sync.apply(MODEL, anns)
    assert len(service.store.label_history(MODEL, pid)) == before  # idempotent


def test_deleted_and_skipped_annotations(service: Loopwatch, braking_model: ModelSchema) -> None:
    """Deleting the disagreeing annotation makes agreement 1; a skipped task yields no label."""
    _load(service, NOW - timedelta(hours=1), 1, 20, seed=3)
    queue = LabelingQueue(service)
    queue.route(RouteRequest(MODEL, "random", budget=2, start=NOW - timedelta(hours=1), end=NOW))
    sync = LabelSync(service, MemoryBackend())
    sync.push(MODEL)
    first, second = (s["prediction_id"] for s in queue.list(MODEL))
    sync.apply(MODEL, [annotation(first, 1, "none", "a@x"), annotation(first, 2, "brake", "b@x")])
    sync.apply(MODEL, [], deleted_ids=[2])
    [sample] = [s for s in queue.list(MODEL) if s["prediction_id"] == first]
    assert sample["label"] == "none" and sample["agreement"] == 1.0 and not sample["needs_review"]
    sync.apply(MODEL, [annotation(second, 5, None, "c@x", cancelled=True)])
    [skipped] = [s for s in queue.list(MODEL) if s["prediction_id"] == second]
    assert skipped["status"] == "pushed" and skipped["label"] is None


def test_annotations_for_unrouted_predictions_are_ignored(service: Loopwatch, braking_model: ModelSchema) -> None:
    """Annotations for predictions loopwatch never routed are ignored."""
    sync = LabelSync(service, MemoryBackend())
    assert sync.apply(MODEL, [annotation("not-routed", 1, "brake", "a@x")]) == {"labels": 0, "needs_review": 0}


def test_webhook_is_registered_on_first_push(tmp_path, braking_model) -> None:
    """With a public URL and a webhook secret, the project's webhook is registered once."""
    from monitor.settings import Settings

    service = Loopwatch(
        Settings(data_dir=tmp_path / "d", public_url="https://lw.example", label_studio_webhook_secret="s3")
    )
    try:
        service.registry.register(braking_model)
        _load(service, NOW - timedelta(hours=1), 1, 50, seed=9)
        LabelingQueue(service).route(RouteRequest(MODEL, "random", budget=5, start=NOW - timedelta(hours=1), end=NOW))
        backend = MemoryBackend()
        sync = LabelSync(service, backend)
        sync.push(MODEL)
        sync.push(MODEL)
        assert backend.webhooks == [(7, "https://lw.example/v1/labeling/webhook", "s3")]
    finally:
        service.close()
