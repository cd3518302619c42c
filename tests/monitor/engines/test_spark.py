"""The Spark engine records the same findings as the embedded engine on the same sealed history.

A real PySpark session in local mode (one core) reads the real sealed Parquet of a real data
directory; nothing of ours is mocked."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from application import Application
from monitor.errors import InvalidInput
from monitor.scheduling import RunOutcome
from monitor.schema import ModelSchema
from monitor.service import Loopwatch
from monitor.settings import Settings
from tests.conftest import BRAKING

MODEL = "harsh-braking"
MASTER = "local[1]"
TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
START = TODAY - timedelta(days=5)  # four whole days, all sealed; the third one drifts
DRIFT_DAY = START + timedelta(days=2)
MONITORS: list[dict[str, Any]] = [
    {
        "name": "feature-drift",
        "detector": "data_drift",
        "every": "6h",
        "window": "6h",
        "reference": {"kind": "trailing", "length": "1d"},
        "segments": ["region"],
    },
    {
        "name": "perf",
        "detector": "performance",
        "every": "6h",
        "window": "6h",
        "reference": {"kind": "trailing", "length": "1d"},
        "params": {"min_coverage": 0.0, "bootstrap": 50},
    },
]
COMPARED = ("value", "threshold", "p_value", "p_value_adjusted", "effect_size")


def _history(service: Loopwatch, days: int = 4, per_day: int = 4000, seed: int = 11) -> None:
    """Predictions over ``days`` whole days with labels for 80% of them; on the drift day speed
    shifts and the model errs more often (so both monitors have something to find)."""
    rng = np.random.default_rng(seed)
    n = days * per_day
    offsets = np.sort(rng.uniform(0, days * 86400, n))
    ts = np.datetime64(START.replace(tzinfo=None), "us") + (offsets * 1e6).astype("timedelta64[us]")
    drifting = (offsets >= 2 * 86400) & (offsets < 3 * 86400)
    prediction = rng.choice(["none", "brake"], n, p=[0.7, 0.3])
    wrong = rng.random(n) < np.where(drifting, 0.35, 0.1)
    label = np.where(wrong, np.where(prediction == "brake", "none", "brake"), prediction)
    ids = [f"p-{i}" for i in range(n)]
    table = pa.table(
        {
            "prediction_id": ids,
            "timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "model_version": ["1.0"] * n,
            "speed_kmh": rng.normal(50, 10, n) + np.where(drifting, 9.0, 0.0),
            "road_type": rng.choice(["urban", "highway"], n),
            "night": rng.random(n) < 0.3,
            "prediction": prediction,
            "score": rng.random(n),
            "latency_ms": rng.lognormal(np.log(20), 0.2, n),
            "region": rng.choice(["eu", "us", "apac"], n, p=[0.6, 0.3, 0.1]),
            "firmware": rng.choice(["3.1", "3.2"], n),
        }
    )
    service.store.ingest_predictions(MODEL, table)
    labelled = rng.random(n) < 0.8
    service.store.ingest_labels(
        MODEL, pa.table({"prediction_id": pa.array(ids).filter(labelled), "label": pa.array(label).filter(labelled)})
    )


@pytest.fixture
def sealed(tmp_path: Path) -> Iterator[Application]:
    """A data directory whose history is all sealed; references above 1500 rows per slice are
    sampled, so the sampled path (mapInArrow) is compared too."""
    service = Loopwatch(Settings(data_dir=tmp_path / "data", reference_sample_rows=1500))
    service.registry.register(ModelSchema.model_validate(BRAKING))
    _history(service)
    service.store.seal(before=TODAY)
    app = Application.offline(service)
    app.monitors.apply("test", MODEL, MONITORS)
    try:
        yield app
    finally:
        app.monitors.close()
        service.close()


def _backfill(app: Application, engine: str) -> tuple[dict[str, Any], list[RunOutcome]]:
    outcomes: list[RunOutcome] = []
    plan = app.monitors.plan_backfill(MODEL, START, START + timedelta(days=4))
    summary = app.monitors.backfill(
        "test",
        plan,
        outcomes.append,
        engine=engine,
        spark_master=MASTER,  # type: ignore[arg-type]
    )
    return summary, outcomes


def _key(outcome: RunOutcome, finding: Any) -> tuple[Any, ...]:
    return (
        outcome.monitor.name,
        outcome.run.window_end,
        finding.metric,
        finding.column,
        tuple(sorted((finding.segment or {}).items())),
    )


@pytest.mark.slow
def test_spark_backfill_records_the_embedded_engines_findings(sealed: Application) -> None:
    """Every finding of a Spark backfill (data drift with a sampled, segmented reference and
    performance with labels) equals the embedded engine's on the same sealed data: same status,
    same counts, values to 1e-9; both are recorded as backfill runs, the engine named; the labels
    snapshot the executors read is removed when the session ends."""
    embedded, embedded_runs = _backfill(sealed, "embedded")
    spark, spark_runs = _backfill(sealed, "spark")
    assert embedded["engine"] == "embedded" and spark["engine"] == "spark" and spark["spark_master"] == MASTER
    assert embedded["runs"] == spark["runs"] == 2 * 16 and not embedded["failed"] and not spark["failed"]
    assert [o.error for o in spark_runs if o.error] == []

    ours = {_key(o, f): f for o in embedded_runs for f in o.findings}
    theirs = {_key(o, f): f for o in spark_runs for f in o.findings}
    assert ours.keys() == theirs.keys() and len(ours) > 50
    for key, mine in ours.items():
        other = theirs[key]
        assert (other.status, other.n_current, other.n_reference) == (mine.status, mine.n_current, mine.n_reference), (
            key
        )
        for name in COMPARED:
            a, b = getattr(mine, name), getattr(other, name)
            assert (a is None) == (b is None), (key, name)
            if a is not None:
                assert (math.isnan(a) and math.isnan(b)) or abs(a - b) <= 1e-9, (key, name, a, b)
    # the same windows judged the same data
    prints = {(o.monitor.name, o.run.window_end): o.run.id for o in embedded_runs}
    assert len(prints) == 32
    # the drift day is found (so the comparison covers critical findings, not only quiet ones);
    # the day after it differs from its trailing reference (which holds the drift) too
    drift_windows = {
        k[1] for k, f in theirs.items() if k[0] == "feature-drift" and k[3] == "speed_kmh" and f.status == "critical"
    }
    assert any(DRIFT_DAY < end <= DRIFT_DAY + timedelta(days=1) for end in drift_windows)
    assert all(DRIFT_DAY < end <= DRIFT_DAY + timedelta(days=2) for end in drift_windows), drift_windows
    assert any(f.status == "critical" for k, f in theirs.items() if k[0] == "perf")
    sampled = [f for f in theirs.values() if f.n_reference and f.n_reference < 4000 and f.column == "speed_kmh"]
    assert sampled, "no reference was sampled: the mapInArrow path went untested"
    recorded = sealed.service.runs.runs(MODEL, limit=1000)
    assert len(recorded) == 64 and {r["mode"] for r in recorded} == {"backfill"}
    audit = sealed.service.audit.list(action="monitor.backfill")
    assert sorted(a["details"]["engine"] for a in audit) == ["embedded", "spark"]
    scratch = sealed.service.settings.data_dir / "spark"
    assert list(scratch.rglob("labels-*.parquet")), "the labels were not read from a snapshot"
    sealed.monitors.close()  # the session ends: its label snapshot goes
    assert not list(scratch.rglob("*.parquet"))


@pytest.mark.slow
def test_spark_backfill_refuses_a_range_with_hot_rows(sealed: Application) -> None:
    """The Spark engine reads sealed Parquet only: a range whose rows are partly still in the hot
    table is refused before anything runs, saying what to do."""
    service = sealed.service
    extra = pa.table(
        {
            "prediction_id": ["hot-1"],
            "timestamp": pa.array([START + timedelta(hours=1)], pa.timestamp("us", tz="UTC")),
            "model_version": ["1.0"],
            "speed_kmh": [50.0],
            "road_type": ["urban"],
            "night": [False],
            "prediction": ["none"],
            "score": [0.5],
            "latency_ms": [20.0],
            "region": ["eu"],
            "firmware": ["3.1"],
        }
    )
    service.store.ingest_predictions(MODEL, extra)
    plan = sealed.monitors.plan_backfill(MODEL, START, START + timedelta(days=1))
    with pytest.raises(InvalidInput) as caught:
        sealed.monitors.backfill("test", plan, engine="spark", spark_master=MASTER)
    assert "not sealed yet" in caught.value.errors[0].reason
    assert service.runs.runs(MODEL) == []


@pytest.mark.slow
def test_spark_backfill_never_reads_a_damaged_sealed_file(sealed: Application) -> None:
    """A sealed file that no longer matches its recorded size and hash is not handed to Spark:
    the windows needing it fail naming the file (as in the embedded engine), the others run."""
    service = sealed.service
    plan = sealed.monitors.plan_backfill(MODEL, START + timedelta(days=2), START + timedelta(days=4), ["perf"])
    damaged = sorted(service.store.sealed_dir.rglob("*.parquet"))[-1]  # the last day, after planning
    with damaged.open("ab") as f:
        f.write(b"not parquet")
    outcomes: list[RunOutcome] = []
    summary = sealed.monitors.backfill("test", plan, outcomes.append, engine="spark", spark_master=MASTER)
    failed = [o for o in outcomes if o.error]
    assert failed and summary["failed"] == len(failed) < summary["runs"]
    assert all("StorageDamaged" in (o.error or "") and damaged.name in (o.error or "") for o in failed), failed[0].error
    assert all(o.run.window_end > START + timedelta(days=3) for o in failed)
