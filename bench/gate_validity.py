"""Validity of the release gate: false-ship rate and power on simulated candidates (issue 13).

Every scenario sets the candidate's (and champion's) true metrics, draws a fresh evaluation set
per trial, runs the gate's pure evaluation and counts verdicts:

* **false ship** — the truth sits exactly on a threshold (or violates it): the gate must ship
  in at most α = 2.5 % of trials (one-sided, confidence 0.95), ≤ 5 % being the target;
* **power** — a compliant candidate at the sample size the gate itself asks for (80 % per
  criterion) and at twice that;
* **family-wise false fail** — 3 criteria × 13 slices all on their thresholds: Holm against no
  adjustment.

    .venv/bin/python bench/gate_validity.py [--trials 1000]

Writes ``bench/results/gate_validity.json``; the table is in docs/gates.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from detectors.stats.sample_size import one_sample_proportion_n, paired_difference_n  # noqa: E402
from gates.evaluate import EvaluationSet, evaluate  # noqa: E402
from gates.spec import GateSpec  # noqa: E402

ALPHA = 0.025


def simulated_set(
    rng: np.random.Generator,
    n: int,
    *,
    recall: float,
    fpr: float,
    prevalence: float = 0.5,
    regions: int = 1,
    champion_recall: float | None = None,
    agreement: float = 0.9,
) -> EvaluationSet:
    """``n`` labelled rows with the given prevalence; a candidate with true ``recall`` and
    ``fpr``; optionally a champion with true ``champion_recall`` whose outcome on each positive
    copies the candidate's with probability ``agreement`` (paired, as two versions of one model
    mostly agree); rows spread evenly over ``regions`` slice values."""
    positive = rng.random(n) < prevalence
    cand_hit = rng.random(n) < recall
    false_alarm = rng.random(n) < fpr
    champion = None
    if champion_recall is not None:
        # Copy with probability a, else a hit with probability x: recall a·recall + (1 − a)·x.
        x = (champion_recall - agreement * recall) / (1 - agreement)
        if not 0 <= x <= 1:
            raise ValueError("no such champion: lower the agreement")
        champ_hit = np.where(rng.random(n) < agreement, cand_hit, rng.random(n) < x)
        champion = np.where(np.where(positive, champ_hit, false_alarm), "brake", "none")
    return EvaluationSet(
        task="binary",
        labels=np.where(positive, "brake", "none"),
        candidate=np.where(np.where(positive, cand_hit, false_alarm), "brake", "none"),
        champion=champion,
        slices={"region": np.array([f"r{i % regions}" for i in range(n)], dtype=object)},
        positive_class="brake",
    )


def scored_set(rng: np.random.Generator, n: int, auc: float, champion_auc: float | None = None) -> EvaluationSet:
    """Binormal scores (unit-variance noise) with the given true AUCs, Φ(d/√2); the champion's
    noise is correlated 0.7 with the candidate's, as two versions of one model are."""

    def separation(a: float) -> float:
        return float(np.sqrt(2) * NormalDist().inv_cdf(a))

    positive = rng.random(n) < 0.5
    e1, e2 = rng.normal(size=n), rng.normal(size=n)
    cand_score = separation(auc) * positive + e1
    champ_score = None
    if champion_auc is not None:
        champ_score = separation(champion_auc) * positive + 0.7 * e1 + np.sqrt(1 - 0.49) * e2
    labels = np.where(positive, "brake", "none")
    calls = np.where(cand_score > separation(auc) / 2, "brake", "none")
    return EvaluationSet(
        "binary", labels, calls, calls if champ_score is not None else None, {}, "brake", cand_score, champ_score
    )


def regression_set(rng: np.random.Generator, n: int, *, noise: float) -> EvaluationSet:
    """Targets ~N(50, 10); predictions with Gaussian noise of sd ``noise`` (MAE = noise·√(2/π))."""
    truth = rng.normal(50, 10, n)
    return EvaluationSet("regression", truth, truth + rng.normal(0, noise, n), None, {}, None)


