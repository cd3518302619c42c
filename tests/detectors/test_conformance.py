"""Shared checks every registered detector must pass (in the spirit of river's test_estimators).

Degenerate windows — empty, one row, all-null columns, constant columns — must produce
findings, never exceptions; results must be deterministic and JSON-serialisable; an empty
window must never be reported as drift or regression.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from detectors import DETECTORS, Finding, LastSeen, ModelSpec, Status, VolumeCounts, get_detector
from tests.detectors.conftest import BINARY, MULTICLASS, REGRESSION, START, context, make_window

SPECS = {"binary": BINARY, "multiclass": MULTICLASS, "regression": REGRESSION}
TABLE_DETECTORS = sorted(n for n, cls in DETECTORS.items() if cls.input_kind == "table")
JUDGED = (Status.OK, Status.WARNING, Status.CRITICAL)


def _all_null(table: pa.Table) -> pa.Table:
    keep = {"prediction_id", "timestamp", "model_version", "firmware"}
    return pa.table(
        {
            name: col if name in keep else pa.nulls(table.num_rows, col.type)
            for name, col in zip(table.column_names, table.columns, strict=True)
        }
    )


def _constant(table: pa.Table) -> pa.Table:
    out = {}
    for name, col in zip(table.column_names, table.columns, strict=True):
        if name in ("prediction_id", "timestamp") or table.num_rows == 0:
            out[name] = col
        else:
            first = col[0].as_py()
            out[name] = pa.array([first] * table.num_rows, col.type)
    return pa.table(out)


def _cases(spec: ModelSpec) -> dict[str, pa.Table]:
    base = make_window(spec, 400, seed=1)
    return {
        "empty": base.slice(0, 0),
        "one_row": base.slice(0, 1),
        "all_null": _all_null(base),
        "constant": _constant(base),
        "normal": make_window(spec, 400, seed=2),
    }


def _check(findings: Any) -> list[Finding]:
    assert isinstance(findings, list) and findings, "a detector must always return at least one finding"
    for f in findings:
        assert isinstance(f, Finding)
        json.dumps(f.to_dict(), allow_nan=False)
    return findings


@pytest.mark.parametrize("task", sorted(SPECS))
@pytest.mark.parametrize("name", TABLE_DETECTORS)
def test_table_detectors_survive_degenerate_windows(name: str, task: str) -> None:
    """Every table detector returns findings (never raises) on empty/one-row/all-null/constant windows."""
    spec = SPECS[task]
    detector = get_detector(name)
    config = detector.config({"segments": ["firmware"]} if "segments" in _fields(detector) else None)
    reference = detector.prepare_reference(make_window(spec, 600, seed=0), spec, config)
    for case, window in _cases(spec).items():
        findings = _check(detector.run(window, reference, config, context()))
        again = detector.run(window, reference, config, context())
        assert [f.to_dict() for f in findings] == [f.to_dict() for f in again], f"{case}: not deterministic"
        if case in ("empty", "one_row"):
            assert all(
                f.status not in (Status.WARNING, Status.CRITICAL)
                for f in findings
                if f.segment is None and name != "data_quality"
            ), case


@pytest.mark.parametrize("name", TABLE_DETECTORS)
def test_empty_window_is_insufficient_data(name: str) -> None:
    """An empty current window yields only insufficient_data findings — never drift or regression."""
    detector = get_detector(name)
    reference = detector.prepare_reference(make_window(BINARY, 600, seed=0), BINARY)
    findings = _check(detector.run(make_window(BINARY, 0, seed=1), reference, None, context()))
    assert {f.status for f in findings} == {Status.INSUFFICIENT_DATA}


@pytest.mark.parametrize("name", TABLE_DETECTORS)
@pytest.mark.parametrize("case", ["empty", "all_null", "constant"])
def test_degenerate_reference_is_not_a_crash(name: str, case: str) -> None:
    """A degenerate *reference* (empty, all-null, constant) also yields findings, not exceptions."""
    detector = get_detector(name)
    reference = detector.prepare_reference(_cases(BINARY)[case], BINARY)
    _check(detector.run(make_window(BINARY, 300, seed=3), reference, None, context()))


def test_volume_conforms() -> None:
    """Volume: no history → insufficient_data; zero count against a history → a finding, no crash."""
    detector = get_detector("volume")
    empty_ref = detector.prepare_reference(VolumeCounts(total=[]), BINARY)
    assert _check(detector.run(VolumeCounts(total=0), empty_ref, None, context()))[0].status is Status.INSUFFICIENT_DATA
    ref = detector.prepare_reference(VolumeCounts(total=[0, 0, 0]), BINARY)
    assert _check(detector.run(VolumeCounts(total=0), ref, None, context()))[0].status is Status.INSUFFICIENT_DATA
    ref = detector.prepare_reference(VolumeCounts(total=[5, 6, 7], by_segment={"firmware": {"3.1": [3, 3, 3]}}), BINARY)
    _check(detector.run(VolumeCounts(total=1, by_segment={"firmware": {}}), ref, None, context()))


def test_freshness_conforms() -> None:
    """Freshness: never seen → no_data; a future last-seen time (clock skew) is not negative silence."""
    detector = get_detector("freshness")
    ref = detector.prepare_reference(None, BINARY)
    assert _check(detector.run(None, ref, None, context()))[0].status is Status.NO_DATA
    skewed = detector.run(LastSeen(START + timedelta(hours=2)), ref, None, context())
    assert skewed[0].status is Status.OK and skewed[0].value == 0.0


def test_every_detector_is_registered_with_a_doc_example() -> None:
    """The catalogue lists every detector a monitor can name (and no other), each with a
    docstring example and a config type."""
    from typing import get_args

    from monitor.monitors import DetectorName

    assert set(DETECTORS) == set(get_args(DetectorName))
    for name, cls in DETECTORS.items():
        module = __import__(cls.__module__, fromlist=["_"])
        assert ">>>" in (module.__doc__ or ""), f"{name}: module docstring needs a runnable example"
        assert cls.name == name
        cls().config(None)


def test_unknown_parameters_are_rejected() -> None:
    """A typo in monitor params fails loudly instead of silently using the default."""
    for name in DETECTORS:
        with pytest.raises(ValueError, match="unknown parameter"):
            get_detector(name).config({"treshold": 1})


def _fields(detector: Any) -> set[str]:
    import dataclasses

    return {f.name for f in dataclasses.fields(detector.config_type)}


def test_nan_and_inf_features_do_not_crash() -> None:
    """Non-finite feature values are dropped for drift and counted by data quality, never a crash."""
    window = make_window(BINARY, 300, seed=5)
    speed = window.column("speed").to_numpy().copy()
    speed[:50] = np.nan
    speed[50:60] = np.inf
    window = window.set_column(window.schema.get_field_index("speed"), "speed", pa.array(speed))
    for name in TABLE_DETECTORS:
        detector = get_detector(name)
        _check(detector.run(window, detector.prepare_reference(make_window(BINARY, 600, 0), BINARY), None, context()))


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_every_config_accepts_the_monitor_segments_list(name: str) -> None:
    """The scheduler can pass the monitor's `segments:` list to any detector's config."""
    assert get_detector(name).config({"segments": ["firmware"]}) is not None
