"""Label authority (docs/architecture.md, "Labels"): ground_truth > review > annotator. A lower
authority never replaces a higher one: the disagreement is kept in history with both values and
the label is flagged; a higher authority replaces a lower one (on record); within one authority
the newer label timestamp wins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

import monitor.db
from detectors.performance import slice_stats
from detectors.spec import ModelSpec
from monitor.errors import InvalidInput
from monitor.schema import ModelSchema
from monitor.service import Loopwatch
from monitor.settings import Settings
from monitor.store import LabelResult
from monitor.validation import records_to_table
from tests.conftest import BRAKING, braking_record

MODEL = "harsh-braking"
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)


def send(
    service: Loopwatch, label: str, authority: str, ts: datetime = T0, pid: str = "p-1", **extra: str
) -> LabelResult:
    columns = {"prediction_id": [pid], "label": [label], "timestamp": [ts.isoformat()]}
    columns.update({k: [v] for k, v in extra.items()})
    return service.store.ingest_labels(MODEL, pa.table(columns), authority=authority)


@pytest.mark.parametrize(
    ("first", "second", "replaces"),
    [
        ("ground_truth", "annotator", False),
        ("ground_truth", "review", False),
        ("review", "annotator", False),
        ("annotator", "ground_truth", True),
        ("annotator", "review", True),
        ("review", "ground_truth", True),
        ("ground_truth", "ground_truth", True),
        ("review", "review", True),
        ("annotator", "annotator", True),
    ],
)
def test_precedence_matrix(
    service: Loopwatch, braking_model: ModelSchema, first: str, second: str, replaces: bool
) -> None:
    """A newer label replaces the stored one only if its authority is the same or higher; a lower
    authority that disagrees is a conflict (not applied), even when its timestamp is newer."""
    assert send(service, "brake", first).applied == 1
    result = send(service, "none", second, T0 + timedelta(hours=1))
    current = service.store.label(MODEL, "p-1")
    assert current is not None
    if replaces:
        assert (result.applied, result.conflicts) == (1, 0)
        assert (current["label"], current["authority"], current["conflict"]) == ("none", second, False)
    else:
        assert (result.applied, result.conflicts, result.conflict_ids) == (0, 1, ("p-1",))
        assert (current["label"], current["authority"], current["conflict"]) == ("brake", first, True)


def test_same_authority_newer_timestamp_wins(service: Loopwatch, braking_model: ModelSchema) -> None:
    """Within one authority the current rule stays: newer wins, older is ignored, a resend changes nothing."""
    assert send(service, "brake", "annotator").applied == 1
    assert send(service, "none", "annotator", T0 - timedelta(hours=1)).unchanged == 1
    assert send(service, "brake", "annotator").unchanged == 1
    assert send(service, "none", "annotator", T0 + timedelta(hours=1)).applied == 1
    assert service.store.label(MODEL, "p-1")["label"] == "none"  # type: ignore[index]


def test_the_clinical_label_survives_an_annotation_and_the_conflict_is_on_record(
    service: Loopwatch, braking_model: ModelSchema
) -> None:
    """An annotator disagreeing with ground truth leaves the label, records both values in
    history (outcome `conflict`), flags it, lists it among conflicts, and resending the same
    annotation (webhook + poll) records it once."""
    send(service, "brake", "ground_truth", source="clinic")
    for _ in range(2):
        send(service, "none", "annotator", T0 + timedelta(hours=2), source="label_studio", annotator="ana@x")
    history = service.store.label_history(MODEL, "p-1")
    assert [
        (h["label"], h["previous_label"], h["authority"], h["previous_authority"], h["outcome"]) for h in history
    ] == [
        ("brake", None, "ground_truth", None, "applied"),
        ("none", "brake", "annotator", "ground_truth", "conflict"),
    ]
    [conflict] = service.store.label_conflicts(MODEL)
    assert (conflict["prediction_id"], conflict["label"], conflict["authority"], conflict["conflict"]) == (
        "p-1",
        "brake",
        "ground_truth",
        True,
    )
    assert [(c["label"], c["authority"], c["annotator"]) for c in conflict["conflicting"]] == [
        ("none", "annotator", "ana@x")
    ]


def test_an_agreeing_lower_label_is_no_conflict(service: Loopwatch, braking_model: ModelSchema) -> None:
    """A lower authority that gives the same value changes nothing and flags nothing."""
    send(service, "brake", "ground_truth")
    result = send(service, "brake", "annotator", T0 + timedelta(hours=1))
    assert (result.applied, result.unchanged, result.conflicts) == (0, 1, 0)
    assert service.store.label_conflicts(MODEL) == []


def test_a_higher_authority_replacing_a_lower_one_is_recorded(service: Loopwatch, braking_model: ModelSchema) -> None:
    """ground_truth over an annotator's label applies, even with an older timestamp, and history says `overridden`."""
    send(service, "none", "annotator", T0 + timedelta(hours=3))
    assert send(service, "brake", "ground_truth", T0).applied == 1
    last = service.store.label_history(MODEL, "p-1")[-1]
    assert (last["label"], last["previous_label"], last["previous_authority"], last["outcome"]) == (
        "brake",
        "none",
        "annotator",
        "overridden",
    )