def regression_rmse_set(rng: np.random.Generator, n: int, *, sd: float) -> EvaluationSet:
    """Targets ~N(50, 10), predictions with Gaussian noise of sd ``sd`` (RMSE = sd)."""
    return regression_set(rng, n, noise=sd)


def spec(criteria: list[dict[str, object]], slices: list[str] | None = None) -> GateSpec:
    return GateSpec.model_validate(
        {
            "name": "validity",
            "model": "sim",
            "positive_class": "brake",
            "criteria": criteria,
            "slices": slices or [],
            "min_samples": 20,
        }
    )


@dataclass
class Scenario:
    name: str
    kind: str  # "false ship", "power", "family-wise false fail"
    spec: GateSpec
    make: Callable[[np.random.Generator], EvaluationSet]
    rows: int


def scenarios() -> list[Scenario]:
    recall_min = spec([{"metric": "recall", "min": 0.80}])
    two = spec([{"metric": "recall", "min": 0.80}, {"metric": "fpr", "max": 0.10}])
    three_sliced = spec(
        [{"metric": "recall", "min": 0.80}, {"metric": "fpr", "max": 0.10}, {"metric": "accuracy", "min": 0.85}],
        ["region"],
    )
    ni = spec([{"metric": "recall", "non_inferiority": 0.05}])
    mae = GateSpec.model_validate(
        {"name": "v", "model": "sim", "criteria": [{"metric": "mae", "max": 1.5958}], "min_samples": 20}
    )
    planned_recall = 2 * (one_sample_proportion_n(0.90, 0.80, ALPHA) or 0)
    planned_two = 2 * max(
        one_sample_proportion_n(0.90, 0.80, ALPHA) or 0, one_sample_proportion_n(0.05, 0.10, ALPHA) or 0
    )
    discordant = 0.2 * 0.85 * 0.15  # equal recall 0.85, agreement 0.8: each discordant direction
    planned_ni = 2 * (paired_difference_n(discordant, discordant, 0.05, ALPHA) or 0)
    out: list[Scenario] = []
    for n in (400, 2000, 10000):
        out.append(
            Scenario(
                f"recall ≥ 0.80, truth 0.80 (on the threshold), {n} rows",
                "false ship",
                recall_min,
                lambda rng, n=n: simulated_set(rng, n, recall=0.80, fpr=0.05),
                n,
            )
        )
    out.append(
        Scenario(
            "recall ≥ 0.80, truth 0.78 (violates by 0.02), 2000 rows",
            "false ship",
            recall_min,
            lambda rng: simulated_set(rng, 2000, recall=0.78, fpr=0.05),
            2000,
        )
    )
    out.append(
        Scenario(
            "recall ≥ 0.80 and fpr ≤ 0.10, truths 0.95 / 0.10 (fpr on its ceiling), 2000 rows",
            "false ship",
            two,
            lambda rng: simulated_set(rng, 2000, recall=0.95, fpr=0.10),
            2000,
        )
    )
    out.append(
        Scenario(
            "recall non-inferior (margin 0.05), candidate 0.80 vs champion 0.85 (at the margin), 800 rows",
            "false ship",
            ni,
            lambda rng: simulated_set(rng, 800, recall=0.80, fpr=0.05, champion_recall=0.85, agreement=0.6),
            800,
        )
    )
    auc_min = spec([{"metric": "roc_auc", "min": 0.80}])
    auc_ni = spec([{"metric": "roc_auc", "non_inferiority": 0.03}])
    f1_min = spec([{"metric": "f1", "min": 0.80}])
    rmse_max = GateSpec.model_validate(
        {"name": "v", "model": "sim", "criteria": [{"metric": "rmse", "max": 2.0}], "min_samples": 20}
    )
    out += [
        Scenario(
            "roc_auc ≥ 0.80, truth 0.80 (DeLong), 1000 rows",
            "false ship",
            auc_min,
            lambda rng: scored_set(rng, 1000, 0.80),
            1000,
        ),
        Scenario(
            "roc_auc non-inferior (0.03), candidate 0.82 vs champion 0.85, 2000 rows",
            "false ship",
            auc_ni,
            lambda rng: scored_set(rng, 2000, 0.82, champion_auc=0.85),
            2000,
        ),
        Scenario(
            "f1 ≥ 0.80, truth 0.80 (bootstrap), 1000 rows",
            "false ship",
            f1_min,
            lambda rng: simulated_set(rng, 1000, recall=0.8, fpr=0.2),
            1000,
        ),
        Scenario(
            "rmse ≤ 2.0, truth 2.0, 2000 rows",
            "false ship",
            rmse_max,
            lambda rng: regression_rmse_set(rng, 2000, sd=2.0),
            2000,
        ),
    ]
    out.append(
        Scenario(
            "mae ≤ 1.5958, truth 2·√(2/π) = 1.5958 (on the threshold), 2000 rows",
            "false ship",
            mae,
            lambda rng: regression_set(rng, 2000, noise=2.0),
            2000,
        )
    )
    for factor in (1, 2):
        out.append(
            Scenario(
                f"recall ≥ 0.80, truth 0.90, {factor}× the planned {planned_recall} rows",
                "power",
                recall_min,
                lambda rng, k=factor: simulated_set(rng, k * planned_recall, recall=0.90, fpr=0.05),
                factor * planned_recall,
            )
        )
        out.append(
            Scenario(
                f"recall ≥ 0.80 and fpr ≤ 0.10, truths 0.90 / 0.05, {factor}× the planned {planned_two} rows",
                "power",
                two,
                lambda rng, k=factor: simulated_set(rng, k * planned_two, recall=0.90, fpr=0.05),
                factor * planned_two,
            )
        )
        out.append(
            Scenario(
                f"recall non-inferior (0.05), equal recall 0.85, {factor}× the planned {planned_ni} rows",
                "power",
                ni,
                lambda rng, k=factor: simulated_set(
                    rng, k * planned_ni, recall=0.85, fpr=0.05, champion_recall=0.85, agreement=0.8
                ),
                factor * planned_ni,
            )
        )
    out.append(
        Scenario(
            "3 criteria × (all + 12 regions), every truth on its threshold, 2400 rows",
            "family-wise false fail",
            three_sliced,
            lambda rng: simulated_set(rng, 2400, recall=0.80, fpr=0.10, regions=12),
            2400,
        )
    )
    return out


