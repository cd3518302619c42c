"""Curated training sets: immutable versions with manifests, hashes, lineage, group-aware splits,
a long-tail test set, diffs, and name validation."""

from __future__ import annotations

import json
import os
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from labeling.curation import BuildRequest, DatasetStore, split_for, stable_fraction
from labeling.queue import LabelingQueue, RouteRequest
from labeling.sync import LabelSync
from monitor.errors import InvalidInput, NotFound
from monitor.schema import ModelSchema
from monitor.service import Loopwatch
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
