"""Benchmark: how often do drift verdicts cry wolf, and how often do they catch what matters?

Seeded trials of the ``data_drift`` detector (10 columns of several shapes and cardinalities,
judged overall and per value of a 3-valued segment, Benjamini–Hochberg across all of them),
for the default calibrated rule and for ``compat: evidently`` side by side:

* **false-alarm rate under no change** — the share of windows in which *any* finding is
  ``critical`` — at 1k/1k, 2k/2k, 50k/1k, 50k/5k and 10k/10k reference/current rows, plus
  each column's own critical rate (does any kind or cardinality misbehave?);
* **power** — the share of windows in which the shifted column is ``critical`` — for a 0.2σ
  mean shift, 10 points of share moved between common categories, a binary share 30% → 40%;
* **a 0.01σ shift on 1M/1M rows** — statistically detectable, practically irrelevant: the
  share of windows in which it is ``critical`` (also with ``method: ks``);
* the performance detector's interval coverage and alert rates (``bench/performance_quality.py``).

Each rate comes with its 95% Wilson interval. Writes ``bench/results/alert_quality.json`` and
prints the markdown tables used in ``docs/detectors.md``.

    .venv/bin/python bench/alert_quality.py                  # full run, a few minutes
    .venv/bin/python bench/alert_quality.py --trials 50      # quick check
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from drift_scenarios import CATEGORICAL, NUMERIC, SHIFTS, SPEC, TINY_SHIFT, window  # noqa: E402

from detectors import DataDrift, ModelSpec, RunContext, Status  # noqa: E402
from detectors.stats.intervals import wilson  # noqa: E402

RESULTS = ROOT / "bench" / "results"
SIZES = ((1000, 1000), (2000, 2000), (50_000, 1000), (50_000, 5000), (10_000, 10_000))
MODES = {"calibrated": {}, "evidently": {"compat": "evidently"}}
START = datetime(2026, 11, 1, tzinfo=UTC)
CONTEXT = RunContext("quality", START, START + timedelta(hours=1), reference="bench")


def _rate(hits: int, trials: int) -> dict[str, Any]:
    low, high = wilson(hits, trials)
    return {"hits": hits, "trials": trials, "rate": hits / trials, "ci95": [low, high]}


def _critical_columns(findings: list[Any]) -> set[str]:
    return {f.column for f in findings if f.status is Status.CRITICAL and f.column and f.segment is None}


def null_rates(trials: int, seed: int) -> dict[str, Any]:
    """Per mode and size: windows with any critical finding (any column, any segment)."""
    detector = DataDrift()
    out: dict[str, Any] = {}
    for mode, params in MODES.items():
        config = detector.config({**params, "segments": ["region"], "details": False})
        per_size: dict[str, Any] = {}
        per_column = dict.fromkeys((*NUMERIC, *CATEGORICAL), 0)
        total = 0
        for n_ref, n_cur in SIZES:
            rng = np.random.default_rng([seed, n_ref, n_cur])
            any_critical = 0
            for _ in range(trials):
                reference = detector.prepare_reference(window(rng, n_ref), SPEC, config)
                findings = detector.run(window(rng, n_cur), reference, config, CONTEXT)
                any_critical += any(f.status is Status.CRITICAL for f in findings)
                for column in _critical_columns(findings):
                    per_column[column] += 1
                total += 1
            per_size[f"{n_ref}/{n_cur}"] = _rate(any_critical, trials)
        out[mode] = {"any_critical": per_size, "per_column": {c: _rate(k, total) for c, k in per_column.items()}}
    return out


def power(trials: int, seed: int, sizes: tuple[tuple[int, int], ...] = ((5000, 5000), (1000, 1000))) -> dict[str, Any]:
    """Per mode, size and shift: windows in which the shifted column (overall) is critical."""
    detector = DataDrift()
    out: dict[str, Any] = {}
    for mode, params in MODES.items():
        config = detector.config({**params, "segments": ["region"], "details": False})
        rows: dict[str, Any] = {}
        for n_ref, n_cur in sizes:
            for shift in SHIFTS:
                rng = np.random.default_rng([seed, n_ref, n_cur, SHIFTS.index(shift)])
                hits = 0
                for _ in range(trials):
                    reference = detector.prepare_reference(window(rng, n_ref), SPEC, config)
                    findings = detector.run(window(rng, n_cur, shift), reference, config, CONTEXT)
                    hits += shift.column in _critical_columns(findings)
                rows[f"{shift.name} @ {n_ref}/{n_cur}"] = _rate(hits, trials)
        out[mode] = rows
    return out


def tiny_shift(trials: int, seed: int, rows: int = 1_000_000) -> dict[str, Any]:
    """A 0.01σ shift on 1M/1M rows: is it ever critical? (default test, and ``method: ks``)."""
    spec = ModelSpec(task="regression", features={"normal": "numeric"})
    detector = DataDrift()
    out: dict[str, Any] = {}
    variants = {
        "calibrated": {},
        "calibrated, method ks": {"method": "ks"},
        "evidently": {"compat": "evidently"},
        "evidently, method ks": {"compat": "evidently", "method": "ks"},
    }
    rng = np.random.default_rng([seed, rows])
    windows = [(window(rng, rows, columns=("normal",)), window(rng, rows, TINY_SHIFT, columns=("normal",)))
               for _ in range(trials)]
    for name, params in variants.items():
        config = detector.config({**params, "details": False})
        hits = 0
        for reference_table, current_table in windows:
            reference = detector.prepare_reference(reference_table, spec, config)
            findings = detector.run(current_table, reference, config, CONTEXT)
            hits += "normal" in _critical_columns(findings)
        out[name] = _rate(hits, trials)
    return out


def performance(trials: int, seed: int) -> dict[str, Any] | None:
    """The performance detector's coverage and alert rates, if its benchmark is present."""
    try:
        import performance_quality  # type: ignore[import-not-found]
    except ImportError:
        return None
    result: dict[str, Any] = performance_quality.run(trials=trials, seed=seed)
    return result


