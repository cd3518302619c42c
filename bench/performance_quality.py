"""How trustworthy the ``performance`` detector's verdicts are: null rate, power, CI coverage.

Seeded trials of the detector exactly as a monitor runs it (default config: every binary
metric, a ``site`` segment with two values, Benjamini–Hochberg across metrics × segments).
Each trial draws a fresh reference (``REFERENCE_FACTOR`` × the current window, like a trailing
week against a day) and a fresh current window from known population rates, so the truth is
known:

* **false-alarm rate** — no change at all: the share of windows in which *any* metric of any
  slice is ``critical`` (labelled 500 / 2k / 10k rows; base FN rates 5%, 10%, 30%);
* **power** — the share of windows with a ``critical`` finding on the changed metric, for a
  +34% FN rate rise (7.1% → 9.5%, the measured miss of issue 10) and a +30% FP rate rise
  (5% → 6.5%);
* **small changes on a big window** — FN rate 10.0% → 10.2% and 10% → 11% on 200k labelled
  rows (60k positives): the second is always established by its interval, yet both are below
  the relevance margin (2 points at a 10% rate), so neither may be ``critical``;
* **CI coverage** — the share of trials whose reported 95% interval of the current metric
  (``details.current_ci``) and of the difference (``details.difference_ci``) contains the true
  value, for fpr, fnr, precision, recall, f1, accuracy and roc_auc (whole window).

Rows: truth ~ Bernoulli(prevalence 0.3); the prediction misses a positive with probability
``fnr`` and flags a negative with probability ``fpr``; the score is binormal given the truth
(N(1.5, 1) vs N(0, 1), independent of the prediction), so the true ROC-AUC is Φ(1.5/√2).

    python bench/performance_quality.py [--trials 400] [--seed 0]

writes ``bench/results/performance_quality.json`` and prints markdown tables. Importable:
``run(trials, seed) -> dict`` (``bench/alert_quality.py`` uses it).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from detectors import ModelSpec, Performance, PerformanceConfig, RunContext, Status  # noqa: E402
from detectors.stats.intervals import wilson  # noqa: E402

RESULTS = ROOT / "bench" / "results"
SPEC = ModelSpec(task="binary", classes=("none", "event"), positive_class="event", segments=("site",), name="bench")
PREVALENCE = 0.3
SCORE_SHIFT = 1.5
REFERENCE_FACTOR = 5
SIZES = (500, 2_000, 10_000)
BASE_FN_RATES = (0.05, 0.10, 0.30)
BASE_FP_RATE = 0.05
POWER_SIZES = (500, 2_000, 5_000, 10_000, 20_000)
METRICS = ("fpr", "fnr", "precision", "recall", "f1", "accuracy", "roc_auc")
CONTEXT = RunContext("bench", datetime(2026, 10, 8, tzinfo=UTC), datetime(2026, 10, 9, tzinfo=UTC))


@dataclass(frozen=True)
class Population:
    """The true rates a window is drawn from."""

    fnr: float
    fpr: float = BASE_FP_RATE
    prevalence: float = PREVALENCE
    score_shift: float = SCORE_SHIFT


@dataclass(frozen=True)
class Scenario:
    """One cell of the bench: ``current`` vs ``reference`` populations at a labelled size."""

    kind: str  # null | power | tiny
    labelled: int
    reference: Population
    current: Population
    reference_factor: int = REFERENCE_FACTOR
    watched: str | None = None  # power/tiny: the metric whose verdict is counted

    @property
    def name(self) -> str:
        ref, cur = self.reference, self.current
        change = (
            "no change"
            if ref == cur
            else f"fnr {ref.fnr:.1%}→{cur.fnr:.1%}"
            if ref.fnr != cur.fnr
            else f"fpr {ref.fpr:.1%}→{cur.fpr:.1%}"
        )
        return f"{change}, base fnr {ref.fnr:.1%}, n={self.labelled}"


def true_metrics(pop: Population) -> dict[str, float]:
    """Population values of every binary metric (what a 95% interval should contain)."""
    pi, fnr, fpr = pop.prevalence, pop.fnr, pop.fpr
    tp, fp, tn = pi * (1 - fnr), (1 - pi) * fpr, (1 - pi) * (1 - fpr)
    precision = tp / (tp + fp)
    recall = 1 - fnr
    return {
        "fpr": fpr,
        "fnr": fnr,
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall),
        "accuracy": tp + tn,
        "roc_auc": NormalDist().cdf(pop.score_shift / math.sqrt(2)),
    }


def sample(n: int, pop: Population, rng: np.random.Generator, sites: tuple[str, ...] = ("a", "b")) -> pa.Table:
    """``n`` labelled rows drawn from ``pop`` in the store's flat layout (the columns performance reads)."""
    truth = rng.random(n) < pop.prevalence
    flagged = np.where(truth, rng.random(n) >= pop.fnr, rng.random(n) < pop.fpr)
    score = rng.normal(np.where(truth, pop.score_shift, 0.0), 1.0)
    classes = np.array(SPEC.classes)
    return pa.table(
        {
            "prediction": pa.array(classes[flagged.astype(int)], pa.string()),
            "label": pa.array(classes[truth.astype(int)], pa.string()),
            "score": pa.array(score, pa.float64()),
            "site": pa.array(np.array(sites)[rng.integers(0, len(sites), n)], pa.string()),
        }
    )


