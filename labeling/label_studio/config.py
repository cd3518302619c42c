"""The labeling interface generated from a model's schema, and the task data it displays.

The XML and the task data are built side by side here because they must agree: Label Studio
refuses an import whose data lacks a ``$variable`` the config uses, and pre-annotations and
annotations name the control (``label``) and the object it labels (``context``).

Task data layout (every key is always present, so imports never fail validation)::

    prediction_id   the idempotency key (also how annotations map back to loopwatch)
    features        {feature: display string} for numeric / categorical / boolean features
    field_<name>    one key per text feature (shown as <Text>, or <Image> for image URLs)
    segments        {segment: value}
    context         {"model prediction", "score", "model version", "why routed"} for annotators
    model_prediction, model_score, model_version, reason   the same values, raw, for export

Names are escaped with ``quoteattr``; feature and segment names are identifiers (checked by the
schema), classes are arbitrary strings of up to 200 characters.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from labeling.label_studio.models import TaskIn
from monitor.schema import ModelSchema

CONTROL_NAME = "label"  # the <Choices>/<Number> whose result is the label
OBJECT_NAME = "context"  # the object tag the label is attached to (always present)
TITLE_PREFIX = "loopwatch · "
TITLE_MAX = 50  # Label Studio refuses longer project titles
MISSING = "(missing)"
BLIND = "(hidden: blind labelling)"


def project_title(model: str) -> str:
    """``loopwatch · <model>``, shortened with a stable hash when longer than Label Studio allows."""
    title = f"{TITLE_PREFIX}{model}"
    if len(title) <= TITLE_MAX:
        return title
    digest = hashlib.sha256(model.encode()).hexdigest()[:8]
    keep = TITLE_MAX - len(TITLE_PREFIX) - len(digest) - 1
    return f"{TITLE_PREFIX}{model[:keep]}~{digest}"


def tabular_features(schema: ModelSchema) -> list[str]:
    return [name for name, kind in schema.features.items() if kind != "text"]


def text_features(schema: ModelSchema) -> list[str]:
    return [name for name, kind in schema.features.items() if kind == "text"]


def field_key(feature: str) -> str:
    """The task-data key of a text feature (prefixed so it cannot clash with the fixed keys)."""
    return f"field_{feature}"


def labeling_config(schema: ModelSchema, *, image_features: Iterable[str] = ()) -> str:
    """Label Studio XML for ``schema``: the sample as readable tables, then one label control.

    Classifiers get a single-choice ``<Choices>`` of the model's classes (in schema order, so
    hotkeys stay stable as classes are appended); regression gets a ``<Number>``. Text features
    are shown as ``<Text>``, or as ``<Image>`` when named in ``image_features`` (text features
    holding image URLs). The output is deterministic, so comparing it with the project's stored
    config tells whether the schema changed.
    """
    images = set(image_features)
    not_text = images - set(text_features(schema))
    if not_text:
        raise ValueError(f"image_features must name text features of {schema.name!r}: {sorted(not_text)}")

    lines = ["<View>"]
    if tabular_features(schema):
        lines.append('  <Header value="Features"/>')
        lines.append('  <Table name="features" value="$features"/>')
    for name in text_features(schema):
        key = field_key(name)
        tag = "Image" if name in images else "Text"
        lines.append(f"  <Header value={quoteattr(name)}/>")
        lines.append(f"  <{tag} name={quoteattr(key)} value={quoteattr('$' + key)}/>")
    if schema.segments:
        lines.append('  <Header value="Segments"/>')
        lines.append('  <Table name="segments" value="$segments"/>')
    lines.append('  <Header value="Model prediction and why this sample was routed"/>')
    lines.append(f'  <Table name="{OBJECT_NAME}" value="${OBJECT_NAME}"/>')
    lines.append(f"  <Header value={quoteattr(_question(schema))}/>")
    lines.extend(_control(schema))
    lines.append("</View>")
    return "\n".join(lines)  # no trailing newline: Label Studio strips it when storing


def _question(schema: ModelSchema) -> str:
    if schema.is_classifier:
        return "Which label is right? Confirm the model's choice or correct it."
    return "What is the true value? Confirm the model's value or correct it."


def _control(schema: ModelSchema) -> list[str]:
    if not schema.is_classifier:
        return [f'  <Number name="{CONTROL_NAME}" toName="{OBJECT_NAME}" step="any" required="true"/>']
    out = [
        f'  <Choices name="{CONTROL_NAME}" toName="{OBJECT_NAME}" choice="single-radio" '
        'showInline="true" required="true">'
    ]
    out += [f"    <Choice value={quoteattr(cls)}/>" for cls in schema.classes]
    out.append("  </Choices>")
    return out


def display(value: Any) -> str:
    """A value as an annotator should read it in a table cell."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def task_data(schema: ModelSchema, task: TaskIn) -> dict[str, Any]:
    """The Label Studio task ``data`` for ``task``, with every key the config refers to."""
    data: dict[str, Any] = {
        "prediction_id": task.prediction_id,
        "features": {name: display(task.features.get(name)) for name in tabular_features(schema)},
        "segments": {name: display(task.segments.get(name)) for name in schema.segments},
        OBJECT_NAME: {
            "model prediction": BLIND if task.blind else display(task.prediction),
            "score": BLIND if task.blind else display(task.score),
            "model version": task.model_version or MISSING,
            "why routed": task.reason or MISSING,
        },
        "model_prediction": None if task.blind else task.prediction,
        "model_score": None if task.blind else task.score,
        "model_version": task.model_version,
        "reason": task.reason,
    }
    for name in text_features(schema):
        value = task.features.get(name)
        data[field_key(name)] = "" if value is None else str(value)
    return data


def describe(schema: ModelSchema) -> str:
    """Project description for people browsing Label Studio (HTML-escaped)."""
    kind = "classes: " + ", ".join(schema.classes) if schema.is_classifier else "a numeric value"
    return escape(f"Samples routed by loopwatch for model {schema.name} ({schema.task}; {kind}).")


INSTRUCTIONS = (
    "<p>Each task is a prediction that loopwatch routed for review: the model drifted, made a "
    "likely error, was unsure, or the sample is rare. The model's answer is pre-selected.</p>"
    "<p><b>Confirm</b> it if it is right, <b>correct</b> it if not, and <b>skip</b> only when the "
    "sample cannot be judged. Your answer becomes the ground truth for this prediction.</p>"
)
