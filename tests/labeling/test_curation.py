"""Curated training sets: immutable versions with manifests, hashes, lineage, group-aware splits,
a long-tail test set, diffs, name validation, and the selection source (routed samples, every
labelled prediction of a window, or both)."""

from __future__ import annotations

import json
import os
from datetime import timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from labeling.curation import BuildRequest, DatasetStore, split_for, stable_fraction
from labeling.queue import LabelingQueue, RouteRequest
from labeling.sync import LabelSync
from monitor.errors import InvalidInput, NotFound
from monitor.schema import ModelSchema
from monitor.service import Loopwatch
from tests.conftest import Api
from tests.labeling.test_sync import MemoryBackend, annotation
from tests.monitor.test_evaluation import NOW, _load

MODEL = "harsh-braking"


def _annotated(service: Loopwatch, n: int = 60, *, alert_id: str | None = None, seed: int = 1) -> list[str]:
    _load(service, NOW - timedelta(hours=2), 2, 200, seed=seed, prefix=f"s{seed}")
    queue = LabelingQueue(service)
    queue.route(
        RouteRequest(MODEL, "uncertainty", budget=n, start=NOW - timedelta(hours=2), end=NOW, alert_id=alert_id)
    )
    sync = LabelSync(service, MemoryBackend())
    sync.push(MODEL)
    ids = [s["prediction_id"] for s in queue.list(MODEL) if s["status"] == "pushed"]
    anns = []
    for i, pid in enumerate(ids):
        anns.append(annotation(pid, 10_000 * seed + 2 * i, "brake" if i % 3 else "none", "ana@x"))
        if i % 10 == 0:  # a second annotator disagrees on some: flagged for review, left out by default
            anns.append(annotation(pid, 10_000 * seed + 2 * i + 1, "none" if i % 3 else "brake", "bo@x"))
    sync.apply(MODEL, anns)
    return ids


def test_build_writes_an_immutable_version_with_manifest_and_lineage(
    service: Loopwatch, braking_model: ModelSchema
) -> None:
    """v1 holds agreed annotations with per-row lineage; files are read-only and match their hashes."""
    ids = _annotated(service)
    store = DatasetStore(service)
    manifest = store.build(BuildRequest(MODEL, "braking-train", entity_key="region"))
    assert manifest["version"] == 1 and manifest["parent_version"] is None
    assert manifest["rows"] == len(ids) - 6  # 6 disagreements excluded
    assert sum(manifest["class_counts"].values()) == manifest["rows"]
    assert {f["split"] for f in manifest["files"]} <= {"train", "validation", "holdout", "longtail_test"}
    assert store.verify("braking-train", 1)
    folder = service.settings.data_dir / "datasets" / "braking-train" / "v=1"
    assert all(not os.access(p, os.W_OK) or os.geteuid() == 0 for p in folder.iterdir())
    assert all(not (p.stat().st_mode & 0o222) for p in folder.iterdir())
    table = store.read("braking-train", 1)
    row = table.to_pylist()[0]
    assert row["routed_strategy"] == "uncertainty" and row["annotation_ids"] and row["annotators"] == ["ana@x"]
    # one entity (region) never spans splits
    by_entity: dict[str, set[str]] = {}
    for r in table.to_pylist():
        if r["split"] != "longtail_test":
            by_entity.setdefault(r["entity"], set()).add(r["split"])
    assert all(len(splits) == 1 for splits in by_entity.values())


def test_versions_are_numbered_and_diffed(service: Loopwatch, braking_model: ModelSchema) -> None:
    """A rebuild after more annotations is v2 with parent 1; diff names the added rows."""
    _annotated(service, 30, seed=1)
    store = DatasetStore(service)
    store.build(BuildRequest(MODEL, "ds"))
    _annotated(service, 30, seed=2)
    v2 = store.build(BuildRequest(MODEL, "ds", include_review=True))
    assert v2["version"] == 2 and v2["parent_version"] == 1
    diff = store.diff("ds", 1, "ds", 2)
    assert diff["added_count"] > 0 and diff["removed_count"] == 0 and not diff["same_content"]
    assert [d["versions"] for d in store.list()] == [[1, 2]]


