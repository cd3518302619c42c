"""What detectors need to know about a model, without importing the monitor's registry.

The monitor builds a :class:`ModelSpec` from its registry entry (``ModelSpec.from_dict``
accepts the registration JSON as-is) and hands it to ``prepare_reference``. Detectors
depend on this small value object only, which keeps ``detectors`` free of ``monitor``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Task(StrEnum):
    """Prediction task; decides how ``prediction``/``label`` are read and which metrics apply."""

    BINARY = "binary"
    MULTICLASS = "multiclass"
    REGRESSION = "regression"


class FeatureKind(StrEnum):
    """Declared kind of a feature column; decides the drift method family."""

    NUMERIC = "numeric"
    CATEGORICAL = "categorical"
    BOOLEAN = "boolean"
    TEXT = "text"


@dataclass(frozen=True)
class ModelSpec:
    """A registered model as detectors see it.

    >>> spec = ModelSpec.from_dict({"name": "harsh-braking", "task": "binary",
    ...     "classes": ["none", "brake"], "positive_class": "brake",
    ...     "features": {"speed_kmh": "numeric", "road_type": "categorical"},
    ...     "segments": ["firmware"]})
    >>> spec.task, spec.features["speed_kmh"], spec.segments
    (<Task.BINARY: 'binary'>, <FeatureKind.NUMERIC: 'numeric'>, ('firmware',))
    """

    task: Task
    features: Mapping[str, FeatureKind] = field(default_factory=dict)
    classes: tuple[str, ...] = ()
    positive_class: str | None = None
    segments: tuple[str, ...] = ()
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "task", Task(self.task))
        object.__setattr__(
            self, "features", {str(k): FeatureKind(v) for k, v in dict(self.features).items()}
        )
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))
        object.__setattr__(self, "segments", tuple(str(s) for s in self.segments))
        if self.task is Task.BINARY:
            if self.classes and len(self.classes) != 2:
                raise ValueError(f"binary task needs exactly 2 classes, got {list(self.classes)}")
            if self.positive_class is None and self.classes:
                object.__setattr__(self, "positive_class", self.classes[-1])
            if self.classes and self.positive_class not in self.classes:
                raise ValueError(f"positive_class {self.positive_class!r} is not one of {list(self.classes)}")
        if self.task is Task.MULTICLASS and len(self.classes) < 2:
            raise ValueError("multiclass task needs its classes listed (in probability order)")
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"duplicate classes in {list(self.classes)}")

    def __hash__(self) -> int:
        return hash((self.task, tuple(sorted(self.features.items())), self.classes,
                     self.positive_class, self.segments, self.name))

    @property
    def is_classification(self) -> bool:
        return self.task is not Task.REGRESSION

    def features_of(self, *kinds: FeatureKind) -> list[str]:
        """Feature names of the given kinds, in declaration order."""
        return [name for name, kind in self.features.items() if kind in kinds]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSpec:
        """Build from the registry's JSON/YAML model definition (unknown keys are ignored)."""
        classes: Iterable[Any] = data.get("classes") or ()
        return cls(
            task=Task(data["task"]),
            features=dict(data.get("features") or {}),
            classes=tuple(classes),
            positive_class=data.get("positive_class"),
            segments=tuple(data.get("segments") or ()),
            name=str(data.get("name", "")),
        )
