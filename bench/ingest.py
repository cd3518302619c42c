"""Ingest benchmark: 1M predictions with 25 features through a running server on loopback.

Measures (a) the Arrow IPC path and (b) the JSON path: rows/s and per-batch acknowledgement
latency (p50/p99), and compares with a plain ``pyarrow.parquet.write_table`` + fsync of the
same rows in the same run (the floor any durable store has to beat).

    .venv/bin/python bench/ingest.py [--rows 1000000] [--arrow-batch 50000] [--json-batch 5000]

Targets (issue 15, "Throughput on one box first"): the Arrow path (245,760-row batches) ≥ 0.7×
the plain write; one JSON sender ≥ 50k rows/s.

The JSON bodies are serialised with orjson before the clock starts, as loopwatch-client does
(``client/src/loopwatch_client/_logger.py``); how fast one client thread encodes them is
reported as ``json_client_encode_rows_per_s``, so a reader can tell whether the sender or the
server sets the JSON figure. ``bench/ingest_floor.py`` measures what bounds the Arrow ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from monitor.formats import ARROW_STREAM, table_to_arrow_stream  # noqa: E402
from monitor.schema import ModelSchema  # noqa: E402
from monitor.service import Loopwatch  # noqa: E402
from monitor.settings import Settings  # noqa: E402

NUMERIC = [f"num_{i:02d}" for i in range(20)]
CATEGORICAL = [f"cat_{i}" for i in range(4)]
SPEC = ModelSchema(
    name="bench",
    task="binary",
    classes=["neg", "pos"],
    features={**dict.fromkeys(NUMERIC, "numeric"), **dict.fromkeys(CATEGORICAL, "categorical"), "flag": "boolean"},
    segments=["region", "firmware"],
)


def make_table(rows: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    start = np.datetime64((datetime.now(UTC) - timedelta(hours=6)).replace(tzinfo=None), "us")
    ts = start + np.sort(rng.integers(0, 6 * 3600 * 10**6, rows)).astype("timedelta64[us]")
    cols: dict[str, pa.Array] = {
        "prediction_id": pa.array([f"b-{i:08d}" for i in range(rows)]),
        "timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "model_version": pa.array(np.where(rng.random(rows) < 0.5, "1.0.0", "1.1.0")),
    }
    for name in NUMERIC:
        cols[name] = pa.array(rng.normal(size=rows))
    for i, name in enumerate(CATEGORICAL):
        cols[name] = pa.array(np.array([f"v{j}" for j in range(5 + i)])[rng.integers(0, 5 + i, rows)])
    cols["flag"] = pa.array(rng.random(rows) < 0.1)
    return pa.table(with_outputs_and_segments(cols, rng, rows))


def with_outputs_and_segments(cols: dict[str, pa.Array], rng: np.random.Generator, rows: int) -> dict[str, pa.Array]:
    """Add the model's output (prediction, score), latency and segments of SPEC to ``cols``."""
    score = rng.random(rows)
    cols["prediction"] = pa.array(np.where(score > 0.5, "pos", "neg"))
    cols["score"] = pa.array(score)
    cols["latency_ms"] = pa.array(rng.lognormal(3, 0.3, rows))
    cols["region"] = pa.array(np.array(["eu", "us", "apac"])[rng.integers(0, 3, rows)])
    cols["firmware"] = pa.array(np.array(["3.1", "3.2"])[rng.integers(0, 2, rows)])
    return cols


def json_records(table: pa.Table) -> list[dict]:
    """The documented JSON record shape (nested features/segments), built from the columns."""
    data = table.to_pydict()
    n = table.num_rows
    ts = [t.isoformat() for t in data["timestamp"]]
    feats = list(SPEC.features)
    out = []
    for i in range(n):
        out.append(
            {
                "prediction_id": data["prediction_id"][i],
                "timestamp": ts[i],
                "model_version": data["model_version"][i],
                "features": {f: data[f][i] for f in feats},
                "prediction": data["prediction"][i],
                "score": data["score"][i],
                "latency_ms": data["latency_ms"][i],
                "segments": {"region": data["region"][i], "firmware": data["firmware"][i]},
            }
        )
    return out