def _pct(entry: dict[str, Any]) -> str:
    low, high = entry["ci95"]
    return f"{entry['rate'] * 100:.1f}% ({low * 100:.1f}–{high * 100:.1f})"


def _side_by_side(
    title: str, key: str, calibrated: dict[str, Any], evidently: dict[str, Any], *, head: bool = False
) -> list[str]:
    """One markdown table: a row per key, the calibrated rate next to Evidently's."""
    first = "calibrated (default)" if head else "calibrated"
    lines = [] if head else [""]
    lines += [f"### {title}", "", f"| {key} | {first} | `--compat evidently` |", "|---|---|---|"]
    lines += [f"| {name} | {_pct(calibrated[name])} | {_pct(evidently[name])} |" for name in calibrated]
    return lines


def markdown(result: dict[str, Any]) -> str:
    null, power = result["null"], result["power"]
    lines = _side_by_side(
        "False alarms under no change (share of windows with any `critical` finding)",
        "reference / current rows", null["calibrated"]["any_critical"], null["evidently"]["any_critical"],
        head=True,
    )
    lines += _side_by_side(
        "Critical rate per column under no change (all sizes pooled, overall window)",
        "column", null["calibrated"]["per_column"], null["evidently"]["per_column"],
    )
    lines += _side_by_side(
        "Power (share of windows in which the shifted column is `critical`)",
        "shift @ rows", power["calibrated"], power["evidently"],
    )
    lines += ["", "### A 0.01σ shift on 1M / 1M rows (share of windows `critical`)", ""]
    lines += ["| rule | critical |", "|---|---|"]
    for name, entry in result["tiny_shift"].items():
        lines.append(f"| {name} | {_pct(entry)} |")
    if result.get("performance"):
        import performance_quality  # type: ignore[import-not-found]

        lines += ["", "### Performance detector (`bench/performance_quality.py`)", ""]
        lines.append(performance_quality.markdown(result["performance"]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=200, help="windows per size and mode (null and power)")
    parser.add_argument("--big-trials", type=int, default=5, help="1M-row windows for the 0.01σ shift")
    parser.add_argument("--seed", type=int, default=20261202)
    args = parser.parse_args(argv)
    # Evidently's KS path asks scipy for exact p-values, which scipy gives up on for some sizes.
    warnings.filterwarnings("ignore", message="ks_2samp: Exact calculation unsuccessful")
    started = time.perf_counter()
    result: dict[str, Any] = {
        "trials": args.trials,
        "seed": args.seed,
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "null": null_rates(args.trials, args.seed),
        "power": power(args.trials, args.seed),
        "tiny_shift": tiny_shift(args.big_trials, args.seed),
    }
    perf = performance(args.trials, args.seed)
    if perf is not None:
        result["performance"] = perf
    result["seconds"] = time.perf_counter() - started
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "alert_quality.json").write_text(json.dumps(result, indent=2))
    print(markdown(result))
    print(f"\n({result['seconds']:.0f} s; written to bench/results/alert_quality.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