def test_the_owner_reasserting_its_label_clears_the_flag(service: Loopwatch, braking_model: ModelSchema) -> None:
    """A conflict stays flagged until the same (or a higher) authority labels the sample again."""
    send(service, "brake", "ground_truth")
    send(service, "none", "annotator", T0 + timedelta(hours=1))
    send(service, "none", "review", T0 + timedelta(hours=1))  # review cannot overrule ground truth
    assert service.store.label(MODEL, "p-1")["conflict"] is True  # type: ignore[index]
    assert send(service, "brake", "ground_truth", T0 + timedelta(hours=2)).applied == 1
    assert service.store.label(MODEL, "p-1")["conflict"] is False  # type: ignore[index]
    assert service.store.label_conflicts(MODEL) == []


def test_within_one_batch_the_highest_authority_is_kept(service: Loopwatch, braking_model: ModelSchema) -> None:
    """Rows for one id in one batch: the highest authority wins over a newer lower one."""
    table = pa.table(
        {
            "prediction_id": ["p-1", "p-1"],
            "label": ["brake", "none"],
            "timestamp": [T0.isoformat(), (T0 + timedelta(hours=1)).isoformat()],
            "authority": ["review", "annotator"],
        }
    )
    assert service.store.ingest_labels(MODEL, table).applied == 1
    assert service.store.label(MODEL, "p-1")["authority"] == "review"  # type: ignore[index]


def test_an_unknown_authority_is_refused(service: Loopwatch, braking_model: ModelSchema) -> None:
    """Only ground_truth, review and annotator are authorities; anything else is a 4xx naming the field."""
    with pytest.raises(InvalidInput) as info:
        service.store.ingest_labels(
            MODEL, pa.table({"prediction_id": ["p-1"], "label": ["brake"], "authority": ["boss"]})
        )
    assert info.value.errors[0].field == "authority"


def test_fp_fn_metrics_use_the_authoritative_label(service: Loopwatch, braking_model: ModelSchema) -> None:
    """The window the performance detector reads carries the ground-truth label, not the
    annotation that disagreed with it: FN counts stay those of the clinical labels."""
    now = datetime.now(UTC)
    records = [braking_record(i, now - timedelta(minutes=i), prediction="none") for i in range(4)]
    service.store.ingest_predictions(MODEL, records_to_table(records, braking_model))
    ids = [r["prediction_id"] for r in records]
    truth = pa.table({"prediction_id": ids, "label": ["brake"] * 4, "timestamp": [T0.isoformat()] * 4})
    service.store.ingest_labels(MODEL, truth)  # the owner's pipeline: ground_truth
    wrong = pa.table({"prediction_id": ids, "label": ["none"] * 4, "timestamp": [now.isoformat()] * 4})
    assert service.store.ingest_labels(MODEL, wrong, source="label_studio", authority="annotator").conflicts == 4
    window = service.store.scan(MODEL, now - timedelta(hours=1), now + timedelta(minutes=1))
    stats = slice_stats(window, ModelSpec.from_dict(BRAKING))
    assert (stats.confusion["brake"].fn, stats.confusion["brake"].tn) == (4, 0)


def test_migration_derives_the_authority_from_the_recorded_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Labels stored before migration 11 keep their source; label_studio → annotator, review →
    review, anything else (api, demo, a pipeline's name, none) → ground_truth."""
    settings = Settings(data_dir=tmp_path / "data")
    monkeypatch.setattr(monitor.db, "MIGRATIONS", monitor.db.MIGRATIONS[:10])
    before = Loopwatch(settings)
    before.registry.register(ModelSchema.model_validate(BRAKING))
    model_id = before.registry.get(MODEL).id
    with before.db.transaction() as cur:
        cur.execute(f"ALTER TABLE labels_{model_id} DROP COLUMN authority").fetchall()
        cur.execute(f"ALTER TABLE labels_{model_id} DROP COLUMN conflict").fetchall()
        for pid, source in [("a", "api"), ("b", "label_studio"), ("c", "review"), ("d", None), ("e", "clinic")]:
            cur.execute(
                f"INSERT INTO labels_{model_id} VALUES (?, 'brake', now(), now(), ?, NULL)", [pid, source]
            ).fetchall()
            cur.execute(
                "INSERT INTO label_events VALUES (?, ?, 'brake', NULL, now(), now(), ?, NULL)", [model_id, pid, source]
            ).fetchall()
    before.close()
    monkeypatch.undo()
    after = Loopwatch(settings)
    try:
        got = {pid: after.store.label(MODEL, pid) for pid in "abcde"}
        assert {pid: (g["source"], g["authority"], g["conflict"]) for pid, g in got.items() if g} == {
            "a": ("api", "ground_truth", False),
            "b": ("label_studio", "annotator", False),
            "c": ("review", "review", False),
            "d": (None, "ground_truth", False),
            "e": ("clinic", "ground_truth", False),
        }
        assert after.store.label_history(MODEL, "b")[0]["authority"] == "annotator"
        # and the rule holds on migrated rows: an annotation cannot replace the migrated clinical label
        result = after.store.ingest_labels(
            MODEL,
            pa.table({"prediction_id": ["e"], "label": ["none"], "timestamp": [datetime.now(UTC).isoformat()]}),
            authority="annotator",
        )
        assert result.conflicts == 1
    finally:
        after.close()
