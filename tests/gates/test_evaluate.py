"""The gate's verdict rules and their error rates, measured in seeded trials (issue 13)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.gate_validity import scored_set, simulated_set
from detectors.stats.sample_size import one_sample_proportion_n, paired_difference_n
from gates.evaluate import EvaluationSet, evaluate
from gates.spec import GateSpec, parse_spec
from monitor.errors import InvalidInput

TRIALS = 300


def _spec(**overrides: object) -> GateSpec:
    raw: dict[str, object] = {
        "name": "t",
        "model": "harsh-braking",
        "positive_class": "brake",
        "criteria": [{"metric": "recall", "min": 0.80}],
        "min_samples": 20,
    }
    raw.update(overrides)
    return GateSpec.model_validate(raw)


def _ship_rate(spec: GateSpec, make: object, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    verdicts = [evaluate(spec, make(rng)).verdict for _ in range(TRIALS)]  # type: ignore[operator]
    return {v: verdicts.count(v) / TRIALS for v in ("ship", "no_ship", "insufficient_evidence")}


def test_a_candidate_exactly_on_its_minimum_ships_at_most_alpha() -> None:
    """Rule: false ship ≤ 5 % — a candidate whose true recall is exactly the required minimum
    (the worst compliant-looking case) ships in at most ~α = 2.5 % of trials."""
    rates = _ship_rate(_spec(), lambda rng: simulated_set(rng, 400, recall=0.80, fpr=0.05), seed=1)
    assert rates["ship"] <= 0.05, rates


def test_a_candidate_violating_one_of_two_criteria_rarely_ships() -> None:
    """Rule: the intersection-union test — a candidate good on recall but exactly at its FPR
    ceiling ships in ≤ 5 % of trials, however good its other criterion."""
    spec = _spec(criteria=[{"metric": "recall", "min": 0.80}, {"metric": "fpr", "max": 0.10}])
    rates = _ship_rate(spec, lambda rng: simulated_set(rng, 400, recall=0.95, fpr=0.10), seed=2)
    assert rates["ship"] <= 0.05, rates


def test_a_compliant_candidate_ships_with_the_planned_power() -> None:
    """Rule: at the sample size the gate itself would ask for (80 % power per criterion), a
    truly compliant candidate ships in about power² of trials for two independent criteria."""
    spec = _spec(criteria=[{"metric": "recall", "min": 0.80}, {"metric": "fpr", "max": 0.10}])
    positives = one_sample_proportion_n(0.90, 0.80, alpha=spec.alpha)
    negatives = one_sample_proportion_n(0.05, 0.10, alpha=spec.alpha)
    assert positives and negatives
    n = 2 * max(positives, negatives)  # prevalence ½
    rates = _ship_rate(spec, lambda rng: simulated_set(rng, n, recall=0.90, fpr=0.05), seed=3)
    assert rates["ship"] >= 0.70, rates  # ≥ 0.8² = 0.64 expected; each criterion planned at the larger n


def test_holm_keeps_a_twelve_slice_spec_from_failing_a_compliant_candidate() -> None:
    """Rule: with 3 criteria × (1 + 12 slices) = 39 tests and every truth exactly on its
    threshold, the chance of any false fail stays ≤ 5 % (Holm); unadjusted it would be ~60 %."""
    spec = _spec(
        criteria=[
            {"metric": "recall", "min": 0.80},
            {"metric": "fpr", "max": 0.10},
            {"metric": "accuracy", "min": 0.85},
        ],
        slices=["region"],
    )
    # accuracy = 0.5·0.80 + 0.5·0.90 = 0.85 at prevalence ½: all three sit on their thresholds.
    rates = _ship_rate(spec, lambda rng: simulated_set(rng, 2400, recall=0.80, fpr=0.10, regions=12), seed=4)
    assert rates["no_ship"] <= 0.05, rates


def test_a_clearly_failing_slice_is_named_and_blocks_the_release() -> None:
    """Rule: a slice whose recall is far under the minimum fails (no-ship) and is named."""
    rng = np.random.default_rng(5)
    data = simulated_set(rng, 3000, recall=0.95, fpr=0.02)
    regions = np.array(["r0"] * 2700 + ["r1"] * 300, dtype=object)  # overall recall stays ≈ 0.90
    positives = data.labels == "brake"
    candidate = data.candidate.copy()
    candidate[(regions == "r1") & positives & (rng.random(data.rows) < 0.5)] = "none"  # recall ≈ 0.47 in r1
    result = evaluate(
        _spec(slices=["region"]), EvaluationSet("binary", data.labels, candidate, None, {"region": regions}, "brake")
    )
    assert result.verdict == "no_ship"
    assert [(c.slice, c.value) for c in result.failing] == [("region", "r1")]
    assert result.to_dict()["failing"] == ["recall ≥ 0.8 [region=r1]"]


def test_a_small_slice_is_insufficient_and_asks_for_rows() -> None:
    """Rule: a slice with fewer than min_samples rows is insufficient evidence (never a pass),
    and the report asks for at least the missing rows; the verdict is then not ship."""
    rng = np.random.default_rng(6)
    data = simulated_set(rng, 1000, recall=0.97, fpr=0.02)
    regions = np.array(["big"] * 985 + ["tiny"] * 15, dtype=object)
    data = EvaluationSet("binary", data.labels, data.candidate, None, {"region": regions}, "brake")
    result = evaluate(_spec(slices=["region"], min_samples=50), data)
    tiny = next(c for c in result.checks if c.value == "tiny")
    assert tiny.judgement == "insufficient" and tiny.more_rows_needed is not None and tiny.more_rows_needed >= 35
    assert result.verdict == "insufficient_evidence"
    assert result.requests[0].value == "tiny"


def test_undecided_criteria_ask_for_the_rows_that_would_decide_them_long_tail_first() -> None:
    """Rule: an undecided criterion reports the labelled rows (not just trials) that would decide
    it at 80 % power, scaled by the metric's share of rows; long-tail requests come first."""
    rng = np.random.default_rng(7)
    data = simulated_set(rng, 200, recall=0.86, fpr=0.05, prevalence=0.25)
    split = np.array(["longtail_test" if i % 4 == 0 else "holdout" for i in range(200)], dtype=object)
    data = EvaluationSet("binary", data.labels, data.candidate, None, {"longtail": split}, "brake")
    result = evaluate(_spec(slices=["longtail"]), data)
    overall = next(c for c in result.checks if c.slice == "all")
    assert overall.judgement == "insufficient" and overall.more_rows_needed
    estimate = overall.candidate.value
    assert estimate is not None
    trials_needed = one_sample_proportion_n(estimate, 0.80, alpha=0.025)
    assert trials_needed
    share = overall.candidate.trials / overall.rows
    assert overall.more_rows_needed == pytest.approx(trials_needed / share - overall.rows, abs=2)
    assert result.requests[0].slice == "longtail"


