"""Backfill the same sealed history with the embedded engine and the Spark engine: wall time,
peak memory (the process tree: Python and, for Spark, its JVM) and whether every finding agrees.

The history is generated (speed drifts on one day, the model errs more on it, 80 % labelled),
ingested through the store a day at a time and sealed after each day, as a server's seal job
does (so the id index, the catalog and the labels are the real ones, and both engines read the
same files); with ``--data-dir`` it is kept and reused by later runs of the same size. Two monitors are backfilled over it: ``data_drift``
(1-day windows, 7-day trailing reference, segmented by region, references sampled to the default
50k rows per slice) and ``performance`` (1-day windows, 7-day trailing reference). Each engine runs
in its own process so its peak memory is its own, and is stopped after ``--timeout`` seconds: a
stopped run reports how many windows it judged, the time per window, and the parity of those.

    .venv/bin/python bench/spark_parity.py [--days 30] [--rows 1000000] [--cores 1 2]
    # the issue's scale (docs/spark.md has the figures):
    .venv/bin/python bench/spark_parity.py --days 90 --rows 50000000 --cores 2 1 \
        --data-dir /work/bench-data/h90d50m --timeout 1200
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

MODEL = "harsh-braking"
SPEC: dict[str, Any] = {
    "name": MODEL,
    "task": "binary",
    "classes": ["none", "brake"],
    "positive_class": "brake",
    "features": {"speed_kmh": "numeric", "road_type": "categorical", "night": "boolean"},
    "segments": ["region", "firmware"],
}
MONITORS: list[dict[str, Any]] = [
    {
        "name": "feature-drift",
        "detector": "data_drift",
        "every": "1d",
        "window": "1d",
        "reference": {"kind": "trailing", "length": "7d"},
        "segments": ["region"],
    },
    {
        "name": "perf",
        "detector": "performance",
        "every": "1d",
        "window": "1d",
        "reference": {"kind": "trailing", "length": "7d"},
        "params": {"min_coverage": 0.0},
    },
]
COMPARED = ("value", "threshold", "p_value", "p_value_adjusted", "effect_size")


def generate(data: Path, days: int, rows: int, start: datetime) -> dict[str, Any]:
    """Ingest ``rows`` predictions over ``days`` days (day by day), label 80 %, seal everything."""
    import numpy as np
    import pyarrow as pa

    from application import Application
    from monitor.schema import ModelSchema
    from monitor.service import Loopwatch
    from monitor.settings import Settings

    started = time.perf_counter()
    service = Loopwatch(Settings(data_dir=data))
    try:
        service.registry.register(ModelSchema.model_validate(SPEC))
        per_day = rows // days
        sealed: list[Any] = []
        drift_day = days // 2
        for day in range(days):
            rng = np.random.default_rng(day)
            offsets = np.sort(rng.integers(0, 86_400 * 10**6, per_day)).astype("timedelta64[us]")
            ts = np.datetime64((start + timedelta(days=day)).replace(tzinfo=None), "us") + offsets
            drifting = day == drift_day
            prediction = rng.choice(["none", "brake"], per_day, p=[0.7, 0.3])
            wrong = rng.random(per_day) < (0.3 if drifting else 0.1)
            label = np.where(wrong, np.where(prediction == "brake", "none", "brake"), prediction)
            ids = pa.array([f"d{day}-{i}" for i in range(per_day)])
            table = pa.table(
                {
                    "prediction_id": ids,
                    "timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
                    "model_version": ["1.0"] * per_day,
                    "speed_kmh": rng.normal(58 if drifting else 50, 10, per_day),
                    "road_type": rng.choice(["urban", "highway"], per_day),
                    "night": rng.random(per_day) < 0.3,
                    "prediction": prediction,
                    "score": rng.random(per_day),
                    "latency_ms": rng.lognormal(np.log(20), 0.2, per_day),
                    "region": rng.choice(["eu", "us", "apac"], per_day, p=[0.6, 0.3, 0.1]),
                    "firmware": rng.choice(["3.1", "3.2"], per_day),
                }
            )
            service.store.ingest_predictions(MODEL, table)
            labelled = rng.random(per_day) < 0.8
            service.store.ingest_labels(
                MODEL, pa.table({"prediction_id": ids.filter(labelled), "label": pa.array(label).filter(labelled)})
            )
            # Sealed day by day, as a server's seal job does: the hot table never holds more than a day.
            sealed += service.store.seal(before=start + timedelta(days=day + 1))
            if day % 10 == 9:
                print(f"  generated {day + 1}/{days} days ({time.perf_counter() - started:.0f} s)", flush=True)
        Application.offline(service).monitors.apply("bench", MODEL, MONITORS)
    finally:
        service.close()
    return {
        "rows": per_day * days,
        "days": days,
        "sealed_files": len(sealed),
        "sealed_bytes": sum(p.stat().st_size for p in (data / "sealed").rglob("*.parquet")),
        "generate_s": round(time.perf_counter() - started, 1),
    }


def run_engine(
    data: Path, engine: str, master: str | None, start: datetime, end: datetime, out: Path, shuffle: int | None
) -> None:
    """One backfill in this process. Each run's findings are appended to ``out`` (JSON lines) as it
    ends, so a backfill stopped by the timeout still tells how far it got and whether what it did
    agrees; the last line is the summary."""
    from application import Application
    from monitor.scheduling import RunOutcome
    from monitor.service import Loopwatch
    from monitor.settings import Settings

    service = Loopwatch(Settings(data_dir=data))
    app = Application.offline(service)
    started = time.perf_counter()
    conf = {"spark.sql.shuffle.partitions": str(shuffle)} if shuffle else None
    with out.open("w") as sink:

        def record(o: RunOutcome) -> None:
            for f in o.findings:
                finding = {
                    "key": [
                        o.monitor.name,
                        o.run.window_end.isoformat(),
                        f.metric,
                        f.column,
                        json.dumps(f.segment, sort_keys=True),
                    ],
                    "status": f.status.value,
                    "n_current": f.n_current,
                    "n_reference": f.n_reference,
                    **{name: getattr(f, name) for name in COMPARED},
                }
                sink.write(json.dumps({"finding": finding}, default=str) + "\n")
            sink.write(
                json.dumps({"run": o.monitor.name, "error": o.error, "elapsed_s": time.perf_counter() - started}) + "\n"
            )
            sink.flush()

        try:
            plan = app.monitors.plan_backfill(MODEL, start, end)
            sink.write(json.dumps({"planned_runs": plan.runs}) + "\n")
            summary = app.monitors.backfill(
                "bench",
                plan,
                record,
                engine="spark" if engine == "spark" else "embedded",
                spark_master=master,
                spark_conf=conf,
            )
            elapsed = time.perf_counter() - started
        finally:
            app.monitors.close()
            service.close()
        sink.write(json.dumps({"summary": summary, "wall_s": elapsed}, default=str) + "\n")


def read_engine(out: Path) -> dict[str, Any]:
    """What a child wrote, complete or not: findings, runs done (and failed), planned runs, the
    elapsed time at the last run, and the summary if it finished."""
    result: dict[str, Any] = {"findings": [], "runs": 0, "failed": 0, "elapsed_s": 0.0, "summary": None}
    if not out.exists():
        return result
    for line in out.read_text().splitlines():
        item = json.loads(line)
        if "finding" in item:
            result["findings"].append(item["finding"])
        elif "run" in item:
            result["runs"] += 1
            result["failed"] += item["error"] is not None
            result["elapsed_s"] = item["elapsed_s"]
        elif "planned_runs" in item:
            result["planned_runs"] = item["planned_runs"]
        elif "summary" in item:
            result["summary"] = item["summary"]
            result["wall_s"] = item["wall_s"]
    return result


def _tree_rss(root: int) -> int:
    """Resident bytes of ``root`` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        children.setdefault(ppid, []).append(int(entry))
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, []))
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def measured(args: list[str], timeout: float) -> tuple[float, int]:
    """Run a child process, sampling its tree's RSS every 0.2 s: (wall seconds, peak bytes).
    A child still running after ``timeout`` seconds is killed (its process group: the JVM too)
    and ``TimeoutError(peak bytes)`` raised."""
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, __file__, *args], env={**os.environ, "PYTHONPATH": str(REPO)}, start_new_session=True
    )
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss(child.pid))
            done.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        code = child.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        done.set()
        sampler.join()
        raise TimeoutError(peak) from None
    done.set()
    sampler.join()
    if code != 0:
        raise SystemExit(f"child {args[:2]} failed with {code}")
    return time.perf_counter() - started, peak


