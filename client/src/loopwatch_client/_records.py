"""Records as loopwatch's JSON ingestion endpoints take them (`POST /v1/models/{model}/predictions`
and `…/labels`). Built on the caller's thread, so they copy the caller's mappings: a dict the model
server reuses or mutates after ``log()`` returns must not change what is sent."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

Authority = Literal["ground_truth", "review", "annotator"]


def prediction_record(
    prediction_id: str,
    *,
    prediction: Any,
    features: Mapping[str, Any] | None,
    timestamp: datetime | str | None,
    score: float | None,
    probabilities: Sequence[float] | Mapping[str, float] | None,
    latency_ms: float | None,
    model_version: str | None,
    segments: Mapping[str, Any] | None,
    embedding: Sequence[float] | None,
) -> dict[str, Any]:
    """One prediction; fields left as None are omitted (the server's defaults apply)."""
    record: dict[str, Any] = {
        "prediction_id": str(prediction_id),
        "timestamp": iso(timestamp),
        "prediction": prediction,
    }
    if features:
        record["features"] = dict(features)
    if score is not None:
        record["score"] = score
    if probabilities is not None:
        record["probabilities"] = dict(probabilities) if isinstance(probabilities, Mapping) else list(probabilities)
    if latency_ms is not None:
        record["latency_ms"] = latency_ms
    if model_version is not None:
        record["model_version"] = str(model_version)
    if segments:
        record["segments"] = dict(segments)
    if embedding is not None:
        record["embedding"] = list(embedding)
    return record


def label_record(
    prediction_id: str,
    label: Any,
    *,
    timestamp: datetime | str | None,
    authority: Authority | None,
    source: str | None,
) -> dict[str, Any]:
    """One ground-truth label for an earlier (or later) prediction, joined by ``prediction_id``."""
    record: dict[str, Any] = {"prediction_id": str(prediction_id), "label": label, "timestamp": iso(timestamp)}
    if authority is not None:
        record["authority"] = authority
    if source is not None:
        record["source"] = str(source)
    return record


def iso(value: datetime | str | None) -> str:
    """ISO 8601 with a time zone; naive datetimes are taken as UTC, None means now."""
    if value is None:
        return datetime.now(UTC).isoformat()
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    return str(value)
