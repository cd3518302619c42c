"""Soak benchmark: does a real server's memory stay flat under steady ingest and monitors?

Starts ``loopwatch serve`` on a free loopback port with a temporary data directory, registers
a model (25 features) and four monitors that run every minute (data drift, prediction drift,
volume, freshness), preloads 40 minutes of history for their references, then sends
predictions at ``--rate`` rows/s (Arrow or JSON batches of ``--batch`` rows) for ``--minutes``.
Windows are one minute long, so the rows a run scans are constant after the first minute and
the RSS after warm-up shows growth, not a filling window. Every ``--sample-seconds`` it samples the server's RSS (/proc/PID/status VmRSS),
its resident memory by kind of mapping (/proc/PID/smaps), its own memory breakdown (/metrics) and the WAL size.
At the end it sends SIGTERM and times the shutdown.

    .venv/bin/python bench/soak.py [--minutes 60] [--rate 5000] [--format arrow|json]

Writes bench/results/soak.json and prints a summary: RSS after warm-up (min/max/last and the
drift last vs first in %), WAL max, errors, monitor runs that failed (read from the server's run
records before SIGTERM), request latency p50/p99, achieved rate, shutdown time.
Bounded: loopback only, at most ``--minutes`` of sending, one server, two sender threads.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pyarrow as pa

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from ingest import SPEC, free_port, json_records, start_server, with_outputs_and_segments  # noqa: E402

from monitor.formats import ARROW_STREAM, table_to_arrow_stream  # noqa: E402
from monitor.service import Loopwatch  # noqa: E402
from monitor.settings import Settings  # noqa: E402

TRAILING = {"kind": "trailing", "length": "30m"}
MONITORS: list[dict[str, Any]] = [
    {"name": "drift", "detector": "data_drift", "every": "1m", "window": "1m", "reference": TRAILING},
    {"name": "pred-drift", "detector": "prediction_drift", "every": "1m", "window": "1m", "reference": TRAILING},
    {"name": "volume", "detector": "volume", "every": "1m", "window": "1m"},
    {"name": "freshness", "detector": "freshness", "every": "1m", "window": "1m"},
]


def batch_table(rows: int, start_id: int, end: datetime, span_s: float, rng: np.random.Generator) -> pa.Table:
    """``rows`` predictions with ids from ``start_id``, timestamps spread over ``span_s`` before ``end``."""
    end64 = np.datetime64(end.replace(tzinfo=None), "us")
    offsets = np.sort(rng.integers(0, max(int(span_s * 1e6), 1), rows)).astype("timedelta64[us]")
    cols: dict[str, pa.Array] = {
        "prediction_id": pa.array([f"s-{start_id + i:010d}" for i in range(rows)]),
        "timestamp": pa.array(end64 - offsets[::-1], pa.timestamp("us", tz="UTC")),
        "model_version": pa.array(np.where(rng.random(rows) < 0.5, "1.0.0", "1.1.0")),
    }
    for name, kind in SPEC.features.items():
        if kind == "numeric":
            cols[name] = pa.array(rng.normal(size=rows))
        elif kind == "boolean":
            cols[name] = pa.array(rng.random(rows) < 0.1)
        else:
            cols[name] = pa.array(np.array([f"v{j}" for j in range(6)])[rng.integers(0, 6, rows)])
    return pa.table(with_outputs_and_segments(cols, rng, rows))


def encode(table: pa.Table, fmt: str) -> tuple[bytes, str]:
    if fmt == "arrow":
        return table_to_arrow_stream(table), ARROW_STREAM
    return orjson.dumps(json_records(table)), "application/json"


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class Sender:
    """Two threads send paced batches: batch k is due at ``k * batch / rate`` seconds after start."""

    def __init__(self, url: str, key: str, args: argparse.Namespace) -> None:
        self.url, self.key, self.args = url, key, args
        self.latencies: list[float] = []
        self.errors: dict[str, int] = {}
        self.accepted = 0
        self.sent_rows = 0
        self._next = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def run(self, seconds: float) -> None:
        self._t0 = time.monotonic()
        self._end = self._t0 + seconds
        threads = [threading.Thread(target=self._worker, args=(i,), daemon=True) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def stop(self) -> None:
        self._stop.set()

    def _worker(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        interval = self.args.batch / self.args.rate
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=60) as client:
            while not self._stop.is_set():
                with self._lock:
                    k = self._next
                    self._next += 1
                due = self._t0 + k * interval
                if due >= self._end:
                    return
                wait = due - time.monotonic()
                if wait > 0 and self._stop.wait(wait):
                    return
                table = batch_table(self.args.batch, k * self.args.batch, datetime.now(UTC), interval, rng)
                body, content_type = encode(table, self.args.format)
                t0 = time.perf_counter()
                outcome = "ok"
                accepted = 0
                try:
                    response = client.post(
                        "/v1/models/bench/predictions", content=body, headers={"Content-Type": content_type}
                    )
                    if response.status_code >= 300:
                        outcome = str(response.status_code)
                    else:
                        accepted = int(response.json()["accepted"])
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                elapsed = time.perf_counter() - t0
                with self._lock:
                    self.latencies.append(elapsed)
                    self.sent_rows += self.args.batch
                    self.accepted += accepted
                    if outcome != "ok":
                        self.errors[outcome] = self.errors.get(outcome, 0) + 1


MEMORY_LINE = re.compile(r'^loopwatch_memory_bytes\{part="([^"]+)"\} (\S+)$', re.MULTILINE)


def _median_drift(after: list[dict[str, Any]], span_s: float = 600) -> dict[str, float | None]:
    """Median RSS of the first and the last ``span_s`` seconds after the warm-up, and their change."""
    if not after:
        return {"median_first_10min": None, "median_last_10min": None, "median_drift_pct": None}
    t0, t1 = after[0]["t_s"], after[-1]["t_s"]
    first = float(np.median([s["rss_mb"] for s in after if s["t_s"] <= t0 + span_s]))
    last = float(np.median([s["rss_mb"] for s in after if s["t_s"] >= t1 - span_s]))
    return {
        "median_first_10min": round(first, 1),
        "median_last_10min": round(last, 1),
        "median_drift_pct": round((last - first) / first * 100, 1),
    }


_MAPPING = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \d+\s*(.*)$")
_GLIBC_HEAP = 64 << 20  # glibc's non-main arenas live in 64 MiB-aligned reservations


def resident_regions(pid: int) -> dict[str, float]:
    """The server's resident memory (MB) by kind of mapping, from /proc/PID/smaps: glibc's main
    heap, glibc's other arenas, 1 MiB anonymous maps (CPython's object arenas), other anonymous
    maps (DuckDB's jemalloc, Arrow's pool, large malloc blocks) and files. What the server's own
    breakdown cannot see: memory an allocator has freed but keeps resident."""
    kb: dict[str, int] = {}
    kind = "other"
    try:
        for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
            m = _MAPPING.match(line)
            if m:
                lo, hi, name = int(m[1], 16), int(m[2], 16), m[3].strip()
                if name == "[heap]":
                    kind = "glibc_main_heap"
                elif name.startswith("/"):
                    kind = "files"
                elif name:
                    kind = "other"
                elif hi - lo == 1 << 20:
                    kind = "python_arenas"
                elif lo % _GLIBC_HEAP == 0 and hi - lo <= _GLIBC_HEAP:
                    kind = "glibc_other_arenas"
                else:
                    kind = "other_anonymous"
            elif line.startswith("Rss:"):
                kb[kind] = kb.get(kind, 0) + int(line.split()[1])
    except OSError:
        return {}
    return {k: round(v / 1024, 1) for k, v in sorted(kb.items())}


def _part_medians(after: list[dict[str, Any]], key: str, span_s: float = 600) -> dict[str, dict[str, float]]:
    """Each part's median over the first and the last ``span_s`` seconds after the warm-up (MB):
    single samples swing with the monitor runs, medians show where the level moved."""
    if not after:
        return {}
    t0, t1 = after[0]["t_s"], after[-1]["t_s"]
    parts = sorted({p for s in after for p in s.get(key, {})})
    out = {}
    for part in parts:
        first = [s[key].get(part, 0.0) or 0.0 for s in after if s["t_s"] <= t0 + span_s and key in s]
        last = [s[key].get(part, 0.0) or 0.0 for s in after if s["t_s"] >= t1 - span_s and key in s]
        if first and last:
            out[part] = {"median_first_10min": round(float(np.median(first)), 1), "median_last_10min": round(float(np.median(last)), 1)}
    return out


def memory_parts(url: str, key: str) -> dict[str, float]:
    """The server's own breakdown (``loopwatch_memory_bytes`` at /metrics) in MB; {} if unreachable."""
    try:
        text = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {key}"}, timeout=10).text
    except httpx.HTTPError:
        return {}
    return {part: round(float(value) / 2**20, 1) for part, value in MEMORY_LINE.findall(text)}