def compare(a: list[dict[str, Any]], b: list[dict[str, Any]], *, partial: bool = False) -> dict[str, Any]:
    """Findings matched by (monitor, window, metric, column, segment): status and counts equal,
    values within 1e-9. ``partial``: ``b`` stopped early, so only the windows it judged count."""
    theirs = {json.dumps(f["key"]): f for f in b}
    judged = {(f["key"][0], f["key"][1]) for f in b}
    ours = {json.dumps(f["key"]): f for f in a if not partial or (f["key"][0], f["key"][1]) in judged}
    mismatches: list[str] = []
    worst = 0.0
    for key in sorted(set(ours) | set(theirs)):
        if key not in ours or key not in theirs:
            mismatches.append(f"{key}: only in one engine")
            continue
        x, y = ours[key], theirs[key]
        if (x["status"], x["n_current"], x["n_reference"]) != (y["status"], y["n_current"], y["n_reference"]):
            mismatches.append(f"{key}: {x['status']} vs {y['status']}")
        for name in COMPARED:
            p, q = x[name], y[name]
            if (p is None) != (q is None):
                mismatches.append(f"{key}.{name}: {p} vs {q}")
            elif p is not None and not (math.isnan(p) and math.isnan(q)):
                worst = max(worst, abs(p - q))
                if abs(p - q) > 1e-9:
                    mismatches.append(f"{key}.{name}: {p} vs {q}")
    return {
        "findings": len(ours),
        "identical": not mismatches,
        "max_abs_difference": worst,
        "mismatches": mismatches[:20],
        "critical": sum(1 for f in b if f["status"] == "critical"),
    }