def test_non_inferiority_at_the_margin_rarely_passes_and_equal_models_pass_with_power() -> None:
    """Rule: paired non-inferiority — a candidate exactly `margin` worse than the champion
    passes in ≤ 5 % of trials; an equally good one passes in most trials at the planned size
    (Connor's size is approximate for Newcombe's interval: 72 % measured in bench/gate_validity.py)."""
    spec = _spec(criteria=[{"metric": "recall", "non_inferiority": 0.05}])
    at_margin = _ship_rate(
        spec, lambda rng: simulated_set(rng, 800, recall=0.80, fpr=0.05, champion_recall=0.85, agreement=0.6), seed=8
    )
    assert at_margin["ship"] <= 0.05, at_margin
    # Equal recall 0.85 with agreement 0.8: each discordant direction ≈ 0.2 · 0.85 · 0.15 ≈ 0.0255.
    discordant = 0.2 * 0.85 * 0.15
    n = paired_difference_n(discordant, discordant, margin=0.05, alpha=spec.alpha)
    assert n
    equal = _ship_rate(
        spec,
        lambda rng: simulated_set(rng, 2 * n, recall=0.85, fpr=0.05, champion_recall=0.85, agreement=0.8),
        seed=9,
    )
    assert equal["ship"] >= 0.65, equal


def test_lower_is_better_metrics_are_oriented_for_non_inferiority() -> None:
    """Rule: for fnr, non-inferiority means candidate ≤ champion + margin; the reported difference
    is candidate − champion in fnr terms."""
    rng = np.random.default_rng(10)
    data = simulated_set(rng, 4000, recall=0.85, fpr=0.05, champion_recall=0.85, agreement=0.9)
    spec = _spec(criteria=[{"metric": "fnr", "non_inferiority": 0.05}])
    check = evaluate(spec, data).checks[0]
    assert check.judgement == "pass"
    assert check.difference is not None and check.difference.value is not None
    assert abs(check.difference.value) < 0.03 and check.difference.high is not None and check.difference.high < 0.05


def test_regression_mae_bounds_and_paired_error_differences() -> None:
    """Rule: mae ≤ max passes when its upper CLT bound is under max; mae non-inferiority judges
    the paired differences of absolute errors against the margin."""
    rng = np.random.default_rng(11)
    truth = rng.normal(50, 10, 3000)
    cand = truth + rng.normal(0, 2, 3000)
    champ = truth + rng.normal(0, 2, 3000)
    data = EvaluationSet("regression", truth, cand, champ, {}, None)
    spec = _spec(
        positive_class=None, criteria=[{"metric": "mae", "max": 1.8}, {"metric": "mae", "non_inferiority": 0.2}]
    )
    result = evaluate(spec, data)
    assert [c.judgement for c in result.checks] == ["pass", "pass"]
    worse = EvaluationSet("regression", truth, truth + rng.normal(0, 3, 3000), champ, {}, None)
    assert evaluate(spec, worse).verdict == "no_ship"


