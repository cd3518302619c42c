"""One detector over one window of a real store: drift, cache reuse, versions, volume, freshness."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from monitor.evaluation import Evaluator
from monitor.references import ReferenceSpec
from monitor.schema import ModelSchema
from monitor.service import Loopwatch

MODEL = "harsh-braking"
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def _load(
    service: Loopwatch,
    start: datetime,
    hours: int,
    per_hour: int,
    *,
    speed: float = 50.0,
    version: str = "1.0",
    latency: float = 20.0,
    seed: int = 0,
    prefix: str = "p",
) -> pa.Table:
    rng = np.random.default_rng(seed)
    n = hours * per_hour
    offsets = np.sort(rng.uniform(0, hours * 3600, n))
    ts = np.datetime64(start.replace(tzinfo=None), "us") + (offsets * 1e6).astype("timedelta64[us]")
    table = pa.table(
        {
            "prediction_id": [f"{prefix}-{seed}-{i}" for i in range(n)],
            "timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "model_version": [version] * n,
            "speed_kmh": rng.normal(speed, 10, n),
            "road_type": rng.choice(["urban", "highway"], n),
            "night": rng.random(n) < 0.3,
            "prediction": rng.choice(["none", "brake"], n),
            "score": rng.random(n),
            "latency_ms": rng.lognormal(np.log(latency), 0.2, n),
            "region": rng.choice(["eu", "us"], n),
            "firmware": rng.choice(["3.1", "3.2"], n),
        }
    )
    service.store.ingest_predictions(MODEL, table)
    return table


def test_data_drift_finds_the_shifted_feature_and_reuses_reference_stats(
    service: Loopwatch, braking_model: ModelSchema
) -> None:
    """A shifted feature in the current window is critical; the second run reuses the cached reference."""
    ref_start = NOW - timedelta(days=2)
    _load(service, ref_start, 24, 200, seed=1)
    _load(service, NOW - timedelta(hours=2), 1, 2000, speed=58.0, seed=2)
    _load(service, NOW - timedelta(hours=1), 1, 2000, seed=3)
    evaluator = Evaluator(service.store, service.registry, service.settings.data_dir / "references")
    reference = ReferenceSpec(kind="window", start=ref_start, end=ref_start + timedelta(days=1))
    first = evaluator.evaluate(MODEL, "data_drift", {}, (NOW - timedelta(hours=2), NOW - timedelta(hours=1)), reference)
    critical = {f.column for f in first.findings if f.status == "critical" and f.column}
    assert critical == {"speed_kmh"} and first.rows == 2000
    second = evaluator.evaluate(MODEL, "data_drift", {}, (NOW - timedelta(hours=1), NOW), reference)
    assert not [f for f in second.findings if f.status == "critical" and f.column]
    assert evaluator.cache.hits == 1 and evaluator.cache.misses == 1
    again = evaluator.evaluate(MODEL, "data_drift", {}, (NOW - timedelta(hours=2), NOW - timedelta(hours=1)), reference)
    assert again.data_fingerprint == first.data_fingerprint  # same window, same data, same print


def test_latency_against_previous_version(service: Loopwatch, braking_model: ModelSchema) -> None:
    """A slower new version is flagged against the previous version's latency."""
    _load(service, NOW - timedelta(days=1), 12, 300, version="1.0", latency=20, seed=4)
    _load(service, NOW - timedelta(hours=2), 2, 1500, version="2.0", latency=30, seed=5)
    evaluation = Evaluator(service.store, service.registry, service.settings.data_dir / "references").evaluate(
        MODEL, "latency", {}, (NOW - timedelta(hours=2), NOW), ReferenceSpec(kind="previous_version")
    )
    assert evaluation.reference is not None and evaluation.reference.model_version == "1.0"
    assert any(f.status == "critical" and f.metric == "p95" for f in evaluation.findings)


def test_volume_drop_and_freshness(service: Loopwatch, braking_model: ModelSchema) -> None:
    """Volume compares the window with the same hours on past days; freshness reports silence."""
    for day in range(1, 6):
        _load(service, NOW - timedelta(days=day, hours=1), 1, 400, seed=10 + day, prefix=f"v{day}")
    _load(service, NOW - timedelta(hours=1), 1, 40, seed=20, prefix="now")
    evaluator = Evaluator(service.store, service.registry, service.settings.data_dir / "references")
    volume = evaluator.evaluate(MODEL, "volume", {"history_days": 5}, (NOW - timedelta(hours=1), NOW), None)
    assert any(f.status == "critical" for f in volume.findings) and volume.rows == 40
    later = NOW + timedelta(hours=3)
    fresh = evaluator.evaluate(
        MODEL, "freshness", {"max_silence_minutes": 60}, (later - timedelta(hours=1), later), None
    )
    assert [f.status.value for f in fresh.findings] == ["no_data"]


def test_dataset_reference(service: Loopwatch, braking_model: ModelSchema) -> None:
    """A Parquet file in references/ serves as the reference."""
    reference_rows = _load(service, NOW - timedelta(days=3), 4, 500, seed=30, prefix="r")
    (service.settings.data_dir / "references").mkdir()
    pq.write_table(reference_rows, service.settings.data_dir / "references" / "training.parquet")
    _load(service, NOW - timedelta(hours=1), 1, 1000, speed=70, seed=31)
    evaluation = Evaluator(service.store, service.registry, service.settings.data_dir / "references").evaluate(
        MODEL, "data_drift", {}, (NOW - timedelta(hours=1), NOW), ReferenceSpec(kind="dataset", path="training.parquet")
    )
    assert evaluation.reference is not None and evaluation.reference.description == "dataset training.parquet"
    assert any(f.column == "speed_kmh" and f.status == "critical" for f in evaluation.findings)


def test_a_reference_above_the_sample_cap_is_judged_on_its_sample(
    service: Loopwatch, braking_model: ModelSchema
) -> None:
    """A 24,000-row reference with ``reference_sample_rows`` 2,000 keeps ~2,000 sorted values per
    slice (not 24,000) and still finds the shifted feature, and only it."""
    ref_start = NOW - timedelta(days=2)
    _load(service, ref_start, 24, 1000, seed=11)
    _load(service, NOW - timedelta(hours=2), 1, 2000, speed=58.0, seed=12)
    _load(service, NOW - timedelta(hours=1), 1, 2000, seed=13)
    evaluator = Evaluator(
        service.store, service.registry, service.settings.data_dir / "references", reference_sample_rows=2_000
    )
    reference = ReferenceSpec(kind="window", start=ref_start, end=ref_start + timedelta(days=1))
    shifted = evaluator.evaluate(
        MODEL, "data_drift", {}, (NOW - timedelta(hours=2), NOW - timedelta(hours=1)), reference, ["region"]
    )
    assert {f.column for f in shifted.findings if f.status == "critical" and f.column} == {"speed_kmh"}
    calm = evaluator.evaluate(MODEL, "data_drift", {}, (NOW - timedelta(hours=1), NOW), reference, ["region"])
    assert not [f for f in calm.findings if f.status == "critical"]
    (stats,) = [value for value, _ in evaluator.cache._entries.values()]
    kept = [summary.n for summary in (s["speed_kmh"] for s in stats.summaries.values())]
    assert len(kept) == 3 and all(abs(n - 2_000) < 5 * 2_000**0.5 for n in kept), kept
