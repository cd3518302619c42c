"""Data quality, volume and freshness rules."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pyarrow as pa

from detectors import DataQuality, Freshness, LastSeen, ModelSpec, Status, Volume, VolumeCounts
from tests.detectors.conftest import BINARY, START, context, make_window


def _by(findings: list) -> dict:
    return {(f.column, f.metric): f for f in findings if f.segment is None}


def test_clean_window_passes_every_quality_check() -> None:
    """A window from the reference distribution gets only ok findings."""
    detector = DataQuality()
    ref = detector.prepare_reference(make_window(BINARY, 5000, 1), BINARY)
    assert {f.status for f in detector.run(make_window(BINARY, 2000, 2), ref, None, context())} == {Status.OK}


def test_null_rate_rise_out_of_range_and_unseen_categories() -> None:
    """20% new nulls, 5% out-of-range values (incl. inf) and 5% unseen categories are all critical."""
    detector = DataQuality()
    ref = detector.prepare_reference(make_window(BINARY, 5000, 1), BINARY)
    window = make_window(BINARY, 2000, 2)
    speed = window.column("speed").to_numpy().copy()
    speed[:100] = 1e4
    speed[100:110] = np.inf
    mask = np.zeros(2000, bool)
    mask[500:900] = True
    road = np.array(window.column("road").to_pylist(), dtype=object)
    road[1000:1100] = "gravel"
    window = window.set_column(3, "speed", pa.array(speed, mask=mask)).set_column(4, "road", pa.array(road))
    found = _by(detector.run(window, ref, None, context()))
    assert found[("speed", "null_rate")].status is Status.CRITICAL
    assert found[("speed", "out_of_range")].status is Status.CRITICAL
    assert found[("speed", "out_of_range")].details["above"] == 110
    assert found[("road", "unseen_categories")].status is Status.CRITICAL
    assert found[("road", "unseen_categories")].details["unseen"] == [{"value": "gravel", "count": 100}]


def test_missing_column_and_wrong_type_are_schema_findings() -> None:
    """A feature absent from the window, or stored with an incompatible type, is a critical schema finding."""
    detector = DataQuality()
    ref = detector.prepare_reference(make_window(BINARY, 1000, 1), BINARY)
    window = make_window(BINARY, 500, 2).drop_columns(["road"])
    window = window.set_column(window.schema.get_field_index("night"), "night", pa.array(["yes"] * 500))
    found = _by(detector.run(window, ref, None, context()))
    assert found[("road", "schema")].status is Status.CRITICAL
    assert found[("night", "schema")].status is Status.CRITICAL


def test_volume_drop_and_spike_against_same_hour_history() -> None:
    """A 70% drop is critical, a 3× spike a warning, ordinary variation ok; noisy small counts stay ok."""
    detector = Volume()
    history = detector.prepare_reference(VolumeCounts(total=[1000, 1040, 980, 1010, 995, 1020, 970]), BINARY)
    assert detector.run(VolumeCounts(total=300), history, None, context())[0].status is Status.CRITICAL
    assert detector.run(VolumeCounts(total=3100), history, None, context())[0].status is Status.WARNING
    assert detector.run(VolumeCounts(total=940), history, None, context())[0].status is Status.OK
    tiny = detector.prepare_reference(VolumeCounts(total=[4, 2, 5, 3]), BINARY)
    assert detector.run(VolumeCounts(total=1), tiny, None, context())[0].status is Status.OK


def test_volume_per_segment_including_a_silent_segment() -> None:
    """Per-segment counts are judged on their own history; a segment that vanished is reported as a drop."""
    detector = Volume()
    history = detector.prepare_reference(
        VolumeCounts(
            total=[2000] * 5, by_segment={"firmware": {"3.1": [1000] * 5, "3.2": [1000, 990, 1010, 1005, 995]}}
        ),
        BINARY,
    )
    findings = detector.run(VolumeCounts(total=1000, by_segment={"firmware": {"3.1": 1000}}), history, None, context())
    by_seg = {str(f.segment): f.status for f in findings}
    assert by_seg["{'firmware': '3.2'}"] is Status.CRITICAL
    assert by_seg["{'firmware': '3.1'}"] is Status.OK


def test_freshness_uses_window_end_as_now() -> None:
    """Silent for 45 min with a 30 min limit → no_data; 10 min → ok; per-segment silence is reported too."""
    detector = Freshness()
    ref = detector.prepare_reference(None, BINARY)
    end = START + timedelta(hours=1)
    stale = detector.run(LastSeen(end - timedelta(minutes=45)), ref, None, context())
    assert stale[0].status is Status.NO_DATA and stale[0].value == 45.0
    fresh = detector.run(LastSeen(end - timedelta(minutes=10), {"firmware": {"3.2": None}}), ref, None, context())
    assert (
        fresh[0].status is Status.OK and fresh[1].status is Status.NO_DATA and fresh[1].segment == {"firmware": "3.2"}
    )
    custom = detector.run(LastSeen(end - timedelta(minutes=45)), ref, {"max_silence_minutes": 60}, context())
    assert custom[0].status is Status.OK


def test_quality_on_text_and_boolean_features() -> None:
    """Text features get a null-rate check only; booleans are checked for unseen values."""
    spec = ModelSpec(task="binary", classes=("a", "b"), features={"note": "text", "night": "boolean"})
    detector = DataQuality()
    ref = detector.prepare_reference(pa.table({"note": ["x"] * 100, "night": [True] * 100}), spec)
    found = _by(detector.run(pa.table({"note": ["y"] * 100, "night": [False] * 100}), ref, None, context()))
    assert set(found) == {("note", "null_rate"), ("night", "null_rate"), ("night", "unseen_categories")}
    assert found[("night", "unseen_categories")].status is Status.CRITICAL
