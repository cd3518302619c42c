"""Demo data: two realistic models, two weeks of traffic, delayed labels and known incidents.

* ``sleep-apnea`` — a wearable's binary apnea screener, segmented by device generation. Model
  version 1.5 rolls out on day 10 and misses more apnea events (false-negative rise). In the
  last 18 hours a new device generation (``gen6``) brings borderline users: the estimated
  performance monitor sees the drop before their labels arrive.
* ``fleet-events`` — a fleet camera's multiclass event classifier, segmented by firmware.
  On day 9 firmware 3.2 changes camera exposure (``brightness`` drifts), and model version
  2.3.0 is ~40% slower at p95: a canary on a quarter of the traffic from the middle of day 10
  (the ``canary`` monitor's version comparison says roll back), everyone from day 11.

Labels arrive 6-72 hours after the prediction for a share of traffic, as reviews do in
practice, so the most recent days have low label coverage.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gates.runs import GateRunStore
from labeling.curation import BuildRequest, DatasetStore
from monitor.files import sha256_file
from monitor.schema import ModelSchema
from monitor.service import Loopwatch

SLEEP_APNEA = ModelSchema(
    name="sleep-apnea",
    task="binary",
    classes=["normal", "apnea"],
    positive_class="apnea",
    features={
        "spo2_min": "numeric",
        "hr_mean": "numeric",
        "hrv_rmssd": "numeric",
        "resp_rate": "numeric",
        "motion_index": "numeric",
        "sleep_stage": "categorical",
        "on_charger": "boolean",
    },
    segments=["device_gen", "region"],
    description="Wearable overnight sleep-apnea screener (one prediction per 5-minute epoch).",
    owner="sleep-health-ml",
)

FLEET_EVENTS = ModelSchema(
    name="fleet-events",
    task="multiclass",
    classes=["none", "harsh_braking", "tailgating", "distracted"],
    features={
        "speed_kmh": "numeric",
        "accel_x": "numeric",
        "brightness": "numeric",
        "object_count": "numeric",
        "road_type": "categorical",
        "night": "boolean",
    },
    segments=["firmware", "region"],
    description="Dash-camera safety event classifier.",
    owner="fleet-safety-ml",
)


@dataclass(frozen=True)
class DemoPlan:
    days: int = 14
    per_day: int = 1500
    label_share: float = 0.35
    seed: int = 7
    cohort_hours: int = 18


def _times(rng: np.random.Generator, start: datetime, days: int, per_day: int) -> np.ndarray:
    base = np.datetime64(start.replace(tzinfo=None), "us")
    offsets = np.sort(rng.uniform(0, days * 86400, days * per_day))
    return base + (offsets * 1e6).astype("timedelta64[us]")


def _delayed_labels(
    rng: np.random.Generator, ids: np.ndarray, ts: np.ndarray, truth: np.ndarray, now: datetime, share: float
) -> pa.Table:
    chosen = rng.random(len(ids)) < share
    delay = (rng.uniform(6, 72, len(ids)) * 3600e6).astype("timedelta64[us]")
    arrival = ts + delay
    visible = chosen & (arrival <= np.datetime64(now.replace(tzinfo=None), "us"))
    return pa.table(
        {
            "prediction_id": pa.array(ids[visible], pa.string()),
            "label": pa.array(truth[visible], pa.string()),
            "timestamp": pa.array(arrival[visible], pa.timestamp("us", tz="UTC")),
            "source": pa.array(["clinical-review"] * int(visible.sum())),
        }
    )


def _apnea_epochs(
    rng: np.random.Generator, ts: np.ndarray, start: datetime, prefix: str
) -> tuple[pa.Table, np.ndarray]:
    """Screener epochs at times ``ts`` (the same generative model for every cohort): the
    prediction rows and the true label of each."""
    n = len(ts)
    day = ((ts - np.datetime64(start.replace(tzinfo=None), "us")) / np.timedelta64(1, "D")).astype(int)
    apnea = rng.random(n) < 0.18
    spo2 = np.where(apnea, rng.normal(86, 3.5, n), rng.normal(94, 1.8, n))
    hr = np.where(apnea, rng.normal(72, 9, n), rng.normal(61, 7, n))
    hrv = np.abs(np.where(apnea, rng.normal(28, 9, n), rng.normal(45, 12, n)))
    resp = np.where(apnea, rng.normal(11, 3, n), rng.normal(14.5, 2, n))
    motion = rng.gamma(2.0, 0.15, n) + apnea * 0.2
    stage = rng.choice(["light", "deep", "rem", "wake"], n, p=[0.5, 0.2, 0.22, 0.08])
    device = rng.choice(["gen3", "gen4", "gen5"], n, p=[0.25, 0.45, 0.30])
    region = rng.choice(["eu", "us", "apac"], n, p=[0.4, 0.4, 0.2])
    version = np.where(day >= 10, "1.5.0", "1.4.2")
    logit = -0.55 * (spo2 - 90) + 0.04 * (hr - 65) - 0.03 * (hrv - 38) - 0.2 * (resp - 13) + rng.normal(0, 0.8, n)
    # Version 1.5.0 ships with a miscalibrated threshold: it misses many apnea epochs.
    logit = np.where(version == "1.5.0", logit - 1.6, logit)
    score = 1 / (1 + np.exp(-logit))
    prediction = np.where(score >= 0.5, "apnea", "normal")
    latency = rng.lognormal(np.log(18), 0.35, n)
    ids = np.array([f"{prefix}{i:07d}" for i in range(n)])
    table = pa.table(
        {
            "prediction_id": ids,
            "timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "model_version": version,
            "spo2_min": np.round(spo2, 1),
            "hr_mean": np.round(hr, 1),
            "hrv_rmssd": np.round(hrv, 1),
            "resp_rate": np.round(resp, 1),
            "motion_index": np.round(motion, 3),
            "sleep_stage": stage,
            "on_charger": rng.random(n) < 0.02,
            "prediction": prediction,
            "score": np.round(score, 4),
            "latency_ms": np.round(latency, 2),
            "device_gen": device,
            "region": region,
        }
    )
    return table, np.where(apnea, "apnea", "normal")


def sleep_apnea_traffic(now: datetime, plan: DemoPlan) -> tuple[pa.Table, pa.Table]:
    rng = np.random.default_rng(plan.seed)
    start = now - timedelta(days=plan.days)
    ts = _times(rng, start, plan.days, plan.per_day)
    table, truth = _apnea_epochs(rng, ts, start, "sa-")
    labels = _delayed_labels(rng, np.asarray(table.column("prediction_id")), ts, truth, now, plan.label_share)
    if plan.cohort_hours <= 0:
        return table, labels
    cohort, cohort_labels = _borderline_cohort(now, start, plan)
    return pa.concat_tables([table, cohort]), pa.concat_tables([labels, cohort_labels])


def _borderline_cohort(now: datetime, start: datetime, plan: DemoPlan) -> tuple[pa.Table, pa.Table]:
    """The incident visible before its labels: for the last ``plan.cohort_hours``, a new device
    generation (``gen6``) enrols users whose readings sit near the screener's decision boundary.
    They are drawn from the same generative model and kept only where the score is between 0.3
    and 0.7, so the score still means what it meant (calibration holds) while the share of hard
    epochs jumps: accuracy and the FN rate worsen at once, hours before the clinical review's
    labels (6–72 h) arrive. A separate random stream keeps the rest of the demo unchanged."""
    rng = np.random.default_rng(plan.seed + 1)
    hours = plan.cohort_hours
    candidates = int(plan.per_day * hours / 24 * 6)
    base = np.datetime64((now - timedelta(hours=hours)).replace(tzinfo=None), "us")
    ts = base + (np.sort(rng.uniform(0, hours * 3600, candidates)) * 1e6).astype("timedelta64[us]")
    table, truth = _apnea_epochs(rng, ts, start, "sa-gen6-")
    score = np.asarray(table.column("score"))
    keep = (score > 0.3) & (score < 0.7)
    table, truth, ts = table.filter(pa.array(keep)), truth[keep], ts[keep]
    gen6 = pa.array(["gen6"] * table.num_rows, pa.string())
    table = table.set_column(table.schema.get_field_index("device_gen"), "device_gen", gen6)
    labels = _delayed_labels(rng, np.asarray(table.column("prediction_id")), ts, truth, now, plan.label_share)
    return table, labels


def fleet_events_traffic(now: datetime, plan: DemoPlan) -> tuple[pa.Table, pa.Table]:
    rng = np.random.default_rng(plan.seed + 1)
    start = now - timedelta(days=plan.days)
    ts = _times(rng, start, plan.days, plan.per_day)
    n = len(ts)
    day = ((ts - np.datetime64(start.replace(tzinfo=None), "us")) / np.timedelta64(1, "D")).astype(int)
    classes = np.array(FLEET_EVENTS.classes)
    truth_idx = rng.choice(4, n, p=[0.82, 0.07, 0.06, 0.05])
    speed = np.clip(rng.normal(62, 22, n) + (truth_idx == 2) * 18, 0, 160)
    accel = rng.normal(0, 0.9, n) - (truth_idx == 1) * 4.5
    firmware = rng.choice(["3.1", "3.2"], n, p=[0.55, 0.45])
    night = rng.random(n) < 0.3
    brightness = np.where(night, rng.normal(55, 12, n), rng.normal(140, 25, n))
    # Incident: from day 9, firmware 3.2 changes exposure and frames come out much brighter.
    brightness = np.where((day >= 9) & (firmware == "3.2"), brightness * 1.35 + 20, brightness)
    objects = rng.poisson(4 + (truth_idx == 2) * 3, n).astype(float)
    road = rng.choice(["highway", "urban", "rural"], n, p=[0.45, 0.4, 0.15])
    logits = rng.normal(0, 1.0, (n, 4))
    logits[np.arange(n), truth_idx] += 3.2
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    pred_idx = probs.argmax(axis=1)
    # Rollout of 2.3.0: a canary on a quarter of the traffic for the second half of day 10, then
    # everyone from day 11 (the canary comparison catches it slower than 2.2.1 in those windows).
    day_fraction = (ts - np.datetime64(start.replace(tzinfo=None), "us")) / np.timedelta64(1, "D")
    canary = (day_fraction >= 10.5) & (np.arange(n) % 4 == 0)
    version = np.where((day >= 11) | canary, "2.3.0", "2.2.1")
    latency = rng.lognormal(np.log(42), 0.3, n) * np.where(version == "2.3.0", 1.4, 1.0)
    ids = np.array([f"fe-{i:07d}" for i in range(n)])
    table = pa.table(
        {
            "prediction_id": ids,
            "timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "model_version": version,
            "speed_kmh": np.round(speed, 1),
            "accel_x": np.round(accel, 3),
            "brightness": np.round(brightness, 1),
            "object_count": objects,
            "road_type": road,
            "night": night,
            "prediction": classes[pred_idx],
            "probabilities": pa.array(
                list(np.round(probs / probs.sum(axis=1, keepdims=True), 6)), pa.list_(pa.float64())
            ),
            "latency_ms": np.round(latency, 2),
            "firmware": firmware,
            "region": rng.choice(["eu", "us"], n, p=[0.5, 0.5]),
        }
    )
    return table, _delayed_labels(rng, ids, ts, classes[truth_idx], now, plan.label_share)


def load_demo(service: Loopwatch, now: datetime, plan: DemoPlan | None = None) -> dict[str, dict[str, int]]:
    """Register the demo models and load their traffic and labels (idempotent: re-running adds nothing)."""
    plan = plan or DemoPlan()
    out: dict[str, dict[str, int]] = {}
    for spec, generate in ((SLEEP_APNEA, sleep_apnea_traffic), (FLEET_EVENTS, fleet_events_traffic)):
        service.registry.register(spec)
        predictions, labels = generate(now, plan)
        accepted = 0
        for start in range(0, predictions.num_rows, 20_000):
            accepted += service.store.ingest_predictions(spec.name, predictions.slice(start, 20_000)).accepted
        applied = service.store.ingest_labels(spec.name, labels, source="demo").applied if labels.num_rows else 0
        out[spec.name] = {"predictions": accepted, "labels": applied}
    return out


# ------------------------------------------------------------------------------------------
# The incidents as monitors, found by a backfill and by one live run of each monitor.
# ------------------------------------------------------------------------------------------

DEMO_MONITORS: dict[str, list[dict[str, object]]] = {
    "fleet-events": [
        {
            "name": "feature-drift",
            "detector": "data_drift",
            "every": "6h",
            "window": "1d",
            "reference": {"kind": "trailing", "length": "7d"},
            "segments": ["firmware"],
            "severity": "warning",
            "route": {"runbook": "https://runbooks.example/loopwatch/feature-drift"},
        },
        {
            "name": "latency",
            "detector": "latency",
            "every": "6h",
            "window": "12h",
            "reference": {"kind": "previous_version"},
            "severity": "critical",
            "route": {"runbook": "https://runbooks.example/loopwatch/latency"},
        },
        {
            "name": "canary",
            "detector": "version_comparison",
            "every": "6h",
            "window": "12h",
            "params": {"min_rows": 100, "checks": ["latency", "predictions", "inputs"]},
            "severity": "critical",
            "route": {"runbook": "https://runbooks.example/loopwatch/canary"},
        },
        {
            "name": "silence",
            "detector": "freshness",
            "every": "15m",
            "window": "1h",
            "params": {"max_silence_minutes": 120},
            "severity": "critical",
        },
    ],
    "sleep-apnea": [
        {
            "name": "fn-rate",
            "detector": "performance",
            "every": "6h",
            "window": "3d",
            "reference": {"kind": "trailing", "length": "7d"},
            "params": {"min_coverage": 0.1, "metrics": ["fnr", "fpr", "precision"]},
            "segments": ["device_gen"],
            "severity": "critical",
            "rejudge": "3d",
            "route": {"runbook": "https://runbooks.example/loopwatch/fn-rate"},
        },
        {
            "name": "estimated-quality",
            "detector": "estimated_performance",
            "every": "6h",
            "window": "12h",
            "reference": {"kind": "trailing", "length": "3d"},
            "params": {"metrics": ["accuracy", "fnr", "precision"]},
            "severity": "critical",
            "rejudge": "3d",
            "route": {"runbook": "https://runbooks.example/loopwatch/estimated-quality"},
        },
        {
            "name": "prediction-drift",
            "detector": "prediction_drift",
            "every": "6h",
            "window": "1d",
            "reference": {"kind": "trailing", "length": "7d"},
            "severity": "warning",
        },
    ],
}


def run_demo_monitors(service: Loopwatch, now: datetime, days: int = 14) -> dict[str, object]:
    """Declare the demo monitors, backfill the history (no paging), then run each monitor once
    for the current window so the injected incidents fire as alerts and samples are routed."""
    from api.app import connect_alerting
    from monitor.alerting.notify.receivers import notifier_from_settings
    from monitor.monitors import parse_monitor

    for model, monitors in DEMO_MONITORS.items():
        for spec in monitors:
            service.monitors.save(model, parse_monitor(spec))
    application = connect_alerting(service, service.settings, notifier_from_settings(service.settings), service.now)
    pipeline, queue = application.pipeline, application.labeling.queue
    backfill = {m: len(service.runner.backfill(m, now - timedelta(days=days - 7), now)) for m in DEMO_MONITORS}
    for model, monitors in DEMO_MONITORS.items():
        for spec in monitors:
            service.runner.run(model, str(spec["name"]), window_end=now, mode="manual")
    fired = pipeline.alerts.list(state="firing", limit=10_000)
    decisions = [
        f
        for f in service.runs.findings("fleet-events", monitor="canary", limit=1000)
        if f["metric"] == "decision" and f["details"].get("decision") == "roll_back"
    ]
    canary = None
    if decisions:
        first = min(decisions, key=lambda f: f["window_end"])
        canary = (
            f"{first['details']['candidate']} vs {first['details']['baseline']}: roll back in the window ending "
            f"{first['window_end']} ({first['details']['reasons'][0]})"
        )
    return {
        "backfill_runs": backfill,
        "alerts_fired": len(fired),
        "samples_queued": queue.depth(),
        "canary": canary,
    }


# ------------------------------------------------------------------------------------------
# The release-gate worked example (issue 13): may a fixed screener ship after the FN incident?

DEMO_GATE_SPEC = """\
# May a new sleep-apnea screener version ship? (loopwatch demo)
name: apnea-release
model: sleep-apnea
positive_class: apnea
confidence: 0.95
criteria:
  - {metric: recall, min: 0.70}              # catches apnea epochs: lower bound must clear 0.70
  - {metric: fpr, max: 0.06}                 # few false alarms: upper bound under 0.06
  - {metric: recall, non_inferiority: 0.05}  # at most 5 points below the 1.4.2 champion, same epochs