def measure(scenario: Scenario, trials: int, seed: int) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    verdicts: list[str] = []
    any_raw_fail = 0
    started = time.perf_counter()
    for _ in range(trials):
        result = evaluate(scenario.spec, scenario.make(rng))
        verdicts.append(result.verdict)
        any_raw_fail += any(c.p_fail is not None and c.p_fail <= ALPHA for c in result.checks)
    return {
        "scenario": scenario.name,
        "kind": scenario.kind,
        "rows": scenario.rows,
        "trials": trials,
        "ship": verdicts.count("ship") / trials,
        "no_ship": verdicts.count("no_ship") / trials,
        "insufficient_evidence": verdicts.count("insufficient_evidence") / trials,
        "any_fail_unadjusted": any_raw_fail / trials,
        "ms_per_evaluation": round(1000 * (time.perf_counter() - started) / trials, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "gate_validity.json")
    args = parser.parse_args()
    rows = []
    for i, scenario in enumerate(scenarios()):
        row = measure(scenario, args.trials, seed=1000 + i)
        rows.append(row)
        print(
            f"{row['kind']:<24} ship {row['ship']:6.1%}  no-ship {row['no_ship']:6.1%}  "
            f"insufficient {row['insufficient_evidence']:6.1%}  (unadjusted any-fail {row['any_fail_unadjusted']:5.1%})"
            f"  {row['scenario']}",
            flush=True,
        )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps({"trials": args.trials, "alpha_one_sided": ALPHA, "scenarios": rows}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
