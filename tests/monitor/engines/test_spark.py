"""The Spark engine records the same findings as the embedded engine on the same sealed history.

A real PySpark session in local mode (one core) reads the real sealed Parquet of a real data
directory; nothing of ours is mocked."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from application import Application
from application.monitors import Engine
from monitor.engines import spark as spark_engine
from monitor.engines.spark import MirroredFile, check_mirror
from monitor.errors import MirrorIncomplete, NotConfigured
from monitor.scheduling import RunOutcome
from monitor.schema import ModelSchema
from monitor.sealed_push import open_destination
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
    with _application(tmp_path, sealed_before=TODAY) as app:
        yield app


@contextmanager
def _application(tmp_path: Path, sealed_before: datetime) -> Iterator[Application]:
    """The history with the days before ``sealed_before`` sealed, and the monitors applied."""
    service = Loopwatch(Settings(data_dir=tmp_path / "data", reference_sample_rows=1500))
    service.registry.register(ModelSchema.model_validate(BRAKING))
    _history(service)
    service.store.seal(before=sealed_before)
    app = Application.offline(service)
    app.monitors.apply("test", MODEL, MONITORS)
    try:
        yield app
    finally:
        app.monitors.close()
        service.close()


def _backfill(app: Application, engine: Engine) -> tuple[dict[str, Any], list[RunOutcome]]:
    outcomes: list[RunOutcome] = []
    plan = app.monitors.plan_backfill(MODEL, START, START + timedelta(days=4))
    summary = app.monitors.backfill("test", plan, outcomes.append, engine=engine, spark_master=MASTER)
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
    same counts, values to 1e-9; both are recorded as backfill runs, the engine named."""
    embedded, embedded_runs = _backfill(sealed, "embedded")
    spark, spark_runs = _backfill(sealed, "spark")
    assert embedded["engine"] == "embedded" and spark["engine"] == "spark" and spark["spark_master"] == MASTER
    assert embedded["runs"] == spark["runs"] == 2 * 16 and not embedded["failed"] and not spark["failed"]
    assert [o.error for o in spark_runs if o.error] == []

    ours = {_key(o, f): f for o in embedded_runs for f in o.findings}
    theirs = {_key(o, f): f for o in spark_runs for f in o.findings}
    assert len(ours) > 50
    _assert_same(ours, theirs)
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


@pytest.fixture
def partly_sealed(tmp_path: Path) -> Iterator[Application]:
    """The same history with only its first two days sealed: the last two are still in the hot
    table, as the recent windows of a live server are (trailing references straddle the two)."""
    with _application(tmp_path, sealed_before=START + timedelta(days=2)) as app:
        assert app.service.store.hot_rows(MODEL, START, TODAY) > 0
        yield app


def _assert_same(ours: dict[Any, Any], theirs: dict[Any, Any]) -> None:
    assert ours.keys() == theirs.keys() and ours
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


@pytest.mark.slow
def test_spark_reads_the_hot_rows_with_the_sealed_ones(partly_sealed: Application) -> None:
    """Windows whose rows are partly or wholly still in the hot table (not sealed) are judged by
    the Spark engine on the sealed files plus those hot rows: every finding equals the embedded
    engine's (status, counts, values to 1e-9); the hot rows reach the executors from the driver,
    with no file written for them (a cluster's executors share no filesystem with the server)."""
    app = partly_sealed
    span = (START + timedelta(days=1, hours=12), START + timedelta(days=4))
    results: dict[str, dict[Any, Any]] = {}
    engines: tuple[Engine, ...] = ("embedded", "spark")
    for engine in engines:
        outcomes: list[RunOutcome] = []
        plan = app.monitors.plan_backfill(MODEL, *span)
        summary = app.monitors.backfill("test", plan, outcomes.append, engine=engine, spark_master=MASTER)
        assert summary["engine"] == engine and summary["runs"] == 2 * 10 and not summary["failed"], summary
        results[engine] = {_key(o, f): f for o in outcomes for f in o.findings}
    _assert_same(results["embedded"], results["spark"])
    assert any(f.status == "critical" for f in results["spark"].values())
    assert not (app.service.settings.data_dir / "spark").exists(), "hot rows were written to a file"


