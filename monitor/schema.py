"""A registered model's schema: what a prediction row of that model looks like.

The schema decides the store's column types, what ingestion accepts and how detectors treat
each column. It evolves by versions: adding features or segments is a new version; changing
the kind of an existing feature (or the task) is refused, because stored history would no
longer mean what the new kind says.
"""

from __future__ import annotations

from typing import Any, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from monitor.names import column_name_problem, model_name_problem

Task = Literal["binary", "multiclass", "regression"]
FeatureKind = Literal["numeric", "categorical", "boolean", "text"]

FEATURE_ARROW_TYPES: dict[str, pa.DataType] = {
    "numeric": pa.float64(),
    "categorical": pa.string(),
    "boolean": pa.bool_(),
    "text": pa.string(),
}
FEATURE_SQL_TYPES: dict[str, str] = {
    "numeric": "DOUBLE",
    "categorical": "VARCHAR",
    "boolean": "BOOLEAN",
    "text": "VARCHAR",
}


class EmbeddingSpec(BaseModel):
    """An optional embedding vector logged with each prediction (e.g. an image encoder's output)."""

    model_config = ConfigDict(extra="forbid")
    dim: int = Field(ge=1, le=4096)


class ModelSchema(BaseModel):
    """The registration document (``POST /v1/models`` body or ``models register`` YAML)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    task: Task
    classes: list[str] = Field(default_factory=list)
    positive_class: str | None = None
    features: dict[str, FeatureKind] = Field(default_factory=dict)
    segments: list[str] = Field(default_factory=list)
    embedding: EmbeddingSpec | None = None
    description: str | None = Field(default=None, max_length=2000)
    owner: str | None = Field(default=None, max_length=200)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        problem = model_name_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("classes", mode="before")
    @classmethod
    def _classes_as_strings(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [str(v) if isinstance(v, (int, bool)) else v for v in value]
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ModelSchema:
        for feature in self.features:
            problem = column_name_problem(feature)
            if problem:
                raise ValueError(f"feature {feature!r}: {problem}")
        for segment in self.segments:
            problem = column_name_problem(segment)
            if problem:
                raise ValueError(f"segment {segment!r}: {problem}")
        seen: dict[str, str] = {}
        for name in [*self.features, *self.segments]:
            key = name.lower()
            if key in seen:
                raise ValueError(f"column {name!r} clashes with {seen[key]!r} (names are case-insensitive)")
            seen[key] = name
        if len(set(self.classes)) != len(self.classes):
            raise ValueError("classes must be unique")
        if any(not c or len(c) > 200 for c in self.classes):
            raise ValueError("each class must be a non-empty string of at most 200 characters")
        if self.task == "binary":
            if len(self.classes) != 2:
                raise ValueError("a binary model needs exactly two classes, e.g. ['negative', 'positive']")
            if self.positive_class is None:
                self.positive_class = self.classes[1]
            if self.positive_class not in self.classes:
                raise ValueError(f"positive_class {self.positive_class!r} is not one of the classes")
        elif self.task == "multiclass":
            if len(self.classes) < 2:
                raise ValueError("a multiclass model needs at least two classes")
            if self.positive_class is not None and self.positive_class not in self.classes:
                raise ValueError(f"positive_class {self.positive_class!r} is not one of the classes")
        else:
            if self.classes or self.positive_class:
                raise ValueError("a regression model has no classes or positive_class")
        return self

    # --- storage layout -------------------------------------------------------------------

    @property
    def is_classifier(self) -> bool:
        return self.task != "regression"

    def prediction_arrow_type(self) -> pa.DataType:
        return pa.string() if self.is_classifier else pa.float64()

    def label_arrow_type(self) -> pa.DataType:
        return self.prediction_arrow_type()

    def arrow_schema(self) -> pa.Schema:
        """The exact column layout of stored prediction rows (hot table and sealed Parquet)."""
        fields = [
            pa.field("prediction_id", pa.string(), nullable=False),
            pa.field("timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
            pa.field("model_version", pa.string(), nullable=False),
        ]
        fields += [pa.field(name, FEATURE_ARROW_TYPES[kind]) for name, kind in self.features.items()]
        fields.append(pa.field("prediction", self.prediction_arrow_type()))
        fields.append(pa.field("score", pa.float64()))
        if self.task == "multiclass":
            fields.append(pa.field("probabilities", pa.list_(pa.float64())))
        fields.append(pa.field("latency_ms", pa.float64()))
        fields += [pa.field(name, pa.string()) for name in self.segments]
        if self.embedding is not None:
            fields.append(pa.field("embedding", pa.list_(pa.float32())))
        fields.append(pa.field("ingested_at", pa.timestamp("us", tz="UTC"), nullable=False))
        return pa.schema(fields)

    def string_columns(self) -> set[str]:
        """Flat columns stored as text: what untyped files (CSV/JSONL) must read as strings."""
        text = {"prediction_id", "model_version", "label", *self.segments}
        text |= {f for f, kind in self.features.items() if kind in ("categorical", "text")}
        if self.is_classifier:
            text.add("prediction")
        return text

    def sql_columns(self) -> list[tuple[str, str]]:
        """(column, DuckDB type) pairs, in storage order."""
        out = [("prediction_id", "VARCHAR NOT NULL"), ("timestamp", "TIMESTAMPTZ NOT NULL")]
        out.append(("model_version", "VARCHAR NOT NULL"))
        out += [(name, FEATURE_SQL_TYPES[kind]) for name, kind in self.features.items()]
        out.append(("prediction", "VARCHAR" if self.is_classifier else "DOUBLE"))
        out.append(("score", "DOUBLE"))
        if self.task == "multiclass":
            out.append(("probabilities", "DOUBLE[]"))
        out.append(("latency_ms", "DOUBLE"))
        out += [(name, "VARCHAR") for name in self.segments]
        if self.embedding is not None:
            out.append(("embedding", "FLOAT[]"))
        out.append(("ingested_at", "TIMESTAMPTZ NOT NULL"))
        return out


def schema_changes(old: ModelSchema, new: ModelSchema) -> tuple[list[str], list[str]]:
    """Compare two schemas of one model: (compatible changes, refused changes).

    Compatible: new features, new segments, new trailing classes (multiclass), an embedding
    added, description/owner. Refused: task change, a feature's kind change, removed
    features/segments/classes, reordered classes, changed embedding size, positive class.
    """
    ok: list[str] = []
    refused: list[str] = []
    if old.task != new.task:
        refused.append(f"task cannot change from {old.task!r} to {new.task!r}; register a new model instead")
    for name, kind in old.features.items():
        if name not in new.features:
            refused.append(
                f"feature {name!r} cannot be removed (stored history keeps it); keep it in the schema "
                "and stop sending it: features are nullable"
            )
        elif new.features[name] != kind:
            refused.append(
                f"feature {name!r} cannot change kind from {kind!r} to {new.features[name]!r}; "
                "register it under a new name"
            )
    for name in new.features:
        if name not in old.features:
            ok.append(f"feature {name!r} added ({new.features[name]})")
    for seg in old.segments:
        if seg not in new.segments:
            refused.append(f"segment {seg!r} cannot be removed")
    for seg in new.segments:
        if seg not in old.segments:
            ok.append(f"segment {seg!r} added")
    if new.classes[: len(old.classes)] != old.classes:
        refused.append("existing classes cannot be removed or reordered; append new classes at the end")
    elif len(new.classes) > len(old.classes):
        if old.task == "binary":
            refused.append("a binary model has exactly two classes")
        else:
            ok.append(f"classes added: {new.classes[len(old.classes) :]}")
    if old.positive_class != new.positive_class and old.task == new.task:
        refused.append(f"positive_class cannot change from {old.positive_class!r} to {new.positive_class!r}")
    if old.embedding != new.embedding:
        if old.embedding is None:
            ok.append("embedding added")
        else:
            refused.append("the embedding dimension cannot change")
    if (old.description, old.owner) != (new.description, new.owner):
        ok.append("description/owner changed")
    return ok, refused
