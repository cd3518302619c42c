"""Error rates of ``multivariate_drift`` (PCA reconstruction error): false alarms under no
change and power on joint changes that leave every marginal unchanged.

Features as in ``tests/detectors/test_multivariate_drift.py``: eight numeric (f0–f1 correlated
by ρ = 0.8; f2–f4 sharing a common factor; f5–f7 independent), a categorical and a boolean.
Reference: 20,000 rows; windows of 500 / 2,000 / 5,000 / 20,000 rows. Changes (marginals
unchanged in every case):

* ``rho 0.8→0.7``, ``0.8→0.6``, ``0.8→0.4`` and ``0.8→−0.8`` (the correlation flip);
* ``factor gone`` — f2–f4 lose their common factor (each still N(0, 1)).

Each cell: the share of seeded trials with a ``critical`` finding for the whole window and its
95 % Wilson interval. The per-column ``data_drift`` detector is run on the flip for contrast.

    .venv/bin/python bench/multivariate_drift.py [--trials 200] [--seed 0]

writes ``bench/results/multivariate_drift.json`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from detectors import DataDrift, ModelSpec, MultivariateDrift, RunContext, Status  # noqa: E402
from detectors.stats.intervals import wilson  # noqa: E402

FEATURES = {f"f{i}": "numeric" for i in range(8)} | {"road": "categorical", "night": "boolean"}
SPEC = ModelSpec(task="binary", classes=("no", "yes"), positive_class="yes", features=FEATURES)
CTX = RunContext("bench", datetime(2026, 10, 8, tzinfo=UTC), datetime(2026, 10, 9, tzinfo=UTC))
SIZES = (500, 2_000, 5_000, 20_000)
CHANGES = {
    "no change": (0.8, True),
    "rho 0.8→0.7": (0.7, True),
    "rho 0.8→0.6": (0.6, True),
    "rho 0.8→0.4": (0.4, True),
    "rho 0.8→−0.8": (-0.8, True),
    "factor gone": (0.8, False),
}


def window(rng: np.random.Generator, n: int, rho: float = 0.8, factor: bool = True) -> pa.Table:
    cols: dict[str, Any] = {}
    a = rng.normal(0, 1, n)
    cols["f0"] = a
    cols["f1"] = rho * a + np.sqrt(1 - rho**2) * rng.normal(0, 1, n)
    common = rng.normal(0, 1, n)
    for i in (2, 3, 4):
        cols[f"f{i}"] = (0.7 * common + 0.71 * rng.normal(0, 1, n)) if factor else rng.normal(0, 0.9950, n)
    for i in (5, 6, 7):
        cols[f"f{i}"] = rng.normal(0, 1, n)
    cols["road"] = rng.choice(["urban", "highway", "rural"], n, p=[0.5, 0.3, 0.2])
    cols["night"] = rng.random(n) < 0.3
    return pa.table(cols)


def run(trials: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    detector = MultivariateDrift()
    reference = detector.prepare_reference(window(rng, 20_000), SPEC, None)
    cells: dict[str, dict[str, Any]] = {}
    started = time.perf_counter()
    for name, (rho, factor) in CHANGES.items():
        cells[name] = {}
        for n in SIZES:
            hits = sum(
                detector.run(window(rng, n, rho, factor), reference, None, CTX)[0].status is Status.CRITICAL
                for _ in range(trials)
            )
            lo, hi = wilson(hits, trials, 0.95)
            cells[name][str(n)] = {"rate": hits / trials, "ci": [round(lo, 3), round(hi, 3)]}
    column = DataDrift()
    column_ref = column.prepare_reference(window(rng, 20_000), SPEC, None)
    flip_any_column = sum(
        any(f.column and f.status is Status.CRITICAL for f in column.run(window(rng, 5_000, -0.8), column_ref, None, CTX))
        for _ in range(min(trials, 100))
    )
    return {
        "trials": trials,
        "cells": cells,
        "per_column_drift_on_flip_5000": flip_any_column / min(trials, 100),
        "components": reference.components,
        "variance_explained": round(reference.explained, 3),
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "multivariate_drift.json")
    args = parser.parse_args()
    result = run(args.trials, args.seed) | {
        "seed": args.seed,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1) + "\n")
    print(f"Share of windows `critical` ({args.trials} seeded trials per cell, 95% Wilson interval):\n")
    print("| change | " + " | ".join(f"{n:,} rows" for n in SIZES) + " |")
    print("|---|" + "---|" * len(SIZES))
    for name, row in result["cells"].items():
        cells = [f"{row[str(n)]['rate']:.1%} [{row[str(n)]['ci'][0]:.1%}, {row[str(n)]['ci'][1]:.1%}]" for n in SIZES]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"\nper-column data_drift, any column critical on the flip at 5,000 rows: {result['per_column_drift_on_flip_5000']:.0%}")
    print(f"PCA: {result['components']} components, {result['variance_explained']:.0%} of the variance; {result['seconds']} s")


if __name__ == "__main__":
    main()