@pytest.mark.slow
def test_scheduled_spark_monitor_judges_live_windows_like_embedded(partly_sealed: Application) -> None:
    """A monitor declared `engine: spark` has its scheduled runs evaluated by the service's Spark
    session (the window's rows hot, its trailing reference half sealed) with the findings the
    embedded engine records for the same window, and each run record names its engine; labels
    arriving afterwards are seen by the next run (a long-lived session never judges with the
    labels of its first read)."""
    app = partly_sealed
    service = app.service
    service.settings.spark_master = MASTER
    perf = {**MONITORS[1], "name": "perf-spark", "engine": "spark"}
    assert app.monitors.apply("test", MODEL, [perf])["monitors"][0]["engine"] == "spark"
    window_end = START + timedelta(days=3, hours=12)

    def judged() -> tuple[dict[Any, Any], dict[Any, Any]]:
        spark = service.runner.run(MODEL, "perf-spark", window_end=window_end, mode="scheduled")
        embedded = service.runner.run(MODEL, "perf", window_end=window_end, mode="scheduled")
        assert spark is not None and embedded is not None and not spark.error and not embedded.error
        strip = {(f.metric, f.column, tuple(sorted((f.segment or {}).items()))): f for f in spark.findings}
        mine = {(f.metric, f.column, tuple(sorted((f.segment or {}).items()))): f for f in embedded.findings}
        return mine, strip

    before = judged()
    _assert_same(*before)
    assert {r["monitor"]: r["engine"] for r in service.runs.runs(MODEL, limit=2)} == {
        "perf-spark": "spark",
        "perf": "embedded",
    }
    assert service.spark.get().tables.windows_read >= 2  # the window and its reference, read by Spark
    # Labels for the window's unlabelled predictions arrive (all of them wrong): both engines see them.
    window = service.store.scan(MODEL, window_end - timedelta(hours=6), window_end)
    unlabelled = window.filter(pc.is_null(window["label"]))
    flipped = pc.if_else(pc.equal(unlabelled["prediction"], "brake"), "none", "brake")
    service.store.ingest_labels(MODEL, pa.table({"prediction_id": unlabelled["prediction_id"], "label": flipped}))
    after = judged()
    _assert_same(*after)
    assert {k: f.value for k, f in after[1].items()} != {k: f.value for k, f in before[1].items()}


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