def trial(scenario: Scenario, rng: np.random.Generator, config: PerformanceConfig | None = None) -> list[Any]:
    """The findings of one window: a fresh reference and a fresh current sample."""
    detector = Performance()
    cfg = config or detector.config({"segments": ["site"]})
    reference = sample(scenario.labelled * scenario.reference_factor, scenario.reference, rng)
    stats = detector.prepare_reference(reference, SPEC, cfg)
    return detector.run(sample(scenario.labelled, scenario.current, rng), stats, cfg, CONTEXT)


def null_scenarios() -> list[Scenario]:
    return [Scenario("null", n, Population(fnr), Population(fnr)) for fnr in BASE_FN_RATES for n in SIZES]


def power_scenarios() -> list[Scenario]:
    fn = [Scenario("power", n, Population(0.071), Population(0.095), watched="fnr") for n in POWER_SIZES]
    fp = [Scenario("power", n, Population(0.071, 0.05), Population(0.071, 0.065), watched="fpr") for n in POWER_SIZES]
    return fn + fp


def tiny_scenarios() -> list[Scenario]:
    """Established-or-not but irrelevant changes on big windows: never ``critical`` by design."""
    return [
        Scenario("tiny", 200_000, Population(0.10), Population(0.102), reference_factor=1, watched="fnr"),
        Scenario("tiny", 200_000, Population(0.10), Population(0.11), reference_factor=1, watched="fnr"),
    ]


def _rate(hits: int, n: int) -> dict[str, Any]:
    lo, hi = wilson(hits, n)
    return {"rate": hits / n if n else None, "hits": hits, "trials": n, "wilson95": [round(lo, 4), round(hi, 4)]}


def _contains(interval: Any, value: float) -> bool | None:
    if not interval or len(interval) != 2 or interval[0] is None or interval[1] is None:
        return None
    return bool(interval[0] - 1e-12 <= value <= interval[1] + 1e-12)


def measure(scenario: Scenario, trials: int, seed: int, index: int) -> dict[str, Any]:
    """Run ``trials`` windows of one scenario; count verdicts and interval hits."""
    critical = warning = watched_critical = established = 0
    cover: dict[str, dict[str, list[int]]] = {m: {"current": [0, 0], "difference": [0, 0]} for m in METRICS}
    truth_cur, truth_ref = true_metrics(scenario.current), true_metrics(scenario.reference)
    for t in range(trials):
        rng = np.random.default_rng([seed, index, t])
        findings = [f for f in trial(scenario, rng) if f.metric != "label_coverage"]
        critical += any(f.status is Status.CRITICAL for f in findings)
        warning += any(f.status is Status.WARNING for f in findings)
        whole = {f.metric: f for f in findings if f.segment is None}
        if scenario.watched:
            watched = whole[scenario.watched]
            watched_critical += watched.status is Status.CRITICAL
            established += bool(watched.details.get("established"))
        for metric in METRICS:
            f = whole.get(metric)
            if f is None or f.status is Status.INSUFFICIENT_DATA:
                continue
            for key, interval, value in (
                ("current", f.details.get("current_ci"), truth_cur[metric]),
                ("difference", f.details.get("difference_ci"), truth_cur[metric] - truth_ref[metric]),
            ):
                hit = _contains(interval, value)
                if hit is not None:
                    cover[metric][key][0] += hit
                    cover[metric][key][1] += 1
    out: dict[str, Any] = {
        "scenario": scenario.name,
        "kind": scenario.kind,
        "labelled": scenario.labelled,
        "reference_labelled": scenario.labelled * scenario.reference_factor,
        "reference": asdict(scenario.reference),
        "current": asdict(scenario.current),
        "any_critical": _rate(critical, trials),
        "any_warning": _rate(warning, trials),
        "coverage": {m: {k: v for k, v in c.items()} for m, c in cover.items()},
    }
    if scenario.watched:
        out["watched"] = scenario.watched
        out["watched_critical"] = _rate(watched_critical, trials)
        out["watched_established"] = _rate(established, trials)
    return out


