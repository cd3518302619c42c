"""What a ``/metrics`` scrape of the per-model gauges costs (api/model_metrics.py).

Builds a real data directory: ``--models`` models of ``--features`` numeric features, each with
``--monitors`` monitors (all but two ``data_drift``, one ``performance``, one
``estimated_performance``) and ``--windows`` hourly runs per monitor recorded through
``RunStore`` (whole-window findings per feature plus ``--segment-values`` segment findings per
feature, as a segmented drift monitor writes them; the finding values are synthetic, the rows,
tables and queries are the real ones), live runs' findings observed by the real ``AlertStore`` (so
alerts fire), a day of predictions per model with labels, and the hourly rollups refreshed. The
oldest window and the two newest are recorded through ``RunStore``; the windows between are
copies of the oldest made in SQL (recording each through ``RunStore`` took minutes), inserted in
time order like a server's history.

Then times, through ``generate_latest`` on a registry holding only the model collector:

* ``cold``: the first scrape of a process (every latest run's findings fetched);
* ``uncached``: later scrapes with the snapshot TTL at 0 (each one re-reads models, latest runs,
  alerts, versions and rollups; findings of runs already seen are kept);
* ``after_new_runs``: one new run per monitor recorded since the last scrape;
* ``cached``: a scrape within the TTL (prometheus_client rendering the text only);
* ``read_only``: the stores' reads alone (``ModelHealthReader.read``).

    .venv/bin/python bench/metrics_scrape.py [--models 5 --features 20 --monitors 10 --windows 48]
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
from typing import Any

import numpy as np
import pyarrow as pa

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from prometheus_client import CollectorRegistry, generate_latest  # noqa: E402

from api.model_metrics import ModelHealthReader, ModelMetricsCollector  # noqa: E402
from detectors import Finding, Status  # noqa: E402
from monitor.alerting.alerts import AlertStore  # noqa: E402
from monitor.monitors import MonitorSpec  # noqa: E402
from monitor.rollups import Rollups  # noqa: E402
from monitor.scheduling import RunOutcome  # noqa: E402
from monitor.schema import ModelSchema  # noqa: E402
from monitor.service import Loopwatch  # noqa: E402
from monitor.settings import Settings  # noqa: E402

NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def model_spec(index: int, features: int) -> ModelSchema:
    return ModelSchema.model_validate(
        {
            "name": f"model-{index}",
            "task": "binary",
            "classes": ["no", "yes"],
            "positive_class": "yes",
            "features": {f"f{j:02d}": "numeric" for j in range(features)},
            "segments": ["site"],
        }
    )


def monitor_specs(count: int) -> list[MonitorSpec]:
    base = {"every": "1h", "window": "1h", "reference": {"kind": "trailing", "length": "1d"}}
    specs = [
        MonitorSpec.model_validate({**base, "name": f"drift-{i}", "detector": "data_drift", "severity": "critical"})
        for i in range(max(0, count - 2))
    ]
    specs.append(MonitorSpec.model_validate({**base, "name": "quality", "detector": "performance"}))
    specs.append(
        MonitorSpec.model_validate(
            {**base, "name": "estimated", "detector": "estimated_performance", "severity": "info"}
        )
    )
    return specs[:count]


def findings_for(
    spec: MonitorSpec, model: str, features: int, segment_values: int, end: datetime, rng: np.random.Generator
) -> list[Finding]:
    common: dict[str, Any] = {
        "detector": spec.detector,
        "model": model,
        "window_start": end - timedelta(hours=1),
        "window_end": end,
    }
    out: list[Finding] = []
    if spec.detector == "data_drift":
        for j in range(features):
            for segment in [None, *({"site": f"s{k}"} for k in range(segment_values))]:
                score = float(rng.uniform(0, 0.3))
                status = Status.CRITICAL if score > 0.28 else Status.OK
                out.append(
                    Finding(**common, metric="wasserstein", column=f"f{j:02d}", segment=segment, status=status,
                            value=score, threshold=0.1, p_value=float(rng.uniform()), n_current=1000, n_reference=24000)
                )  # fmt: skip
        out.append(Finding(**common, metric="share_drifted_columns", status=Status.OK, value=0.05, threshold=0.5))
    else:
        for metric in ("accuracy", "precision", "recall", "fpr", "fnr"):
            out.append(Finding(**common, metric=metric, status=Status.OK, value=float(rng.uniform(0.7, 0.95))))
        out.append(Finding(**common, metric="label_coverage", status=Status.OK, value=0.5))
    return out


def record_windows(
    service: Loopwatch, alerts: AlertStore, args: argparse.Namespace, ends: list[datetime], rng: np.random.Generator
) -> int:
    runs = 0
    for m in range(args.models):
        model = f"model-{m}"
        for spec in monitor_specs(args.monitors):
            for end in ends:
                run = service.runs.start(model, spec.name, spec.detector, "scheduled", (end - timedelta(hours=1), end))
                found = findings_for(spec, model, args.features, args.segment_values, end, rng)
                service.runs.succeed(
                    run, found, duration_ms=1.0, config_hash="bench", data_fingerprint="bench", reference="bench",
                    rows=1000,
                )  # fmt: skip
                if end == ends[-1]:
                    alerts.observe(RunOutcome(run, spec, found, live=True))
                runs += 1
    return runs


def clone_history(service: Loopwatch, windows: int) -> int:
    """Copies of the first recorded window's runs and findings, 1 … ``windows`` hours later."""
    before = service.db.query_one("SELECT count(*) FROM runs")
    for k in range(1, windows + 1):
        shift = f"INTERVAL {k} HOUR"
        with service.db.transaction() as cur:
            cur.execute(
                f"INSERT INTO runs BY NAME SELECT * REPLACE (id || '-{k}' AS id, window_start + {shift} AS window_start, "
                f"window_end + {shift} AS window_end, started_at + {shift} AS started_at, "
                f"finished_at + {shift} AS finished_at) FROM runs WHERE NOT contains(id, '-')"
            ).fetchall()
            cur.execute(
                f"INSERT INTO findings BY NAME SELECT * REPLACE (id || '-{k}' AS id, run_id || '-{k}' AS run_id, "
                f"window_start + {shift} AS window_start, window_end + {shift} AS window_end) "
                "FROM findings WHERE NOT contains(run_id, '-')"
            ).fetchall()
    after = service.db.query_one("SELECT count(*) FROM runs")
    return int(after[0] if after else 0) - int(before[0] if before else 0)


