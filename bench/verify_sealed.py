"""What verifying sealed files costs: sha256 of ~1 GB of sealed Parquet, and the per-read overhead.

1. Seals real days (``--rows-per-day`` rows each) until the sealed files total ``--gb`` GB, then
   times ``verify_sealed()`` unthrottled (what ``loopwatch store verify`` and the failed-read
   re-check pay) and reports the throttled pass's duration at the default rate.
2. Times a window read over one sealed file: the first read in a process (hashes the file once)
   and later reads (one ``stat`` per file to see it is unchanged).

The page cache is warm after sealing (we cannot drop it here), so the hash rate is CPU-bound;
on a cold disk the pass runs at min(disk read rate, hash rate, throttle).

    .venv/bin/python bench/verify_sealed.py [--gb 1.0] [--rows-per-day 2000000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from ingest import SPEC  # noqa: E402
from window_scan import day_table  # noqa: E402

from monitor.service import Loopwatch  # noqa: E402
from monitor.settings import Settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gb", type=float, default=1.0)
    parser.add_argument("--rows-per-day", type=int, default=2_000_000)
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "verify_sealed.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "data")
        service = Loopwatch(settings)
        service.registry.register(SPEC)
        name = SPEC.name
        day0 = (datetime.now(UTC) - timedelta(days=400)).replace(hour=0, minute=0, second=0, microsecond=0)
        total = 0
        day = 0
        while total < args.gb * 1e9:
            table = day_table(day0 + timedelta(days=day), args.rows_per_day, seed=day, shift=0.0)
            service.store.ingest_predictions(name, table)
            service.store.seal(before=day0 + timedelta(days=day + 1))
            total = sum(f["bytes"] for f in service.store.sealed_files(name))
            day += 1
            print(f"day {day}: sealed {total / 1e9:.3f} GB", file=sys.stderr)
        service.close()

        service = Loopwatch(settings)
        started = time.perf_counter()
        report = service.store.verify_sealed()
        full = time.perf_counter() - started
        assert not report["problems"]
        service.close()

        service = Loopwatch(settings)
        lo = day0 + timedelta(hours=1)
        window = (lo, lo + timedelta(hours=1))
        t0 = time.perf_counter()
        service.store.counts(name, *window)
        first = time.perf_counter() - t0
        later = []
        for _ in range(20):
            t0 = time.perf_counter()
            service.store.counts(name, *window)
            later.append(time.perf_counter() - t0)
        record = service.store._records("TRUE", [])[0]
        t0 = time.perf_counter()
        for _ in range(10_000):
            service.store._check_before_use(record)
        per_check_us = (time.perf_counter() - t0) / 10_000 * 1e6
        service.close()

    rate = settings.verify_bytes_per_second
    result = {
        "sealed_files": report["files"],
        "sealed_bytes": report["bytes"],
        "verify_unthrottled_s": round(full, 2),
        "verify_gb_per_s": round(report["bytes"] / 1e9 / full, 2),
        "background_pass_s_at_default_rate": round(report["bytes"] / rate, 1) if rate else None,
        "first_read_of_a_file_s": round(first, 3),
        "later_reads_median_s": round(statistics.median(later), 4),
        "check_before_use_us_per_file": round(per_check_us, 1),
    }
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
