"""Per-model gauges on ``/metrics`` (api/model_metrics.py): a real app with a real DuckDB, data and
labels ingested over the API, monitors run over the API, then a scrape parsed with
prometheus_client's own parser and compared with what the API reports."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from api.model_metrics import TABLE_FEATURE, ModelHealthReader, ModelMetricsCollector
from monitor.formats import table_to_arrow_stream
from monitor.rollups import Rollups
from monitor.schema import ModelSchema
from monitor.service import Loopwatch
from monitor.settings import Settings
from tests.conftest import BRAKING, Api

MODEL = str(BRAKING["name"])
BASE = f"/v1/models/{MODEL}"
ARROW = {"Content-Type": "application/vnd.apache.arrow.stream"}
REFERENCE = {"kind": "trailing", "length": "6h"}
MONITORS: list[dict[str, Any]] = [
    {"name": "feature-drift", "detector": "data_drift", "every": "1h", "window": "1h", "reference": REFERENCE,
     "severity": "critical"},
    {"name": "quality", "detector": "performance", "every": "1h", "window": "1h", "reference": REFERENCE,
     "params": {"min_coverage": 0.1}, "severity": "warning"},
    {"name": "estimated-accuracy", "detector": "estimated_performance", "every": "1h", "window": "1h",
     "reference": REFERENCE, "params": {"metrics": ["accuracy", "recall"]}, "severity": "info"},
]  # fmt: skip
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _hour(start: datetime, n: int, spread: float, seed: int) -> tuple[pa.Table, pa.Table]:
    """An hour of predictions of a calibrated model (P(brake) = score) and their labels. A small
    ``spread`` crowds the rows at the decision boundary: speed drifts and accuracy drops."""
    rng = np.random.default_rng(seed)
    speed = rng.normal(50, spread, n)
    score = 1 / (1 + np.exp(-(speed - 50) / 5))
    offsets = np.sort(rng.uniform(0, 3500, n))
    ts = np.datetime64(start.replace(tzinfo=None), "us") + (offsets * 1e6).astype("timedelta64[us]")
    ids = [f"m-{seed}-{i}" for i in range(n)]
    predictions = pa.table(
        {
            "prediction_id": ids,
            "timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "model_version": ["1.0"] * n,
            "speed_kmh": speed,
            "road_type": rng.choice(["urban", "highway"], n),
            "night": rng.random(n) < 0.3,
            "prediction": np.where(score >= 0.5, "brake", "none"),
            "score": score,
            "latency_ms": rng.lognormal(np.log(20), 0.2, n),
            "region": rng.choice(["eu", "us"], n),
            "firmware": rng.choice(["3.1", "3.2"], n),
        }
    )
    labels = pa.table({"prediction_id": ids, "label": np.where(rng.random(n) < score, "brake", "none")})
    return predictions, labels


def _this_hour() -> datetime:
    """The current hour's start, read when a test runs — not at collection: a suite crossing an
    hour would otherwise run its monitors on a window more than one period old, which is history
    (recorded, never live; CI once failed so at 07:00 UTC)."""
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


@dataclass
class Populated:
    api: Api
    runs: dict[str, str]  # monitor → run id
    now: datetime  # the window end the monitors ran at

    @property
    def service(self) -> Loopwatch:
        return self.api.client.app.state.service  # type: ignore[attr-defined]


def _populate(api: Api) -> Populated:
    """Six labelled reference hours, a drifted current hour with half its labels, three monitors
    run live at this hour's start over the API, and the hourly rollups refreshed (the background
    job's work)."""
    now = _this_hour()
    for hours_ago, spread in [(7, 10), (6, 10), (5, 10), (4, 10), (3, 10), (2, 10), (1, 3)]:
        predictions, labels = _hour(now - timedelta(hours=hours_ago), 1_500, spread, seed=hours_ago)
        if hours_ago == 1:
            labels = labels.slice(0, 750)
        for path, table in (("predictions", predictions), ("labels", labels)):
            body = table_to_arrow_stream(table)
            api.client.post(f"{BASE}/{path}", content=body, headers={**api.ingest, **ARROW}).raise_for_status()
    api.client.post(f"{BASE}/monitors", json=MONITORS, headers=api.admin).raise_for_status()
    runs: dict[str, str] = {}
    for monitor in MONITORS:
        name = monitor["name"]
        run = api.client.post(f"{BASE}/monitors/{name}/run", json={"at": now.isoformat()}, headers=api.admin).json()
        assert run["status"] == "succeeded" and run["live"], run
        runs[name] = run["run_id"]
    api.client.app.state.dashboards.rollups.refresh_all()  # type: ignore[attr-defined]
    return Populated(api, runs, now)