def test_splits_are_deterministic() -> None:
    """The same entity always gets the same split; the split shares are about 80/10/10."""
    splits = [split_for(stable_fraction(f"device-{i}", "ds")) for i in range(5000)]
    assert splits == [split_for(stable_fraction(f"device-{i}", "ds")) for i in range(5000)]
    assert 0.77 < splits.count("train") / 5000 < 0.83 and 0.08 < splits.count("holdout") / 5000 < 0.12


def test_bad_names_and_empty_selections_are_refused(service: Loopwatch, braking_model: ModelSchema) -> None:
    """Path-traversal names, unknown entity keys and empty selections are 4xx errors."""
    store = DatasetStore(service)
    for name in ("../etc", "Bad Name", "a/b"):
        with pytest.raises(InvalidInput, match="name"):
            store.build(BuildRequest(MODEL, name))
    with pytest.raises(InvalidInput, match="no annotated samples"):
        store.build(BuildRequest(MODEL, "empty"))
    with pytest.raises(InvalidInput):
        store.build(BuildRequest(MODEL, "x", entity_key="planet"))
    with pytest.raises(NotFound):
        store.show("../../etc", 1)


def test_cli_and_api(service: Loopwatch, braking_model: ModelSchema, tmp_path) -> None:
    """`dataset build/list/show/diff` from the CLI; the API lists and shows versions."""
    from api.cli import app

    _annotated(service, 30)
    data_dir = str(service.settings.data_dir)
    service.close()
    runner = CliRunner()
    built = runner.invoke(app, ["dataset", "build", "--model", MODEL, "--name", "cli-ds", "--data-dir", data_dir])
    assert built.exit_code == 0 and "cli-ds v1" in built.output, built.output
    runner.invoke(app, ["dataset", "build", "--model", MODEL, "--name", "cli-ds", "--data-dir", data_dir])
    shown = runner.invoke(app, ["dataset", "show", "cli-ds@1", "--data-dir", data_dir])
    assert json.loads(shown.output)["version"] == 1
    diffed = runner.invoke(app, ["dataset", "diff", "cli-ds@1", "cli-ds@2", "--data-dir", data_dir])
    assert json.loads(diffed.output)["same_content"] is True  # nothing new was annotated in between
    service.__init__(service.settings)


# -- source: routed | labelled | all ---------------------------------------------------------

START, END = NOW - timedelta(hours=2), NOW  # the window _annotated and _load(NOW - 2h, 2, …) fill
LINEAGE = ("alert_id", "finding_id", "routed_strategy", "routed_reason", "routed_at", "agreement", "needs_review")


def _owner_labels(service: Loopwatch, labels: dict[str, str]) -> None:
    """Ground truth from the model owner's pipeline (the labels API's default authority)."""
    table = pa.table({"prediction_id": list(labels), "label": list(labels.values())})
    assert service.store.ingest_labels(MODEL, table).received == len(labels)


def _outside_window(service: Loopwatch) -> list[str]:
    """Labelled predictions from before the window: never in a windowed build."""
    ids = _load(service, NOW - timedelta(hours=6), 1, 40, seed=9, prefix="old").column("prediction_id").to_pylist()
    _owner_labels(service, dict.fromkeys(ids, "brake"))
    return ids


def test_labelled_source_takes_every_labelled_prediction_of_the_window(
    service: Loopwatch, braking_model: ModelSchema
) -> None:
    """source=labelled: every prediction in [start, end) with a current label — the owner's ground
    truth, nothing routed — and none outside the window or without a label; rows sorted by id,
    label_source on every row, routed lineage null / empty, manifest records the source and counts."""
    ids = _load(service, START, 2, 100, seed=1, prefix="w").column("prediction_id").to_pylist()
    owner = {pid: ("brake" if i % 3 else "none") for i, pid in enumerate(ids) if i % 4 == 0}  # 50 of 200
    _owner_labels(service, owner)
    outside = _outside_window(service)
    store = DatasetStore(service)
    manifest = store.build(BuildRequest(MODEL, "gate-eval", start=START, end=END, source="labelled"))
    assert manifest["rows"] == len(owner) == 50
    assert manifest["selection"]["source"] == "labelled"
    assert manifest["label_source_counts"] == {"ground_truth": 50}
    assert sum(manifest["class_counts"].values()) == 50 and manifest["lineage"]["annotations"] == 0
    table = store.read("gate-eval", 1)
    rows = {r["prediction_id"]: r for r in table.to_pylist()}
    assert set(rows) == set(owner) and not set(rows) & set(outside)  # no unlabelled, none outside
    assert all(rows[pid]["label"] == label for pid, label in owner.items())
    assert {r["label_source"] for r in rows.values()} == {"ground_truth"}
    assert all(r[c] is None for r in rows.values() for c in LINEAGE)
    assert all(r["annotation_ids"] == [] and r["annotators"] == [] for r in rows.values())
    # all-null lineage still has the routed rows' column types (not Arrow's `null`)
    assert table.schema.field("alert_id").type == pa.string()
    assert table.schema.field("annotation_ids").type == pa.list_(pa.int64())
    for f in manifest["files"]:  # deterministic: each split file sorted by prediction_id
        part = pq.read_table(service.settings.data_dir / "datasets" / "gate-eval" / "v=1" / f["path"])
        assert part.column("prediction_id").to_pylist() == sorted(part.column("prediction_id").to_pylist())


