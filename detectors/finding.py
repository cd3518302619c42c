"""The one thing every detector returns: an immutable, JSON-ready :class:`Finding`.

A finding is a verdict about one metric of one model, for one window, optionally for one
segment value and one column. The monitor persists it, the alert pipeline keys on
:meth:`Finding.key`, and dashboards read :attr:`Finding.details`. Keeping it a frozen
dataclass with plain values (no numpy scalars, no NaN) is what makes it safe to hash, to
store and to compare across re-runs of the same window.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """Verdict of a finding. ``StrEnum`` so it compares equal to and serialises as its value."""

    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"
    INSUFFICIENT_DATA = "insufficient_data"
    NO_DATA = "no_data"


#: Statuses that mean "something is wrong"; useful for alerting code and tests.
BAD_STATUSES = frozenset({Status.WARNING, Status.CRITICAL, Status.NO_DATA})


def verdict(relevant: bool, established: bool, suggestive: bool) -> Status:
    """The calibrated rule every detector judges by (docs/detectors.md): ``critical`` when the
    change is relevant (big enough to matter) *and* established (its p-value clears the level
    after the multiplicity adjustment); ``warning`` when relevant and only suggestive (clear
    before the adjustment); ``ok`` otherwise.

    >>> verdict(True, True, True), verdict(True, False, True), verdict(False, True, True)
    (<Status.CRITICAL: 'critical'>, <Status.WARNING: 'warning'>, <Status.OK: 'ok'>)
    """
    if relevant and established:
        return Status.CRITICAL
    return Status.WARNING if relevant and suggestive else Status.OK


def _clean_number(value: Any) -> float | int | None:
    """Turn numpy scalars into Python numbers and NaN into ``None`` (JSON has no NaN)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    as_float = float(value)
    if math.isnan(as_float):
        return None
    return as_float


def jsonable(value: Any) -> Any:
    """Recursively convert ``value`` into JSON-serialisable Python objects.

    numpy scalars/arrays become numbers/lists, NaN becomes ``None``, ±inf becomes the
    strings ``"inf"``/``"-inf"`` (strict JSON has neither), datetimes become ISO-8601.
    """
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    tolist = getattr(value, "tolist", None)  # numpy scalar or array
    if callable(tolist):
        return jsonable(tolist())
    return str(value)


@dataclass(frozen=True)
class Finding:
    """One detector verdict.

    ``value`` is compared against ``threshold`` by the detector's rule (the rule is named
    by ``metric`` and explained in the detector's docstring). ``p_value`` is the raw
    p-value of a statistical test, ``p_value_adjusted`` the Benjamini–Hochberg adjusted
    one when several tests ran together; ``effect_size`` is a distance or difference that
    says *how much* changed, independent of sample size.
    """

    detector: str
    model: str
    window_start: datetime
    window_end: datetime
    metric: str
    status: Status
    value: float | None = None
    threshold: float | None = None
    reference: str = ""
    model_version: str | None = None
    segment: Mapping[str, Any] | None = None
    column: str | None = None
    p_value: float | None = None
    p_value_adjusted: float | None = None
    effect_size: float | None = None
    n_current: int = 0
    n_reference: int = 0
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Normalise loose inputs once, so equality and hashing of findings are stable.
        object.__setattr__(self, "status", Status(self.status))
        for name in ("value", "threshold", "p_value", "p_value_adjusted", "effect_size"):
            raw = getattr(self, name)
            object.__setattr__(self, name, None if raw is None else _clean_number(raw))
        object.__setattr__(self, "n_current", int(self.n_current))
        object.__setattr__(self, "n_reference", int(self.n_reference))
        if self.segment is not None:
            object.__setattr__(self, "segment", dict(self.segment))
        object.__setattr__(self, "details", jsonable(dict(self.details)))

    def __hash__(self) -> int:
        return hash((self.key(), self.window_start, self.window_end, self.status, self.value))

    def key(self) -> tuple[str, str, str, str, str]:
        """Identity of the *series* this finding belongs to (for alert state and dedup).

        Two findings for different windows of the same detector/model/segment/column/metric
        share a key, which is how the alert state machine counts consecutive bad windows.
        """
        segment = ",".join(f"{k}={v}" for k, v in sorted((self.segment or {}).items()))
        return (self.detector, self.model, segment, self.column or "", self.metric)

    @property
    def is_bad(self) -> bool:
        """True for ``warning``, ``critical`` and ``no_data``."""
        return self.status in BAD_STATUSES

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (datetimes as ISO-8601, status as its string value)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            out[f.name] = jsonable(getattr(self, f.name))
        out["status"] = str(self.status)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        """Inverse of :meth:`to_dict` (used when findings are read back from the store)."""
        kwargs = dict(data)
        for name in ("window_start", "window_end"):
            if isinstance(kwargs.get(name), str):
                kwargs[name] = datetime.fromisoformat(kwargs[name])
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in kwargs.items() if k in known})
