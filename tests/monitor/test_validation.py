"""Every ingestion path refuses bad rows saying which row, which field and why."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from monitor.errors import InvalidInput
from monitor.schema import ModelSchema
from monitor.validation import (
    label_records_to_table,
    normalize_labels,
    normalize_predictions,
    records_to_table,
)
from tests.conftest import BRAKING, braking_record

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
SPEC = ModelSchema.model_validate(BRAKING)
MULTI = ModelSchema(name="events", task="multiclass", classes=["a", "b", "c"], features={"x": "numeric"})


def _normalize_records(records: list, spec: ModelSchema = SPEC) -> pa.Table:
    return normalize_predictions(records_to_table(records, spec), spec, now=NOW, max_future=timedelta(days=1))


def _errors(records: list, spec: ModelSchema = SPEC) -> list[dict]:
    with pytest.raises(InvalidInput) as err:
        _normalize_records(records, spec)
    return [e.to_dict() for e in err.value.errors]


def test_valid_records_become_the_stored_layout() -> None:
    """Nested features/segments flatten to columns with the schema's types; ints become segment text."""
    table = _normalize_records([braking_record(1, NOW, segments={"region": "eu", "firmware": 3})])
    assert table.schema == SPEC.arrow_schema().remove_metadata()
    row = table.to_pylist()[0]
    assert row["firmware"] == "3" and row["speed_kmh"] == 41.0 and row["night"] is False


@pytest.mark.parametrize(
    ("record", "field", "reason"),
    [
        ({"features": {"speed_kmh": "fast"}}, "features.speed_kmh", "expected a number, got 'fast'"),
        ({"features": {"speed_kmh": True}}, "features.speed_kmh", "expected a number"),
        ({"features": {"night": "yes"}}, "features.night", "expected true or false"),
        ({"features": {"tyre_temp": 3.0}}, "features.tyre_temp", "unknown feature"),
        ({"prediction": "maybe"}, "prediction", "not one of the classes"),
        ({"score": 1.5}, "score", "[0, 1]"),
        ({"latency_ms": -3}, "latency_ms", "≥ 0"),
        ({"timestamp": "yesterday"}, "timestamp", "not an ISO-8601 timestamp"),
        ({"timestamp": "2030-01-01T00:00:00Z"}, "timestamp", "in the future"),
        ({"timestamp": "1970-01-02T00:00:00Z"}, "timestamp", "before 2000"),
        ({"prediction_id": ""}, "prediction_id", "must not be empty"),
        ({"prediction_id": None}, "prediction_id", "is required"),
        ({"segments": {"planet": "mars"}}, "segments.planet", "unknown segment"),
        ({"colour": "red"}, "colour", "unknown field"),
    ],
)
def test_bad_field_is_reported_with_row_and_reason(record: dict, field: str, reason: str) -> None:
    """A single bad field in row 1 is refused, naming row 1, the field and the reason."""
    good = braking_record(0, NOW - timedelta(hours=1))
    bad = braking_record(1, NOW - timedelta(hours=1))
    bad.update(record)
    errors = _errors([good, bad])
    assert errors[0]["row"] == 1 and errors[0]["field"] == field
    assert reason in errors[0]["reason"]


def test_missing_required_field_is_refused() -> None:
    """A record without a prediction is refused naming the field."""
    record = braking_record(0, NOW)
    del record["prediction"]
    errors = _errors([record])
    assert errors[0]["field"] == "prediction" and "required" in errors[0]["reason"]


def test_not_a_list_and_not_objects_are_refused() -> None:
    """The body must be a list of objects."""
    with pytest.raises(InvalidInput, match="JSON list"):
        records_to_table({"prediction_id": "x"}, SPEC)
    with pytest.raises(InvalidInput) as err:
        records_to_table([braking_record(0, NOW), 42], SPEC)
    assert err.value.errors[0].row == 1


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_nan_and_inf_in_arrow_columns_are_refused(value: float) -> None:
    """Bulk formats can carry NaN/Inf; they are refused (null is how a value is missing)."""
    table = pa.table(
        {
            "prediction_id": ["a", "b"],
            "timestamp": pa.array([NOW, NOW], pa.timestamp("us", tz="UTC")),
            "speed_kmh": [1.0, value],
            "prediction": ["none", "brake"],
        }
    )
    with pytest.raises(InvalidInput) as err:
        normalize_predictions(table, SPEC, now=NOW, max_future=timedelta(days=1))
    assert err.value.errors[0].to_dict() | {"reason": ""} == {
        "row": 1,
        "field": "speed_kmh",
        "reason": "",
        "prediction_id": "b",
    }


def test_arrow_column_of_wrong_type_is_refused() -> None:
    """A string column where a number belongs is refused with the offending value."""
    table = pa.table(
        {"prediction_id": ["a"], "timestamp": ["2026-11-23T10:00:00Z"], "speed_kmh": ["fast"], "prediction": ["none"]}
    )
    with pytest.raises(InvalidInput, match="expected a number"):
        normalize_predictions(table, SPEC, now=NOW, max_future=timedelta(days=1))


