"""Multivariate drift (detectors/multivariate_drift.py): PCA reconstruction error catches joint
changes that no column shows, and its calibrated band keeps false alarms at the test's level."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from detectors import DataDrift, ModelSpec, MultivariateDrift, RunContext, Status

FEATURES = {f"f{i}": "numeric" for i in range(8)} | {"road": "categorical", "night": "boolean"}
SPEC = ModelSpec(task="binary", classes=("no", "yes"), positive_class="yes", features=FEATURES, segments=("site",))
CTX = RunContext("m", datetime(2026, 10, 8, tzinfo=UTC), datetime(2026, 10, 9, tzinfo=UTC))


def _window(rng: np.random.Generator, n: int, rho: float = 0.8) -> pa.Table:
    """Eight numeric features (f0–f1 correlated by ``rho``, f2–f4 by a common factor), a
    categorical and a boolean; every marginal is the same whatever ``rho`` is."""
    cols: dict[str, object] = {}
    a = rng.normal(0, 1, n)
    cols["f0"] = a
    cols["f1"] = rho * a + np.sqrt(1 - rho**2) * rng.normal(0, 1, n)
    factor = rng.normal(0, 1, n)
    for i in (2, 3, 4):
        cols[f"f{i}"] = 0.7 * factor + 0.71 * rng.normal(0, 1, n)
    for i in (5, 6, 7):
        cols[f"f{i}"] = rng.normal(0, 1, n)
    cols["road"] = rng.choice(["urban", "highway", "rural"], n, p=[0.5, 0.3, 0.2])
    cols["night"] = rng.random(n) < 0.3
    cols["site"] = rng.choice(["a", "b"], n)
    return pa.table(cols)


def test_no_change_alerts_in_at_most_five_percent_of_windows() -> None:
    """Rule: under no change the window (with two site segments, BH across them) is ``critical``
    in at most ~5% of 200 seeded trials at 500 and at 5,000 rows (a loose bound: 7%)."""
    rng = np.random.default_rng(0)
    detector = MultivariateDrift()
    cfg = detector.config({"segments": ["site"]})
    reference = detector.prepare_reference(_window(rng, 20_000), SPEC, cfg)
    for n in (500, 5_000):
        alarms = sum(
            any(f.status is Status.CRITICAL for f in detector.run(_window(rng, n), reference, cfg, CTX)) for _ in range(200)
        )
        assert alarms <= 14, (n, alarms)


def test_a_correlation_flip_with_unchanged_marginals_is_caught() -> None:
    """Rule: when f0–f1's correlation flips from +0.8 to −0.8 (marginals unchanged), the window is
    ``critical`` in at least 90% of 100 trials at 5,000 rows and names f0/f1 as the features
    whose residuals grew — while the per-column data_drift detector sees no drifted column."""
    rng = np.random.default_rng(1)
    detector = MultivariateDrift()
    reference_table = _window(rng, 20_000)
    reference = detector.prepare_reference(reference_table, SPEC, None)
    caught = 0
    for _ in range(100):
        finding = detector.run(_window(rng, 5_000, rho=-0.8), reference, None, CTX)[0]
        caught += finding.status is Status.CRITICAL
    assert caught >= 90, caught
    top = {x["feature"] for x in finding.details["features"][:2]}
    assert top == {"f0", "f1"}
    per_column = DataDrift()
    column_stats = per_column.prepare_reference(reference_table, SPEC, None)
    drifted = [
        f.column
        for f in per_column.run(_window(rng, 5_000, rho=-0.8), column_stats, None, CTX)
        if f.column and f.status is Status.CRITICAL
    ]
    assert drifted == []


def test_a_small_irrelevant_change_on_a_huge_window_is_not_critical() -> None:
    """Rule: a change below ``min_effect`` (correlation 0.8 → 0.78) is not ``critical`` even on
    200,000 rows, where it is statistically established."""
    rng = np.random.default_rng(2)
    detector = MultivariateDrift()
    reference = detector.prepare_reference(_window(rng, 50_000), SPEC, None)
    finding = detector.run(_window(rng, 200_000, rho=0.78), reference, None, CTX)[0]
    assert finding.status is not Status.CRITICAL
    assert finding.effect_size is not None and finding.effect_size < 0.1


def test_too_few_features_or_rows_is_insufficient_data_with_a_reason() -> None:
    """Rule: fewer than two features, or too few rows, give ``insufficient_data`` and say why."""
    rng = np.random.default_rng(3)
    detector = MultivariateDrift()
    one = ModelSpec(task="binary", classes=("no", "yes"), positive_class="yes", features={"f0": "numeric"})
    finding = detector.run(_window(rng, 500), detector.prepare_reference(_window(rng, 1_000), one, None), None, CTX)[0]
    assert finding.status is Status.INSUFFICIENT_DATA and "at least 2 features" in finding.details["reason"]
    reference = detector.prepare_reference(_window(rng, 5_000), SPEC, None)
    small = detector.run(_window(rng, 50), reference, None, CTX)[0]
    assert small.status is Status.INSUFFICIENT_DATA and "fewer than 100 rows" in small.details["reason"]


def test_a_category_that_stops_following_a_numeric_feature_is_caught() -> None:
    """Rule: categorical features take part through their frequency encoding: when a category
    that followed a numeric feature (rural exactly when f0 > 0.5) starts to occur at random
    (same shares), the window is ``critical`` at 5,000 rows and ``road`` is among the top features."""
    rng = np.random.default_rng(4)
    detector = MultivariateDrift()

    def tied(n: int, follow: bool) -> pa.Table:
        window = _window(rng, n)
        f0 = np.asarray(window.column("f0"))
        rural = f0 > 0.5 if follow else rng.random(n) < float(np.mean(f0 > 0.5))
        road = np.where(rural, "rural", "urban")
        return window.set_column(window.schema.get_field_index("road"), "road", pa.array(road))

    reference = detector.prepare_reference(tied(20_000, True), SPEC, None)
    assert detector.run(tied(5_000, True), reference, None, CTX)[0].status is Status.OK
    finding = detector.run(tied(5_000, False), reference, None, CTX)[0]
    assert finding.status is Status.CRITICAL
    assert "road" in {x["feature"] for x in finding.details["features"][:3]}


def test_standardised_rows_in_one_pass_equal_raw_then_standardise() -> None:
    """Rule: ``Encoder.rows`` (fused per column) gives what ``standardise(raw(...))`` gives on the
    present rows: z-scores, 0 for a missing or infinite value, categories by frequency, and rows
    with no value at all left out."""
    import pyarrow as pa

    from detectors.multivariate_drift import Encoder

    rng = np.random.default_rng(8)
    n = 2_000
    a = rng.normal(3, 2, n)
    a[::11] = np.nan
    a[5] = np.inf
    b = rng.normal(-1, 0.5, n)
    b[::11] = np.nan  # rows 0, 11, 22…: no numeric value
    colour = pa.array([None if i % 11 == 0 else ("red" if i % 3 else "blue") for i in range(n)])
    table = pa.table({"a": a, "b": b, "colour": colour})
    encoder = Encoder(("a", "b", "colour", "gone"), {"colour": {"red": 0.6, "blue": 0.4}}, np.array([3.0, -1.0, 0.5, 0.0]), np.array([2.0, 0.5, 0.2, 1.0]))
    raw, present = encoder.raw(table)
    expected = encoder.standardise(raw[present])
    got = encoder.rows(table)
    assert got.shape == expected.shape == (n - len(range(0, n, 11)), 4)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