def test_all_source_unions_without_duplicates_and_prefers_the_authoritative_label(
    service: Loopwatch, braking_model: ModelSchema
) -> None:
    """source=all: one row per prediction for routed ∪ labelled; where the owner's ground truth
    overrode the annotators, the row has the store's label (label_source ground_truth) and keeps
    its routed lineage; unrouted labelled rows have null lineage; every split file has the same
    Parquet schema as a routed build's."""
    routed = _annotated(service, 30)  # loads 400 predictions in the window, 30 routed and annotated
    annotators = {pid: (service.store.label(MODEL, pid) or {})["label"] for pid in routed}
    overridden = {pid: ("none" if annotators[pid] == "brake" else "brake") for pid in routed[:5]}
    unrouted = [r["prediction_id"] for r in service.store.scan(MODEL, START, END).to_pylist()]
    unrouted = [pid for pid in unrouted if pid not in annotators][:20]
    _owner_labels(service, {**overridden, **dict.fromkeys(unrouted, "brake")})
    _outside_window(service)
    store = DatasetStore(service)
    manifest = store.build(BuildRequest(MODEL, "gate-all", start=START, end=END, source="all"))
    table = store.read("gate-all", 1)
    ids = table.column("prediction_id").to_pylist()
    assert len(ids) == len(set(ids)) == manifest["rows"] == 30 + 20  # the 3 needs_review samples too
    rows = {r["prediction_id"]: r for r in table.to_pylist()}
    assert set(rows) == set(routed) | set(unrouted)
    for pid, label in overridden.items():
        assert (rows[pid]["label"], rows[pid]["label_source"]) == (label, "ground_truth")
        assert rows[pid]["routed_strategy"] == "uncertainty" and rows[pid]["annotation_ids"]
    for pid in routed[5:]:
        assert (rows[pid]["label"], rows[pid]["label_source"]) == (annotators[pid], "annotator")
        assert rows[pid]["annotators"] and rows[pid]["routed_at"] is not None
    for pid in unrouted:
        assert rows[pid]["label_source"] == "ground_truth" and rows[pid]["routed_strategy"] is None
        assert rows[pid]["annotation_ids"] == []
    assert manifest["label_source_counts"] == {"annotator": 25, "ground_truth": 25}
    assert manifest["selection"]["source"] == "all"
    assert sum(1 for r in rows.values() if r["needs_review"]) == 3
    # same column types whatever the source: a routed build's schema, in every split file
    store.build(BuildRequest(MODEL, "routed-only"))
    assert manifest["schema"] == store.show("routed-only", 1)["schema"]
    folder = service.settings.data_dir / "datasets" / "gate-all" / "v=1"
    schemas = {str(pq.read_schema(folder / f["path"]).remove_metadata()) for f in manifest["files"]}
    assert len(manifest["files"]) > 1 and len(schemas) == 1


def test_routed_rows_carry_label_source(service: Loopwatch, braking_model: ModelSchema) -> None:
    """source=routed (the default) is unchanged, and its rows say their label is the annotators'."""
    ids = _annotated(service, 30)
    manifest = DatasetStore(service).build(BuildRequest(MODEL, "routed"))
    assert manifest["selection"]["source"] == "routed"
    assert manifest["rows"] == len(ids) - 3 and manifest["label_source_counts"] == {"annotator": len(ids) - 3}