def prepared(data: Path, days: int, rows: int) -> tuple[dict[str, Any], datetime]:
    """The history in ``data``: generated once (its description kept in ``history.json`` beside
    it) and reused by later runs of the same size, so a 50M-row history is built only once."""
    manifest = data.parent / f"{data.name}.history.json"
    if manifest.exists():
        saved = json.loads(manifest.read_text())
        if (saved["days"], saved["requested_rows"]) == (days, rows):
            return saved, datetime.fromisoformat(saved["start"])
        raise SystemExit(f"{data} holds another history ({saved['days']} days, {saved['requested_rows']} rows)")
    if data.exists():
        raise SystemExit(f"{data} exists without {manifest.name}: an interrupted generation; remove it")
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - timedelta(days=days + 3)
    history = {**generate(data, days, rows, start), "requested_rows": rows, "start": start.isoformat()}
    manifest.write_text(json.dumps(history, indent=2) + "\n")
    return history, start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cores", type=int, nargs="*", default=[1], help="one Spark run per count (local[N])")
    parser.add_argument("--no-embedded", action="store_true", help="skip the embedded run (parity needs it)")
    parser.add_argument(
        "--data-dir", type=Path, help="keep the generated history here and reuse it (default: a temporary one)"
    )
    parser.add_argument("--generate-only", action="store_true")
    parser.add_argument("--shuffle-partitions", dest="shuffle", type=int, help="spark.sql.shuffle.partitions")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed to each engine's backfill")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "spark_parity.json")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--master", help=argparse.SUPPRESS)
    parser.add_argument("--findings", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--start", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.phase:  # a child: one engine's backfill
        start = datetime.fromisoformat(args.start)
        run_engine(
            args.data, args.phase, args.master, start, start + timedelta(days=args.days), args.findings, args.shuffle
        )
        return

    with tempfile.TemporaryDirectory(prefix="spark-parity-") as tmp:
        data = args.data_dir or Path(tmp) / "data"
        history, start = prepared(data, args.days, args.rows)
        print(f"history: {history}", flush=True)
        if args.generate_only:
            return
        common = ["--data", str(data), "--days", str(args.days), "--start", start.isoformat()]
        if args.shuffle:
            common += ["--shuffle-partitions", str(args.shuffle)]
        runs: dict[str, Any] = {}
        results: dict[str, Any] = {}
        engines: list[tuple[str, str | None]] = [] if args.no_embedded else [("embedded", None)]
        engines += [(f"spark_local_{c}", f"local[{c}]") for c in args.cores]
        for name, master in engines:
            out = Path(tmp) / f"{name}.jsonl"
            child = ["--phase", "embedded" if master is None else "spark", "--findings", str(out), *common]
            if master:
                child += ["--master", master]
            try:
                wall, peak = measured(child, args.timeout)
                timed_out = False
            except TimeoutError as exc:
                wall, peak, timed_out = args.timeout, int(exc.args[0]), True
            result = read_engine(out)
            results[name] = result
            runs[name] = {
                "master": master,
                "process_wall_s": round(wall, 2),
                "backfill_wall_s": round(result.get("wall_s", result["elapsed_s"]), 2),
                "peak_rss_mb": round(peak / 2**20),
                "planned_runs": result.get("planned_runs"),
                "runs": result["runs"],
                "failed": result["failed"],
                "s_per_run": round(result["elapsed_s"] / result["runs"], 2) if result["runs"] else None,
            }
            if timed_out:
                runs[name]["timed_out_after_s"] = args.timeout
            print(f"{name}: {runs[name]}", flush=True)
        parity = {
            name: compare(
                results["embedded"]["findings"], r["findings"], partial=runs[name].get("timed_out_after_s") is not None
            )
            for name, r in results.items()
            if name != "embedded" and "embedded" in results and r["findings"]
        }
    report = {
        "what": "backfill of data_drift + performance (1-day windows, 7-day trailing reference) by both engines over the same sealed history",
        "command": "bench/spark_parity.py " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "note": "2 cores shared with other workloads"},
        "history": history,
        "engines": runs,
        "parity": parity,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