@pytest.mark.slow
def test_spark_reads_the_sealed_files_from_a_pushed_mirror(sealed: Application, tmp_path: Path) -> None:
    """With a mirror of sealed/ (pushed by the `sealed push` use case to a directory, named by a
    file:// URI), every file Spark reads is the mirror's — none under the data directory — and the
    findings equal the embedded engine's. A mirror lacking a file, or holding one with another size
    than the catalog's, fails the windows that need it with an error naming the file and the push
    command (the other windows run), the first three of many named with the count; a scheme Spark
    has no filesystem for (s3a:// without hadoop-aws) fails saying so."""
    service = sealed.service
    mirror = tmp_path / "mirror"
    report = sealed.store.push("test", open_destination(str(mirror)))
    assert report.pushed == report.files == 4 and not report.failures
    uri = f"file://{mirror}"

    def backfill(
        engine: Engine, start: datetime, end: datetime, sealed_uri: str, monitors: list[str] | None = None
    ) -> tuple[dict[str, Any], list[RunOutcome]]:
        outcomes: list[RunOutcome] = []
        plan = sealed.monitors.plan_backfill(MODEL, start, end, monitors)
        summary = sealed.monitors.backfill(
            "test", plan, outcomes.append, engine=engine, spark_master=MASTER, spark_sealed_uri=sealed_uri
        )
        return summary, outcomes

    span = (START + timedelta(days=1), START + timedelta(days=3))
    results: dict[str, dict[Any, Any]] = {}
    engines: tuple[Engine, ...] = ("embedded", "spark")
    for engine in engines:
        summary, outcomes = backfill(engine, *span, uri)
        assert summary["runs"] == 2 * 8 and not summary["failed"], summary
        results[engine] = {_key(o, f): f for o in outcomes for f in o.findings}
    assert summary["spark_sealed_uri"] == uri
    _assert_same(results["embedded"], results["spark"])
    read = service.spark.get().tables.last_inputs
    assert read and all(str(mirror) in f and str(service.store.sealed_dir) not in f for f in read), read

    records = service.store.sealed_records()
    missing, resized = records[2].path, records[3].path  # the third and fourth days
    (mirror / missing).unlink()
    with (mirror / resized).open("ab") as f:
        f.write(b"x")
    summary, outcomes = backfill("spark", START + timedelta(days=1), START + timedelta(days=4), uri, ["perf"])
    failed = [o for o in outcomes if o.error]
    assert failed and summary["failed"] == len(failed) < summary["runs"]
    assert all(o.run.window_end > START + timedelta(days=2) for o in failed)
    errors = "\n".join(o.error or "" for o in failed)
    assert "MirrorIncomplete" in errors and f"{missing} (missing)" in errors, errors
    assert f"{resized} (" in errors and "in the catalog" in errors, errors
    assert f"loopwatch sealed push {uri}" in errors, errors

    summary, outcomes = backfill(
        "spark", START + timedelta(days=1), START + timedelta(days=1, hours=6), "s3a://bucket/p", ["perf"]
    )
    assert summary["failed"] == 1 and "S3AFileSystem not found" in (outcomes[0].error or ""), outcomes[0].error
    assert "hadoop-aws" in (outcomes[0].error or "")
    # Many files wrong at once: the first three are named, with how many more (every one in `errors`).
    absent = [MirroredFile(f"model=m/date=2026-01-0{i}/p.parquet", f"{uri}/absent/{i}.parquet", 10) for i in range(5)]
    with pytest.raises(MirrorIncomplete) as caught:
        check_mirror(service.spark.get().spark, uri, absent)
    assert "5 of the 5" in caught.value.message and "and 2 more" in caught.value.message, caught.value.message
    assert [e.field for e in caught.value.errors] == [f.path for f in absent]


def test_executors_must_draw_the_stores_samples() -> None:
    """The reference sample is hash(prediction_id) below a rate, computed by DuckDB: an executor
    whose DuckDB hashes differently (another version) would sample other rows than the embedded
    engine without any error, so such executors are refused, naming both versions."""
    here = spark_engine.sampling_keys_here()
    assert len(set(here.keys)) == len(spark_engine.CANARY_IDS) and all(0 <= k < 1 for k in here.keys)
    spark_engine.check_same_sampling(here, [here, here])  # the same keys: accepted
    other = spark_engine.SamplingKeys("0.0.0", tuple(k / 2 for k in here.keys))
    with pytest.raises(NotConfigured, match=r"DuckDB 0\.0\.0 there, .* here"):
        spark_engine.check_same_sampling(here, [here, other])


@pytest.mark.slow
def test_a_session_checks_its_executors_sampling(sealed: Application) -> None:
    """Starting the engine runs the sampling canary on the executors' Python workers (local mode:
    this interpreter), and a backfill's summary names the executors' DuckDB version."""
    engine = sealed.service.spark.get(spark_engine.SparkOptions(master=MASTER))
    executors = spark_engine.sampling_keys_on_executors(engine.spark)
    assert executors and all(e == spark_engine.sampling_keys_here() for e in executors)
    assert engine.describe()["executor_duckdb"] == spark_engine.sampling_keys_here().duckdb_version
