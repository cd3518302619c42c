"""A day of 1M predictions with 256-d embeddings: what storing them costs, and what an
``embedding_drift`` run reads compared with a full scan.

One in-process service on a temporary data directory (real DuckDB file). A model with 5
features, a segment and ``embedding: {dim: 256}`` gets ``--rows`` predictions spread over the
day before now, ingested as Arrow batches; then, each timed on its own:

* **full scan** — ``PredictionStore.scan`` of the day with every column (what every detector
  read before issue 12; with the default DuckDB memory limit it fails: recorded as such);
* **scan without the embedding** — what a ``data_drift`` monitor reads now;
* **embedding_drift run** — ``Evaluator.evaluate`` of ``embedding_drift`` with the second half
  of the day as the window and the first half as the reference (a fixed window reference);
  the store draws ~2 × ``sample_size`` rows per slice of each in SQL.

Reported: ingest rows/s, DuckDB file bytes per row after a checkpoint, seconds and Python
peak-RSS growth (``ru_maxrss``) of each step.

    .venv/bin/python bench/embedding_scan.py [--rows 1000000] [--dim 256]

writes ``bench/results/embedding_scan.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from monitor.references import ReferenceSpec  # noqa: E402
from monitor.schema import ModelSchema  # noqa: E402
from monitor.service import Loopwatch  # noqa: E402
from monitor.settings import Settings  # noqa: E402

MODEL = "camera"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def batch(rng: np.random.Generator, start: datetime, seconds: float, n: int, dim: int, offset: int) -> pa.Table:
    ts = np.datetime64(start.replace(tzinfo=None), "us") + (np.sort(rng.uniform(0, seconds, n)) * 1e6).astype(
        "timedelta64[us]"
    )
    vectors = rng.normal(0, 1, (n, dim)).astype(np.float32)
    cols: dict[str, Any] = {
        "prediction_id": [f"e-{offset + i}" for i in range(n)],
        "timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "model_version": ["1"] * n,
        "prediction": rng.choice(["car", "person", "bike"], n),
        "site": rng.choice(["depot", "gate", "yard"], n),
        "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), dim),
    }
    for i in range(5):
        cols[f"f{i}"] = rng.normal(0, 1, n)
    return pa.table(cols)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--batch", type=int, default=50_000)
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "embedding_scan.json")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    day = (datetime.now(UTC) - timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    result: dict[str, Any] = {"rows": args.rows, "dim": args.dim}
    with tempfile.TemporaryDirectory(prefix="loopwatch-embeddings-") as tmp:
        service = Loopwatch(Settings(data_dir=Path(tmp) / "data"))
        service.registry.register(
            ModelSchema.model_validate(
                {
                    "name": MODEL,
                    "task": "multiclass",
                    "classes": ["car", "person", "bike"],
                    "features": {f"f{i}": "numeric" for i in range(5)},
                    "segments": ["site"],
                    "embedding": {"dim": args.dim},
                }
            )
        )
        per_batch = 86_400 * args.batch / args.rows
        started = time.perf_counter()
        for i, offset in enumerate(range(0, args.rows, args.batch)):
            n = min(args.batch, args.rows - offset)
            service.store.ingest_predictions(MODEL, batch(rng, day + timedelta(seconds=i * per_batch), per_batch, n, args.dim, offset))
        result["ingest_rows_per_s"] = round(args.rows / (time.perf_counter() - started))
        service.db.checkpoint()
        db_file = Path(tmp) / "data" / "loopwatch.duckdb"
        result["duckdb_bytes_per_row"] = round(db_file.stat().st_size / args.rows)

        def timed(name: str, fn: Any) -> Any:
            before = _peak_mb()
            started = time.perf_counter()
            value = fn()
            result[name] = {"seconds": round(time.perf_counter() - started, 2), "peak_rss_growth_mb": round(_peak_mb() - before)}
            return value

        noon = day + timedelta(hours=12)
        without = ["prediction_id", "timestamp", "model_version", "prediction", "site", *[f"f{i}" for i in range(5)]]
        table = timed("scan_without_embedding", lambda: service.store.scan(MODEL, day, day + timedelta(days=1), columns=without))
        result["scan_without_embedding"]["rows"] = table.num_rows
        del table
        evaluation = timed(
            "embedding_drift_run",
            lambda: service.evaluator.evaluate(
                MODEL,
                "embedding_drift",
                {},
                (noon, day + timedelta(days=1)),
                ReferenceSpec.model_validate({"kind": "window", "start": day.isoformat(), "end": noon.isoformat()}),
            ),
        )
        whole = evaluation.findings[0]
        result["embedding_drift_run"] |= {"status": whole.status.value, "rows_judged": whole.n_current, "mmd2": whole.value}
        try:
            table = timed("full_scan", lambda: service.store.scan(MODEL, day, day + timedelta(days=1)))
            result["full_scan"]["rows"] = table.num_rows
            result["full_scan"]["arrow_mb"] = round(table.nbytes / 2**20)
            del table
        except duckdb.Error as exc:  # what every detector hit before scans left embeddings out
            result["full_scan"] = {"failed": str(exc).splitlines()[0]}
        service.close()
    result |= {"measured_at": datetime.now(UTC).isoformat(timespec="seconds"), "machine": f"{os.cpu_count()} cores"}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
