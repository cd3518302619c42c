"""Arrow's JSON reader (monitor/json_columns.py) stores exactly what the generic JSON path stores
and refuses exactly what it refuses, with the same error locations (row, field, why, id)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from monitor.errors import LoopwatchError
from monitor.formats import parse_json
from monitor.json_columns import prediction_table, read_prediction_columns
from monitor.schema import EmbeddingSpec, ModelSchema
from monitor.validation import normalize_predictions, records_to_table
from tests.conftest import BRAKING, braking_record

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
TS = (NOW - timedelta(minutes=5)).isoformat()
BINARY = ModelSchema.model_validate(BRAKING)
MULTI = ModelSchema(
    name="events", task="multiclass", classes=["a", "b", "c"], features={"x": "numeric"}, segments=["site"]
)
REGRESSION = ModelSchema(
    name="eta",
    task="regression",
    features={"km": "numeric", "note": "text", "rush": "boolean"},
    embedding=EmbeddingSpec(dim=2),
)


def _outcome(body: bytes, spec: ModelSchema, *, generic: bool) -> tuple[Any, ...]:
    """What storing ``body`` comes to: the stored rows (reprs keep -0.0 apart from 0.0) and
    their types, or the error's class, status, message and every error's row/field/why/id."""
    try:
        flat = records_to_table(parse_json(body), spec) if generic else prediction_table(body, spec)
        rows = normalize_predictions(flat, spec, now=NOW, max_future=timedelta(days=1))
    except LoopwatchError as exc:
        return ("refused", type(exc).__name__, exc.status, exc.message, [e.to_dict() for e in exc.errors])
    return ("stored", str(rows.schema), repr(rows.to_pylist()))


def _same(body: bytes, spec: ModelSchema = BINARY) -> tuple[Any, ...]:
    new = _outcome(body, spec, generic=False)
    assert new == _outcome(body, spec, generic=True)
    return new


def _body(records: list[Any]) -> bytes:
    return orjson.dumps(records)


def _binary(i: int, **overrides: Any) -> dict[str, Any]:
    return braking_record(i, NOW - timedelta(minutes=i + 1), **overrides)


def _multi(i: int, **overrides: Any) -> dict[str, Any]:
    record = {
        "prediction_id": f"m-{i}",
        "timestamp": TS,
        "features": {"x": i * 0.5},
        "prediction": "abc"[i % 3],
        "probabilities": [0.2, 0.3, 0.5],
        "segments": {"site": "s1"},
    }
    return record | overrides


def _regression(i: int, **overrides: Any) -> dict[str, Any]:
    record = {
        "prediction_id": f"r-{i}",
        "timestamp": TS,
        "model_version": "2",
        "features": {"km": 3.5 + i, "note": "ok ✓", "rush": i % 2 == 0},
        "prediction": 12.25 * i,
        "embedding": [0.5, -1.25],
    }
    return record | overrides


@pytest.mark.parametrize(
    ("spec", "records"),
    [
        (BINARY, [_binary(i) for i in range(300)]),
        (MULTI, [_multi(i) for i in range(50)]),
        (REGRESSION, [_regression(i) for i in range(50)]),
        (BINARY, [_binary(1, features={"speed_kmh": 3}, score=1, latency_ms=0)]),  # integers
        (BINARY, [_binary(1, features=None, segments=None), _binary(2, model_version=None, score=None)]),
        (BINARY, [{k: v for k, v in _binary(1).items() if k not in ("score", "latency_ms", "model_version")}]),
        (BINARY, [_binary(1, features={"speed_kmh": 1.5}), _binary(2, features={"night": True})]),  # some missing
        (MULTI, [_multi(1, probabilities=None), _multi(2, probabilities=[0, 1, 0])]),
        (REGRESSION, [_regression(1, embedding=None), _regression(2, features={"km": -1e-300, "note": "😀"})]),
    ],
)
def test_the_fast_reader_reads_documented_bodies_and_stores_the_same_rows(
    spec: ModelSchema, records: list[Any]
) -> None:
    """A body in the documented shape is read by Arrow's reader (not the fallback), and the
    stored rows — values, types, nulls, -0.0 vs 0.0 — equal the generic path's."""
    body = _body(records)
    assert read_prediction_columns(body, spec) is not None
    assert _same(body, spec)[0] == "stored"