def test_labelled_and_all_need_a_bounded_window(service: Loopwatch, braking_model: ModelSchema) -> None:
    """source=labelled/all without start or end, or with start >= end, is refused with a field
    error naming the field (no build scans all history by accident); so are routed-sample filters
    and unknown sources; an empty window says no labelled predictions match."""
    store = DatasetStore(service)

    def refused(**kw: object) -> set[str]:
        with pytest.raises(InvalidInput) as caught:
            store.build(BuildRequest(MODEL, "w", **kw))  # type: ignore[arg-type]
        return {e.field for e in caught.value.errors}

    for source in ("labelled", "all"):
        assert refused(source=source) == {"start", "end"}
        assert refused(source=source, start=START) == {"end"}
        assert refused(source=source, end=END) == {"start"}
        assert refused(source=source, start=END, end=START) == {"end"}
        assert refused(source=source, start=START, end=END, strategy="uncertainty") == {"strategy"}
        assert refused(source=source, start=START, end=END, include_review=True) == {"include_review"}
    assert refused(source="everything", start=START, end=END) == {"source"}
    with pytest.raises(InvalidInput, match="no labelled predictions match"):
        store.build(BuildRequest(MODEL, "w", start=START, end=END, source="labelled"))
    assert store.list() == []


def test_api_accepts_the_source_option(api: Api) -> None:
    """POST /v1/datasets takes `source`: labelled builds from the owner's labels of the window;
    a missing window or an unknown source is a 422 naming the field."""
    service = api.client.app.state.service  # type: ignore[attr-defined]
    ids = _load(service, START, 2, 50, seed=1, prefix="api").column("prediction_id").to_pylist()
    _owner_labels(service, dict.fromkeys(ids[:30], "brake"))
    window = {"start": START.isoformat(), "end": END.isoformat()}
    body = {"model": MODEL, "name": "api-gate", "source": "labelled", **window}
    built = api.client.post("/v1/datasets", json=body, headers=api.admin)
    assert built.status_code == 201, built.text
    assert built.json()["selection"]["source"] == "labelled" and built.json()["rows"] == 30
    assert built.json()["label_source_counts"] == {"ground_truth": 30}
    no_window = api.client.post("/v1/datasets", json={**body, "start": None}, headers=api.admin)
    assert no_window.status_code == 422 and "start" in {e["field"] for e in no_window.json()["error"]["errors"]}
    unknown = api.client.post("/v1/datasets", json={**body, "source": "everything"}, headers=api.admin)
    assert unknown.status_code == 422 and [e["field"] for e in unknown.json()["error"]["errors"]] == ["source"]


def test_cli_accepts_the_source_option(service: Loopwatch, braking_model: ModelSchema) -> None:
    """`dataset build --source labelled --from --to` builds from labelled predictions; an unknown
    --source is a usage error (exit 2); --source labelled without a window exits 1 naming --from's field."""
    from api.cli import app

    ids = _load(service, START, 2, 50, seed=1, prefix="cli").column("prediction_id").to_pylist()
    _owner_labels(service, dict.fromkeys(ids[:20], "none"))
    data_dir = str(service.settings.data_dir)
    service.close()
    runner = CliRunner()
    base = ["dataset", "build", "--model", MODEL, "--name", "cli-gate", "--data-dir", data_dir]
    window = ["--from", START.isoformat(), "--to", END.isoformat()]
    built = runner.invoke(app, [*base, "--source", "labelled", *window])
    assert built.exit_code == 0 and "cli-gate v1: 20 rows" in built.output, built.output
    bogus = runner.invoke(app, [*base, "--source", "everything", *window])
    assert bogus.exit_code == 2 and "--source must be one of routed, labelled, all" in bogus.output, bogus.output
    unbounded = runner.invoke(app, [*base, "--source", "all"])
    assert unbounded.exit_code == 1 and "start: required" in unbounded.output, unbounded.output
    shown = runner.invoke(app, ["dataset", "show", "cli-gate@1", "--data-dir", data_dir])
    assert json.loads(shown.output)["selection"]["source"] == "labelled"
    service.__init__(service.settings)  # type: ignore[misc]
