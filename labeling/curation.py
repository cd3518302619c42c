"""Curated training sets: immutable, versioned Parquet built from annotated or labelled data.

A build selects its rows by ``source`` (see :data:`SOURCES`): samples routed to annotators and
annotated (disagreements excluded unless asked for), every prediction of a window that has a
current label in the store whatever its authority (the owner's ``ground_truth``, ``review``,
``annotator``), or both. It joins them with the stored predictions, assigns deterministic
group-aware splits — train / validation / holdout by a stable hash of an entity key (device,
member id …) so one entity never spans splits — and sets rare segment values aside as a
targeted long-tail test set. Every row carries its label's authority (``label_source``) and,
when it was routed, its lineage: alert → finding → routed sample (strategy, reason) →
annotation ids → annotators. A version is written to a temporary folder, fsynced, renamed into
place as ``datasets/NAME/v=N/`` and made read-only: a published version is never modified.
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
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from monitor.clock import Clock, utcnow
from monitor.errors import FieldError, InvalidInput, NotFound
from monitor.files import fsync_path, sha256_file
from monitor.names import DATASET_NAME
from monitor.registry import RegisteredModel
from monitor.schema import ModelSchema
from monitor.service import Loopwatch

SPLITS = ("train", "validation", "holdout", "longtail_test")
FRACTIONS = (("train", 0.8), ("validation", 0.1), ("holdout", 0.1))

Source = Literal["routed", "labelled", "all"]
SOURCES: tuple[str, ...] = get_args(Source)
"""Which rows a build takes:

* ``routed`` (default): samples routed to annotators and annotated, with the annotators' label
  (``label_source`` ``annotator``); ``strategy`` and ``include_review`` narrow them; no window
  needed.
* ``labelled``: every stored prediction in ``[start, end)`` that has a current label, whatever
  its authority (``label_source`` ``ground_truth``, ``review`` or ``annotator``); routed-lineage
  columns are null / empty lists.
* ``all``: the union, one row per prediction: the store's current (authoritative) label where
  there is one, else the annotators' label; rows that were routed and annotated keep their
  routed lineage (and ``needs_review``, so disagreements can be filtered).

``labelled`` and ``all`` need a window (``start`` and ``end``), so no build scans all history by
accident; ``strategy`` and ``include_review`` select routed samples and only go with ``routed``.
"""
ANNOTATOR = "annotator"  # the authority of routed samples' labels (the annotators' majority)
PREDICTION_COLUMNS = ("prediction_id", "timestamp", "model_version")  # then features, segments, prediction, score
ROUTED_COLUMNS = (
    "agreement",
    "needs_review",
    "alert_id",
    "finding_id",
    "routed_strategy",
    "routed_reason",
    "routed_at",
    "annotation_ids",
    "annotators",
)


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
    source: Source = "routed"  # which rows: see SOURCES


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


def row_schema(schema: ModelSchema) -> pa.Schema:
    """A dataset row before its split: the prediction's columns, the label and its authority,
    and the routed lineage. Fixed types (all nullable), so every split and every source writes
    the same Parquet schema even where a column is all null."""
    stored = schema.arrow_schema()
    names = [*PREDICTION_COLUMNS, *schema.features, *schema.segments, "prediction", "score"]
    fields = [pa.field(name, stored.field(name).type) for name in names]
    fields += [
        pa.field("label", pa.string() if schema.is_classifier else pa.float64()),
        pa.field("label_source", pa.string()),
    ]
    return pa.schema(fields + list(_lineage_schema(schema))[2:])


def _lineage_schema(schema: ModelSchema) -> pa.Schema:
    """What a routed sample contributes: its id, the annotators' label, and the lineage columns."""
    return pa.schema(
        [
            pa.field("prediction_id", pa.string()),
            pa.field("label", pa.string() if schema.is_classifier else pa.float64()),
            pa.field("agreement", pa.float64()),
            pa.field("needs_review", pa.bool_()),
            pa.field("alert_id", pa.string()),
            pa.field("finding_id", pa.string()),
            pa.field("routed_strategy", pa.string()),
            pa.field("routed_reason", pa.string()),
            pa.field("routed_at", pa.timestamp("us", tz="UTC")),
            pa.field("annotation_ids", pa.list_(pa.int64())),
            pa.field("annotators", pa.list_(pa.string())),
        ]
    )