def test_escapes_read_the_same() -> None:
    """JSON escapes in values and keys (a surrogate pair, \\u0000, \\/) decode the same way."""
    body = (
        _body([_binary(1, prediction_id="ESC")])
        .replace(b'"ESC"', b'"\\u00e9\xc3\xa9 \\\\ \\" \\/ \\ud83d\\ude00 \\u0000"')
        .replace(b'"score"', b'"sc\\u006fre"')
    )
    assert read_prediction_columns(body, BINARY) is not None
    stored = _same(body)
    assert stored[0] == "stored" and "'prediction_id': 'éé \\\\ \"" in stored[2]


@pytest.mark.parametrize(
    "records",
    [
        [_binary(1, timestamp="yesterday")],
        [_binary(1, timestamp=(NOW + timedelta(days=3)).isoformat())],
        [_binary(1), _binary(2, prediction="maybe")],
        [_binary(1, score=1.5), _binary(2, latency_ms=-1.0)],
        [_binary(1, prediction_id=""), _binary(2, prediction_id=None), _binary(3, timestamp=None)],
        [_binary(1, prediction=None)],
        [{}],
        [_binary(1, prediction_id="x" * 300)],
    ],
)
def test_rows_the_fast_reader_reads_but_validation_refuses_get_the_same_errors(records: list[Any]) -> None:
    """Errors found after reading (bad timestamps, unknown classes, ranges, missing ids) name
    the same rows, fields, reasons and prediction ids whichever reader built the columns."""
    body = _body(records)
    assert read_prediction_columns(body, BINARY) is not None
    assert _same(body)[0] == "refused"


FALLBACK_BODIES: list[tuple[str, bytes]] = [
    ("NaN literal", _body([_binary(1)]).replace(b'"score":0.01', b'"score":NaN')),
    ("Infinity literal", _body([_binary(1)]).replace(b'"score":0.01', b'"score":-Infinity')),
    ("huge number", _body([_binary(1)]).replace(b'"score":0.01', b'"score":1e400')),
    ("integer past 2**63", _body([_binary(1)]).replace(b'"score":0.01', b'"score":9223372036854775808')),
    ("integer past 2**53", _body([_binary(1)]).replace(b'"score":0.01', b'"score":9007199254740993')),
    ("integer -0", _body([_binary(1)]).replace(b'"score":0.01', b'"score":-0')),
    ("float -0.0", _body([_binary(1)]).replace(b'"score":0.01', b'"score":-0.0')),
    ("not UTF-8", _body([_binary(1)]).replace(b"highway", b"urb\xffn")),
    ("lone surrogate", _body([_binary(1)]).replace(b"highway", b"\\ud800")),
    ("control character", _body([_binary(1)]).replace(b"highway", b"ur\x01ban")),
    ("trailing comma", _body([_binary(1)])[:-1] + b",]"),
    ("content after the list", _body([_binary(1)]) + b" x"),
    ("a second key through the wrapper", b'[], "r": ' + _body([_binary(1)])),
    ("a second row through the wrapper", b'[]}\n{"r": ' + _body([_binary(1)])),
    ("a second row without a newline", b'[]} {"r": ' + _body([_binary(1)])),
    ("byte order mark", b"\xef\xbb\xbf" + _body([_binary(1)])),
    ("empty list", b"[]"),
    ("null body", b"null"),
    ("an object, not a list", _body(_binary(1))),  # type: ignore[arg-type]
    ("a null record", _body([_binary(1), None])),
    ("a number record", _body([_binary(1), 7])),
    ("unknown key", _body([_binary(1, extra=1)])),
    ("unknown feature", _body([_binary(1, features={"speed_kmh": 1.0, "tyre": 2.0})])),
    ("unknown segment", _body([_binary(1, segments={"planet": "mars"})])),
    ("repeated key", _body([_binary(1)]).replace(b'"score":0.01', b'"score":0.01,"score":0.5')),
    (
        "a key sent only as null, spelt with escapes",
        _body([_binary(1, score=None)]).replace(b'"score"', b'"sc\\u006fre"'),
    ),
    ("number as text", _body([_binary(1, score="0.5")])),
    ("boolean as number", _body([_binary(1, features={"speed_kmh": True})])),
    ("0/1 flag", _body([_binary(1, features={"night": 1})])),
    ("integer segment", _body([_binary(1, segments={"region": "eu", "firmware": 3})])),
    ("integer class", _body([_binary(1, prediction=1)])),
    ("epoch timestamp", _body([_binary(1, timestamp=1_700_000_000)])),
    ("features as a list", _body([_binary(1, features=[1, 2])])),
    ("probabilities on a binary model", _body([_binary(1, probabilities=[0.4, 0.6])])),
    ("embedding the model does not declare", _body([_binary(1, embedding=[1.0])])),
    ("a key sent only as null", _body([_binary(1, score=None), _binary(2, score=None)])),
]


