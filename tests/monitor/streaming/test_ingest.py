"""One streaming message → stored rows or a dead letter, by the same rules as a REST JSON body."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson

from monitor.json_columns import read_prediction_columns
from monitor.schema import ModelSchema
from monitor.service import Loopwatch
from monitor.streaming.ingest import handle_message
from monitor.streaming.sources import SourceSpec
from tests.conftest import BRAKING, braking_record, earlier_today

SPEC = SourceSpec(name="fleet", kind="kafka", bootstrap="127.0.0.1:9", topic="t", group="g", model="harsh-braking")


def records(start: int, n: int) -> list[dict[str, Any]]:
    return [braking_record(i, earlier_today(timedelta(seconds=i))) for i in range(start, start + n)]


def test_a_list_and_a_single_record_are_stored_and_resends_deduplicated(service: Loopwatch, braking_model: Any) -> None:
    """A list in the documented shape (Arrow's JSON reader) and one record object (the generic
    path) are both stored; the same records sent again are counted as duplicates, not stored."""
    batch = records(0, 50)
    assert read_prediction_columns(orjson.dumps(batch), ModelSchema.model_validate(BRAKING)) is not None
    first = handle_message(service, SPEC, "t", orjson.dumps(batch))
    single = handle_message(service, SPEC, "t", orjson.dumps(records(50, 1)[0]))
    again = handle_message(service, SPEC, "t", orjson.dumps(batch))
    assert (first.result, first.rows) == ("stored", 50)
    assert (single.result, single.rows) == ("stored", 1)
    assert (again.result, again.rows, again.duplicates) == ("stored", 0, 50)
    assert int(service.store.stats("harsh-braking")["predictions"]) == 51


def test_a_bad_record_dead_letters_with_the_rest_endpoints_reason(service: Loopwatch, braking_model: Any) -> None:
    """A record with an unknown key (the fast reader declines it) or a non-numeric feature is a
    dead letter naming the row and field, and nothing of its message is stored."""
    unknown = records(0, 3)
    unknown[1]["colour"] = "red"
    wrong_type = records(10, 3)
    first_feature = next(iter(wrong_type[2]["features"]))
    wrong_type[2]["features"][first_feature] = "fast"
    outcomes = [handle_message(service, SPEC, "t", orjson.dumps(body)) for body in (unknown, wrong_type)]
    assert [o.result for o in outcomes] == ["dead_letter", "dead_letter"]
    assert "colour" in (outcomes[0].reason or "")
    assert first_feature in (outcomes[1].reason or "")
    assert int(service.store.stats("harsh-braking")["predictions"]) == 0
    assert len(service.sources.dead_letters("fleet")) == 2
