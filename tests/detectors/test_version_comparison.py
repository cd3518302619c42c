"""The canary comparison's verdict rule and its error rates in seeded trials (issue 13)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from bench.canary_quality import SPEC, Change, canary_window, decide
from detectors import RunContext, VersionComparison
from monitor.monitors import MonitorSpec
from monitor.schema import ModelSchema
from monitor.service import Loopwatch
from monitor.validation import records_to_table
from tests.conftest import braking_record

CTX = RunContext("canary", datetime(2026, 11, 2, 12, tzinfo=UTC), datetime(2026, 11, 2, 13, tzinfo=UTC))


def _rates(change: Change, trials: int, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    decisions = [decide(canary_window(rng, 20_000, 0.1, change)) for _ in range(trials)]
    return {d: decisions.count(d) / trials for d in ("promote", "hold", "roll_back")}


def test_two_identical_versions_are_rarely_rolled_back() -> None:
    """Rule: under no change (A/A, the candidate on 10 % of 20,000 requests) the decision is
    roll_back in at most 5 % of windows (measured 1.2 % of 500 in bench/canary_quality.py)."""
    rates = _rates(Change(), trials=80, seed=1)
    assert rates["roll_back"] <= 0.05, rates
    assert rates["promote"] >= 0.75, rates


@pytest.mark.parametrize(
    "change",
    [Change(latency_factor=1.3), Change(recall_drop=0.2), Change(score_shift=0.5)],
    ids=["slower x1.3", "misses 20% more", "score shifted"],
)
def test_a_clearly_worse_candidate_is_rolled_back(change: Change) -> None:
    """Rule: a candidate 30 % slower, missing 20 % more positives, or calling positives more
    often than the baseline in the same window is rolled back in ≥ 90 % of windows."""
    assert _rates(change, trials=25, seed=2)["roll_back"] >= 0.9


def test_the_decision_names_the_regression_and_both_versions() -> None:
    """Rule: the decision finding carries roll_back / critical, the candidate and baseline, and
    reasons naming the failing check; each check's findings are kept as check:metric."""
    window = canary_window(np.random.default_rng(3), 20_000, 0.1, Change(latency_factor=1.5))
    detector = VersionComparison()
    config = detector.config({})
    findings = detector.run(window, detector.prepare_reference(None, SPEC, config), config, CTX)
    decision = findings[-1]
    assert decision.metric == "decision" and decision.status.value == "critical"
    assert decision.details["decision"] == "roll_back"
    assert (decision.details["candidate"], decision.details["baseline"]) == ("1.1", "1.0")
    assert decision.model_version == "1.1" and decision.reference == "model version 1.0, same window"
    assert any(r.startswith("latency:p95 critical") for r in decision.details["reasons"])
    assert {f.metric.split(":")[0] for f in findings[:-1]} == {"latency", "predictions", "inputs", "performance"}
    assert decision.details["checks"]["latency"] == "critical"


def test_too_little_canary_traffic_holds_without_paging() -> None:
    """Rule: fewer than min_rows rows of either version → hold with insufficient_data (no alert)."""
    window = canary_window(np.random.default_rng(4), 3000, 0.03, Change(latency_factor=2.0))
    detector = VersionComparison()
    config = detector.config({})
    decision = detector.run(window, detector.prepare_reference(None, SPEC, config), config, CTX)[-1]
    assert decision.details["decision"] == "hold" and decision.status.value == "insufficient_data"
    assert "too few rows" in decision.details["reasons"][0]


def test_a_window_with_one_version_has_no_decision() -> None:
    """Rule: no canary in the window → one insufficient_data finding, decision None."""
    window = canary_window(np.random.default_rng(5), 2000, 0.0, Change())
    detector = VersionComparison()
    config = detector.config({})
    findings = detector.run(window, detector.prepare_reference(None, SPEC, config), config, CTX)
    assert len(findings) == 1 and findings[0].details["decision"] is None


def test_versions_can_be_named_and_the_config_is_checked() -> None:
    """Rule: candidate/baseline given in params are used as given (a third version in the window
    is ignored); unknown checks and candidate == baseline are refused."""
    rng = np.random.default_rng(6)
    window = canary_window(rng, 20_000, 0.3, Change())
    third = window.slice(0, 500)
    third = third.set_column(third.schema.get_field_index("model_version"), "model_version", pa.array(["0.9"] * 500))
    window = pa.concat_tables([window.slice(500), third])
    detector = VersionComparison()
    config = detector.config({"candidate": "1.0", "baseline": "1.1", "checks": ["latency"]})
    decision = detector.run(window, detector.prepare_reference(None, SPEC, config), config, CTX)[-1]
    assert (decision.details["candidate"], decision.details["baseline"]) == ("1.0", "1.1")
    assert decision.n_current == int(pc.sum(pc.equal(window.column("model_version"), "1.0")).as_py())
    with pytest.raises(ValueError, match="checks"):
        detector.config({"checks": ["vibes"]})
    with pytest.raises(ValueError, match="different"):
        detector.config({"candidate": "1.0", "baseline": "1.0"})


def test_a_version_comparison_monitor_needs_no_reference_and_records_its_decision(
    service: Loopwatch, braking_model: ModelSchema
) -> None:
    """Rule: a version_comparison monitor is declared without a reference; a run over a window
    where two versions served records the check findings and the decision."""
    now = datetime.now(UTC).replace(microsecond=0)
    records = [
        braking_record(
            i,
            now - timedelta(minutes=50) + timedelta(seconds=i),
            model_version="2.0" if i % 5 == 0 and i > 300 else "1.0",
            latency_ms=(40.0 if i % 5 == 0 and i > 300 else 10.0) + i % 7,
        )
        for i in range(2500)
    ]
    service.store.ingest_predictions("harsh-braking", records_to_table(records, braking_model))
    spec = MonitorSpec.model_validate(
        {"name": "canary", "detector": "version_comparison", "every": "1h", "window": "1h", "params": {"min_rows": 100}}
    )
    service.monitors.save("harsh-braking", spec)
    outcome = service.runner.run("harsh-braking", "canary", window_end=now)
    assert outcome is not None and outcome.error is None, outcome and outcome.error
    decision = next(f for f in outcome.findings if f.metric == "decision")
    assert decision.details["decision"] == "roll_back" and decision.details["candidate"] == "2.0"
    stored = service.runs.findings("harsh-braking", monitor="canary")
    assert any(f["metric"] == "decision" for f in stored)
