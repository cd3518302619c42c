"""NannyML's side of ``bench/vs_nannyml.py``; runs in NannyML's own virtual environment.

Reads ``reference.parquet`` and ``analysis.parquet`` from ``--data``, times CBPE (fit on the
reference, estimate on the analysis period as one chunk) and the
``DataReconstructionDriftCalculator`` (fit, calculate) and prints one JSON line: seconds and
the estimates, for the caller to compare. Loading the files is not timed.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import nannyml as nml
import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--features", required=True, help="comma-separated feature columns")
    parser.add_argument("--metrics", required=True, help="comma-separated CBPE metrics")
    args = parser.parse_args()
    reference = pd.read_parquet(args.data / "reference.parquet")
    analysis = pd.read_parquet(args.data / "analysis.parquet")
    features = args.features.split(",")
    metrics = args.metrics.split(",")
    out: dict[str, object] = {"nannyml": nml.__version__, "rows": len(analysis), "reference_rows": len(reference)}

    started = time.perf_counter()
    cbpe = nml.CBPE(
        metrics=metrics,
        y_pred_proba="score",
        y_pred="prediction",
        y_true="label",
        problem_type="classification_binary",
        chunk_number=1,
    )
    cbpe.fit(reference)
    estimated = cbpe.estimate(analysis).to_df()
    out["cbpe_seconds"] = time.perf_counter() - started
    out["cbpe_estimates"] = {m: float(estimated[(m, "value")].iloc[-1]) for m in metrics}

    started = time.perf_counter()
    drift = nml.DataReconstructionDriftCalculator(column_names=features, chunk_number=1)
    drift.fit(reference)
    result = drift.calculate(analysis).to_df()
    out["reconstruction_seconds"] = time.perf_counter() - started
    out["reconstruction_error"] = float(result[("reconstruction_error", "value")].iloc[-1])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
