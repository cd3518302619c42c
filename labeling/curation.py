"""Curated training sets: immutable, versioned Parquet built from annotated samples.

A build selects annotated samples (disagreements excluded unless asked for), joins them with
the stored predictions, assigns deterministic group-aware splits — train / validation /
holdout by a stable hash of an entity key (device, member id …) so one entity never spans
splits — and sets rare segment values aside as a targeted long-tail test set. Every row
carries its lineage: alert → finding → routed sample (strategy, reason) → annotation ids →
annotators. A version is written to a temporary folder, fsynced, renamed into place as
``datasets/NAME/v=N/`` and made read-only: a published version is never modified.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from monitor.clock import Clock, utcnow
from monitor.errors import FieldError, InvalidInput, NotFound
from monitor.files import fsync_path, sha256_file
from monitor.names import DATASET_NAME
from monitor.service import Loopwatch

SPLITS = ("train", "validation", "holdout", "longtail_test")
FRACTIONS = (("train", 0.8), ("validation", 0.1), ("holdout", 0.1))


@dataclass(frozen=True)
class BuildRequest:
    model: str
    name: str
    start: datetime | None = None
    end: datetime | None = None
    strategy: str | None = None
    entity_key: str | None = None  # a segment or feature naming the entity; default: each prediction
    include_review: bool = False
    rare_share: float = 0.05
    created_by: str = "api"


def stable_fraction(value: object, salt: str) -> float:
    """A number in [0, 1) fixed by the value (and the dataset name): the same entity always lands
    in the same split, in every version."""
    digest = hashlib.sha256(f"{salt}\x00{value}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_for(fraction: float) -> str:
    edge = 0.0
    for name, share in FRACTIONS:
        edge += share
        if fraction < edge:
            return name
    return FRACTIONS[-1][0]


class DatasetStore:
    def __init__(self, service: Loopwatch, now: Clock = utcnow) -> None:
        self._service = service
        self._now = now
        self.root = service.settings.data_dir / "datasets"

    # -- build ------------------------------------------------------------------------------

    def build(self, request: BuildRequest) -> dict[str, Any]:
        if not DATASET_NAME.match(request.name):
            raise InvalidInput(
                "dataset name is not valid",
                [FieldError(field="name", reason="1-64 characters: lowercase letters, digits, '-' or '_'")],
            )
        registered = self._service.registry.get(request.model)
        schema = registered.schema
        if request.entity_key and request.entity_key not in (*schema.segments, *schema.features):
            raise InvalidInput(
                "dataset request is not valid",
                [
                    FieldError(
                        field="entity_key",
                        reason=f"must be one of the model's segments or features "
                        f"({[*schema.segments, *schema.features]})",
                    )
                ],
            )
        samples = self._samples(registered.id, request)
        if not samples:
            raise InvalidInput(
                "no annotated samples match",
                [
                    FieldError(
                        field="selection", reason="route samples and sync their annotations first, or widen the window"
                    )
                ],
            )
        times = [s["prediction_ts"] for s in samples if s["prediction_ts"]]
        lo = min(times) if times else datetime(2000, 1, 1, tzinfo=UTC)
        hi = max(times) if times else self._now() + timedelta(days=1)
        rows = {
            r["prediction_id"]: r
            for r in self._service.store.rows_by_ids(
                request.model, [s["prediction_id"] for s in samples], lo, hi
            ).to_pylist()
        }
        records = []
        for sample in samples:
            row = rows.get(sample["prediction_id"])
            if row is None:
                continue
            annotations = json.loads(sample["annotations"] or "[]")
            records.append(
                {
                    "prediction_id": sample["prediction_id"],
                    "timestamp": row["timestamp"],
                    "model_version": row["model_version"],
                    **{f: row.get(f) for f in schema.features},
                    **{s: row.get(s) for s in schema.segments},
                    "prediction": row.get("prediction"),
                    "score": row.get("score"),
                    "label": sample["label"] if schema.is_classifier else float(sample["label"]),
                    "agreement": sample["agreement"],
                    "needs_review": bool(sample["needs_review"]),
                    "alert_id": sample["alert_id"],
                    "finding_id": sample["finding_id"],
                    "routed_strategy": sample["strategy"],
                    "routed_reason": sample["reason"],
                    "routed_at": sample["routed_at"],
                    "annotation_ids": [a["annotation_id"] for a in annotations],
                    "annotators": sorted(
                        {a["annotator"] or f"user {a['annotator_id']}" for a in annotations if not a.get("cancelled")}
                    ),
                }
            )
        records.sort(key=lambda r: r["prediction_id"])
        self._assign_splits(records, schema.segments, request)
        return self._publish(request, records, schema)

    def _samples(self, model_id: int, request: BuildRequest) -> list[dict[str, Any]]:
        where = ["model_id = ?", "status = 'annotated'", "label IS NOT NULL"]
        params: list[Any] = [model_id]
        if not request.include_review:
            where.append("NOT coalesce(needs_review, FALSE)")
        if request.start:
            where.append("prediction_ts >= ?")
            params.append(request.start)
        if request.end:
            where.append("prediction_ts < ?")
            params.append(request.end)
        if request.strategy:
            where.append("strategy = ?")
            params.append(request.strategy)
        return self._service.db.query_dicts(
            "SELECT prediction_id, strategy, reason, finding_id, alert_id, routed_at, label, agreement, annotations, "
            f"needs_review, prediction_ts FROM routed_samples WHERE {' AND '.join(where)}",
            params,
        )

    def _assign_splits(self, records: list[dict[str, Any]], segments: list[str], request: BuildRequest) -> None:
        rare: set[tuple[str, Any]] = set()
        for seg in segments:
            counts = Counter(r.get(seg) for r in records if r.get(seg) is not None)
            rare |= {(seg, v) for v, n in counts.items() if n / len(records) < request.rare_share}
        for record in records:
            entity = record.get(request.entity_key) if request.entity_key else record["prediction_id"]
            record["entity"] = None if entity is None else str(entity)
            if any((seg, record.get(seg)) in rare for seg in segments):
                record["split"] = "longtail_test"
            else:
                record["split"] = split_for(stable_fraction(entity, request.name))

    def _publish(self, request: BuildRequest, records: list[dict[str, Any]], schema: Any) -> dict[str, Any]:
        folder = self.root / request.name
        folder.mkdir(parents=True, exist_ok=True)
        versions = self._versions(request.name)
        version = (max(versions) if versions else 0) + 1
        tmp = folder / f".building-{uuid.uuid4().hex}"
        tmp.mkdir()
        try:
            table = pa.Table.from_pylist(records)
            files = []
            for split in SPLITS:
                part = table.filter(pa.compute.equal(table.column("split"), split))
                if part.num_rows == 0:
                    continue
                path = tmp / f"{split}.parquet"
                pq.write_table(part, path, compression="zstd")
                fsync_path(path)
                files.append({"path": path.name, "split": split, "rows": part.num_rows, "sha256": sha256_file(path)})
            content_hash = hashlib.sha256("".join(f"{f['path']}:{f['sha256']}" for f in files).encode()).hexdigest()
            labels = Counter(str(r["label"]) for r in records)
            manifest = {
                "name": request.name,
                "version": version,
                "parent_version": max(versions) if versions else None,
                "model": request.model,
                "created_at": self._now().isoformat(),
                "created_by": request.created_by,
                "selection": {
                    "start": request.start.isoformat() if request.start else None,
                    "end": request.end.isoformat() if request.end else None,
                    "strategy": request.strategy,
                    "include_review": request.include_review,
                    "entity_key": request.entity_key or "prediction_id",
                    "rare_share": request.rare_share,
                },
                "rows": len(records),
                "class_counts": dict(sorted(labels.items())),
                "split_counts": {s: sum(1 for r in records if r["split"] == s) for s in SPLITS},
                "segment_counts": {
                    seg: dict(sorted(Counter(str(r.get(seg)) for r in records).items())) for seg in schema.segments
                },
                "schema": [{"name": f.name, "type": str(f.type)} for f in table.schema],
                "files": files,
                "content_hash": content_hash,
                "lineage": {
                    "alerts": sorted({r["alert_id"] for r in records if r["alert_id"]}),
                    "findings": sorted({r["finding_id"] for r in records if r["finding_id"]}),
                    "annotations": sum(len(r["annotation_ids"]) for r in records),
                    "annotators": sorted({a for r in records for a in r["annotators"]}),
                    "per_row": "columns alert_id, finding_id, routed_strategy, routed_reason, routed_at, "
                    "annotation_ids, annotators",
                },
            }
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n")
            fsync_path(tmp / "manifest.json")
            final = folder / f"v={version}"
            os.rename(tmp, final)
            fsync_path(folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        for path in final.iterdir():  # published versions are read-only
            path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        final.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
        self._service.audit.record(
            request.created_by,
            "dataset.built",
            f"{request.name}@{version}",
            {"rows": len(records), "content_hash": manifest["content_hash"]},
        )
        return manifest

    # -- reads ----------------------------------------------------------------------------

    def _versions(self, name: str) -> list[int]:
        folder = self.root / name
        if not folder.is_dir():
            return []
        return sorted(
            int(p.name[2:]) for p in folder.iterdir() if p.is_dir() and p.name.startswith("v=") and p.name[2:].isdigit()
        )

    def list(self) -> list[dict[str, Any]]:
        if not self.root.is_dir():
            return []
        out = []
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir() and DATASET_NAME.match(p.name)):
            versions = self._versions(folder.name)
            if versions:
                latest = self.show(folder.name, versions[-1])
                out.append(
                    {
                        "name": folder.name,
                        "versions": versions,
                        "latest": versions[-1],
                        "model": latest["model"],
                        "rows": latest["rows"],
                        "created_at": latest["created_at"],
                    }
                )
        return out

    def show(self, name: str, version: int | None = None) -> dict[str, Any]:
        if not DATASET_NAME.match(name):
            raise NotFound(f"no dataset {name!r}")
        versions = self._versions(name)
        if not versions:
            raise NotFound(f"no dataset {name!r}")
        chosen = versions[-1] if version is None else version
        path = self.root / name / f"v={chosen}" / "manifest.json"
        if chosen not in versions or not path.is_file():
            raise NotFound(f"dataset {name!r} has no version {chosen} (versions: {versions})")
        return json.loads(path.read_text())

    def verify(self, name: str, version: int) -> bool:
        """The files still match the manifest's hashes."""
        manifest = self.show(name, version)
        folder = self.root / name / f"v={version}"
        return all(sha256_file(folder / f["path"]) == f["sha256"] for f in manifest["files"])

    def read(self, name: str, version: int) -> pa.Table:
        manifest = self.show(name, version)
        folder = self.root / name / f"v={version}"
        return pa.concat_tables(
            [pq.read_table(folder / f["path"]) for f in manifest["files"]], promote_options="default"
        )

    def diff(self, name_a: str, version_a: int, name_b: str, version_b: int) -> dict[str, Any]:
        """Rows added/removed (by prediction_id), labels changed, split and class count deltas."""
        a, b = self.read(name_a, version_a), self.read(name_b, version_b)
        la = dict(zip(a.column("prediction_id").to_pylist(), a.column("label").to_pylist(), strict=True))
        lb = dict(zip(b.column("prediction_id").to_pylist(), b.column("label").to_pylist(), strict=True))
        ma, mb = self.show(name_a, version_a), self.show(name_b, version_b)
        classes = sorted(set(ma["class_counts"]) | set(mb["class_counts"]))
        return {
            "a": f"{name_a}@{version_a}",
            "b": f"{name_b}@{version_b}",
            "added": sorted(set(lb) - set(la))[:1000],
            "removed": sorted(set(la) - set(lb))[:1000],
            "added_count": len(set(lb) - set(la)),
            "removed_count": len(set(la) - set(lb)),
            "label_changed": sorted(p for p in set(la) & set(lb) if la[p] != lb[p])[:1000],
            "class_counts": {
                c: {"a": ma["class_counts"].get(c, 0), "b": mb["class_counts"].get(c, 0)} for c in classes
            },
            "split_counts": {s: {"a": ma["split_counts"].get(s, 0), "b": mb["split_counts"].get(s, 0)} for s in SPLITS},
            "same_content": ma["content_hash"] == mb["content_hash"],
        }