def monitor_runs(url: str, key: str) -> list[dict[str, Any]]:
    """The server's run records (a monitor run that fails, e.g. out of memory, is an error too)."""
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
        response = client.get("/v1/models/bench/runs", params={"limit": 10_000})
        response.raise_for_status()
        runs: list[dict[str, Any]] = response.json()
        return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--rate", type=int, default=5000, help="target rows per second")
    parser.add_argument("--batch", type=int, default=1000, help="rows per request")
    parser.add_argument("--format", choices=["arrow", "json"], default="arrow")
    parser.add_argument(
        "--monitors", type=int, default=4, choices=range(5), help="how many of the 4 monitors (0: none)"
    )
    parser.add_argument("--sample-seconds", type=float, default=10)
    parser.add_argument("--warmup-seconds", type=float, default=None, help="default: min(120, duration / 5)")
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "soak.json")
    args = parser.parse_args()
    if not 0 < args.minutes <= 24 * 60 or not 0 < args.rate <= 200_000 or not 0 < args.batch <= 100_000:
        parser.error("--minutes in (0, 1440], --rate in (0, 200000], --batch in (0, 100000]")
    duration = args.minutes * 60
    monitors = MONITORS[: args.monitors]
    warmup = args.warmup_seconds if args.warmup_seconds is not None else min(120.0, duration / 5)

    with tempfile.TemporaryDirectory(prefix="loopwatch-soak-") as tmp:
        data_dir = Path(tmp) / "data"
        service = Loopwatch(Settings(data_dir=data_dir))
        service.registry.register(SPEC)
        _, key = service.keys.create("admin", "soak")
        service.close()
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = start_server(data_dir, port)
        wal = data_dir / "loopwatch.duckdb.wal"
        samples: list[dict[str, Any]] = []
        sender = Sender(url, key, args)
        shutdown_s = None
        runs: list[dict[str, Any]] = []
        try:
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as client:
                history = batch_table(
                    60_000, 10**9, datetime.now(UTC) - timedelta(minutes=5), 40 * 60, np.random.default_rng(7)
                )
                body, content_type = encode(history, "arrow")
                client.post(
                    "/v1/models/bench/predictions", content=body, headers={"Content-Type": content_type}
                ).raise_for_status()
                if monitors:
                    client.post("/v1/models/bench/monitors", json=monitors).raise_for_status()
            print(
                f"soak: {args.minutes:g} min at {args.rate:,} rows/s ({args.format}, {args.batch}-row batches), "
                f"{len(monitors)} monitors every minute, server pid {proc.pid}",
                flush=True,
            )
            sending = threading.Thread(target=sender.run, args=(duration,), daemon=True)
            started = time.monotonic()
            sending.start()
            while sending.is_alive():
                t = time.monotonic() - started
                rss = rss_mb(proc.pid)
                if rss is None or proc.poll() is not None:
                    print("server exited during the soak", flush=True)
                    sender.stop()
                    break
                samples.append(
                    {
                        "t_s": round(t, 1),
                        "rss_mb": round(rss, 1),
                        "wal_mb": round(wal.stat().st_size / 2**20 if wal.exists() else 0.0, 1),
                        "memory_mb": memory_parts(url, key),
                        "regions_mb": resident_regions(proc.pid),
                    }
                )
                if len(samples) % 6 == 1:
                    print(
                        f"  t={t:6.0f}s rss={rss:7.1f} MB wal={samples[-1]['wal_mb']:6.1f} MB rows={sender.accepted:,}",
                        flush=True,
                    )
                sending.join(args.sample_seconds)
            elapsed = time.monotonic() - started
            runs = monitor_runs(url, key) if monitors and proc.poll() is None else []
        finally:
            sender.stop()
            if proc.poll() is None:
                t0 = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=120)
                    shutdown_s = round(time.monotonic() - t0, 2)
                except Exception:
                    proc.kill()
                    proc.wait(timeout=30)

    after = [s for s in samples if s["t_s"] >= warmup] or samples
    kept = [s["rss_mb"] for s in after]
    lat = np.array(sender.latencies or [0.0]) * 1000
    summary: dict[str, Any] = {
        "duration_s": round(elapsed),
        "format": args.format,
        "batch_rows": args.batch,
        "target_rows_per_s": args.rate,
        "achieved_rows_per_s": round(sender.accepted / elapsed) if elapsed else 0,
        "rows_accepted": sender.accepted,
        "requests": len(sender.latencies),
        "errors": sum(sender.errors.values()),
        "errors_by_kind": sender.errors,
        "latency_p50_ms": round(float(np.percentile(lat, 50)), 1),
        "latency_p99_ms": round(float(np.percentile(lat, 99)), 1),
        "warmup_s": warmup,
        "rss_after_warmup_mb": {
            "first": kept[0] if kept else None,
            "min": min(kept) if kept else None,
            "max": max(kept) if kept else None,
            "last": kept[-1] if kept else None,
            "drift_pct": round((kept[-1] - kept[0]) / kept[0] * 100, 1) if kept else None,
            # Single samples swing ±150 MB with the monitor runs; the medians of the first and
            # last 10 minutes after the warm-up say whether the level moved.
            **_median_drift(after),
        },
        "monitor_runs": len(runs),
        # A run still going when the runs are read (just before SIGTERM) is neither failed nor done.
        "monitor_runs_failed": sum(1 for r in runs if r.get("status") in ("failed", "interrupted")),
        "monitor_runs_still_running": sum(1 for r in runs if r.get("status") == "running"),
        "monitor_run_errors": sorted(
            {str(r.get("error"))[:160] for r in runs if r.get("status") in ("failed", "interrupted")}
        ),
        "monitor_run_ms_max": max((float(r.get("duration_ms") or 0) for r in runs), default=0.0),
        "wal_max_mb": max((s["wal_mb"] for s in samples), default=0.0),
        # Which part moved: the server's own breakdown and the resident regions (smaps).
        "memory_parts_after_warmup_mb": _part_medians(after, "memory_mb"),
        "resident_regions_after_warmup_mb": _part_medians(after, "regions_mb"),
        "shutdown_s": shutdown_s,
        "monitors": [m["name"] for m in monitors],
        "samples": samples,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cores",
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(summary, indent=2) + "\n")
    r = summary["rss_after_warmup_mb"]
    print(
        f"soak {summary['duration_s']} s at {summary['achieved_rows_per_s']:,}/{args.rate:,} rows/s: "
        f"RSS after {warmup:g} s warm-up min {r['min']} / max {r['max']} / last {r['last']} MB "
        f"(drift {r['drift_pct']}%), WAL max {summary['wal_max_mb']} MB, errors {summary['errors']} "
        f"{sender.errors or ''}, monitor runs failed {summary['monitor_runs_failed']}/{summary['monitor_runs']}, p50 {summary['latency_p50_ms']} ms, p99 {summary['latency_p99_ms']} ms, "
        f"SIGTERM → exit {shutdown_s} s"
    )


if __name__ == "__main__":
    main()