@pytest.mark.parametrize(("name", "body"), FALLBACK_BODIES, ids=[n for n, _ in FALLBACK_BODIES])
def test_bodies_the_fast_reader_declines_get_the_generic_answer(name: str, body: bytes) -> None:
    """Anything outside the canonical shape — or where Arrow's reader is laxer than strict
    JSON — is left to the generic path, so the answer (stored rows or error) is unchanged."""
    assert read_prediction_columns(body, BINARY) is None, name
    _same(body)


@pytest.mark.parametrize(
    ("spec", "records"),
    [
        (MULTI, [_multi(1, probabilities={"a": 0.2, "b": 0.3, "c": 0.5})]),
        (MULTI, [_multi(1, probabilities=[0.2, None, 0.8])]),
        (MULTI, [_multi(1, probabilities=[0.2, "x", 0.8])]),
        (MULTI, [_multi(1, probabilities=[True, False, False])]),
        (MULTI, [_multi(1, score=None), _multi(2, score=None)]),  # no score derived from the probabilities
        (REGRESSION, [_regression(1, embedding=[1.0, None])]),
        (REGRESSION, [_regression(1, embedding=[1.0, False])]),
        (REGRESSION, [_regression(1, probabilities=[0.5])]),
        (REGRESSION, [_regression(1, prediction="12")]),
    ],
)
def test_list_values_the_fast_reader_declines_get_the_generic_answer(spec: ModelSchema, records: list[Any]) -> None:
    """Probabilities and embeddings that are not plain lists of numbers go the generic way."""
    body = _body(records)
    assert read_prediction_columns(body, spec) is None
    _same(body, spec)


@pytest.mark.parametrize(
    ("spec", "records"),
    [
        (MULTI, [_multi(1, probabilities=[0.2, 0.3]), _multi(2, probabilities=[0.9, 0.3, 0.5])]),
        (REGRESSION, [_regression(1, embedding=[1.0, 2.0, 3.0])]),
    ],
)
def test_list_values_validation_refuses_get_the_same_errors(spec: ModelSchema, records: list[Any]) -> None:
    """Wrong lengths and sums are found after reading, with the same errors either way."""
    body = _body(records)
    assert read_prediction_columns(body, spec) is not None
    assert _same(body, spec)[0] == "refused"


MUTATIONS = [
    b"",
    b" ",
    b",",
    b":",
    b"[",
    b"]",
    b"{",
    b"}",
    b'"',
    b"\\",
    b"0",
    b"-",
    b"e",
    b".",
    b"null",
    b"true",
    b"\xff",
]


def test_mutated_bodies_get_the_same_answer_from_both_readers() -> None:
    """400 seeded byte-level mutations of a valid body (insert, delete or replace one token):
    every one is stored identically or refused with the same error by both readers."""
    rng = random.Random(15)
    base = _body([_binary(1), _binary(2, features={"speed_kmh": 3}), _binary(3, score=None)])
    outcomes = set()
    for _ in range(400):
        at = rng.randrange(len(base))
        token = rng.choice(MUTATIONS)
        cut = rng.choice([0, 1])
        body = base[:at] + token + base[at + cut :]
        outcomes.add(_same(body)[0])
    assert outcomes == {"stored", "refused"}  # the mutations reached both answers
