"""Error rates of the canary comparison (``version_comparison``): false roll-backs under no
change, and how often it rolls back a slower or worse candidate (issue 13).

Each trial draws one window of live traffic in which a candidate version serves ``share`` of
the requests (it appears after a tenth of the window, as a rollout does) and the baseline the
rest, from the same population, then applies the scenario's change to the candidate only:

* ``no change`` — the two versions are the same model (A/A);
* ``slower`` — the candidate's latency is ×factor (all quantiles);
* ``misses more`` — the candidate's recall drops (more false negatives), labels on a share of rows;
* ``predicts differently`` — the candidate's score shifts (more positive calls).

    .venv/bin/python bench/canary_quality.py [--trials 500]

Writes ``bench/results/canary_quality.json``; the table is in docs/detectors.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from detectors import ModelSpec, RunContext, VersionComparison  # noqa: E402

SPEC = ModelSpec(
    task="binary",
    classes=("neg", "pos"),
    positive_class="pos",
    features={"x1": "numeric", "x2": "numeric", "site": "categorical"},
)
START = datetime(2026, 11, 2, 12, tzinfo=UTC)
END = START + timedelta(hours=1)


@dataclass(frozen=True)
class Change:
    latency_factor: float = 1.0
    recall_drop: float = 0.0  # extra share of positives the candidate misses
    score_shift: float = 0.0  # added to the candidate's logit


def canary_window(
    rng: np.random.Generator, rows: int, share: float, change: Change, label_share: float = 0.5
) -> pa.Table:
    """One window: baseline "1.0" and candidate "1.1" on the same population; ``change``
    applied to the candidate's rows only."""
    offsets = np.sort(rng.uniform(0, 3600, rows))
    candidate = (rng.random(rows) < share) & (offsets > 360)  # the rollout starts after 6 minutes
    x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
    site = rng.choice(["a", "b", "c"], rows, p=[0.5, 0.3, 0.2])
    positive = rng.random(rows) < 1 / (1 + np.exp(-(1.2 * x1 - 1.0)))
    logit = np.where(positive, 1.5, -1.5) + 0.8 * x2 + rng.normal(0, 1.0, rows)
    logit = np.where(candidate, logit + change.score_shift, logit)
    score = 1 / (1 + np.exp(-logit))
    says_positive = score >= 0.5
    missed = candidate & positive & (rng.random(rows) < change.recall_drop)
    says_positive = says_positive & ~missed
    latency = rng.lognormal(np.log(20), 0.35, rows) * np.where(candidate, change.latency_factor, 1.0)
    labelled = rng.random(rows) < label_share
    return pa.table(
        {
            "prediction_id": [f"r{i}" for i in range(rows)],
            "timestamp": pa.array([START + timedelta(seconds=float(s)) for s in offsets], pa.timestamp("us", tz="UTC")),
            "model_version": np.where(candidate, "1.1", "1.0"),
            "x1": x1,
            "x2": x2,
            "site": site,
            "prediction": np.where(says_positive, "pos", "neg"),
            "score": score,
            "latency_ms": latency,
            "label": pa.array(
                [("pos" if p else "neg") if k else None for p, k in zip(positive, labelled, strict=True)]
            ),
        }
    )


def decide(window: pa.Table) -> str:
    detector = VersionComparison()
    config = detector.config({})
    findings = detector.run(
        window, detector.prepare_reference(None, SPEC, config), config, RunContext("canary", START, END)
    )
    return str(findings[-1].details["decision"])


SCENARIOS: list[tuple[str, str, Change]] = [
    ("no change", "false roll-back", Change()),
    ("slower ×1.15", "power", Change(latency_factor=1.15)),
    ("slower ×1.30", "power", Change(latency_factor=1.30)),
    ("misses 10 % more positives", "power", Change(recall_drop=0.10)),
    ("misses 20 % more positives", "power", Change(recall_drop=0.20)),
    ("logit +0.5 (more positive calls)", "power", Change(score_shift=0.5)),
]


def measure(change: Change, trials: int, rows: int, share: float, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    decisions = [decide(canary_window(rng, rows, share, change)) for _ in range(trials)]
    return {d: decisions.count(d) / trials for d in ("promote", "hold", "roll_back")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--rows", type=int, default=20_000, help="requests in the window, both versions")
    parser.add_argument("--share", type=float, default=0.1, help="the candidate's share of the traffic")
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "canary_quality.json")
    args = parser.parse_args()
    out = []
    for i, (name, kind, change) in enumerate(SCENARIOS):
        started = time.perf_counter()
        rates = measure(change, args.trials, args.rows, args.share, seed=2000 + i)
        row = {
            "scenario": name,
            "kind": kind,
            **rates,
            "ms_per_window": round(1000 * (time.perf_counter() - started) / args.trials, 1),
        }
        out.append(row)
        print(
            f"{kind:<16} roll back {rates['roll_back']:6.1%}  hold {rates['hold']:6.1%}  promote {rates['promote']:6.1%}  {name}",
            flush=True,
        )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {"trials": args.trials, "rows": args.rows, "candidate_share": args.share, "scenarios": out}, indent=2
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
