"""A/B of the Arrow ingest path: this checkout against another revision, in alternating rounds.

The machines are shared and noisy, so a single run of ``bench/ingest.py`` per revision says
little about a 10 % difference. This script checks out ``--against`` into a temporary git
worktree and, for ``--rounds`` rounds, runs both servers on the same 1M rows (Arrow IPC,
245,760- and 50,000-row batches), alternating which goes first, with a plain
``pyarrow.parquet.write_table`` + fsync of the same rows once per round as the yardstick.
Both servers run with this checkout's virtual environment; each creates its data directory
with its own code.

    .venv/bin/python bench/ingest_ab.py --against d051e8c [--rounds 4]

prints medians (rows/s, the ratio to the plain write's median, and the server's CPU time per
row, which moves less than wall time when other work shares the cores) and writes
``bench/results/ingest_ab.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import ingest as bench  # noqa: E402

from monitor.formats import ARROW_STREAM, table_to_arrow_stream  # noqa: E402

ROWS = 1_000_000
BATCHES = (245_760, 50_000)
SETUP = """
import sys
from pathlib import Path
from monitor.service import Loopwatch
from monitor.settings import Settings
from monitor.schema import ModelSchema
spec = ModelSchema.model_validate_json(sys.argv[2])
service = Loopwatch(Settings(data_dir=Path(sys.argv[1])))
service.registry.register(spec)
_, key = service.keys.create("ingest", "bench")
service.close()
print(key)
"""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far, all threads (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_once(repo: Path, data_dir: Path, bodies: list[bytes], content_type: str, rows: int) -> tuple[float, float]:
    """(rows/s, server CPU µs per row) of one server of ``repo`` ingesting ``bodies`` (``rows``
    in all, one sender) into a fresh ``data_dir`` set up by that revision's own code. CPU time
    moves less than wall time when other work shares the cores."""
    key = (
        subprocess.run(
            [sys.executable, "-c", SETUP, str(data_dir), bench.SPEC.model_dump_json()],
            cwd=repo,
            env={**os.environ, "PYTHONPATH": str(repo)},
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    port = bench.free_port()
    proc = bench.start_server(data_dir, port, repo)
    try:
        cpu_before = cpu_seconds(proc.pid)
        seconds, _, accepted = bench.send(f"http://127.0.0.1:{port}", key, bodies, content_type, 1)
        cpu = cpu_seconds(proc.pid) - cpu_before
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    assert accepted == rows, f"{accepted} of {rows} rows accepted"
    return rows / seconds, cpu / rows * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", required=True, help="git revision to compare with (e.g. d051e8c)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "ingest_ab.json")
    args = parser.parse_args()
    table = bench.make_table(ROWS)
    bodies = {b: [table_to_arrow_stream(table.slice(s, b)) for s in range(0, ROWS, b)] for b in BATCHES}
    rates: dict[str, dict[int, list[float]]] = {"this": {b: [] for b in BATCHES}, "against": {b: [] for b in BATCHES}}
    cpu: dict[str, dict[int, list[float]]] = {"this": {b: [] for b in BATCHES}, "against": {b: [] for b in BATCHES}}
    plain: list[float] = []
    with tempfile.TemporaryDirectory(prefix="loopwatch-ab-") as tmp:
        work = Path(tmp)
        other = work / "against"
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", str(other), args.against],
            check=True,
            capture_output=True,
        )
        try:
            repos = {"this": REPO, "against": other}
            for r in range(args.rounds):
                plain.append(ROWS / bench.plain_write(table, work))
                order = ["this", "against"] if r % 2 == 0 else ["against", "this"]
                for name in order:
                    for batch in BATCHES:
                        rate, us = run_once(
                            repos[name], work / f"{name}-{r}-{batch}", bodies[batch], ARROW_STREAM, ROWS
                        )
                        rates[name][batch].append(rate)
                        cpu[name][batch].append(us)
                        print(
                            f"round {r + 1}: {name} {batch:,}-row batches {rate:,.0f} rows/s, {us:.2f} CPU µs/row",
                            flush=True,
                        )
        finally:
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(other)], check=False, capture_output=True
            )
    plain_median = statistics.median(plain)
    result: dict[str, Any] = {
        "against": args.against,
        "rounds": args.rounds,
        "rows": ROWS,
        "plain_write_rows_per_s": round(plain_median),
    }
    print(
        f"\nplain write median {plain_median:,.0f} rows/s; rows/s (ratio to the plain write) and server CPU µs per row\n\n"
        f"| batches | {args.against} | this checkout |\n|---|---|---|"
    )
    for batch in BATCHES:
        cells = []
        for name in ("against", "this"):
            median = statistics.median(rates[name][batch])
            cpu_median = statistics.median(cpu[name][batch])
            result[f"{name}_{batch}"] = {
                "median_rows_per_s": round(median),
                "ratio": round(median / plain_median, 3),
                "runs": [round(x) for x in rates[name][batch]],
                "median_cpu_us_per_row": round(cpu_median, 3),
                "cpu_us_per_row": [round(x, 3) for x in cpu[name][batch]],
            }
            cells.append(f"{median:,.0f} ({median / plain_median:.3f}), {cpu_median:.2f} µs")
        print(f"| {batch:,} | " + " | ".join(cells) + " |")
    result["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
