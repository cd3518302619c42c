"""Latency regression: detection of a +30% p95, no pages on noise, version onset."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from detectors import Latency, Status
from detectors.stats.intervals import wilson
from tests.detectors.conftest import REGRESSION, context, make_window


def _p95(findings: list) -> object:
    return next(f for f in findings if f.metric == "p95" and f.segment is None)


def test_thirty_percent_p95_rise_is_detected() -> None:
    """All latencies 30% slower (1,000 rows vs a 20,000-row reference): p95 critical in every window."""
    detector = Latency()
    ref = detector.prepare_reference(make_window(REGRESSION, 20000, 1), REGRESSION)
    for seed in range(10):
        f = _p95(detector.run(make_window(REGRESSION, 1000, 50 + seed, latency_scale=1.3), ref, None, context()))
        assert f.status is Status.CRITICAL and f.effect_size is not None and f.effect_size > 0.2


def test_tail_only_regression_is_detected_on_p95() -> None:
    """Only the slowest 10% get 30% slower: p95 flags it even though the median does not move."""
    detector = Latency()
    ref = detector.prepare_reference(make_window(REGRESSION, 20000, 1), REGRESSION)
    window = make_window(REGRESSION, 3000, 2)
    lat = window.column("latency_ms").to_numpy().copy()
    tail = lat > np.quantile(lat, 0.9)
    lat[tail] *= 1.3
    window = window.set_column(window.schema.get_field_index("latency_ms"), "latency_ms", pa.array(lat))
    findings = {f.metric: f for f in detector.run(window, ref, None, context())}
    assert findings["p95"].status is Status.CRITICAL and findings["p50"].status is Status.OK


def test_small_rise_and_noise_do_not_page() -> None:
    """+3% (below the 10% margin) is never critical; same distribution: false-alarm rate ≤ 5%."""
    detector = Latency()
    ref = detector.prepare_reference(make_window(REGRESSION, 20000, 1), REGRESSION)
    for seed in range(10):
        found = detector.run(make_window(REGRESSION, 1000, 70 + seed, latency_scale=1.03), ref, None, context())
        assert all(f.status is not Status.CRITICAL for f in found)
    trials = 60
    alarms = sum(
        any(
            f.status is Status.CRITICAL
            for f in detector.run(make_window(REGRESSION, 300, 100 + s), ref, None, context())
        )
        for s in range(trials)
    )
    assert wilson(alarms, trials)[0] <= 0.05


def test_flags_the_version_where_the_regression_began() -> None:
    """A rollout v1 → v2 → v3 where v2 is slow: the finding names v2 and lists every version."""
    detector = Latency()
    ref = detector.prepare_reference(make_window(REGRESSION, 20000, 1), REGRESSION)
    parts = [
        make_window(REGRESSION, 800, 2, versions=("v1",)),
        make_window(REGRESSION, 800, 3, versions=("v2",), latency_scale=1.5),
        make_window(REGRESSION, 800, 4, versions=("v3",), latency_scale=1.5),
    ]
    f = _p95(detector.run(pa.concat_tables(parts), ref, None, context()))
    assert f.status is Status.CRITICAL
    assert f.model_version == "v2" and f.details["regression_began_at_version"] == "v2"
    assert [v["version"] for v in f.details["versions"]] == ["v1", "v2", "v3"]


def test_too_few_latencies_is_insufficient() -> None:
    """Fewer than min_rows latencies (nulls excluded) → insufficient_data for every quantile."""
    detector = Latency()
    ref = detector.prepare_reference(make_window(REGRESSION, 2000, 1), REGRESSION)
    window = make_window(REGRESSION, 40, 2, latency_scale=3.0)
    assert {f.status for f in detector.run(window, ref, None, context())} == {Status.INSUFFICIENT_DATA}
