"""Standalone drift between two tables: the engine behind ``loopwatch drift REFERENCE CURRENT``.

Column kinds are inferred the way Evidently 0.7 infers them from the *current* data loaded
with pandas (``evidently.core.datasets.infer_column_type``), so that ``compare_tables`` and
``Report([DataDriftPreset()])`` judge the same columns with the same methods:

* float → numeric; integer → categorical if ≤ 10 distinct values, else numeric (an integer
  column with nulls becomes float in pandas, hence numeric);
* string → categorical, unless more than half of the non-null values are distinct, which
  Evidently treats as free text; text columns are skipped here (Evidently's text drift
  trains a classifier, which is not what a CI drift gate should do);
* boolean without nulls and dictionary (pandas ``category``) → categorical;
* everything else (timestamps, all-null, booleans with nulls, nested) → skipped.

Columns are processed in a thread pool: the heavy steps (numpy sorts, Arrow counting)
release the GIL, so two cores nearly halve the wall time.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from detectors.column_drift import ColumnDrift, compare_summaries
from detectors.stats.summary import summarize

#: Evidently ``INTEGER_CARDINALITY_LIMIT``: integer columns with at most this many
#: distinct values are categorical.
INTEGER_CARDINALITY_LIMIT = 10
#: Evidently ``DataDriftPreset(drift_share=0.5)``: dataset drift when this share drifted.
DEFAULT_DRIFT_SHARE = 0.5


def infer_kind(column: pa.ChunkedArray) -> str:
    """``"numeric"``, ``"categorical"``, ``"text"`` or ``"unsupported"`` (Evidently's inference)."""
    t = column.type
    non_null = len(column) - column.null_count
    if pa.types.is_dictionary(t):
        return "categorical"
    if pa.types.is_floating(t):
        return "numeric"
    if pa.types.is_integer(t):
        if column.null_count:
            return "numeric"
        distinct = pc.count_distinct(column).as_py()
        return "categorical" if distinct <= INTEGER_CARDINALITY_LIMIT else "numeric"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        if non_null == 0:
            return "unsupported"
        distinct = pc.count_distinct(column).as_py()
        return "text" if distinct > non_null * 0.5 else "categorical"
    if pa.types.is_boolean(t):
        return "categorical" if column.null_count == 0 else "unsupported"
    return "unsupported"


def read_table(path: str | os.PathLike[str], columns: Sequence[str] | None = None) -> pa.Table:
    """Read a Parquet or CSV file (by extension; Parquet if unsure) into an Arrow table.

    String columns of Parquet files are read dictionary-encoded: counting categories on
    dictionary indices is an order of magnitude faster than hashing strings.
    """
    p = Path(path)
    suffixes = [s.lower() for s in p.suffixes]
    if ".csv" in suffixes or ".tsv" in suffixes:
        import pyarrow.csv as pacsv

        parse = pacsv.ParseOptions(delimiter="\t") if ".tsv" in suffixes else pacsv.ParseOptions()
        convert = pacsv.ConvertOptions(include_columns=list(columns) if columns else None)
        return pacsv.read_csv(p, parse_options=parse, convert_options=convert)
    import pyarrow.parquet as pq

    schema = pq.read_schema(p)
    wanted = [f for f in schema if columns is None or f.name in columns]
    strings = [f.name for f in wanted if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    return pq.read_table(p, columns=[f.name for f in wanted], read_dictionary=strings or None)


def _compare_column(
    name: str, reference: pa.ChunkedArray, current: pa.ChunkedArray, kind: str,
    method: str | None, threshold: float | None,
) -> ColumnDrift:
    return compare_summaries(
        name, kind, summarize(reference, kind), summarize(current, kind), method=method, threshold=threshold
    )


def compare_tables(
    reference: pa.Table,
    current: pa.Table,
    columns: Sequence[str] | None = None,
    method: str | None = None,
    *,
    threshold: float | None = None,
    drift_share: float = DEFAULT_DRIFT_SHARE,
    max_workers: int | None = None,
) -> dict[str, Any]:
    """Per-column drift between two tables plus the dataset verdict, as a JSON-ready dict.

    ``method`` forces one method for every column it applies to (others keep the default);
    ``threshold`` overrides the method's default threshold.

    >>> import pyarrow as pa
    >>> ref = pa.table({"x": [float(i % 50) for i in range(2000)], "c": ["a", "b"] * 1000})
    >>> cur = pa.table({"x": [float(i % 50) + 20 for i in range(2000)], "c": ["a", "b"] * 1000})
    >>> out = compare_tables(ref, cur)
    >>> [(c["column"], c["method"], c["drifted"]) for c in out["columns"]]
    [('x', 'wasserstein', True), ('c', 'jensenshannon', False)]
    >>> out["drifted_columns"], out["share"], out["dataset_drift"]
    (1, 0.5, True)
    """
    names = list(columns) if columns is not None else list(current.column_names)
    missing = [c for c in names if c not in current.column_names or c not in reference.column_names]
    if missing:
        raise ValueError(f"columns missing from reference or current: {missing}")
    jobs: list[tuple[str, str]] = []
    for name in names:
        kind = infer_kind(current.column(name))
        if kind in ("numeric", "categorical"):
            jobs.append((name, kind))
        elif columns is not None:
            raise ValueError(f"column {name!r} is {kind}; only numeric and categorical columns are compared")

    def run(job: tuple[str, str]) -> ColumnDrift:
        name, kind = job
        forced = method
        if forced is not None:
            from detectors.stats.methods import get_method

            if kind not in get_method(forced).kinds:
                forced = None
        return _compare_column(name, reference.column(name), current.column(name), kind, forced, threshold)

    workers = max_workers or min(len(jobs), os.cpu_count() or 1) or 1
    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(run, jobs))
    else:
        results = [run(job) for job in jobs]
    rows = [
        {
            "column": r.column,
            "kind": r.kind,
            "method": r.method,
            "score": r.score,
            "threshold": r.threshold,
            "drifted": r.drifted,
        }
        for r in results
    ]
    drifted = sum(1 for r in results if r.drifted)
    share = drifted / len(results) if results else 0.0
    return {
        "columns": rows,
        "drifted_columns": drifted,
        "share": share,
        "dataset_drift": bool(results) and share >= drift_share,
    }
