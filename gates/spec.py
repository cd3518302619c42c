"""An algorithm performance specification: what a model version must show before it ships.

Written as YAML and versioned with the model::

    name: braking-release
    model: harsh-braking
    positive_class: brake
    confidence: 0.95
    criteria:
      - {metric: recall, min: 0.80}              # the lower confidence bound must clear 0.80
      - {metric: fpr, max: 0.10}                 # the upper confidence bound must stay under 0.10
      - {metric: recall, non_inferiority: 0.03}  # candidate ≥ champion − 0.03, paired on the same samples
    slices: [region]                             # every criterion is also judged per slice value
    min_samples: 50                              # per slice; fewer → insufficient evidence there

Metrics are the performance detector's: rates with a Wilson score interval (``recall``, ``fnr``,
``fpr``, ``specificity``, ``precision``, ``accuracy``; per class for multiclass models with
``class:``), ``f1`` (multinomial bootstrap), ``roc_auc`` (DeLong; binary models, from the
``score`` column), and ``mae`` / ``rmse`` (CLT intervals of the mean absolute / squared error)
for regression. ``non_inferiority`` compares the versions paired on the same rows, so it is
offered where that pairing is exact: not ``precision`` (its denominator is each version's own
positive calls) and not ``rmse`` (use ``mae``). ``slices`` name segment columns of the dataset, or ``longtail`` for the
curated set's long-tail test split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from monitor.errors import FieldError, InvalidInput

RATE_METRICS = ("recall", "fnr", "fpr", "specificity", "precision", "accuracy")
UNIT_METRICS = (*RATE_METRICS, "f1", "roc_auc")  # bounded by 0 and 1
REGRESSION_METRICS = ("mae", "rmse")
PAIRED_METRICS = ("recall", "fnr", "fpr", "specificity", "accuracy", "f1", "roc_auc", "mae")
LOWER_IS_BETTER = frozenset({"fnr", "fpr", "mae", "rmse"})
LONGTAIL_SLICE = "longtail"
SPLITS = ("train", "validation", "holdout", "longtail_test")

Metric = Literal["recall", "fnr", "fpr", "specificity", "precision", "accuracy", "f1", "roc_auc", "mae", "rmse"]


class Criterion(BaseModel):
    """One requirement: a bound on the candidate's metric, or non-inferiority to the champion."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    metric: Metric
    min: float | None = None
    max: float | None = None
    non_inferiority: float | None = Field(default=None, ge=0)
    class_: str | None = Field(default=None, alias="class")  # one class of a multiclass model

    @model_validator(mode="after")
    def _one_kind(self) -> Criterion:
        given = [k for k in ("min", "max", "non_inferiority") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of min, max or non_inferiority")
        if self.non_inferiority is not None and self.metric not in PAIRED_METRICS:
            why = (
                "depends on each version's own calls"
                if self.metric == "precision"
                else "is judged on squared errors, whose margin depends on the champion's own RMSE (use mae)"
            )
            raise ValueError(
                f"non_inferiority needs a comparison paired on the same rows; {self.metric} {why} "
                f"(use one of {', '.join(PAIRED_METRICS)})"
            )
        bound = self.min if self.min is not None else self.max
        if bound is not None and self.metric in UNIT_METRICS and not 0 < bound < 1:
            raise ValueError(f"a bound on {self.metric} must be strictly between 0 and 1")
        if self.non_inferiority is not None and self.metric in UNIT_METRICS and self.non_inferiority >= 1:
            raise ValueError("a non-inferiority margin on a rate must be below 1")
        return self

    @property
    def kind(self) -> Literal["min", "max", "non_inferiority"]:
        if self.min is not None:
            return "min"
        if self.max is not None:
            return "max"
        return "non_inferiority"

    @property
    def threshold(self) -> float:
        value = self.min if self.min is not None else self.max if self.max is not None else self.non_inferiority
        assert value is not None  # one of them is set (validated)
        return value

    @property
    def label(self) -> str:
        """How reports name it: ``recall ≥ 0.8``, ``fpr:bike ≤ 0.1``, ``recall non-inferior (−0.03)``."""
        name = f"{self.metric}:{self.class_}" if self.class_ else self.metric
        if self.kind == "min":
            return f"{name} ≥ {self.threshold:g}"
        if self.kind == "max":
            return f"{name} ≤ {self.threshold:g}"
        return f"{name} non-inferior (margin {self.threshold:g})"


class GateSpec(BaseModel):
    """The whole specification (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    model: str = Field(min_length=1)
    positive_class: str | None = None
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    power: float = Field(default=0.8, gt=0.5, lt=1)  # for the sample sizes asked of labeling
    criteria: list[Criterion] = Field(min_length=1)
    slices: list[str] = Field(default_factory=list)
    min_samples: int = Field(default=50, ge=1)
    splits: list[Literal["train", "validation", "holdout", "longtail_test"]] | None = None  # None: every row

    @field_validator("slices")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("slices are listed more than once")
        return value

    @property
    def alpha(self) -> float:
        """The one-sided level of every pass and fail decision: (1 − confidence) / 2."""
        return (1 - self.confidence) / 2

    @property
    def needs_champion(self) -> bool:
        return any(c.kind == "non_inferiority" for c in self.criteria)


def parse_spec(text: str, source: str = "spec") -> GateSpec:
    """A spec from YAML text; every mistake at once as one :class:`InvalidInput`."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{source} is not valid YAML", [FieldError(field=source, reason=str(exc))]) from None
    if not isinstance(raw, dict):
        raise InvalidInput(f"{source} is not valid", [FieldError(field=source, reason="expected a mapping at the top")])
    try:
        return GateSpec.model_validate(raw)
    except ValidationError as exc:
        errors = [
            FieldError(field=".".join(str(p) for p in err["loc"]) or source, reason=err["msg"]) for err in exc.errors()
        ]
        raise InvalidInput(f"{source} is not a valid gate specification", errors) from None


def load_spec(path: Path) -> GateSpec:
    return parse_spec(path.read_text(), str(path))
