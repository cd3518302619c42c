"""One scheduled drift run over a 1-day window while the store holds 30 days × 1M rows/day.

A scheduled run = read the window's feature columns from the store (hot DuckDB table + sealed
Parquet, pruned to the files overlapping the window) + ``DataDrift.run`` against reference
statistics prepared once and cached. The run is timed as history grows (after 3, 10 and 30
days are loaded) to show that its cost does not depend on history length.

    .venv/bin/python bench/window_scan.py [--days 30] [--rows-per-day 1000000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from ingest import SPEC, make_table  # noqa: E402

from detectors import ModelSpec, RunContext, get_detector  # noqa: E402
from monitor.service import Loopwatch  # noqa: E402
from monitor.settings import Settings  # noqa: E402
from monitor.validation import normalize_predictions  # noqa: E402


def day_table(day_start: datetime, rows: int, seed: int, shift: float) -> pa.Table:
    table = make_table(rows, seed=seed)
    offsets = np.sort(np.random.default_rng(seed).integers(0, 86_400 * 10**6, rows)).astype("timedelta64[us]")
    ts = np.datetime64(day_start.replace(tzinfo=None), "us") + offsets
    table = table.set_column(
        table.schema.get_field_index("timestamp"), "timestamp", pa.array(ts, pa.timestamp("us", tz="UTC"))
    )
    ids = pa.array([f"d{seed}-{i:08d}" for i in range(rows)])
    table = table.set_column(0, "prediction_id", ids)
    if shift:
        col = table.schema.get_field_index("num_00")
        table = table.set_column(col, "num_00", pa.array(table.column("num_00").to_numpy() + shift))
    return table


def timed_run(
    service: Loopwatch,
    window: tuple[datetime, datetime],
    stats: object,
    detector: object,
    config: object,
    repeat: int = 3,
) -> dict:
    """Median of ``repeat`` runs (the machine is shared and noisy)."""
    columns = list(SPEC.features)
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        current = service.store.scan("bench", *window, columns=columns, with_labels=False)
        scan_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        findings = detector.run(current, stats, config, RunContext("bench", window[0], window[1], reference="day 1"))  # type: ignore[attr-defined]
        samples.append(
            (scan_s + time.perf_counter() - t0, scan_s, time.perf_counter() - t0, current.num_rows, findings)
        )
    total, scan_s, run_s, rows, findings = sorted(samples, key=lambda x: x[0])[len(samples) // 2]
    return {
        "rows": rows,
        "scan_s": round(scan_s, 3),
        "detector_s": round(run_s, 3),
        "total_s": round(total, 3),
        "critical": sum(1 for f in findings if f.status == "critical"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--rows-per-day", type=int, default=1_000_000)
    parser.add_argument("--checkpoints", default="3,10,30")
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "window_scan.json")
    args = parser.parse_args()
    checkpoints = sorted({min(int(c), args.days) for c in args.checkpoints.split(",")})

    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    first_day = today - timedelta(days=args.days - 1)
    detector = get_detector("data_drift")
    spec = ModelSpec.from_dict(SPEC.model_dump())
    config = detector.config({})
    results = []
    with tempfile.TemporaryDirectory(prefix="loopwatch-window-") as tmp:
        service = Loopwatch(Settings(data_dir=Path(tmp), hot_days=2))
        service.registry.register(SPEC)
        stats = None
        prepare_s = None
        load_s = 0.0
        for day in range(args.days):
            start = first_day + timedelta(days=day)
            table = day_table(start, args.rows_per_day, seed=day, shift=0.3 if day % 7 == 6 else 0.0)
            t0 = time.perf_counter()
            rows = normalize_predictions(table, SPEC, now=datetime.now(UTC), max_future=timedelta(days=1))
            for s in range(0, rows.num_rows, 245_760):
                service.store.store_normalized("bench", rows.slice(s, 245_760))
            service.store.seal()  # days older than hot_days move to Parquet as history grows
            load_s += time.perf_counter() - t0
            if stats is None:  # reference = day 1, prepared once and cached by the monitor
                reference = service.store.scan(
                    "bench", start, start + timedelta(days=1), columns=list(SPEC.features), with_labels=False
                )
                t0 = time.perf_counter()
                stats = detector.prepare_reference(reference, spec, config)
                prepare_s = time.perf_counter() - t0
            if day + 1 in checkpoints:
                sealed = len(service.store.sealed_files("bench"))
                latest = (start, start + timedelta(days=1))  # the newest day loaded (hot only within hot_days of today)
                middle = first_day + timedelta(days=day // 2)
                sealed_window = (middle, middle + timedelta(days=1))
                entry = {
                    "history_days": day + 1,
                    "history_rows": (day + 1) * args.rows_per_day,
                    "sealed_files": sealed,
                    "newest_day_in": "duckdb" if start >= today - timedelta(days=2) else "parquet",
                    "newest_day": timed_run(service, latest, stats, detector, config),
                    "older_day": timed_run(service, sealed_window, stats, detector, config),
                }
                results.append(entry)
                print(json.dumps(entry), flush=True)
        service.close()
    summary = {
        "rows_per_day": args.rows_per_day,
        "features": 25,
        "prepare_reference_s": round(prepare_s or 0, 3),
        "load_rows_per_s": round(args.days * args.rows_per_day / load_s),
        "runs": results,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
