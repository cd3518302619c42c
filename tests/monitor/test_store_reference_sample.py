"""A drift reference drawn from the store: whole under the cap, a stratified sample above it
(hot rows and sealed Parquet alike), the same sample every time."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pyarrow as pa

from detectors.base import segment_slices
from detectors.sampling import SAMPLE_KEY, sample_rates
from monitor.schema import ModelSchema
from monitor.service import Loopwatch
from tests.monitor.test_evaluation import MODEL, NOW, _load

SEGMENTS = ["region", "firmware"]


def test_a_reference_within_the_cap_is_the_whole_window(service: Loopwatch, braking_model: ModelSchema) -> None:
    """No slice above the cap: exactly the rows (and order) of a plain scan."""
    start = NOW - timedelta(hours=6)
    _load(service, start, 2, 500, seed=1)
    whole = service.store.scan(MODEL, start, NOW)
    sample = service.store.reference_sample(MODEL, start, NOW, segments=SEGMENTS, cap=1_000)
    assert sample_rates(sample) is None and sample.equals(whole)


def test_a_big_reference_is_sampled_per_slice_across_hot_and_sealed_rows(
    service: Loopwatch, braking_model: ModelSchema
) -> None:
    """24,000 rows (half sealed to Parquet) with cap 2,000: every slice keeps ~2,000 uniformly
    drawn stored rows with their labels, and the same call gives the same sample."""
    start = NOW - timedelta(days=3)
    loaded = _load(service, start, 48, 500, seed=2)
    ids = loaded.column("prediction_id").to_pylist()
    labelled = ids[:100]
    service.store.ingest_labels(
        MODEL, pa.table({"prediction_id": labelled, "label": ["brake"] * 100, "timestamp": [NOW.isoformat()] * 100})
    )
    service.store.seal(before=(start + timedelta(days=2)).replace(hour=0))
    assert service.store.sealed_files(MODEL)
    end = start + timedelta(hours=48)
    cap = 2_000
    sample = service.store.reference_sample(MODEL, start, end, segments=SEGMENTS, cap=cap)
    rates = sample_rates(sample)
    assert rates is not None and rates.overall < 1.0
    assert set(sample.column("prediction_id").to_pylist()) <= set(ids)
    assert SAMPLE_KEY in sample.column_names
    got = dict(zip(sample.column("prediction_id").to_pylist(), sample.column("label").to_pylist(), strict=True))
    assert {got[i] for i in labelled if i in got} == {"brake"}
    sizes = {str(seg): part.num_rows for seg, part in segment_slices(sample, SEGMENTS)}
    assert len(sizes) == 5  # whole window, 2 regions, 2 firmwares
    for seg, n in sizes.items():
        assert abs(n - cap) < 5 * np.sqrt(cap), (seg, n)
    # Both the sealed day and the hot rows contribute, in proportion to their share.
    timestamps = next(part for seg, part in segment_slices(sample, SEGMENTS) if seg is None).column("timestamp")
    early = sum(t < end - timedelta(hours=24) for t in timestamps.to_pylist())
    assert abs(early / sizes["None"] - 0.5) < 0.06
    again = service.store.reference_sample(MODEL, start, end, segments=SEGMENTS, cap=cap)
    assert again.equals(sample)


def test_null_segment_values_are_a_slice_of_their_own(service: Loopwatch, braking_model: ModelSchema) -> None:
    """Rows without a firmware (null) form their own sampled slice, also in a window where no row
    has one (no values to look up)."""
    start = NOW - timedelta(hours=8)
    table = _load(service, start, 2, 3_000, seed=3, prefix="n")
    assert table.num_rows == 6_000
    nulls = table.set_column(
        table.schema.get_field_index("firmware"), "firmware", pa.nulls(6_000, pa.string())
    ).set_column(0, "prediction_id", pa.array([f"null-{i}" for i in range(6_000)]))
    service.store.ingest_predictions(MODEL, nulls)
    sample = service.store.reference_sample(MODEL, start, NOW, segments=["firmware"], cap=1_000)
    sizes = {str(seg): part.num_rows for seg, part in segment_slices(sample, ["firmware"])}
    assert set(sizes) == {"None", "{'firmware': '3.1'}", "{'firmware': '3.2'}", "{'firmware': None}"}
    assert all(abs(n - 1_000) < 5 * np.sqrt(1_000) for n in sizes.values()), sizes
    shifted = pa.array(
        [t - timedelta(hours=4) for t in nulls.column("timestamp").to_pylist()], pa.timestamp("us", tz="UTC")
    )
    early = nulls.set_column(1, "timestamp", shifted).set_column(
        0, "prediction_id", pa.array([f"early-{i}" for i in range(6_000)])
    )
    service.store.ingest_predictions(MODEL, early)
    only_nulls = service.store.reference_sample(
        MODEL, start - timedelta(hours=4), start - timedelta(hours=2), segments=["firmware"], cap=1_000
    )
    sizes = {str(seg): part.num_rows for seg, part in segment_slices(only_nulls, ["firmware"])}
    assert set(sizes) == {"None", "{'firmware': None}"}
    assert all(abs(n - 1_000) < 5 * np.sqrt(1_000) for n in sizes.values()), sizes