def test_naive_timestamps_are_utc_and_offsets_are_converted() -> None:
    """A timestamp without zone is UTC; an offset is converted to UTC."""
    records = [
        braking_record(0, timestamp="2026-11-23T10:00:00"),
        braking_record(1, timestamp="2026-11-23T12:00:00+02:00"),
    ]
    ts = _normalize_records(records).column("timestamp").to_pylist()
    assert ts[0] == ts[1] == datetime(2026, 11, 23, 10, tzinfo=UTC)


def test_multiclass_probabilities_by_name_or_order_and_checked() -> None:
    """Probabilities may be a list in class order or a class→p object; they must sum to 1."""
    base = {"timestamp": NOW.isoformat(), "features": {"x": 1.0}, "prediction": "a"}
    ok = _normalize_records(
        [
            {**base, "prediction_id": "1", "probabilities": [0.7, 0.2, 0.1]},
            {**base, "prediction_id": "2", "probabilities": {"a": 0.6, "b": 0.3, "c": 0.1}},
        ],
        MULTI,
    )
    assert ok.column("score").to_pylist() == [0.7, 0.6]
    errors = _errors([{**base, "prediction_id": "1", "probabilities": [0.7, 0.7, 0.1]}], MULTI)
    assert "sum to 1" in errors[0]["reason"]
    errors = _errors([{**base, "prediction_id": "1", "probabilities": [0.5, 0.5]}], MULTI)
    assert "3 values" in errors[0]["reason"]


def test_labels_must_be_a_known_class() -> None:
    """A label outside the model's classes is refused naming the row."""
    table = label_records_to_table([{"prediction_id": "a", "label": "brake"}, {"prediction_id": "b", "label": "skid"}])
    with pytest.raises(InvalidInput) as err:
        normalize_labels(table, SPEC, now=NOW, max_future=timedelta(days=1))
    assert err.value.errors[0].row == 1 and err.value.errors[0].field == "label"


def test_error_list_is_capped() -> None:
    """Thousands of bad rows produce a bounded error list but an exact total in the message."""
    records = [braking_record(i, NOW, prediction="maybe") for i in range(500)]
    with pytest.raises(InvalidInput) as err:
        _normalize_records(records)
    assert len(err.value.errors) == 50 and "500 errors" in err.value.message


def test_empty_batch_is_an_empty_table() -> None:
    """An empty JSON list converts to an empty table (found by the fuzz test: it was a 500)."""
    assert records_to_table([], SPEC).num_rows == 0


def _flat(**columns: pa.Array) -> pa.Table:
    n = len(next(iter(columns.values())))
    base = {
        "prediction_id": pa.array([f"p-{i}" for i in range(n)]),
        "timestamp": pa.array([NOW - timedelta(minutes=1)] * n, pa.timestamp("us", tz="UTC")),
        "prediction": pa.array(["none"] * n),
    }
    return pa.table(base | columns)


def test_text_limits_count_characters_not_bytes() -> None:
    """The length limit counts characters: 256 two-byte characters (512 bytes) fit an id's 256;
    257 are refused, naming the row. (Bytes are only a shortcut: no more bytes, no more characters.)"""
    ok = _flat(prediction_id=pa.array(["é" * 256, "x"]))
    assert normalize_predictions(ok, SPEC, now=NOW, max_future=timedelta(days=1)).num_rows == 2
    bad = _flat(prediction_id=pa.array(["x", "é" * 257]))
    with pytest.raises(InvalidInput) as err:
        normalize_predictions(bad, SPEC, now=NOW, max_future=timedelta(days=1))
    assert [(e.field, e.row, e.reason) for e in err.value.errors] == [
        ("prediction_id", 1, "is longer than 256 characters")
    ]


@pytest.mark.parametrize("with_null", [False, True])
def test_non_finite_numbers_are_refused_with_or_without_nulls(with_null: bool) -> None:
    """NaN and ±inf are refused by row whether or not the column also holds nulls (the all-finite
    shortcut reads only columns without nulls); nulls alone are fine."""
    values = [1.0, math.nan, None, -math.inf] if with_null else [1.0, math.nan, 2.0, -math.inf]
    with pytest.raises(InvalidInput) as err:
        normalize_predictions(
            _flat(speed_kmh=pa.array(values, pa.float64())), SPEC, now=NOW, max_future=timedelta(days=1)
        )
    assert [(e.field, e.row) for e in err.value.errors] == [("speed_kmh", 1), ("speed_kmh", 3)]
    fine = _flat(speed_kmh=pa.array([1.0, None, 2.0], pa.float64()))
    assert normalize_predictions(fine, SPEC, now=NOW, max_future=timedelta(days=1)).num_rows == 3
