"""Stratified reference samples: per-slice caps, no skew, unchanged small references, and the
drift verdict's error rates on a sampled reference (seeded trials)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest

from detectors import DataDrift, ModelSpec, RunContext
from detectors.base import segment_slices
from detectors.sampling import SAMPLE_KEY, SampleRates, sample_rates, sample_table
from detectors.stats.intervals import wilson

SPEC = ModelSpec.from_dict(
    {
        "name": "m",
        "task": "binary",
        "classes": ["a", "b"],
        "features": {"x": "numeric", "c": "categorical"},
        "segments": ["site"],
    }
)


def _table(n: int, rng: np.random.Generator, *, shift: float = 0.0, small_share: float = 0.05) -> pa.Table:
    return pa.table(
        {
            "x": rng.normal(shift, 1.0, n),
            "c": rng.choice(["u", "v", "w"], n, p=[0.5, 0.3, 0.2]),
            "site": np.where(rng.random(n) < small_share, "small", "big"),
        }
    )


def test_each_slice_keeps_about_cap_rows_and_the_whole_window_is_not_skewed() -> None:
    """Every slice holds ~cap rows (Bernoulli: within 5σ), the key column never reaches a
    detector, and the small segment's share of the whole-window sample is its true share."""
    rng = np.random.default_rng(1)
    table = _table(200_000, rng)
    cap = 5_000
    sampled = sample_table(table, ["site"], cap, seed=2)
    rates = sample_rates(sampled)
    assert rates is not None and rates.samples
    slices = dict((None if seg is None else seg["site"], part) for seg, part in segment_slices(sampled, ["site"]))
    true_small = int(np.sum(table.column("site").to_numpy(zero_copy_only=False) == "small"))
    assert true_small > cap  # so the small segment is sampled too
    for name, part in slices.items():
        assert SAMPLE_KEY not in part.column_names
        assert abs(part.num_rows - cap) < 5 * np.sqrt(cap), (name, part.num_rows)
    whole = slices[None].column("site").to_numpy(zero_copy_only=False)
    share = float(np.mean(whole == "small"))
    assert abs(share - true_small / table.num_rows) < 5 * np.sqrt(0.05 * 0.95 / cap)
    # The fetched table holds more rows than any slice (small-segment rows at a higher rate).
    assert sampled.num_rows > slices[None].num_rows


def test_a_reference_within_the_cap_is_the_reference_itself() -> None:
    """No slice above the cap (or cap 0): the very same table, so verdicts are unchanged."""
    table = _table(3_000, np.random.default_rng(3))
    assert sample_table(table, ["site"], 5_000) is table
    assert sample_table(table, ["site"], 0) is table
    assert SampleRates.for_counts(10, {"site": {"a": 10}}, 10).samples is False


def test_the_same_reference_gives_the_same_sample() -> None:
    """Seeded keys: preparing the same dataset twice gives identical statistics."""
    table = _table(50_000, np.random.default_rng(4))
    assert sample_table(table, ["site"], 2_000).equals(sample_table(table, ["site"], 2_000))


def test_rates_survive_their_metadata_round_trip() -> None:
    """Segment values of any type (str, int, bool, null) find their rate after the schema
    metadata's JSON round trip."""
    rates = SampleRates.for_counts(400, {"site": {"a": 200, None: 10}, "n": {3: 1000, True: 400}}, 100)
    again = SampleRates.from_json(rates.to_json())
    assert again == rates
    assert again.rate({"n": 3}) == 0.1 and again.rate({"n": True}) == 0.25
    assert again.rate({"site": None}) == 1.0 and again.rate({"site": "a"}) == 0.5 and again.rate(None) == 0.25


def test_integer_segments_of_a_dataset_file_are_sampled_per_value() -> None:
    """A dataset whose segment column holds integers is stratified like a string one."""
    rng = np.random.default_rng(5)
    table = _table(40_000, rng).append_column("line", pa.array(rng.integers(0, 2, 40_000)))
    sampled = sample_table(table, ["line"], 3_000)
    sizes = [part.num_rows for seg, part in segment_slices(sampled, ["line"])]
    assert len(sizes) == 3 and all(abs(n - 3_000) < 5 * np.sqrt(3_000) for n in sizes), sizes


def _critical(reference: pa.Table, current: pa.Table) -> set[str]:
    detector = DataDrift()
    config = detector.config({"segments": ["site"]})
    stats = detector.prepare_reference(reference, SPEC, config)
    ctx = RunContext("m", datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 1, tzinfo=UTC), reference="trial")
    return {
        f"{f.column}@{f.segment}" for f in detector.run(current, stats, config, ctx) if f.status == "critical"
    }


@pytest.mark.parametrize(("shift", "bound"), [(0.0, "false_alarm"), (0.3, "power")])
def test_drift_verdict_on_a_sampled_reference_keeps_its_error_rates(shift: float, bound: str) -> None:
    """200 seeded windows, 40,000-row reference sampled to 2,000 rows per slice, 1,000-row
    current window: under no change a run has any critical finding at most ~α (Wilson upper
    bound < 10%); a 0.3σ mean shift is critical overall in ≥ 90% of windows (Wilson lower bound)."""
    rng = np.random.default_rng(20261202 + int(shift * 10))
    trials, hits = 200, 0
    for _ in range(trials):
        reference = sample_table(_table(40_000, rng, small_share=0.3), ["site"], 2_000, seed=int(rng.integers(1 << 31)))
        assert sample_rates(reference) is not None
        critical = _critical(reference, _table(1_000, rng, shift=shift, small_share=0.3))
        hits += bool(critical) if bound == "false_alarm" else ("x@None" in critical)
    low, high = wilson(hits, trials)
    if bound == "false_alarm":
        assert high < 0.10, hits
    else:
        assert low > 0.90, hits
