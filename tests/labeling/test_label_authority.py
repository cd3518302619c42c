"""Blind labelling and label authority in the feedback loop: samples routed as likely errors reach
annotators without the model's answer unless the route or the setting enables it; an annotation
that disagrees with ground truth never replaces it and flags the sample for review."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pyarrow as pa
import pytest

from labeling.queue import LabelingQueue, RouteRequest
from labeling.sync import LabelSync
from monitor.schema import ModelSchema
from monitor.service import Loopwatch
from monitor.settings import Settings
from tests.conftest import BRAKING
from tests.fakes.label_studio import FakeLabelStudio
from tests.labeling.test_sync import annotation
from tests.monitor.test_evaluation import NOW, _load

MODEL = "harsh-braking"


def _wrong_predictions(service: Loopwatch) -> list[str]:
    """20 predictions, all labelled against the model's answer (so `errors` routes them)."""
    rows = _load(service, NOW - timedelta(hours=1), 1, 20, seed=3)
    ids = rows.column("prediction_id").to_pylist()
    flipped = ["none" if p == "brake" else "brake" for p in rows.column("prediction").to_pylist()]
    service.store.ingest_labels(MODEL, pa.table({"prediction_id": ids, "label": flipped}))
    return ids


def _push(service: Loopwatch, strategy: str, **route: Any) -> list[Any]:
    fake = FakeLabelStudio()
    LabelingQueue(service).route(
        RouteRequest(MODEL, strategy, budget=5, start=NOW - timedelta(hours=1), end=NOW, random_share=0, **route)
    )
    assert LabelSync(service, fake).push(MODEL)["pushed"] == 5
    return list(fake.tasks.values())


def test_errors_are_labelled_blind_by_default(service: Loopwatch, braking_model: ModelSchema) -> None:
    """`errors` samples are pushed with no pre-annotation and without the model's answer in the task."""
    _wrong_predictions(service)
    tasks = _push(service, "errors")
    assert all(t.predictions == [] for t in tasks)
    assert all(t.data["model_prediction"] is None and t.data["model_score"] is None for t in tasks)
    assert all(s["blind"] for s in LabelingQueue(service).list(MODEL))


def test_the_route_option_shows_the_model_output(service: Loopwatch, braking_model: ModelSchema) -> None:
    """`show_model_output=True` on the route pre-annotates errors samples with the model's answer."""
    _wrong_predictions(service)
    tasks = _push(service, "errors", show_model_output=True)
    assert all(len(t.predictions) == 1 and t.data["model_prediction"] in ("none", "brake") for t in tasks)
    assert not any(s["blind"] for s in LabelingQueue(service).list(MODEL))


def test_the_setting_shows_the_model_output(settings: Settings) -> None:
    """LOOPWATCH_LABELING_ERRORS_SHOW_MODEL_OUTPUT=true makes errors samples pre-annotated by default."""
    service = Loopwatch(settings.model_copy(update={"labeling_errors_show_model_output": True}))
    try:
        service.registry.register(ModelSchema.model_validate(BRAKING))
        _wrong_predictions(service)
        tasks = _push(service, "errors")
        assert all(len(t.predictions) == 1 for t in tasks)
    finally:
        service.close()


def test_other_strategies_keep_the_pre_annotation(service: Loopwatch, braking_model: ModelSchema) -> None:
    """Blind labelling is for likely errors only: uncertainty samples still show the model's answer."""
    _load(service, NOW - timedelta(hours=1), 1, 20, seed=4)
    tasks = _push(service, "uncertainty")
    assert all(len(t.predictions) == 1 for t in tasks)


@pytest.mark.parametrize("authority", ["ground_truth", "review"])
def test_an_annotation_against_a_higher_label_is_flagged_for_review(
    service: Loopwatch, braking_model: ModelSchema, authority: str
) -> None:
    """Annotators (authority `annotator`) disagreeing with a ground-truth or review label: the
    stored label stays, the conflict is listed, and the queued sample needs review."""
    _load(service, NOW - timedelta(hours=1), 1, 20, seed=2)
    queue = LabelingQueue(service)
    queue.route(RouteRequest(MODEL, "random", budget=5, start=NOW - timedelta(hours=1), end=NOW))
    sync = LabelSync(service, FakeLabelStudio())
    sync.push(MODEL)
    pid = queue.list(MODEL)[0]["prediction_id"]
    service.store.ingest_labels(MODEL, pa.table({"prediction_id": [pid], "label": ["brake"]}), authority=authority)
    anns = [annotation(pid, 1, "none", "ana@x"), annotation(pid, 2, "none", "bo@x")]
    assert sync.apply(MODEL, anns) == {"labels": 1, "needs_review": 1}
    current = service.store.label(MODEL, pid)
    assert current is not None and (current["label"], current["authority"], current["conflict"]) == (
        "brake",
        authority,
        True,
    )
    [sample] = [s for s in queue.list(MODEL) if s["prediction_id"] == pid]
    assert sample["needs_review"] is True and sample["label"] == "none"  # the annotators' answer, on the queue
    assert [c["prediction_id"] for c in service.store.label_conflicts(MODEL)] == [pid]
    before = len(service.store.label_history(MODEL, pid))
    sync.apply(MODEL, anns)  # the poll re-applying the same annotations records nothing new
    assert len(service.store.label_history(MODEL, pid)) == before
