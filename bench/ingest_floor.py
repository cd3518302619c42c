"""What bounds the Arrow ingest ratio: the same 1M rows written five ways, in alternating rounds.

``bench/ingest.py`` compares the Arrow path through a running server with a plain
``pyarrow.parquet.write_table`` + fsync. This script takes the server and HTTP away, step by
step, to show where the remaining gap lives (issue 15's target is 0.7× the plain write):

* ``plain``: ``pyarrow.parquet.write_table`` + fsync (the yardstick, single-threaded);
* ``duckdb_insert``: only DuckDB: the already-normalised rows inserted into a table of the
  stored layout, in 245,760-row batches, one transaction each, with the store's settings
  (``preserve_insertion_order=false``, ``memory_limit=256MB``) — the durable write itself;
* ``duckdb_insert_no_alp``: the same with DuckDB's ALP/ALP-RD float compression disabled (not
  used by the store: it trades a larger hot table for less CPU; shown for the record);
* ``store_path``: the server's work without HTTP: Arrow IPC decode, validation, the id index,
  the insert and the commit (``PredictionStore.ingest_predictions``);
* ``ipc_lz4_journal``: the already-normalised rows appended as one LZ4-compressed Arrow IPC
  file per batch, fsynced (file and directory) — the durable write an ingest journal would
  acknowledge after (docs/architecture.md, "Arrow ingest against issue 15's 0.7×"); not built.

Each round runs all five (order alternating: the machine is shared and noisy); medians are
reported with the ratio to the plain write's median, CPU seconds (all threads) and file size.

    .venv/bin/python bench/ingest_floor.py [--rounds 4]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import ingest as bench  # noqa: E402

from monitor.formats import read_arrow_stream, table_to_arrow_stream  # noqa: E402
from monitor.service import Loopwatch  # noqa: E402
from monitor.settings import Settings  # noqa: E402
from monitor.validation import normalize_predictions  # noqa: E402

ROWS = 1_000_000
BATCH = 245_760


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def du(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def duckdb_insert(rows: pa.Table, directory: Path, settings: str = "") -> float:
    con = duckdb.connect(
        str(directory / "x.db"),
        config={"checkpoint_threshold": "1GB", "preserve_insertion_order": False, "memory_limit": "256MB"},
    )
    if settings:
        con.execute(settings).fetchall()
    con.register("empty", rows.slice(0, 0))
    con.execute("CREATE TABLE p AS SELECT * FROM empty").fetchall()
    con.unregister("empty")
    started = time.perf_counter()
    for start in range(0, rows.num_rows, BATCH):
        con.execute("BEGIN").fetchall()
        con.register("incoming", rows.slice(start, BATCH))
        con.execute("INSERT INTO p BY NAME SELECT * FROM incoming").fetchall()
        con.unregister("incoming")
        con.execute("COMMIT").fetchall()
    seconds = time.perf_counter() - started
    con.close()
    return seconds


def ipc_journal(rows: pa.Table, directory: Path) -> float:
    started = time.perf_counter()
    for number, start in enumerate(range(0, rows.num_rows, BATCH)):
        path = directory / f"{number:06d}.arrows"
        with (
            pa.OSFile(str(path), "wb") as sink,
            pa.ipc.new_stream(sink, rows.schema, options=pa.ipc.IpcWriteOptions(compression="lz4")) as writer,
        ):
            writer.write_table(rows.slice(start, BATCH))
        for target in (path, directory):
            fd = os.open(target, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    return time.perf_counter() - started


def store_path(bodies: list[bytes], directory: Path) -> float:
    service = Loopwatch(Settings(data_dir=directory / "data"))
    service.registry.register(bench.SPEC)
    started = time.perf_counter()
    for body in bodies:
        service.store.ingest_predictions("bench", read_arrow_stream(body))
    seconds = time.perf_counter() - started
    service.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "ingest_floor.json")
    args = parser.parse_args()

    table = bench.make_table(ROWS)
    bodies = [table_to_arrow_stream(table.slice(s, BATCH)) for s in range(0, ROWS, BATCH)]
    normalized = normalize_predictions(table, bench.SPEC, now=datetime.now(UTC), max_future=timedelta(days=1))
    ways: list[tuple[str, Callable[[Path], float]]] = [
        ("plain", lambda d: bench.plain_write(table, d)),
        ("duckdb_insert", lambda d: duckdb_insert(normalized, d)),
        (
            "duckdb_insert_no_alp",
            lambda d: duckdb_insert(normalized, d, "SET disabled_compression_methods='alp,alprd'"),
        ),
        ("store_path", lambda d: store_path(bodies, d)),
        ("ipc_lz4_journal", lambda d: ipc_journal(normalized, d)),
    ]
    measured: dict[str, list[tuple[float, float, int]]] = {name: [] for name, _ in ways}
    for round_no in range(args.rounds):
        for name, way in ways if round_no % 2 == 0 else ways[::-1]:
            with tempfile.TemporaryDirectory(prefix="loopwatch-floor-") as tmp:
                cpu_before = cpu_seconds()
                seconds = way(Path(tmp))
                measured[name].append((seconds, cpu_seconds() - cpu_before, du(Path(tmp))))
            print(f"round {round_no + 1} {name}: {ROWS / seconds:,.0f} rows/s", flush=True)

    plain_s = statistics.median(s for s, _, _ in measured["plain"])
    summary: dict[str, object] = {"rows": ROWS, "batch_rows": BATCH, "rounds": args.rounds}
    for name, values in measured.items():
        seconds = statistics.median(s for s, _, _ in values)
        summary[name] = {
            "rows_per_s": round(ROWS / seconds),
            "ratio_to_plain_write": round(plain_s / seconds, 3),
            "cpu_s": round(statistics.median(c for _, c, _ in values), 2),
            "disk_mb": round(statistics.median(b for _, _, b in values) / 1e6),
        }
    summary["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    summary["machine"] = f"{os.cpu_count()} cores"
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
