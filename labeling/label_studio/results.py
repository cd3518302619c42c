"""Label Studio ``result`` items ↔ loopwatch labels.

A result is a list of regions; ours has one: the ``label`` control on the ``context`` object,
``{"type": "choices", "value": {"choices": [cls]}}`` for classifiers or
``{"type": "number", "value": {"number": x}}`` for regression. The same shape is used for the
model's pre-annotation and read back from annotators' annotations.
"""

from __future__ import annotations

import math
from typing import Any

from labeling.label_studio.config import CONTROL_NAME, OBJECT_NAME
from labeling.label_studio.models import Label
from monitor.schema import ModelSchema


def label_result(schema: ModelSchema, label: Label | None) -> list[dict[str, Any]] | None:
    """The result selecting ``label``, or ``None`` when it cannot be shown in this config.

    Label Studio accepts pre-annotations it cannot display (it does not validate them), so a
    class the schema does not know, or a non-finite number, is dropped here instead.
    """
    if label is None:
        return None
    value: dict[str, list[str] | float]
    if schema.is_classifier:
        if not isinstance(label, str) or label not in schema.classes:
            return None
        kind, value = "choices", {"choices": [label]}
    else:
        if isinstance(label, bool) or not isinstance(label, (int, float)) or not math.isfinite(label):
            return None
        kind, value = "number", {"number": float(label)}
    return [{"from_name": CONTROL_NAME, "to_name": OBJECT_NAME, "type": kind, "value": value}]


def label_from_result(result: Any) -> Label | None:
    """The label an annotation's ``result`` selects; ``None`` when it selects none (or several).

    Raises ``ValueError`` when ``result`` is not a list of objects (a malformed payload).
    """
    if result is None:
        return None
    if not isinstance(result, list) or not all(isinstance(item, dict) for item in result):
        raise ValueError("annotation result must be a list of objects")
    for item in result:
        if item.get("from_name") != CONTROL_NAME:
            continue
        value = item.get("value")
        if not isinstance(value, dict):
            raise ValueError("annotation result item has no 'value' object")
        choices = value.get("choices")
        if isinstance(choices, list):
            return choices[0] if len(choices) == 1 and isinstance(choices[0], str) else None
        number = value.get("number")
        if isinstance(number, (int, float)) and not isinstance(number, bool):
            return float(number)
    return None


def confidence(schema: ModelSchema, prediction: Label | None, score: float | None) -> float | None:
    """The model's confidence in ``prediction``, the score Label Studio orders uncertainty by.

    Binary scores are positive-class probabilities, so a confident "negative" (score 0.02) has
    confidence 0.98; multiclass scores are already the top probability; regression scores are
    passed through.
    """
    if score is None or isinstance(score, bool) or not math.isfinite(score):
        return None
    if schema.task == "binary":
        p = min(max(float(score), 0.0), 1.0)
        return p if prediction == schema.positive_class else 1.0 - p
    return float(score)
