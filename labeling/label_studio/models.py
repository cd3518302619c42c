"""The records that cross the boundary between loopwatch and Label Studio.

Plain frozen dataclasses: the backend stays pure client code that knows nothing of loopwatch's
store, and callers (routing, sync) build and consume these without importing the SDK.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

Label = str | float


@dataclass(frozen=True)
class TaskIn:
    """One routed sample to be labeled.

    ``prediction_id`` is the idempotency key: it is stored in the task's data and a task whose
    ``prediction_id`` is already in the project is never imported again.

    ``score`` is the model's logged score, read the way loopwatch's detectors read it: for a
    binary model the probability of the positive class, for a multiclass model the top
    probability, for regression whatever the model logs (passed through). The pre-annotation's
    score is the model's confidence in ``prediction``, which is what Label Studio's uncertainty
    sampling orders by (lowest first).
    """

    prediction_id: str
    features: Mapping[str, Any]
    prediction: Label | None
    score: float | None = None
    model_version: str = ""
    reason: str = ""
    segments: Mapping[str, str | None] = field(default_factory=dict)
    # Blind labelling: the annotator sees neither the model's answer nor its score, and no
    # pre-annotation is imported (samples routed as likely errors, by default).
    blind: bool = False

    @property
    def pre_annotation(self) -> Label | None:
        """The label to pre-select in Label Studio: the model's answer, unless labelled blind."""
        return None if self.blind else self.prediction

    def __post_init__(self) -> None:
        if not isinstance(self.prediction_id, str) or not self.prediction_id:
            raise ValueError("prediction_id must be a non-empty string")


@dataclass(frozen=True)
class AnnotationOut:
    """One annotation as loopwatch needs it to become a ground-truth label.

    ``label`` is ``None`` when the annotator skipped the task (``was_cancelled``) or left the
    label empty. ``annotator_email`` is ``None`` when it could not be resolved (webhooks carry
    only the user id; see ``LabelStudioBackend.resolve_annotators``).
    """

    prediction_id: str
    project_id: int | None
    task_id: int
    annotation_id: int
    label: Label | None
    annotator_id: int | None
    annotator_email: str | None
    created_at: datetime | None
    updated_at: datetime | None
    was_cancelled: bool
    lead_time: float | None = None


@dataclass(frozen=True)
class WebhookEvent:
    """What one Label Studio webhook call means for loopwatch.

    ``annotations`` are created or updated annotations (on loopwatch's tasks only);
    ``deleted_annotation_ids`` come from ``ANNOTATIONS_DELETED``, which carries ids only.
    Actions loopwatch does not subscribe to parse to an empty event.
    """

    action: str
    project_id: int | None
    annotations: list[AnnotationOut] = field(default_factory=list)
    deleted_annotation_ids: list[int] = field(default_factory=list)