@contextmanager
def _app(data_dir: Path) -> Iterator[Api]:
    app = create_app(Settings(data_dir=data_dir), background=False)
    with TestClient(app) as client:
        keys = app.state.service.keys
        headers = {
            s: {"Authorization": f"Bearer {keys.create(s, f'test-{s}')[1]}"} for s in ("admin", "ingest", "read")
        }
        client.post("/v1/models", json=BRAKING, headers=headers["admin"]).raise_for_status()
        yield Api(client, headers["admin"], headers["ingest"], headers["read"])


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Populated]:
    """One populated app shared by the read-only tests of this module (population takes seconds)."""
    with _app(tmp_path_factory.mktemp("model-metrics") / "data") as api:
        populated = _populate(api)
        # A second model that never sent anything (registered before any scrape: snapshots live 5 s).
        api.client.post("/v1/models", json={**BRAKING, "name": "idle-model"}, headers=api.admin).raise_for_status()
        yield populated


def _parse(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _scrape(api: Api) -> Samples:
    response = api.client.get("/metrics", headers=api.read)
    assert response.status_code == 200
    return _parse(response.text)


def _select(samples: Samples, name: str, **labels: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        key: value
        for (sample, key), value in samples.items()
        if sample == name and all(dict(key).get(k) == v for k, v in labels.items())
    }


def _key(**labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def _whole_window(api: Api, run_id: str) -> list[dict[str, object]]:
    record = api.client.get(f"/v1/runs/{run_id}", headers=api.read).json()
    return [f for f in record["findings"] if f["segment"] is None]


def test_drift_gauges_are_the_latest_run_findings(populated: Populated) -> None:
    """Rule: ``loopwatch_model_drift_score`` is each whole-window drift finding's value per feature
    (``*`` for the table-level verdict) and ``loopwatch_model_drift_status`` its verdict as a level
    (-1 insufficient data, 0 ok, 1 warning, 2 critical); the drifted feature shows critical."""
    api = populated.api
    samples = _scrape(api)
    findings = _whole_window(api, populated.runs["feature-drift"])
    assert findings, "the drift run judged no column"
    for f in findings:
        feature = str(f["column"] or TABLE_FEATURE)
        labels = {"model": MODEL, "monitor": "feature-drift", "feature": feature}
        if f["value"] is not None:
            assert samples[("loopwatch_model_drift_score", _key(**labels))] == pytest.approx(f["value"], rel=1e-12)
        level = {"insufficient_data": -1, "ok": 0, "warning": 1, "critical": 2}[str(f["status"])]
        assert samples[("loopwatch_model_drift_status", _key(**labels))] == level
    scores = _select(samples, "loopwatch_model_drift_score", monitor="feature-drift")
    assert len(scores) == sum(1 for f in findings if f["value"] is not None)
    assert len(_select(samples, "loopwatch_model_drift_status", monitor="feature-drift")) == len(findings)
    speed = _key(model=MODEL, monitor="feature-drift", feature="speed_kmh")
    assert samples[("loopwatch_model_drift_status", speed)] == 2


def test_performance_gauges_are_realized_and_estimated_values(populated: Populated) -> None:
    """Rule: ``loopwatch_model_performance`` carries the performance monitor's whole-window metric
    values as ``kind="realized"`` and the estimated-performance monitor's as ``kind="estimated"``;
    bookkeeping findings (label coverage, estimator check) are not performance values."""
    api = populated.api
    samples = _scrape(api)
    for monitor, kind in (("quality", "realized"), ("estimated-accuracy", "estimated")):
        expected = {
            str(f["metric"]): f["value"]
            for f in _whole_window(api, populated.runs[monitor])
            if f["value"] is not None and f["metric"] not in ("label_coverage", "estimator_check")
        }
        assert expected, f"{monitor} produced no performance value"
        got = {
            dict(k)["metric"]: v
            for k, v in _select(samples, "loopwatch_model_performance", model=MODEL, monitor=monitor).items()
        }
        assert got == pytest.approx(expected, rel=1e-12)
        assert {dict(k)["kind"] for k in _select(samples, "loopwatch_model_performance", monitor=monitor)} == {kind}
    assert {"accuracy", "recall"} <= {
        dict(k)["metric"] for k in _select(samples, "loopwatch_model_performance", kind="estimated")
    }


def test_firing_alerts_volume_coverage_and_freshness_match_the_api(populated: Populated) -> None:
    """Rule: firing alerts per severity equal ``GET /v1/alerts?state=firing`` (0 for the other known
    severities, and for a model with nothing), predictions equal the all-time stats, coverage the
    7-day stats, the last-prediction timestamp the stats' last timestamp; a model without data has
    no coverage or freshness series rather than made-up values."""
    api = populated.api
    samples = _scrape(api)
    firing = api.client.get("/v1/alerts", params={"state": "firing"}, headers=api.read).json()
    assert firing, "the drifted window fired nothing"
    by_severity = Counter(a["severity"] for a in firing if a["model"] == MODEL)
    for severity in ("info", "warning", "critical"):
        labels = _key(model=MODEL, severity=severity)
        assert samples[("loopwatch_model_alerts_firing", labels)] == by_severity.get(severity, 0)
        assert samples[("loopwatch_model_alerts_firing", _key(model="idle-model", severity=severity))] == 0

    stats = api.client.get(f"{BASE}/stats", headers=api.read).json()
    assert samples[("loopwatch_model_predictions_total", _key(model=MODEL))] == stats["predictions"] == 10_500
    last = datetime.fromisoformat(stats["last_timestamp"]).timestamp()
    assert samples[("loopwatch_model_last_prediction_timestamp_seconds", _key(model=MODEL))] == pytest.approx(last)

    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    params = {"start": (end - timedelta(days=7)).isoformat(), "end": end.isoformat()}
    window = api.client.get(f"{BASE}/stats", params=params, headers=api.read).json()
    ratio = samples[("loopwatch_model_label_coverage_ratio", _key(model=MODEL))]
    assert ratio == pytest.approx(window["labels"] / window["predictions"]) == pytest.approx(9_750 / 10_500)

    assert samples[("loopwatch_model_predictions_total", _key(model="idle-model"))] == 0
    assert not _select(samples, "loopwatch_model_label_coverage_ratio", model="idle-model")
    assert not _select(samples, "loopwatch_model_last_prediction_timestamp_seconds", model="idle-model")
    assert samples[("loopwatch_duckdb_wal_bytes", ())] >= 0


def test_cap_keeps_the_worst_features_and_counts_the_rest(populated: Populated) -> None:
    """Rule: with a cap of one feature per model, only the most severe feature (the drifted one)
    keeps drift series, the table-level verdict stays, and the omitted count says how many went."""
    reader = ModelHealthReader(populated.service, populated.api.client.app.state.dashboards.rollups, max_features=1)  # type: ignore[attr-defined]
    snapshot = reader.read()
    features = {d.feature for d in snapshot.drift if d.model == MODEL}
    assert features == {"speed_kmh", TABLE_FEATURE}
    judged = {f["column"] for f in _whole_window(populated.api, populated.runs["feature-drift"]) if f["column"]}
    (volume,) = [v for v in snapshot.volumes if v.model == MODEL]
    assert volume.drift_features_omitted == len(judged) - 1 > 0


def test_a_scrape_does_not_wait_for_the_write_lock(populated: Populated) -> None:
    """Rule: reading the per-model state takes no write lock, so a scrape completes while ingest
    (or sealing, or a checkpoint) holds it."""
    service = populated.service
    reader = ModelHealthReader(service, populated.api.client.app.state.dashboards.rollups)  # type: ignore[attr-defined]
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with service.db.write_lock:
            held.set()
            release.wait(timeout=30)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert held.wait(timeout=10)
    done: list[int] = []
    scraper = threading.Thread(target=lambda: done.append(len(reader.read().drift)), daemon=True)
    try:
        scraper.start()
        scraper.join(timeout=20)
        assert done and done[0] > 0, "the scrape waited for the write lock"
    finally:
        release.set()
        holder.join(timeout=10)
        scraper.join(timeout=10)


def test_deleted_monitors_backfills_and_the_cache(tmp_path: Path) -> None:
    """Rule: a snapshot is reused for ``ttl`` seconds and re-read after; backfill runs never become
    the latest values; a deleted monitor's series disappear at the next read, and a monitor
    created again under its name has series only once it has run itself."""
    with _app(tmp_path / "data") as api:
        populated = _populate(api)
        service = populated.service
        clock = [0.0]
        collector = ModelMetricsCollector(
            ModelHealthReader(service, api.client.app.state.dashboards.rollups),  # type: ignore[attr-defined]
            ttl=5.0,
            monotonic=lambda: clock[0],
        )
        registry = CollectorRegistry()
        registry.register(collector)

        def scrape() -> Samples:
            return _parse(generate_latest(registry).decode())

        before = scrape()
        assert _select(before, "loopwatch_model_drift_score", monitor="feature-drift")
        # The rest of the current hour's labels arrive, and a backfill re-judges that same window:
        # its values differ, and it is the newest run of the window, yet it is history, not "now".
        _, labels = _hour(populated.now - timedelta(hours=1), 1_500, 3, seed=1)
        body_bytes = table_to_arrow_stream(labels.slice(750))
        api.client.post(f"{BASE}/labels", content=body_bytes, headers={**api.ingest, **ARROW}).raise_for_status()
        body = {"from": (populated.now - timedelta(hours=1)).isoformat(), "to": populated.now.isoformat(), "monitors": ["quality"]}
        backfill = api.client.post(f"{BASE}/backfill", json=body, headers=api.admin).json()
        assert backfill["runs"] == 1 and backfill["failed"] == 0
        replayed = api.client.get(
            f"{BASE}/findings", params={"monitor": "quality", "include_backfill": True}, headers=api.read
        ).json()
        accuracy = {f["mode"]: f["value"] for f in replayed if f["metric"] == "accuracy" and f["segment"] is None}
        assert accuracy["backfill"] != accuracy["manual"]
        api.client.delete(f"{BASE}/monitors/feature-drift", headers=api.admin).raise_for_status()
        clock[0] = 4.9
        assert scrape() == before  # within the TTL: the cached snapshot
        clock[0] = 5.0
        after = scrape()
        assert not _select(after, "loopwatch_model_drift_score", monitor="feature-drift")
        assert not _select(after, "loopwatch_model_drift_status", monitor="feature-drift")
        perf = {k: v for (name, k), v in before.items() if name == "loopwatch_model_performance"}
        assert perf and perf == {k: v for (name, k), v in after.items() if name == "loopwatch_model_performance"}

        # A new monitor of the same name shows nothing of its deleted namesake's runs, only its own.
        api.client.post(f"{BASE}/monitors", json=MONITORS[0], headers=api.admin).raise_for_status()
        clock[0] = 10.0
        assert not _select(scrape(), "loopwatch_model_drift_score", monitor="feature-drift")
        run = api.client.post(f"{BASE}/monitors/feature-drift/run", json={"at": populated.now.isoformat()}, headers=api.admin)
        assert run.json()["status"] == "succeeded"
        clock[0] = 15.0
        assert _select(scrape(), "loopwatch_model_drift_score", monitor="feature-drift")


def test_the_predictions_counter_never_goes_down(service: Loopwatch, braking_model: ModelSchema) -> None:
    """Rule: ``loopwatch_model_predictions_total`` and the last-prediction time never decrease
    between scrapes, even when a batch is missing from one read (the upkeep wrote and cleared its
    pending count between the scrape's two reads): Prometheus would take a decrease for a reset."""
    reader = ModelHealthReader(service, Rollups(service))
    now = _this_hour()
    predictions, _ = _hour(now - timedelta(hours=1), 100, 10, seed=7)
    service.store.ingest_predictions(MODEL, predictions)
    (first,) = reader.read().volumes
    assert first.predictions == 100 and first.last_prediction is not None
    service.registry.version_tally.clear()  # the batch now in neither the table nor the tally
    (second,) = reader.read().volumes
    assert (second.predictions, second.last_prediction) == (first.predictions, first.last_prediction)
    later, _ = _hour(now, 50, 10, seed=8)
    service.store.ingest_predictions(MODEL, later)
    service.registry.write_version_counts()
    (third,) = reader.read().volumes
    assert third.predictions == 100  # 50 counted, still below what was exported: held
    assert third.last_prediction is not None and third.last_prediction > first.last_prediction


def test_a_failed_read_costs_the_per_model_series_not_the_scrape(tmp_path: Path) -> None:
    """Rule: when the stores cannot be read (here: the database is closed), the scrape still
    answers, without per-model series, and counts the failure."""
    service = Loopwatch(Settings(data_dir=tmp_path / "data"))
    service.registry.register(ModelSchema.model_validate(BRAKING))
    registry = CollectorRegistry()
    registry.register(ModelMetricsCollector(ModelHealthReader(service, Rollups(service)), ttl=0.0))
    healthy = _parse(generate_latest(registry).decode())
    assert healthy[("loopwatch_model_metrics_read_failures_total", ())] == 0
    assert _select(healthy, "loopwatch_model_alerts_firing", model=MODEL)
    service.close()
    broken = _parse(generate_latest(registry).decode())
    assert broken[("loopwatch_model_metrics_read_failures_total", ())] == 1
    assert not [key for key in broken if key[0].startswith("loopwatch_model_") and "read_failures" not in key[0]]