class DatasetFiles:
    """Published dataset versions, read from their folders alone (manifest and Parquet files):
    no database, so readers such as a release gate work while a server holds the data
    directory. :class:`DatasetStore` builds new versions on top."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _versions(self, name: str) -> list[int]:
        folder = self.root / name
        if not folder.is_dir():
            return []
        return sorted(
            int(p.name[2:]) for p in folder.iterdir() if p.is_dir() and p.name.startswith("v=") and p.name[2:].isdigit()
        )

    def folder(self, name: str, version: int) -> Path:
        return self.root / name / f"v={version}"

    def altered(self, name: str, version: int) -> list[str]:
        """The version's files that are missing or no longer match the manifest's sha256."""
        manifest = self.show(name, version)
        folder = self.folder(name, version)
        return [
            f["path"]
            for f in manifest["files"]
            if not (folder / f["path"]).is_file() or sha256_file(folder / f["path"]) != f["sha256"]
        ]

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
        return not self.altered(name, version)

    def read(self, name: str, version: int) -> pa.Table:
        manifest = self.show(name, version)
        folder = self.folder(name, version)
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


class DatasetStore(DatasetFiles):
    def __init__(self, service: Loopwatch, now: Clock = utcnow) -> None:
        super().__init__(service.settings.data_dir / "datasets")
        self._service = service
        self._now = now

    # -- build ------------------------------------------------------------------------------

    def build(self, request: BuildRequest) -> dict[str, Any]:
        if not DATASET_NAME.match(request.name):
            raise InvalidInput(
                "dataset name is not valid",
                [FieldError(field="name", reason="1-64 characters: lowercase letters, digits, '-' or '_'")],
            )
        _check_selection(request)
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
        if request.source == "routed":
            table = self._routed_rows(registered, request)
        else:
            table = self._window_rows(registered, request)
        table = table.sort_by("prediction_id")
        table = self._assign_splits(table, schema.segments, request)
        return self._publish(request, table, schema)

    def _routed_rows(self, registered: RegisteredModel, request: BuildRequest) -> pa.Table:
        """``source=routed``: the annotated samples and their stored predictions, as before."""
        schema = registered.schema
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
        rows = self._service.store.rows_by_ids(request.model, [s["prediction_id"] for s in samples], lo, hi)
        lineage = _lineage(samples, schema)
        if rows.num_rows == 0:
            raise InvalidInput(
                "no annotated samples match",
                [FieldError(field="selection", reason="the routed samples' predictions are not stored")],
            )
        routed = pc.index_in(rows.column("prediction_id"), value_set=lineage.column("prediction_id"))
        label = lineage.column("label").take(routed)
        return _assemble(rows, label, pa.repeat(pa.scalar(ANNOTATOR), rows.num_rows), lineage, schema)

    def _window_rows(self, registered: RegisteredModel, request: BuildRequest) -> pa.Table:
        """``source=labelled|all``: the window's predictions that have a current label (for
        ``all``, or that were routed and annotated), read in one scan; each label with its
        authority, as the store holds it now."""
        schema = registered.schema
        names = [*PREDICTION_COLUMNS, *schema.features, *schema.segments, "prediction", "score"]
        scanned = self._service.store.scan(request.model, request.start, request.end, columns=names)
        current = self._current_labels(registered, scanned.filter(pc.is_valid(scanned.column("label"))))
        if request.source == "all":
            lineage = _lineage(self._samples(registered.id, request, window_or_unknown=True), schema)
        else:
            lineage = _lineage([], schema)
        ids = scanned.column("prediction_id")
        keep = pc.or_(
            pc.is_in(ids, value_set=current.column("prediction_id")),
            pc.is_in(ids, value_set=lineage.column("prediction_id")),
        )
        rows = scanned.filter(keep).select(names)
        if rows.num_rows == 0:
            what = "has a label" if request.source == "labelled" else "has a label or was routed and annotated"
            raise InvalidInput(
                "no labelled predictions match",
                [
                    FieldError(
                        field="selection",
                        reason=f"no prediction in [start, end) {what}: ingest labels or widen the window",
                    )
                ],
            )
        ids = rows.column("prediction_id")
        labelled = pc.index_in(ids, value_set=current.column("prediction_id"))
        routed = pc.index_in(ids, value_set=lineage.column("prediction_id"))
        label = pc.coalesce(current.column("label").take(labelled), lineage.column("label").take(routed))
        label_source = pc.coalesce(
            current.column("label_source").take(labelled),
            pc.if_else(pc.is_valid(routed), pa.scalar(ANNOTATOR), pa.scalar(None, pa.string())),
        )
        return _assemble(rows, label, label_source, lineage, schema)

    def _current_labels(self, registered: RegisteredModel, rows: pa.Table) -> pa.Table:
        """(prediction_id, label, label_source) of these rows' stored labels: the current,
        authoritative label (``monitor.store``'s authority rule) and its authority, read together
        in one query so the pair is consistent."""
        label_type = pa.string() if registered.schema.is_classifier else pa.float64()
        out_schema = pa.schema([("prediction_id", pa.string()), ("label", label_type), ("label_source", pa.string())])
        if rows.num_rows == 0:
            return out_schema.empty_table()
        cur = self._service.db.cursor()
        try:
            cur.register("curation_labelled", rows.select(["prediction_id"]))
            try:
                found = cur.sql(
                    "SELECT l.prediction_id, l.label, l.authority AS label_source "
                    f"FROM {registered.labels_table} l SEMI JOIN curation_labelled c "
                    "ON l.prediction_id = c.prediction_id"
                ).to_arrow_table()
            finally:
                cur.unregister("curation_labelled")
        finally:
            cur.close()
        return found.cast(out_schema)

    def _samples(
        self, model_id: int, request: BuildRequest, *, window_or_unknown: bool = False
    ) -> list[dict[str, Any]]:
        """Annotated routed samples. ``window_or_unknown``: every annotated sample of the window,
        plus those routed before their prediction's time was recorded (``prediction_ts`` null),
        whose rows the window scan then decides."""
        where = ["model_id = ?", "status = 'annotated'", "label IS NOT NULL"]
        params: list[Any] = [model_id]
        if not request.include_review and not window_or_unknown:
            where.append("NOT coalesce(needs_review, FALSE)")
        if window_or_unknown:
            where.append("(prediction_ts IS NULL OR (prediction_ts >= ? AND prediction_ts < ?))")
            params += [request.start, request.end]
        else:
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

    def _assign_splits(self, table: pa.Table, segments: list[str], request: BuildRequest) -> pa.Table:
        """Adds ``entity`` and ``split``: rows with a rare segment value (share under
        ``rare_share``) go to ``longtail_test``; the rest by the stable hash of their entity,
        computed once per distinct entity."""
        n = table.num_rows
        longtail = np.zeros(n, dtype=bool)
        for seg in segments:
            column = table.column(seg)
            counts = pc.value_counts(column)
            rare = [
                v
                for v, c in zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True)
                if v is not None and c / n < request.rare_share
            ]
            if rare:
                hit = pc.fill_null(pc.is_in(column, value_set=pa.array(rare, column.type)), False)
                longtail |= hit.to_numpy(zero_copy_only=False)
        key = table.column(request.entity_key) if request.entity_key else table.column("prediction_id")
        distinct = pc.unique(key)
        values = distinct.to_pylist()
        position = pc.index_in(key, value_set=distinct)  # nulls match the null entity
        entity = pa.array([None if v is None else str(v) for v in values], pa.string()).take(position)
        hashed = pa.array([split_for(stable_fraction(v, request.name)) for v in values], pa.string()).take(position)
        split = pc.if_else(pa.array(longtail), pa.scalar("longtail_test"), hashed)
        return table.append_column("entity", entity).append_column("split", split)

    def _publish(self, request: BuildRequest, table: pa.Table, schema: ModelSchema) -> dict[str, Any]:
        folder = self.root / request.name
        folder.mkdir(parents=True, exist_ok=True)
        versions = self._versions(request.name)
        version = (max(versions) if versions else 0) + 1
        tmp = folder / f".building-{uuid.uuid4().hex}"
        tmp.mkdir()
        try:
            files = []
            for split in SPLITS:
                part = table.filter(pc.equal(table.column("split"), split))
                if part.num_rows == 0:
                    continue
                path = tmp / f"{split}.parquet"
                pq.write_table(part, path, compression="zstd")
                fsync_path(path)
                files.append({"path": path.name, "split": split, "rows": part.num_rows, "sha256": sha256_file(path)})
            content_hash = hashlib.sha256("".join(f"{f['path']}:{f['sha256']}" for f in files).encode()).hexdigest()
            splits = _counts(table.column("split"))
            manifest = {
                "name": request.name,
                "version": version,
                "parent_version": max(versions) if versions else None,
                "model": request.model,
                "created_at": self._now().isoformat(),
                "created_by": request.created_by,
                # What the labels mean, so a gate judges the set without the registry.
                "task": schema.task,
                "classes": list(schema.classes),
                "positive_class": schema.positive_class,
                "selection": {
                    "source": request.source,
                    "start": request.start.isoformat() if request.start else None,
                    "end": request.end.isoformat() if request.end else None,
                    "strategy": request.strategy,
                    "include_review": request.include_review,
                    "entity_key": request.entity_key or "prediction_id",
                    "rare_share": request.rare_share,
                },
                "rows": table.num_rows,
                "class_counts": _counts(table.column("label")),
                "label_source_counts": _counts(table.column("label_source")),
                "split_counts": {s: splits.get(s, 0) for s in SPLITS},
                "segment_counts": {seg: _counts(table.column(seg)) for seg in schema.segments},
                "schema": [{"name": f.name, "type": str(f.type)} for f in table.schema],
                "files": files,
                "content_hash": content_hash,
                "lineage": {
                    "alerts": _distinct(table.column("alert_id")),
                    "findings": _distinct(table.column("finding_id")),
                    "annotations": int(pc.sum(pc.list_value_length(table.column("annotation_ids"))).as_py() or 0),
                    "annotators": _distinct(pc.list_flatten(table.column("annotators"))),
                    "per_row": "columns label_source, alert_id, finding_id, routed_strategy, routed_reason, "
                    "routed_at, annotation_ids, annotators",
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
            {"rows": table.num_rows, "content_hash": manifest["content_hash"]},
        )
        return manifest


def _check_selection(request: BuildRequest) -> None:
    """The source is known; ``labelled`` and ``all`` have a non-empty window and no
    routed-sample filters."""
    if request.source not in SOURCES:
        raise InvalidInput(
            "dataset request is not valid",
            [FieldError(field="source", reason=f"{request.source!r} is not one of {list(SOURCES)}")],
        )
    if request.source == "routed":
        return
    errors = []
    for field, value in (("start", request.start), ("end", request.end)):
        if value is None:
            errors.append(
                FieldError(
                    field=field,
                    reason=f"required with source {request.source!r}: labelled predictions are read for "
                    "a window [start, end), never all history",
                )
            )
    if request.start is not None and request.end is not None and request.start >= request.end:
        errors.append(FieldError(field="end", reason="must be after start"))
    if request.strategy is not None:
        errors.append(FieldError(field="strategy", reason="selects routed samples: only with source 'routed'"))
    if request.include_review:
        errors.append(
            FieldError(
                field="include_review",
                reason="selects routed samples: only with source 'routed' (with 'labelled' or 'all' every "
                "labelled prediction is kept; needs_review marks routed ones whose annotators disagreed)",
            )
        )
    if errors:
        raise InvalidInput(f"a {request.source!r} dataset selection is not valid", errors)


def _lineage(samples: list[dict[str, Any]], schema: ModelSchema) -> pa.Table:
    """One row per routed sample: its id, the annotators' label and the lineage columns."""
    rows = []
    for sample in samples:
        annotations = json.loads(sample["annotations"] or "[]")
        rows.append(
            {
                "prediction_id": sample["prediction_id"],
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
    return pa.Table.from_pylist(rows, schema=_lineage_schema(schema))


def _assemble(
    rows: pa.Table,
    label: pa.ChunkedArray | pa.Array,
    label_source: pa.ChunkedArray | pa.Array,
    lineage: pa.Table,
    schema: ModelSchema,
) -> pa.Table:
    """Dataset rows: the prediction columns of ``rows``, the label and its authority, and the
    lineage of the routed ones (null, and empty lists, for the others)."""
    out = row_schema(schema)
    blank = pa.Table.from_pylist([{"annotation_ids": [], "annotators": []}], schema=lineage.schema)
    padded = pa.concat_tables([lineage, blank])  # its last row: what a row that was not routed gets
    routed = pc.index_in(rows.column("prediction_id"), value_set=lineage.column("prediction_id"))
    taken = padded.take(pc.fill_null(routed, lineage.num_rows))
    columns = [rows.column(name) for name in out.names[: out.get_field_index("label")]]
    columns += [label, label_source, *(taken.column(name) for name in ROUTED_COLUMNS)]
    return pa.Table.from_arrays([_typed(c, f.type) for c, f in zip(columns, out, strict=True)], schema=out)


def _typed(column: pa.ChunkedArray | pa.Array, type_: pa.DataType) -> pa.ChunkedArray:
    chunked = pa.chunked_array([column]) if isinstance(column, pa.Array) else column
    return chunked if chunked.type == type_ else chunked.cast(type_)


def _counts(column: pa.ChunkedArray | pa.Array) -> dict[str, int]:
    """Rows per value, keyed by the value's text (a null is ``"None"``), sorted by key."""
    counts: Counter[str] = Counter()
    tally = pc.value_counts(column)
    for value, n in zip(tally.field("values").to_pylist(), tally.field("counts").to_pylist(), strict=True):
        counts[str(value)] += n
    return dict(sorted(counts.items()))


def _distinct(column: pa.ChunkedArray | pa.Array) -> list[Any]:
    """The column's distinct non-empty values, sorted."""
    return sorted(v for v in pc.unique(column).to_pylist() if v)