def test_a_spec_reports_every_mistake_at_once() -> None:
    """Rule: a spec with several mistakes is refused with all of them (field and reason)."""
    text = """
name: r
model: m
confidence: 1.5
criteria:
  - {metric: recall, min: 0.8, max: 0.9}
  - {metric: precision, non_inferiority: 0.02}
  - {metric: auc, min: 0.5}
"""
    with pytest.raises(InvalidInput) as info:
        parse_spec(text)
    fields = {e.field for e in info.value.errors}
    assert {"confidence", "criteria.0", "criteria.1", "criteria.2.metric"} <= fields
    assert any("precision" in e.reason for e in info.value.errors)


def test_roc_auc_on_its_minimum_rarely_ships_and_a_good_one_does() -> None:
    """Rule: ROC-AUC (DeLong interval) — a candidate whose true AUC is exactly the minimum ships
    in ≤ 5 % of trials; one 0.05 above it on 1,000 rows ships in ≥ 80 %."""
    spec = _spec(criteria=[{"metric": "roc_auc", "min": 0.80}])
    assert _ship_rate(spec, lambda rng: scored_set(rng, 1000, 0.80), seed=21)["ship"] <= 0.05
    assert _ship_rate(spec, lambda rng: scored_set(rng, 1000, 0.85), seed=22)["ship"] >= 0.80


def test_roc_auc_non_inferiority_is_paired_by_delong() -> None:
    """Rule: a candidate whose AUC is exactly `margin` under the champion's ships in ≤ 5 % of
    trials (DeLong's paired covariance); an equal one on 2,000 rows ships in ≥ 80 %."""
    spec = _spec(criteria=[{"metric": "roc_auc", "non_inferiority": 0.03}])
    at_margin = _ship_rate(spec, lambda rng: scored_set(rng, 2000, 0.82, champion_auc=0.85), seed=23)
    assert at_margin["ship"] <= 0.05, at_margin
    equal = _ship_rate(spec, lambda rng: scored_set(rng, 2000, 0.85, champion_auc=0.85), seed=24)
    assert equal["ship"] >= 0.80, equal


def test_f1_on_its_minimum_rarely_ships() -> None:
    """Rule: F1 (multinomial bootstrap) — true F1 exactly on the minimum (recall 0.8, precision
    0.8) ships in ≤ 5 % of trials; F1 0.9 on 600 rows ships in ≥ 80 %; the bootstrap is seeded,
    so the same rows give the same verdict."""
    spec = _spec(criteria=[{"metric": "f1", "min": 0.80}])
    assert _ship_rate(spec, lambda rng: simulated_set(rng, 1000, recall=0.8, fpr=0.2), seed=25)["ship"] <= 0.05
    # recall 0.9, fpr 0.1 at prevalence ½: precision 0.9, F1 0.9
    assert _ship_rate(spec, lambda rng: simulated_set(rng, 600, recall=0.9, fpr=0.1), seed=26)["ship"] >= 0.80
    data = simulated_set(np.random.default_rng(27), 500, recall=0.85, fpr=0.1)
    assert evaluate(spec, data).to_dict() == evaluate(spec, data).to_dict()


def test_f1_non_inferiority_fails_a_clearly_worse_candidate() -> None:
    """Rule: paired F1 — a candidate far below the champion fails; an equal one passes."""
    spec = _spec(criteria=[{"metric": "f1", "non_inferiority": 0.03}])
    worse = simulated_set(np.random.default_rng(28), 3000, recall=0.6, fpr=0.1, champion_recall=0.9, agreement=0.2)
    assert evaluate(spec, worse).verdict == "no_ship"
    equal = simulated_set(np.random.default_rng(29), 3000, recall=0.9, fpr=0.1, champion_recall=0.9, agreement=0.9)
    assert evaluate(spec, equal).verdict == "ship"


def test_rmse_on_its_maximum_rarely_ships() -> None:
    """Rule: RMSE (CLT on squared errors, against the threshold squared) — true RMSE exactly on
    the maximum ships in ≤ 5 % of trials; 10 % under it on 2,000 rows ships in ≥ 80 %."""
    spec = _spec(positive_class=None, criteria=[{"metric": "rmse", "max": 2.0}])

    def regression(rng: np.random.Generator, sd: float) -> EvaluationSet:
        truth = rng.normal(50, 10, 2000)
        return EvaluationSet("regression", truth, truth + rng.normal(0, sd, 2000), None, {}, None)

    assert _ship_rate(spec, lambda rng: regression(rng, 2.0), seed=30)["ship"] <= 0.05
    assert _ship_rate(spec, lambda rng: regression(rng, 1.8), seed=31)["ship"] >= 0.80
