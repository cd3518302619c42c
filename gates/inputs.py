"""The inputs of a gate run, read and checked: a dataset version and the prediction files.

A dataset version is read straight from its folder (``datasets/NAME/v=N/``: manifest plus
Parquet files), so a gate runs whether or not a server holds the data directory, and every file
is checked against the manifest's sha256 first: a gate never judges altered data. The candidate
(and champion) files hold ``prediction_id, prediction`` (and optionally ``score``) for the
dataset's rows, in any file format `loopwatch ingest` reads; every labelled row of the evaluation set must
have a prediction, and an id may appear once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gates.evaluate import MISSING, EvaluationSet
from gates.spec import LONGTAIL_SLICE, REGRESSION_METRICS, GateSpec
from labeling.curation import DatasetFiles
from monitor.errors import FieldError, InvalidInput, MalformedBody, NotFound
from monitor.files import sha256_file
from monitor.formats import iter_file_batches
from monitor.names import DATASET_NAME


@dataclass(frozen=True)
class DatasetVersion:
    name: str
    version: int
    folder: Path
    manifest: dict[str, Any]
    manifest_sha256: str
    table: pa.Table


def parse_dataset_ref(ref: str) -> tuple[str, int]:
    """``NAME@VERSION`` → (name, version)."""
    name, sep, version = ref.partition("@")
    if not sep or not version.isdigit() or not DATASET_NAME.match(name):
        raise InvalidInput(
            "dataset reference is not valid",
            [FieldError(field="dataset", reason=f"expected NAME@VERSION, e.g. braking-fn@3 (got {ref!r})")],
        )
    return name, int(version)


def read_dataset(datasets_root: Path, ref: str) -> DatasetVersion:
    """A published dataset version, every file checked against its manifest."""
    name, version = parse_dataset_ref(ref)
    files = DatasetFiles(datasets_root)
    try:
        manifest = files.show(name, version)
    except NotFound as exc:
        raise NotFound(f"no dataset version {name}@{version} under {datasets_root}: {exc.message}") from None
    altered = files.altered(name, version)
    if altered:
        raise InvalidInput(
            f"dataset {name}@{version} was altered or is incomplete",
            [FieldError(field=path, reason="missing, or its sha256 differs from the manifest") for path in altered],
        )
    folder = files.folder(name, version)
    table = files.read(name, version) if manifest["files"] else pa.table({})
    return DatasetVersion(name, version, folder, manifest, sha256_file(folder / "manifest.json"), table)


def read_predictions(path: Path, role: str) -> pa.Table:
    """A candidate or champion file (Parquet, CSV, JSON lines or Arrow, as `loopwatch ingest`
    reads them) with ``prediction_id`` and ``prediction`` columns."""
    if not path.is_file():
        raise InvalidInput(f"{role} file not found", [FieldError(field=role, reason=f"no file at {path}")])
    try:
        table = pa.concat_tables(iter_file_batches(path, batch_rows=1 << 30, string_columns={"prediction_id"}))
    except (pa.ArrowInvalid, OSError, MalformedBody) as exc:
        raise InvalidInput(f"{role} file cannot be read", [FieldError(field=role, reason=str(exc))]) from None
    missing = [c for c in ("prediction_id", "prediction") if c not in table.column_names]
    if missing:
        raise InvalidInput(
            f"{role} file lacks required columns",
            [FieldError(field=c, reason=f"{role} files need prediction_id and prediction") for c in missing],
        )
    return table


def _task_of(dataset: DatasetVersion, spec: GateSpec) -> str:
    declared = dataset.manifest.get("task")
    if declared in ("binary", "multiclass", "regression"):
        return str(declared)
    label_type = dataset.table.schema.field("label").type
    if pa.types.is_floating(label_type) or pa.types.is_integer(label_type):
        return "regression"
    classes = dataset.manifest.get("classes") or list(dataset.manifest.get("class_counts", {}))
    return "binary" if len(classes) <= 2 and spec.positive_class else "multiclass"


def evaluation_set(
    spec: GateSpec, dataset: DatasetVersion, candidate: pa.Table, champion: pa.Table | None
) -> EvaluationSet:
    """Align the dataset's labelled rows with the prediction files, checking everything a user
    can get wrong: the model, the slices, the splits, the champion, missing or repeated ids."""
    problems: list[FieldError] = []
    if dataset.manifest.get("model") != spec.model:
        problems.append(
            FieldError(
                field="model",
                reason=f"the spec is for {spec.model!r} but dataset {dataset.name}@{dataset.version} "
                f"holds {dataset.manifest.get('model')!r}",
            )
        )
    table = dataset.table
    for name in spec.slices:
        if name == LONGTAIL_SLICE:
            continue
        if name not in table.column_names:
            problems.append(FieldError(field=f"slices.{name}", reason="not a column of the dataset"))
    if spec.needs_champion and champion is None:
        problems.append(FieldError(field="champion", reason="a non_inferiority criterion needs --champion"))
    task = _task_of(dataset, spec)
    positive = spec.positive_class or dataset.manifest.get("positive_class")
    classes = dataset.manifest.get("classes") or []
    for i, criterion in enumerate(spec.criteria):
        named = criterion.class_ or (positive if task == "binary" else None)
        if classes and named and named not in classes:
            problems.append(
                FieldError(field=f"criteria.{i}", reason=f"{named!r} is not a class of the model ({classes})")
            )
    for i, criterion in enumerate(spec.criteria):
        if task == "regression" and criterion.metric not in REGRESSION_METRICS:
            problems.append(
                FieldError(field=f"criteria.{i}.metric", reason="a regression model is judged on mae or rmse")
            )
        if task != "regression" and criterion.metric in REGRESSION_METRICS:
            problems.append(FieldError(field=f"criteria.{i}.metric", reason=f"{criterion.metric} is for regression"))
        if criterion.metric == "roc_auc" and task != "binary":
            problems.append(
                FieldError(field=f"criteria.{i}.metric", reason="roc_auc is judged for binary models (from score)")
            )
        if task == "multiclass" and criterion.metric not in ("accuracy", "roc_auc") and not criterion.class_:
            problems.append(FieldError(field=f"criteria.{i}.class", reason="multiclass rates need class: NAME"))
        if task == "binary" and criterion.metric != "accuracy" and not (criterion.class_ or positive):
            problems.append(FieldError(field="positive_class", reason="a binary model's rates need positive_class"))
    if spec.splits is not None and "split" in table.column_names:
        table = table.filter(pc.is_in(table.column("split"), pa.array(spec.splits)))
    table = table.filter(pc.is_valid(table.column("label")))
    if table.num_rows == 0:
        problems.append(
            FieldError(
                field="dataset", reason=f"{dataset.name}@{dataset.version} has no labelled rows in {spec.splits}"
            )
        )
    ids = table.column("prediction_id").cast(pa.string())
    cand = _aligned(ids, candidate, "candidate", task, problems)
    champ = _aligned(ids, champion, "champion", task, problems) if champion is not None else None
    cand_score = champ_score = None
    if any(c.metric == "roc_auc" for c in spec.criteria):
        cand_score = _aligned(ids, candidate, "candidate", "regression", problems, column="score")
        if champion is not None and "score" in champion.column_names:
            champ_score = _aligned(ids, champion, "champion", "regression", problems, column="score")
        elif any(c.metric == "roc_auc" and c.kind == "non_inferiority" for c in spec.criteria):
            problems.append(
                FieldError(field="champion.score", reason="roc_auc non_inferiority needs the champion's score")
            )
    if problems or cand is None:
        raise InvalidInput("the gate cannot judge these inputs", problems)
    labels = table.column("label").to_numpy(zero_copy_only=False)
    labels = labels.astype(np.float64) if task == "regression" else labels.astype(str)
    slices: dict[str, np.ndarray] = {}
    for name in spec.slices:
        column = "split" if name == LONGTAIL_SLICE else name
        values = table.column(column).cast(pa.string()).fill_null(MISSING) if column in table.column_names else None
        slices[name] = (
            np.asarray(values.to_pylist(), dtype=object) if values is not None else np.full(table.num_rows, MISSING)
        )
    return EvaluationSet(task, labels, cand, champ, slices, positive, cand_score, champ_score)  # type: ignore[arg-type]


def _aligned(
    ids: pa.ChunkedArray,
    predictions: pa.Table,
    role: str,
    task: str,
    problems: list[FieldError],
    column: str = "prediction",
) -> np.ndarray | None:
    """``predictions``' ``column`` per id, in the order of ``ids``; every id needed, once (a
    number for regression predictions and scores). What is wrong goes to ``problems`` (``None``
    returned), so every mistake is reported at once."""
    if column not in predictions.column_names:
        problems.append(FieldError(field=f"{role}.{column}", reason=f"the {role} file has no {column} column"))
        return None
    their_ids = predictions.column("prediction_id").cast(pa.string())
    counts = pc.value_counts(their_ids)
    repeated = [v.as_py() for v, n in zip(counts.field("values"), counts.field("counts"), strict=True) if n.as_py() > 1]
    if repeated:
        problems.append(
            FieldError(
                field=f"{role}.prediction_id", reason=f"{len(repeated)} ids appear more than once, e.g. {repeated[:3]}"
            )
        )
        return None
    index = pc.index_in(ids, value_set=their_ids)
    if index.null_count:
        absent = pc.filter(ids, pc.is_null(index)).to_pylist()
        problems.append(
            FieldError(
                field=f"{role}.prediction_id",
                reason=f"{len(absent)} of the {len(ids)} rows judged have no prediction, e.g. {absent[:3]}",
            )
        )
        return None
    values = pc.take(predictions.column(column), index)
    if values.null_count:
        problems.append(
            FieldError(field=f"{role}.{column}", reason=f"{values.null_count} of the rows judged have no {column}")
        )
        return None
    if task == "regression":
        try:
            return values.cast(pa.float64()).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            problems.append(FieldError(field=f"{role}.{column}", reason=f"the {column} values must be numbers"))
            return None
    return np.asarray(values.cast(pa.string()).to_pylist(), dtype=str)
