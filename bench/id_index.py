"""Id-lookup cost: what recognising a resend costs per batch with 10M and 100M stored ids.

Builds the id index of monitor/identity.py at each size (the bulk path a rebuild uses), then
times, per batch of ``--batch`` rows (medians over ``--repeats`` batches):

* ``hash_ms``: the index key of each ``prediction_id`` of the batch (XXH64, the store's first step);
* ``sort_ms``: the batch's hash order, computed once by the store for the repeat check and the add;
* ``lookup_new_ms``: a batch of ids never stored (the common case: filter only);
* ``add_ms``: recording that batch (filter + memory table; flushes amortised), right after
  its lookup as in the store;
* ``lookup_resend_ms``: a batch of ids all stored (a client retry: the filter, the sort of its
  positives and the run search).

``per_new_row_us`` is hash + sort + lookup + add per row.

plus the index's resident filter size, its run files, and the time to open it at server start:
with the filter saved at a clean shutdown (``open_s``), and rebuilt from the runs as after a
crash (``open_after_crash_s``). Compare with the end-to-end ingest figures of bench/ingest.py.

    .venv/bin/python bench/id_index.py [--sizes 10000000 100000000] [--batch 50000] [--repeats 15]

Writes bench/results/id_index.json. Bounded: at most the given sizes, one process, temp files.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from monitor.identity import IdIndex, id_hashes  # noqa: E402


def _median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 2)


def _ids(prefix: str, start: int, n: int) -> pa.Array:
    return pa.array([f"{prefix}-{i:012d}" for i in range(start, start + n)])


def measure(size: int, batch: int, repeats: int, workdir: Path) -> dict[str, object]:
    rng = np.random.default_rng(size)
    directory = workdir / f"ix-{size}"
    index = IdIndex(directory, canary=1)
    started = time.perf_counter()
    chunk = 10_000_000

    def parts():  # synthetic stored ids: uniform 64-bit hashes, as XXH64 gives
        for start in range(0, size, chunk):
            n = min(chunk, size - start)
            yield rng.integers(0, 2**64 - 1, n, dtype=np.uint64), rng.integers(0, 2**52, n, dtype=np.int64)

    index.replace_all(parts(), watermark_us=1)
    build_s = time.perf_counter() - started
    stored = np.asarray(np.memmap(directory / (index._runs[0].name + ".hash"), dtype="<u8", mode="r"))

    hash_s, sort_s, new_s, resend_s, add_s, false_hits = [], [], [], [], [], []
    for r in range(repeats):
        ids = _ids(f"new{r}", 0, batch)
        t0 = time.perf_counter()
        hashes = id_hashes(ids)
        hash_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        order = np.argsort(hashes)  # the store sorts each batch once, for its repeat check and the add
        sort_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        found = index.lookup(hashes)
        new_s.append(time.perf_counter() - t0)
        false_hits.append(found.rows.size)
        t0 = time.perf_counter()
        index.add(hashes, np.arange(batch, dtype=np.int64), ingested_us=r + 2, order=order)
        add_s.append(time.perf_counter() - t0)
        resend = stored[rng.integers(0, size, batch)]
        t0 = time.perf_counter()
        found = index.lookup(resend)
        resend_s.append(time.perf_counter() - t0)
        assert found.rows.size >= batch
    del stored
    index.flush()
    filter_mb = round(index.stats()["filter_bytes"] / 2**20, 1)
    files_mb = round(sum(p.stat().st_size for p in directory.iterdir() if p.name.startswith("run-")) / 2**20, 1)
    index.save_filter()  # as at a clean shutdown
    del index
    started = time.perf_counter()
    reopened = IdIndex(directory, canary=1)
    open_s = time.perf_counter() - started
    assert reopened.loaded
    del reopened
    for name in ("filter.json", "filter.bin"):  # as after a crash: the filter is rebuilt from the runs
        (directory / name).unlink()
    started = time.perf_counter()
    reopened = IdIndex(directory, canary=1)
    open_rebuild_s = time.perf_counter() - started
    del reopened
    shutil.rmtree(directory)
    return {
        "stored_ids": size,
        "batch_rows": batch,
        "build_s": round(build_s, 1),
        "open_s": round(open_s, 2),
        "open_after_crash_s": round(open_rebuild_s, 2),
        "hash_ms": _median_ms(hash_s),
        "sort_ms": _median_ms(sort_s),
        "lookup_new_ms": _median_ms(new_s),
        "lookup_resend_ms": _median_ms(resend_s),
        "add_ms": _median_ms(add_s),
        "per_new_row_us": round(
            (statistics.median(hash_s) + statistics.median(sort_s) + statistics.median(new_s) + statistics.median(add_s))
            / batch
            * 1e6,
            3,
        ),
        "false_hash_matches": int(sum(false_hits)),
        "filter_mb": filter_mb,
        "files_mb": files_mb,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000_000, 100_000_000])
    parser.add_argument("--batch", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "id_index.json")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="loopwatch-idbench-") as tmp:
        for size in args.sizes:
            for batch in sorted({args.batch, 1_000}):
                row = measure(size, batch, args.repeats, Path(tmp))
                results.append(row)
                print(json.dumps(row))
    out = {
        "results": results,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    args.output.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
