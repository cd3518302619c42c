"""Dashboard server time: a model overview over 90 days × 50 features must render in < 0.5 s.

Builds one model with 50 numeric features and 90 days of traffic (hourly rollups computed from
the real prediction log), plus the findings a year of monitoring leaves behind for that range:
hourly drift windows for every feature (108,000 findings with histograms), hourly latency
findings and daily performance findings with intervals. Then it times the pages through the
whole HTTP stack (in-process client, API key auth) and writes ``bench/results/dashboard.json``.

It also times the Evidently report (``evidently_report``) on the demo's data (``api.demo``: two
models, 1,500 predictions a day each; the last day against the 7 days before it), next to the
plain Evidently call on the same rows in the same run: ``Report([DataDriftPreset()])`` over
every row of both windows' features, rendered to HTML. ``window_report`` is timed on a cache
miss (sampling in the store + Evidently + banner) and on a hit (sampling + content hash +
cache), in process and through the endpoint; ratios are ours / plain.

    .venv/bin/python bench/dashboard.py [--days 90] [--features 50] [--repeat 7]
    .venv/bin/python bench/dashboard.py --skip-pages [--profile-report]   # the Evidently part only
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi.testclient import TestClient

from api.app import create_app
from monitor.monitors import parse_monitor
from monitor.schema import ModelSchema
from monitor.settings import Settings

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
RESULTS = Path(__file__).resolve().parent / "results" / "dashboard.json"


def build(app, days: int, features: int, rows_per_hour: int) -> dict[str, float]:
    service = app.state.service
    names = [f"f{i:02d}" for i in range(features)]
    spec = ModelSchema(
        name="bench",
        task="binary",
        classes=["no", "yes"],
        positive_class="yes",
        features=dict.fromkeys(names, "numeric"),
        segments=["region"],
    )
    service.registry.register(spec)
    rng = np.random.default_rng(1)
    start = NOW - timedelta(days=days)
    hours = days * 24
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    n_total = hours * rows_per_hour
    for chunk in range(0, hours, 24 * 10):
        h = min(24 * 10, hours - chunk)
        n = h * rows_per_hour
        base = np.datetime64(start.replace(tzinfo=None), "us") + np.timedelta64(chunk * 3600, "s")
        ts = base + np.sort(rng.uniform(0, h * 3600e6, n)).astype("timedelta64[us]")
        day = chunk // 24 + np.arange(n) // (24 * rows_per_hour)
        version = np.where(day >= days * 2 // 3, "3.0", np.where(day >= days // 3, "2.0", "1.0"))
        columns = {
            "prediction_id": [f"b-{chunk}-{i}" for i in range(n)],
            "timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "model_version": version,
            **{name: rng.normal(0, 1, n) for name in names},
            "prediction": rng.choice(["no", "yes"], n),
            "score": rng.uniform(0, 1, n),
            "latency_ms": rng.lognormal(3, 0.3, n),
            "region": rng.choice(["eu", "us"], n),
        }
        service.store.ingest_predictions("bench", pa.table(columns))
    timings["ingest_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    app.state.dashboards.rollups.refresh("bench")
    timings["rollup_first_build_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    app.state.dashboards.rollups.refresh("bench")
    timings["rollup_refresh_nothing_new_s"] = time.perf_counter() - t0

    for m in (
        {
            "name": "drift",
            "detector": "data_drift",
            "every": "1h",
            "window": "1h",
            "reference": {"kind": "trailing", "length": "7d"},
        },
        {
            "name": "latency",
            "detector": "latency",
            "every": "1h",
            "window": "1h",
            "reference": {"kind": "trailing", "length": "7d"},
        },
        {
            "name": "quality",
            "detector": "performance",
            "every": "1d",
            "window": "1d",
            "reference": {"kind": "trailing", "length": "7d"},
        },
    ):
        service.monitors.save("bench", parse_monitor(m))

    # Findings as the monitors would have recorded them, inserted in bulk.
    t0 = time.perf_counter()
    model_id = service.registry.get("bench").id
    edges = list(np.linspace(-4, 4, 21))
    hist = {"edges": edges, "reference": [0.05] * 20, "current": [0.05] * 20}
    records: dict[str, list] = {
        k: []
        for k in (
            "window_end",
            "detector",
            "monitor",
            "metric",
            "column_name",
            "value",
            "threshold",
            "status",
            "details",
        )
    }
    for h in range(hours):
        end = start + timedelta(hours=h + 1)
        scores = rng.gamma(2, 0.03, features)
        drifting = names[: features // 10] if h > hours * 0.8 else []
        for name, score in zip(names, scores, strict=True):
            value = float(score + (0.3 if name in drifting else 0))
            records["window_end"].append(end)
            records["detector"].append("data_drift")
            records["monitor"].append("drift")
            records["metric"].append("wasserstein")
            records["column_name"].append(name)
            records["value"].append(value)
            records["threshold"].append(0.1)
            records["status"].append("critical" if value >= 0.1 else "ok")
            records["details"].append(json.dumps({"kind": "numeric", "method": "wasserstein", "histogram": hist}))
        for metric, value in (("p50", 20.0), ("p95", 32.0), ("p99", 40.0)):
            records["window_end"].append(end)
            records["detector"].append("latency")
            records["monitor"].append("latency")
            records["metric"].append(metric)
            records["column_name"].append(None)
            records["value"].append(value * float(rng.uniform(0.9, 1.3)))
            records["threshold"].append(value * 1.1)
            records["status"].append("ok")
            records["details"].append(json.dumps({"reference_value": value}))
    for d in range(days):
        end = start + timedelta(days=d + 1)
        for metric in ("fpr", "fnr", "precision", "recall"):
            v = float(rng.uniform(0.05, 0.2) if metric in ("fpr", "fnr") else rng.uniform(0.8, 0.95))
            records["window_end"].append(end)
            records["detector"].append("performance")
            records["monitor"].append("quality")
            records["metric"].append(metric)
            records["column_name"].append(None)
            records["value"].append(v)
            records["threshold"].append(None)
            records["status"].append("ok")
            records["details"].append(json.dumps({"current_ci": [v - 0.03, v + 0.03], "label_coverage": 0.4}))
    n = len(records["value"])
    run_id = uuid.uuid4().hex
    table = pa.table(
        {
            "id": [uuid.uuid4().hex for _ in range(n)],
            "run_id": [run_id] * n,
            "model_id": [model_id] * n,
            "monitor": records["monitor"],
            "detector": records["detector"],
            "mode": ["scheduled"] * n,
            "window_start": [
                e - (timedelta(days=1) if det == "performance" else timedelta(hours=1))
                for e, det in zip(records["window_end"], records["detector"], strict=True)
            ],
            "window_end": records["window_end"],
            "status": records["status"],
            "metric": records["metric"],
            "column_name": records["column_name"],
            "segment": pa.nulls(n, pa.string()),
            "model_version": pa.nulls(n, pa.string()),
            "value": records["value"],
            "threshold": pa.array(records["threshold"], pa.float64()),
            "p_value": pa.nulls(n, pa.float64()),
            "p_value_adjusted": pa.nulls(n, pa.float64()),
            "effect_size": pa.nulls(n, pa.float64()),
            "n_current": [rows_per_hour] * n,
            "n_reference": [rows_per_hour * 168] * n,
            "reference": ["trailing 7d"] * n,
            "details": records["details"],
            "created_at": [NOW] * n,
        }
    )
    with service.db.transaction() as cur:
        cur.register("bench_findings", table)
        cur.execute("INSERT INTO findings SELECT * FROM bench_findings").fetchall()
        cur.unregister("bench_findings")
    timings["findings"] = n
    timings["findings_insert_s"] = time.perf_counter() - t0
    timings["predictions"] = n_total
    return timings


def measure(client: TestClient, headers: dict[str, str], path: str, repeat: int) -> dict[str, float]:
    client.get(path, headers=headers).raise_for_status()  # warm (first-use imports, caches)
    times, size = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        response = client.get(path, headers=headers)
        times.append(time.perf_counter() - t0)
        response.raise_for_status()
        size = len(response.content)
    return {"median_s": statistics.median(times), "max_s": max(times), "bytes": size}


def measure_evidently(repeat: int, profile: bool) -> dict[str, object]:
    """The Evidently report on demo-sized data: plain Evidently vs ``window_report`` (miss, hit)."""
    from api.demo import load_demo
    from dashboards.evidently_report import ReportCache, window_report

    out: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(Settings(data_dir=Path(tmp) / "data"), now=lambda: NOW, background=False)
        with TestClient(app) as client:
            service = app.state.service
            load_demo(service, NOW)
            _, key = service.keys.create("read", "bench")
            headers = {"Authorization": f"Bearer {key}"}
            t0 = time.perf_counter()
            from evidently import Report
            from evidently.presets import DataDriftPreset

            out["evidently_import_s"] = time.perf_counter() - t0  # once per process, paid by the first report
            current = (NOW - timedelta(days=1), NOW)
            reference = (NOW - timedelta(days=8), NOW - timedelta(days=1))
            models: dict[str, object] = {}
            for model in ("fleet-events", "sleep-apnea"):
                features = list(service.registry.get(model).schema.features)

                def plain(model: str = model, features: list[str] = features) -> str:
                    cur = service.store.scan(model, *current, columns=features, with_labels=False).select(features)
                    ref = service.store.scan(model, *reference, columns=features, with_labels=False).select(features)
                    return Report([DataDriftPreset()]).run(cur.to_pandas(), ref.to_pandas()).get_html_str(as_iframe=False)

                def ours(cache: ReportCache | None = None, model: str = model) -> str:
                    return window_report(service, model, current, reference, cache=cache)

                rows = {
                    "current": service.store.stats(model, *current)["predictions"],
                    "reference": service.store.stats(model, *reference)["predictions"],
                    "features": len(features),
                }
                plain_s = _median(plain, 3)
                miss_s = _median(lambda: ours(ReportCache()), 3)  # a fresh, empty cache each time
                ours()  # fill the data directory's cache
                hit_s = _median(ours, repeat)
                params = {
                    "start": current[0].isoformat(),
                    "end": current[1].isoformat(),
                    "reference_start": reference[0].isoformat(),
                    "reference_end": reference[1].isoformat(),
                }
                path = f"/v1/models/{model}/report"
                endpoint_hit_s = _median(
                    lambda path=path, params=params: client.get(path, params=params, headers=headers).raise_for_status(),
                    repeat,
                )
                models[model] = {
                    "rows": rows,
                    "plain_evidently_s": plain_s,
                    "window_report_miss_s": miss_s,
                    "window_report_hit_s": hit_s,
                    "endpoint_hit_s": endpoint_hit_s,
                    "ratio_miss_vs_plain": miss_s / plain_s,
                    "ratio_hit_vs_plain": hit_s / plain_s,
                }
                if profile:
                    from pyinstrument import Profiler

                    profiler = Profiler(interval=0.005)
                    profiler.start()
                    ours(ReportCache())
                    profiler.stop()
                    print(profiler.output_text(unicode=False, color=False))
            out["models"] = models
    return out


def _median(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--rows-per-hour", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--skip-pages", action="store_true", help="only the Evidently report timings")
    parser.add_argument("--profile-report", action="store_true", help="print a pyinstrument profile of a report")
    args = parser.parse_args()
    evidently = measure_evidently(args.repeat, args.profile_report)
    if args.skip_pages:
        previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        previous["evidently_report"] = evidently
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(previous, indent=2) + "\n")
        print(json.dumps(evidently, indent=2))
        return
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(Settings(data_dir=Path(tmp) / "data"), now=lambda: NOW, background=False)
        with TestClient(app) as client:
            setup = build(app, args.days, args.features, args.rows_per_hour)
            _, key = app.state.service.keys.create("read", "bench")
            headers = {"Authorization": f"Bearer {key}"}
            pages = {
                f"overview_{args.days}d": f"/models/bench?days={args.days}",
                "overview_14d": "/models/bench?days=14",
                f"feature_{args.days}d": f"/models/bench/features/f00?days={args.days}",
                "models": "/models",
            }
            results = {name: measure(client, headers, path, args.repeat) for name, path in pages.items()}
    out = {
        "what": f"server time per page, {args.days} days × {args.features} features, hourly drift windows",
        "command": "python bench/dashboard.py",
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine()},
        "setup": setup,
        "pages": results,
        "target": {"overview_s": 0.5},
        "evidently_report": evidently,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    overview = results[f"overview_{args.days}d"]["median_s"]
    print(
        f"\nmodel overview ({args.days} d × {args.features} features): {overview * 1000:.0f} ms median (target < 500 ms)"
    )


if __name__ == "__main__":
    main()
