"""A/B of the JSON ingest path (one sender): this checkout against another checkout, alternating.

One run of ``bench/ingest.py`` per revision says little on a shared machine (the same code
measured 52k and 26k rows/s an hour apart), so this script runs both servers on the same
JSON bodies (5,000-record batches, serialised with orjson before the clock starts), for
``--rounds`` rounds, alternating which goes first, and reports median rows/s and the server's
CPU time per row (which moves less than wall time when other work shares the cores).

The other revision is a plain directory, e.g. made without touching any worktree with
``git archive 434c61c | tar -x -C /tmp/before``:

    .venv/bin/python bench/ingest_json_ab.py --against-dir /tmp/before [--rows 500000] [--rounds 3]

writes ``bench/results/ingest_json_ab.json``. Both servers run with this checkout's virtual
environment; each creates its data directory with its own code.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import ingest as bench  # noqa: E402
from ingest_ab import run_once  # noqa: E402

BATCH = 5_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against-dir", type=Path, required=True, help="a checkout of the other revision")
    parser.add_argument("--label", default=None, help="its name in the output (default: the directory)")
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "ingest_json_ab.json")
    args = parser.parse_args()
    table = bench.make_table(args.rows)
    bodies = [orjson.dumps(bench.json_records(table.slice(s, BATCH))) for s in range(0, args.rows, BATCH)]
    repos = {"this": REPO, "against": args.against_dir.resolve()}
    measured: dict[str, list[tuple[float, float]]] = {name: [] for name in repos}
    with tempfile.TemporaryDirectory(prefix="loopwatch-json-ab-") as tmp:
        for r in range(args.rounds):
            for name in ("against", "this") if r % 2 == 0 else ("this", "against"):
                rate, us = run_once(repos[name], Path(tmp) / f"{name}-{r}", bodies, "application/json", args.rows)
                measured[name].append((rate, us))
                print(f"round {r + 1}: {name} {rate:,.0f} rows/s, {us:.2f} server CPU µs/row", flush=True)
    result: dict[str, Any] = {
        "against_revision": args.label or str(args.against_dir),
        "rows": args.rows,
        "batch_rows": BATCH,
        "senders": 1,
        "rounds": args.rounds,
    }
    for name, values in measured.items():
        result[name] = {
            "median_rows_per_s": round(statistics.median(v[0] for v in values)),
            "median_cpu_us_per_row": round(statistics.median(v[1] for v in values), 2),
            "runs_rows_per_s": [round(v[0]) for v in values],
        }
    result["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