def predictions(model: ModelSchema, rows: int, seed: int) -> tuple[pa.Table, pa.Table]:
    rng = np.random.default_rng(seed)
    offsets = np.sort(rng.uniform(0, 86_400, rows))
    start = NOW - timedelta(days=1)
    ts = np.datetime64(start.replace(tzinfo=None), "us") + (offsets * 1e6).astype("timedelta64[us]")
    ids = [f"{model.name}-{i}" for i in range(rows)]
    columns: dict[str, object] = {
        "prediction_id": ids,
        "timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "model_version": ["1.0"] * rows,
        "prediction": rng.choice(["no", "yes"], rows),
        "score": rng.random(rows),
        "site": rng.choice(["s0", "s1"], rows),
    }
    for feature in model.features:
        columns[feature] = rng.normal(0, 1, rows)
    labelled = ids[: rows // 2]
    return pa.table(columns), pa.table({"prediction_id": labelled, "label": rng.choice(["no", "yes"], len(labelled))})


def timed(registry: CollectorRegistry) -> tuple[float, int]:
    started = time.perf_counter()
    text = generate_latest(registry)
    elapsed = (time.perf_counter() - started) * 1000
    return elapsed, sum(1 for line in text.splitlines() if line and not line.startswith(b"#"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=int, default=5)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--monitors", type=int, default=10)
    parser.add_argument("--windows", type=int, default=48, help="hourly runs of history per monitor")
    parser.add_argument("--segment-values", type=int, default=2)
    parser.add_argument("--rows", type=int, default=20_000, help="predictions per model (one day)")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "metrics_scrape.json")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        service = Loopwatch(Settings(data_dir=Path(tmp) / "data"))
        try:
            started = time.perf_counter()
            for m in range(args.models):
                spec = model_spec(m, args.features)
                service.registry.register(spec)
                for monitor in monitor_specs(args.monitors):
                    service.monitors.save(spec.name, monitor)
                rows, labels = predictions(spec, args.rows, seed=m)
                service.store.ingest_predictions(spec.name, rows)
                service.store.ingest_labels(spec.name, labels)
            service.registry.write_version_counts()
            rollups = Rollups(service)
            rollups.refresh_all()
            alerts = AlertStore(service.db, service.registry, service.now)
            ends = [NOW - timedelta(hours=args.windows - 1 - i) for i in range(args.windows)]
            runs = record_windows(service, alerts, args, ends[:1], rng)
            runs += clone_history(service, len(ends) - 3)
            runs += record_windows(service, alerts, args, ends[-2:], rng)
            findings = service.db.query_one("SELECT count(*) FROM findings")
            setup_s = time.perf_counter() - started
            print(f"set up {runs} runs, {findings[0] if findings else 0} findings in {setup_s:.1f}s", file=sys.stderr)

            clock = [0.0]
            reader = ModelHealthReader(service, rollups)
            collector = ModelMetricsCollector(reader, ttl=5.0, monotonic=lambda: clock[0])
            registry = CollectorRegistry()
            registry.register(collector)

            def uncached() -> tuple[float, int]:
                clock[0] += 10.0
                return timed(registry)

            cold, series = uncached()
            warm = [uncached()[0] for _ in range(args.repeats)]
            cached = [timed(registry)[0] for _ in range(args.repeats)]
            reads = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                reader.read()
                reads.append((time.perf_counter() - started) * 1000)
            record_windows(service, alerts, args, [NOW + timedelta(hours=1)], rng)
            after_new, _ = uncached()
            firing = service.db.query_one("SELECT count(*) FROM alerts WHERE state = 'firing'")
        finally:
            service.close()
    result = {
        "setup": {
            "models": args.models,
            "features": args.features,
            "monitors_per_model": args.monitors,
            "windows_per_monitor": args.windows,
            "runs": runs,
            "findings_rows": int(findings[0]) if findings else 0,
            "firing_alerts": int(firing[0]) if firing else 0,
            "predictions_per_model": args.rows,
        },
        "series": series,
        "cold_ms": round(cold, 2),
        "uncached_ms": {
            "median": round(statistics.median(warm), 2),
            "p95": round(sorted(warm)[int(0.95 * (len(warm) - 1))], 2),
            "max": round(max(warm), 2),
        },
        "after_new_runs_ms": round(after_new, 2),
        "cached_ms": {"median": round(statistics.median(cached), 3)},
        "read_only_ms": {"median": round(statistics.median(reads), 2)},
        "note": "uncached = read (queries + snapshot) + text rendering by prometheus_client; cached = rendering only",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    print(json.dumps(result, indent=2))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