def _pool_coverage(cells: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Coverage per metric and labelled size, pooled over the null and power scenarios."""
    pooled: dict[str, dict[str, dict[str, Any]]] = {}
    for metric in METRICS:
        pooled[metric] = {}
        for size in sorted({c["labelled"] for c in cells}):
            row = {}
            for key in ("current", "difference"):
                hits = sum(c["coverage"][metric][key][0] for c in cells if c["labelled"] == size)
                n = sum(c["coverage"][metric][key][1] for c in cells if c["labelled"] == size)
                row[key] = round(hits / n, 4) if n else None
                row[f"{key}_trials"] = n
            pooled[metric][str(size)] = row
    return pooled


def run(trials: int = 400, seed: int = 0) -> dict[str, Any]:
    """Every scenario with ``trials`` seeded windows each (the tiny-change case: trials // 10, ≥ 10)."""
    started = time.perf_counter()
    config = PerformanceConfig(segments=("site",))
    cells: list[dict[str, Any]] = []
    index = 0
    for group, n_trials in (
        (null_scenarios(), trials),
        (power_scenarios(), trials),
        (tiny_scenarios(), max(10, trials // 10)),
    ):
        for scenario in group:
            cells.append(measure(scenario, n_trials, seed, index))
            index += 1
    judged = [c for c in cells if c["kind"] != "tiny"]
    return {
        "benchmark": "performance_quality",
        "trials": trials,
        "seed": seed,
        "config": {f.name: getattr(config, f.name) for f in fields(config)},
        "prevalence": PREVALENCE,
        "reference_factor": REFERENCE_FACTOR,
        "null": [c for c in cells if c["kind"] == "null"],
        "power": [c for c in cells if c["kind"] == "power"],
        "tiny": [c for c in cells if c["kind"] == "tiny"],
        "coverage": _pool_coverage(judged),
        "seconds": round(time.perf_counter() - started, 1),
        "python": platform.python_version(),
    }


def _pct(cell: dict[str, Any]) -> str:
    lo, hi = cell["wilson95"]
    return f"{cell['rate']:.1%} ({lo:.1%}–{hi:.1%})"


def markdown(result: dict[str, Any]) -> str:
    """The tables docs/detectors.md carries."""
    lines = [
        f"Null: any metric of any slice `critical` per window ({result['trials']} trials per cell, seed "
        f"{result['seed']}; reference = {result['reference_factor']}× the window; Wilson 95% in brackets)",
        "",
        "| base FN rate | labelled | reference | any critical | any warning |",
        "|---|---|---|---|---|",
    ]
    for c in result["null"]:
        lines.append(
            f"| {c['reference']['fnr']:.0%} | {c['labelled']:,} | {c['reference_labelled']:,} | "
            f"{_pct(c['any_critical'])} | {_pct(c['any_warning'])} |"
        )
    lines += [
        "",
        "Power: the changed metric `critical` (whole window)",
        "",
        "| change | labelled | reference | critical | established (CI clear of zero after BH) |",
        "|---|---|---|---|---|",
    ]
    for c in result["power"] + result["tiny"]:
        ref, cur = c["reference"], c["current"]
        metric = c["watched"]
        change = f"{metric} {ref[metric]:.1%} → {cur[metric]:.1%}"
        lines.append(
            f"| {change} | {c['labelled']:,} | {c['reference_labelled']:,} | {_pct(c['watched_critical'])} | "
            f"{_pct(c['watched_established'])} |"
        )
    sizes = list(next(iter(result["coverage"].values())))
    lines += [
        "",
        "Coverage of the reported 95% intervals (current metric / difference), pooled over scenarios",
        "",
        "| metric | " + " | ".join(f"n={int(s):,}" for s in sizes) + " |",
        "|---|" + "---|" * len(sizes),
    ]
    for metric, by_size in result["coverage"].items():
        cells = [
            f"{by_size[s]['current']:.1%} / {by_size[s]['difference']:.1%}"
            if by_size[s]["current"] is not None
            else "—"
            for s in sizes
        ]
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "performance_quality.json")
    args = parser.parse_args(argv)
    result = run(args.trials, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(result))
    print(f"\n{result['seconds']} s; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
