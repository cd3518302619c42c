"""Speed against NannyML on identical data: estimated performance (CBPE) and multivariate drift
(PCA reconstruction) on a 1M-row × 25-feature window.

Data: 25 numeric features (five blocks of five sharing a factor), a binary model whose score is
a logistic function of them, labels drawn from the score; a 100,000-row labelled reference and
a 1,000,000-row analysis window. Both tools get the same Parquet files:

* **ours** — ``EstimatedPerformance.prepare_reference`` + ``run`` and
  ``MultivariateDrift.prepare_reference`` + ``run``, in this process (the Arrow tables are read
  before the clock starts);
* **NannyML 0.13.1** — ``CBPE(...).fit(reference).estimate(analysis)`` and
  ``DataReconstructionDriftCalculator(...).fit(reference).calculate(analysis)`` with the analysis
  as one chunk, in its own virtual environment (``bench/nannyml/side.py``; its pins differ
  from ours: ``make nannyml-venv``), reading the same files with pandas before its clock starts.

The best of ``--repeat`` runs on each side (the machine is shared and noisy); the ratio is
NannyML's seconds over ours. The estimates of the two are printed side by side as a sanity
check (same method, so they should agree closely).

    .venv/bin/python bench/vs_nannyml.py [--rows 1000000] [--repeat 2]

writes ``bench/results/vs_nannyml.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from detectors import EstimatedPerformance, ModelSpec, MultivariateDrift, RunContext  # noqa: E402

NANNYML_PY = REPO / ".cache" / "nannyml-venv" / "bin" / "python"
FEATURES = [f"x{i:02d}" for i in range(25)]
METRICS = ["roc_auc", "f1", "precision", "recall", "accuracy"]
SPEC = ModelSpec(task="binary", classes=("0", "1"), positive_class="1", features=dict.fromkeys(FEATURES, "numeric"))
CTX = RunContext("bench", datetime(2026, 10, 8, tzinfo=UTC), datetime(2026, 10, 9, tzinfo=UTC))


def make(rng: np.random.Generator, n: int, shift: float) -> pa.Table:
    factors = rng.normal(0, 1, (n, 5))
    x = np.repeat(factors, 5, axis=1) * 0.7 + rng.normal(0, 0.7, (n, 25)) + shift
    weights = np.linspace(-0.3, 0.3, 25)
    score = 1 / (1 + np.exp(-(x @ weights)))
    label = (rng.random(n) < score).astype(np.int64)
    cols: dict[str, Any] = {name: x[:, i] for i, name in enumerate(FEATURES)}
    cols |= {"score": score, "prediction": (score >= 0.5).astype(np.int64), "label": label}
    return pa.table(cols)


def ours(reference: pa.Table, analysis: pa.Table) -> dict[str, Any]:
    ref = reference.set_column(reference.schema.get_field_index("label"), "label", reference.column("label").cast(pa.string()))
    cur = analysis.drop_columns(["label"]).set_column(
        analysis.schema.get_field_index("prediction"), "prediction", analysis.column("prediction").cast(pa.string())
    )
    ref = ref.set_column(ref.schema.get_field_index("prediction"), "prediction", ref.column("prediction").cast(pa.string()))
    estimator = EstimatedPerformance()
    config = estimator.config({"metrics": METRICS})
    started = time.perf_counter()
    stats = estimator.prepare_reference(ref, SPEC, config)
    findings = estimator.run(cur, stats, config, CTX)
    cbpe_seconds = time.perf_counter() - started
    drift = MultivariateDrift()
    started = time.perf_counter()
    mstats = drift.prepare_reference(ref, SPEC, None)
    mfinding = drift.run(cur, mstats, None, CTX)[0]
    reconstruction_seconds = time.perf_counter() - started
    return {
        "cbpe_seconds": cbpe_seconds,
        "cbpe_estimates": {f.metric: f.value for f in findings if f.segment is None and f.metric in METRICS},
        "reconstruction_seconds": reconstruction_seconds,
        "reconstruction_error": mfinding.value,
    }


def nannyml(data: Path) -> dict[str, Any]:
    if not NANNYML_PY.exists():
        raise SystemExit(f"NannyML's environment is missing: run `make nannyml-venv` (expects {NANNYML_PY})")
    out = subprocess.run(
        [str(NANNYML_PY), str(REPO / "bench" / "nannyml" / "side.py"), "--data", str(data),
         "--features", ",".join(FEATURES), "--metrics", ",".join(METRICS)],
        capture_output=True, text=True, check=True, env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reference-rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "vs_nannyml.json")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    reference, analysis = make(rng, args.reference_rows, 0.0), make(rng, args.rows, 0.3)
    with tempfile.TemporaryDirectory(prefix="loopwatch-nannyml-") as tmp:
        data = Path(tmp)
        pq.write_table(reference, data / "reference.parquet")
        pq.write_table(analysis, data / "analysis.parquet")
        runs_ours = [ours(pq.read_table(data / "reference.parquet"), pq.read_table(data / "analysis.parquet")) for _ in range(args.repeat)]
        runs_theirs = [nannyml(data) for _ in range(args.repeat)]
    best_ours = {k: min(r[k] for r in runs_ours) for k in ("cbpe_seconds", "reconstruction_seconds")}
    best_theirs = {k: min(r[k] for r in runs_theirs) for k in ("cbpe_seconds", "reconstruction_seconds")}
    result = {
        "rows": args.rows,
        "reference_rows": args.reference_rows,
        "features": len(FEATURES),
        "metrics": METRICS,
        "nannyml_version": runs_theirs[0]["nannyml"],
        "ours_seconds": {k: round(v, 3) for k, v in best_ours.items()},
        "nannyml_seconds": {k: round(v, 3) for k, v in best_theirs.items()},
        "speedup": {k: round(best_theirs[k] / best_ours[k], 1) for k in best_ours},
        "estimates": {
            "ours": runs_ours[0]["cbpe_estimates"] | {"reconstruction_error": runs_ours[0]["reconstruction_error"]},
            "nannyml": runs_theirs[0]["cbpe_estimates"] | {"reconstruction_error": runs_theirs[0]["reconstruction_error"]},
        },
        "repeat": args.repeat,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}",
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{args.rows:,} rows × {len(FEATURES)} features, reference {args.reference_rows:,} rows; best of {args.repeat}\n")
    print("| | ours | NannyML | ratio |\n|---|---|---|---|")
    for key, label in (("cbpe_seconds", "estimated performance (CBPE)"), ("reconstruction_seconds", "multivariate drift (PCA)")):
        print(f"| {label} | {best_ours[key]:.2f} s | {best_theirs[key]:.2f} s | {result['speedup'][key]}× |")
    print("\n| estimate | ours | NannyML |\n|---|---|---|")
    for key, value in result["estimates"]["ours"].items():
        theirs = result["estimates"]["nannyml"].get(key)
        print(f"| {key} | {value:.4f} | {theirs:.4f} |" if theirs is not None else f"| {key} | {value:.4f} | – |")


if __name__ == "__main__":
    main()