def plain_write(table: pa.Table, directory: Path) -> float:
    path = directory / "plain.parquet"
    started = time.perf_counter()
    pq.write_table(table, path)
    fd = os.open(path, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    return time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(data_dir: Path, port: int, repo: Path = REPO) -> subprocess.Popen[bytes]:
    """``loopwatch serve`` of the code in ``repo`` (another checkout for an A/B run), with this
    interpreter, once it answers /healthz."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--data-dir", str(data_dir), "--port", str(port)],
        cwd=repo,
        env={**os.environ, "LOOPWATCH_LOG_LEVEL": "WARNING", "PYTHONPATH": str(repo)},
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start")


def send(url: str, key: str, bodies: list[bytes], content_type: str, senders: int) -> tuple[float, list[float], int]:
    """POST every body (``senders`` connections in parallel); returns (seconds, ack latencies, accepted)."""
    latencies: list[float] = []
    accepted = [0]
    lock = threading.Lock()
    queue = list(reversed(bodies))

    def worker() -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=300) as client:
            while True:
                with lock:
                    if not queue:
                        return
                    body = queue.pop()
                t0 = time.perf_counter()
                response = client.post(
                    "/v1/models/bench/predictions", content=body, headers={"Content-Type": content_type}
                )
                elapsed = time.perf_counter() - t0
                response.raise_for_status()
                with lock:
                    latencies.append(elapsed)
                    accepted[0] += response.json()["accepted"]

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, latencies, accepted[0]


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values) * 1000, q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    # 2 DuckDB row groups: DuckDB writes full row groups straight to the database file (no WAL copy).
    parser.add_argument("--arrow-batch", type=int, default=245_760)
    parser.add_argument("--arrow-small-batch", type=int, default=50_000)
    parser.add_argument("--json-batch", type=int, default=5_000)
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "ingest.json")
    args = parser.parse_args()

    print(f"generating {args.rows:,} rows × 25 features …", flush=True)
    table = make_table(args.rows)
    with tempfile.TemporaryDirectory(prefix="loopwatch-bench-") as tmp:
        work = Path(tmp)
        plain_runs = sorted(plain_write(table, work) for _ in range(3))
        plain_s = plain_runs[1]  # median of three: the machine is shared and noisy
        plain_rps = args.rows / plain_s
        print(f"plain pyarrow write_table + fsync: {plain_rps:,.0f} rows/s (median of 3: {plain_s:.2f} s)", flush=True)

        results = {}
        runs = {
            "arrow": ("arrow", args.arrow_batch, 1),
            "arrow_small_batches": ("arrow", args.arrow_small_batch, 1),
            "json": ("json", args.json_batch, 1),
            "json_2_senders": ("json", args.json_batch, 2),
        }
        json_bodies: list[bytes] | None = None
        encode_seconds = 0.0
        for path_name, (fmt, batch, senders) in runs.items():
            data_dir = work / f"data-{path_name}"
            service = Loopwatch(Settings(data_dir=data_dir))
            service.registry.register(SPEC)
            _, key = service.keys.create("ingest", "bench")
            service.close()
            port = free_port()
            proc = start_server(data_dir, port)
            try:
                if fmt == "arrow":
                    bodies = [table_to_arrow_stream(table.slice(s, batch)) for s in range(0, args.rows, batch)]
                    content_type = ARROW_STREAM
                else:
                    if json_bodies is None:
                        print("building JSON bodies …", flush=True)
                        json_bodies = []
                        for s in range(0, args.rows, batch):
                            records = json_records(table.slice(s, batch))
                            t0 = time.perf_counter()
                            json_bodies.append(orjson.dumps(records))
                            encode_seconds += time.perf_counter() - t0
                    bodies, content_type = json_bodies, "application/json"
                seconds, latencies, accepted = send(f"http://127.0.0.1:{port}", key, bodies, content_type, senders)
            finally:
                proc.terminate()
                proc.wait(timeout=60)
            assert accepted == args.rows, f"{accepted} of {args.rows} rows accepted"
            rps = args.rows / seconds
            results[path_name] = {
                "rows_per_s": round(rps),
                "seconds": round(seconds, 2),
                "batch_rows": batch,
                "senders": senders,
                "batches": len(bodies),
                "ack_p50_ms": round(pct(latencies, 50), 1),
                "ack_p99_ms": round(pct(latencies, 99), 1),
                "ratio_to_plain_write": round(rps / plain_rps, 3),
                "body_mb": round(sum(len(b) for b in bodies) / 1e6, 1),
            }
            print(f"{path_name}: {json.dumps(results[path_name])}", flush=True)

    summary = {
        "rows": args.rows,
        "features": 25,
        "plain_write_rows_per_s": round(plain_rps),
        **results,
        "json_client_encode_rows_per_s": round(args.rows / encode_seconds) if encode_seconds else None,
        "targets": {
            "issue": 15,
            "arrow_ratio_min": 0.7,
            "arrow_ok": results["arrow"]["ratio_to_plain_write"] >= 0.7,
            "json_one_sender_rows_per_s_min": 50_000,
            "json_ok": results["json"]["rows_per_s"] >= 50_000,
        },
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cores",
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