slices: [device_gen]
min_samples: 50
"""
DEMO_GATE_DATASET = "apnea-release"


def _screener(scores: np.ndarray, shift: float, noise: float, seed: int) -> np.ndarray:
    """Predictions of a screener whose logit differs from the stored 1.5.0 scores by ``shift``
    (1.5.0 shipped with its logit 1.6 too low) plus Gaussian ``noise`` (a retrained model is not
    identical to the old one)."""
    logit = np.log(scores / (1 - scores)) + shift + np.random.default_rng(seed).normal(0, noise, scores.size)
    return np.where(logit >= 0, "apnea", "normal")


def run_demo_gates(
    service: Loopwatch, now: datetime, datasets: DatasetStore, runs: GateRunStore
) -> dict[str, tuple[str, str]]:
    """The FN-rate incident's evaluation set — every labelled sleep-apnea epoch of the three days
    1.5.0 ran, built as dataset ``apnea-release`` — gates two candidates against the 1.4.2
    champion: 1.5.1, the threshold fixed (ship), and 1.5.0 again (no-ship, failing
    non-inferiority on every device generation). Writes the spec and the prediction files to
    ``DATA_DIR/demo-gate/`` for ``loopwatch gate evaluate``; idempotent (an existing dataset and
    existing runs are kept). Returns (run id, verdict) per candidate."""
    existing = [d for d in datasets.list() if d["name"] == DEMO_GATE_DATASET]
    if existing:
        version = int(existing[0]["latest"])
    else:
        manifest = datasets.build(
            BuildRequest(
                "sleep-apnea",
                DEMO_GATE_DATASET,
                start=now - timedelta(days=4),
                end=now - timedelta(days=1),
                source="labelled",
                created_by="demo",
            )
        )
        version = int(manifest["version"])
    rows = datasets.read(DEMO_GATE_DATASET, version).sort_by("prediction_id")
    ids = rows.column("prediction_id")
    scores = np.clip(np.asarray(rows.column("score").to_pylist(), dtype=np.float64), 1e-6, 1 - 1e-6)
    folder = service.settings.data_dir / "demo-gate"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "apnea-release.yaml").write_text(DEMO_GATE_SPEC)
    tables = {
        "champion-1.4.2": _screener(scores, 1.6, 0.0, seed=1),
        "candidate-1.5.1": _screener(scores, 1.6, 0.1, seed=2),
        "candidate-1.5.0": _screener(scores, 0.0, 0.0, seed=3),
    }
    for name, predictions in tables.items():
        pq.write_table(pa.table({"prediction_id": ids, "prediction": predictions}), folder / f"{name}.parquet")
    names = {sha256_file(folder / f"{c}.parquet"): c for c in ("candidate-1.5.1", "candidate-1.5.0")}
    done = {
        names[report["inputs"]["candidate"]["sha256"]]: (run["id"], run["verdict"])
        for run in runs.list("sleep-apnea")
        if (report := runs.report(run["id"]))["inputs"]["candidate"]["sha256"] in names
    }
    champion = pq.read_table(folder / "champion-1.4.2.parquet")
    out: dict[str, tuple[str, str]] = {}
    for candidate in ("candidate-1.5.1", "candidate-1.5.0"):
        if candidate in done:
            out[candidate] = done[candidate]
            continue
        summary = runs.create(
            DEMO_GATE_SPEC,
            f"{DEMO_GATE_DATASET}@{version}",
            pq.read_table(folder / f"{candidate}.parquet"),
            champion,
            service.now(),
        )
        out[candidate] = (summary["id"], summary["verdict"])
    return out
