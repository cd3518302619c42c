"""Benchmark: does judging a big reference on a 50,000-row-per-slice sample change verdicts?

A monitor's reference slice (the whole window, or one segment value) above
``reference_sample_rows`` (default 50,000) is judged on a stratified uniform sample of that
many rows (``detectors/sampling.py``). Each trial draws one 300,000-row reference of the
10-column scenario of ``bench/drift_scenarios.py`` (segment ``region`` 50/30/20%, so every
slice is sampled), prepares it **whole** and **sampled**, and judges the same current windows
against both:

* **false alarms under no change** — windows with any ``critical`` finding (40 tests each);
* **power** — windows in which the shifted column is ``critical`` overall — for the shifts of
  ``bench/alert_quality.py`` and a 0.11σ mean shift, just above the 0.1σ effect floor (where
  the sample's noise in the effect estimate would show first);
* the time and bytes of the prepared statistics, whole vs sampled.

Rates with 95% Wilson intervals. Writes ``bench/results/reference_sample.json`` and prints the
markdown table of ``docs/detectors.md``. The store draws its sample on DuckDB's
``hash(prediction_id)``; here the keys come from a seeded generator — both are uniform keys
independent of the values, which is all the sampling relies on.

    .venv/bin/python bench/reference_sample.py               # 100 trials, ~10 min on 2 vCPUs
    .venv/bin/python bench/reference_sample.py --trials 10   # quick check
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from drift_scenarios import SHIFTS, SPEC, Shift, _mean_shift, window  # noqa: E402

from detectors import DataDrift, RunContext, Status  # noqa: E402
from detectors.sampling import sample_table  # noqa: E402
from detectors.stats.intervals import wilson  # noqa: E402
from monitor.references import approx_nbytes  # noqa: E402

RESULTS = ROOT / "bench" / "results"
REFERENCE_ROWS = 300_000
CAP = 50_000
CURRENT_ROWS = (5_000, 50_000)
NEAR_FLOOR = Shift("mean +0.11σ (normal)", "normal", _mean_shift(0.11))
CHANGES: tuple[Shift | None, ...] = (None, *SHIFTS, NEAR_FLOOR)
START = datetime(2026, 11, 1, tzinfo=UTC)
CONTEXT = RunContext("sampling", START, START + timedelta(hours=1), reference="bench")


def _name(change: Shift | None) -> str:
    return "no change (any critical)" if change is None else change.name


def run(trials: int, seed: int) -> dict[str, Any]:
    detector = DataDrift()
    config = detector.config({"segments": ["region"], "details": False})
    hits = {(kind, n, _name(c)): 0 for kind in ("whole", "sampled") for n in CURRENT_ROWS for c in CHANGES}
    prepare_s = {"whole": 0.0, "sampled": 0.0}
    nbytes = {"whole": 0, "sampled": 0}
    rng = np.random.default_rng(seed)
    for _ in range(trials):
        table = window(rng, REFERENCE_ROWS)
        started = time.perf_counter()
        whole = detector.prepare_reference(table, SPEC, config)
        prepare_s["whole"] += time.perf_counter() - started
        started = time.perf_counter()
        sampled = detector.prepare_reference(
            sample_table(table, ["region"], CAP, seed=int(rng.integers(1 << 31))), SPEC, config
        )
        prepare_s["sampled"] += time.perf_counter() - started
        nbytes["whole"] = max(nbytes["whole"], approx_nbytes(whole))
        nbytes["sampled"] = max(nbytes["sampled"], approx_nbytes(sampled))
        for n in CURRENT_ROWS:
            for change in CHANGES:
                current = window(rng, n, change)
                for kind, reference in (("whole", whole), ("sampled", sampled)):
                    findings = detector.run(current, reference, config, CONTEXT)
                    critical = [f for f in findings if f.status is Status.CRITICAL]
                    if change is None:
                        hit = bool(critical)
                    else:
                        hit = any(f.column == change.column and f.segment is None for f in critical)
                    hits[(kind, n, _name(change))] += hit
    rates: dict[str, Any] = {}
    for (kind, n, name), k in hits.items():
        low, high = wilson(k, trials)
        rates.setdefault(f"{name} @ {REFERENCE_ROWS}/{n}", {})[kind] = {
            "hits": k, "trials": trials, "rate": k / trials, "ci95": [low, high]
        }
    return {
        "trials": trials,
        "seed": seed,
        "reference_rows": REFERENCE_ROWS,
        "cap_per_slice": CAP,
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "rates": rates,
        "prepare_seconds_mean": {k: v / trials for k, v in prepare_s.items()},
        "prepared_mb": {k: v / 1e6 for k, v in nbytes.items()},
    }


def _pct(entry: dict[str, Any]) -> str:
    low, high = entry["ci95"]
    return f"{entry['rate'] * 100:.1f}% ({low * 100:.1f}–{high * 100:.1f})"


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"| change @ reference/current rows | whole reference | sampled ({result['cap_per_slice']:,} per slice) |",
        "|---|---|---|",
    ]
    for name, entry in result["rates"].items():
        lines.append(f"| {name} | {_pct(entry['whole'])} | {_pct(entry['sampled'])} |")
    prep, mb = result["prepare_seconds_mean"], result["prepared_mb"]
    lines += [
        "",
        f"Prepared statistics: whole {mb['whole']:.0f} MB in {prep['whole']:.2f} s; "
        f"sampled {mb['sampled']:.0f} MB in {prep['sampled']:.2f} s (mean per reference, sampling included).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--seed", type=int, default=20261202)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    result = run(args.trials, args.seed)
    result["seconds"] = time.perf_counter() - started
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "reference_sample.json").write_text(json.dumps(result, indent=2))
    print(markdown(result))
    print(f"\n({result['seconds']:.0f} s; written to bench/results/reference_sample.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
