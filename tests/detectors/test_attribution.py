"""The segment behind a change (detectors/attribution.py): on a constructed incident the
segment that caused it is ranked first, with its share of the change and of traffic."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from detectors import DataDrift, ModelSpec, Performance, RunContext, Status
from detectors.attribution import attach
from monitor.alerting.describe import what_changed

SPEC = ModelSpec(
    task="binary",
    classes=("none", "brake"),
    positive_class="brake",
    features={"speed": "numeric"},
    segments=("firmware", "region"),
)
CTX = RunContext("braking", datetime(2026, 10, 8, tzinfo=UTC), datetime(2026, 10, 9, tzinfo=UTC))


def _window(rng: np.random.Generator, n: int, bad_firmware_fnr: float, speed_shift: float = 0.0) -> pa.Table:
    """Firmware 3.2 is 18% of traffic; its FN rate is ``bad_firmware_fnr`` (others 7%);
    region ``north`` (half the traffic) has its speeds shifted by ``speed_shift``."""
    firmware = np.where(rng.random(n) < 0.18, "3.2", "3.1")
    region = np.where(rng.random(n) < 0.5, "north", "south")
    label = rng.random(n) < 0.3
    fnr = np.where(firmware == "3.2", bad_firmware_fnr, 0.07)
    predicted = np.where(label, rng.random(n) >= fnr, rng.random(n) < 0.05)
    speed = rng.normal(50, 10, n) + np.where(region == "north", speed_shift, 0.0)
    return pa.table(
        {
            "speed": speed,
            "prediction": np.where(predicted, "brake", "none"),
            "label": np.where(label, "brake", "none"),
            "firmware": firmware,
            "region": region,
        }
    )


def test_the_firmware_behind_an_fn_rise_is_ranked_first_with_its_shares() -> None:
    """Rule: when firmware 3.2 (18% of traffic) goes from a 7% to a 30% FN rate, the window's FN
    finding names firmware 3.2 first, with over 80% of the rise and ~18% of traffic, and the
    alert line says so."""
    rng = np.random.default_rng(0)
    detector = Performance()
    cfg = detector.config({"metrics": ["fnr"], "segments": ["firmware", "region"]})
    reference = detector.prepare_reference(_window(rng, 40_000, 0.07), SPEC, cfg)
    findings = attach(detector.run(_window(rng, 20_000, 0.30), reference, cfg, CTX))
    whole = next(f for f in findings if f.metric == "fnr" and f.segment is None)
    assert whole.status is Status.CRITICAL
    top = whole.details["behind"][0]
    assert top["segment"] == {"firmware": "3.2"}
    assert top["share_of_change"] > 0.8 and abs(top["traffic_share"] - 0.18) < 0.02
    line = what_changed(whole.to_dict())
    assert "of the rise is firmware 3.2 (18% of traffic" in line, line


def test_the_region_behind_a_drift_is_named_for_the_drifted_column() -> None:
    """Rule: when speeds shift in region north only, the drifted ``speed`` finding of the window
    names region north as (nearly all of) the change."""
    rng = np.random.default_rng(1)
    detector = DataDrift()
    cfg = detector.config({"segments": ["region"]})
    reference = detector.prepare_reference(_window(rng, 20_000, 0.07), SPEC, cfg)
    findings = attach(detector.run(_window(rng, 10_000, 0.07, speed_shift=8.0), reference, cfg, CTX))
    speed = next(f for f in findings if f.column == "speed" and f.segment is None)
    assert speed.status is Status.CRITICAL
    assert speed.details["behind"][0]["segment"] == {"region": "north"}
    assert speed.details["behind"][0]["share_of_change"] > 0.7


def test_no_ranking_without_segments_or_for_an_ok_finding() -> None:
    """Rule: a finding without segment siblings, or one that is ok, gets no ``behind``."""
    rng = np.random.default_rng(2)
    detector = Performance()
    cfg = detector.config({"metrics": ["fnr"]})
    reference = detector.prepare_reference(_window(rng, 20_000, 0.07), SPEC, cfg)
    findings = attach(detector.run(_window(rng, 10_000, 0.30), reference, cfg, CTX))
    assert all("behind" not in f.details for f in findings)


def test_a_segment_without_its_own_reference_value_is_left_out_of_a_metric_decomposition() -> None:
    """Rule: a new segment value judged ``insufficient_data`` (no reference value) gets no share of
    a metric's change; the shares are split among the segments that have one."""

    def finding(segment: dict[str, str] | None, value: float, ref: float | None, n: int, status: str) -> object:
        details = {} if ref is None else {"reference_value": ref}
        return CTX.finding(
            "performance",
            metric="fnr",
            segment=segment,
            status=status,
            value=value,
            n_current=n,
            n_reference=0 if ref is None else n,
            details=details,
        )

    findings = [
        finding(None, 0.20, 0.10, 1000, "critical"),
        finding({"device": "gen5"}, 0.25, 0.08, 400, "warning"),
        finding({"device": "gen4"}, 0.10, 0.10, 500, "ok"),
        finding({"device": "gen6"}, 0.90, None, 100, "insufficient_data"),
    ]
    behind = attach(findings)[0].details["behind"]  # type: ignore[arg-type]
    assert [b["segment"] for b in behind] == [{"device": "gen5"}]
