"""Finding, ModelSpec, RunContext and config/segment plumbing."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest

from detectors import Finding, ModelSpec, RunContext, Status, Task
from detectors.base import parse_config, segment_slices


def _finding(**kw: object) -> Finding:
    base = dict(
        detector="data_drift",
        model="m",
        window_start=datetime(2026, 1, 1, tzinfo=UTC),
        window_end=datetime(2026, 1, 1, 1, tzinfo=UTC),
        metric="wasserstein",
        status="critical",
    )
    return Finding(**{**base, **kw})  # type: ignore[arg-type]


def test_finding_is_json_ready_and_round_trips() -> None:
    """numpy scalars become numbers, NaN becomes null, inf a string; from_dict(to_dict()) is identity."""
    f = _finding(
        value=np.float64(0.3),
        p_value=float("nan"),
        segment={"firmware": "3.2"},
        column="speed",
        details={"hist": np.array([1, 2]), "stat": float("inf")},
        n_current=np.int64(5),
    )
    d = f.to_dict()
    assert d["value"] == 0.3 and d["p_value"] is None and d["status"] == "critical"
    assert d["details"] == {"hist": [1, 2], "stat": "inf"} and d["window_start"] == "2026-01-01T00:00:00+00:00"
    json.dumps(d, allow_nan=False)
    assert Finding.from_dict(d) == f
    assert f.key() == ("data_drift", "m", "firmware=3.2", "speed", "wasserstein")
    assert f.is_bad and hash(f) == hash(Finding.from_dict(d))


def test_finding_is_frozen_and_status_validated() -> None:
    """Findings are immutable; an unknown status is rejected."""
    f = _finding()
    with pytest.raises(AttributeError):
        f.value = 1.0  # type: ignore[misc]
    with pytest.raises(ValueError):
        _finding(status="bad")


def test_model_spec_from_registry_json_and_validation() -> None:
    """The registry's model JSON builds a spec; binary defaults the positive class; bad specs fail."""
    spec = ModelSpec.from_dict(
        {
            "name": "m",
            "task": "binary",
            "classes": ["no", "yes"],
            "features": {"a": "numeric"},
            "segments": ["region"],
            "owner": "ignored",
        }
    )
    assert spec.task is Task.BINARY and spec.positive_class == "yes" and spec.features_of("numeric") == ["a"]
    with pytest.raises(ValueError):
        ModelSpec(task="binary", classes=("a", "b", "c"))
    with pytest.raises(ValueError):
        ModelSpec(task="multiclass", classes=("a",))
    with pytest.raises(ValueError):
        ModelSpec(task="regression", features={"a": "image"})


def test_run_context_rejects_reversed_window() -> None:
    """window_end before window_start is a programming error."""
    with pytest.raises(ValueError):
        RunContext("m", datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))


@dataclass(frozen=True)
class _Cfg:
    segments: tuple[str, ...] = ()
    margin: float = 0.1
    name: str | None = None


def test_parse_config_coerces_yaml_values_and_rejects_unknown_keys() -> None:
    """Lists become tuples and ints floats; unknown keys raise naming the known ones."""
    cfg = parse_config(_Cfg, {"segments": ["firmware"], "margin": 1})
    assert cfg == _Cfg(("firmware",), 1.0)
    assert parse_config(_Cfg, None) == _Cfg()
    with pytest.raises(ValueError, match="known"):
        parse_config(_Cfg, {"margn": 1})


def test_segment_slices_cover_every_value_including_null() -> None:
    """Whole table first, then one slice per value (sorted, null last); missing segment columns skipped."""
    t = pa.table({"fw": ["b", "a", None, "a"], "x": [1, 2, 3, 4]})
    slices = list(segment_slices(t, ["fw", "absent"]))
    assert [s for s, _ in slices] == [None, {"fw": "a"}, {"fw": "b"}, {"fw": None}]
    assert [p.num_rows for _, p in slices] == [4, 2, 1, 1]
    assert Status("no_data") is Status.NO_DATA
