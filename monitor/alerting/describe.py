"""Human words for findings: an alert's title and its one-line "what changed".

The line is what on-call reads first, so it names the metric, the before → after values
(with the confidence interval when the detector computed one), the segment and the reference.
"""

from __future__ import annotations

from typing import Any

PERCENT_METRICS = frozenset(
    {
        "fpr",
        "fnr",
        "precision",
        "recall",
        "f1",
        "accuracy",
        "null_rate",
        "out_of_range_rate",
        "unseen_category_rate",
        "share_drifted_columns",
    }
)
NAMES = {
    "fpr": "FP rate",
    "fnr": "FN rate",
    "p50": "p50 latency",
    "p95": "p95 latency",
    "p99": "p99 latency",
    "roc_auc": "ROC-AUC",
    "mae": "MAE",
    "rmse": "RMSE",
    "rows": "volume",
    "minutes_since_last": "silence",
}


def _fmt(value: float | None, metric: str) -> str:
    if value is None:
        return "n/a"
    base = metric.split(":")[0]
    if base in PERCENT_METRICS:
        return f"{value * 100:.1f}%"
    if base in ("p50", "p95", "p99"):
        return f"{value:.0f} ms" if value >= 10 else f"{value:.2f} ms"
    return f"{value:.3g}"


def _segment(segment: dict[str, Any] | None) -> str:
    if not segment:
        return ""
    return " on " + ", ".join(f"{k} {v}" for k, v in segment.items())


def _canary(finding: dict[str, Any]) -> dict[str, Any]:
    """A canary comparison's check finding (metric ``latency:p95``) described like the check's
    own finding (``p95``), against the baseline version."""
    if finding.get("detector") != "version_comparison" or ":" not in finding["metric"]:
        return finding
    return {**finding, "metric": finding["metric"].split(":", 1)[1]}


def _decision(finding: dict[str, Any]) -> tuple[str, str]:
    details = finding.get("details") or {}
    decision = str(details.get("decision") or "no decision").replace("_", " ")
    versions = f"{details.get('candidate')} vs {details.get('baseline')}"
    reasons = "; ".join(str(r) for r in (details.get("reasons") or [])[:3])
    return f"{finding['model']}: canary {versions}: {decision}", reasons


def title(finding: dict[str, Any]) -> str:
    if finding.get("detector") == "version_comparison" and finding["metric"] == "decision":
        return _decision(finding)[0]
    finding = _canary(finding)
    metric = finding["metric"]
    subject = finding.get("column") or NAMES.get(metric.split(":")[0], metric)
    kind = {
        "data_drift": "drift",
        "prediction_drift": "prediction drift",
        "label_drift": "label drift",
        "performance": "regression",
        "estimated_performance": "regression (estimated, before labels)",
        "multivariate_drift": "joint drift",
        "embedding_drift": "embedding drift",
        "latency": "regression",
        "version_comparison": "regression in the canary",
        "data_quality": "data quality",
        "volume": "volume change",
        "freshness": "no data",
        "run_error": "run failed",
    }.get(finding["detector"], "alert")
    if finding["detector"] == "freshness":
        return f"{finding['model']}: no data{_segment(finding.get('segment'))}"
    return f"{finding['model']}: {subject} {kind}{_segment(finding.get('segment'))}"


TEST_NAMES = {"ks_2samp": "KS", "chi2_homogeneity": "χ²", "anderson": "Anderson–Darling", "z": "z-test"}


def _test_evidence(finding: dict[str, Any], details: dict[str, Any]) -> str:
    """"; KS p < 0.001 after BH" — why the change is more than sampling noise."""
    p = finding.get("p_value_adjusted")
    adjusted = p is not None
    p = p if adjusted else finding.get("p_value")
    if p is None:
        return ""
    test = TEST_NAMES.get(str(details.get("test")), str(details.get("test") or "test"))
    shown = "< 0.001" if p < 0.001 else f"= {p:.3f}"
    return f"; {test} p {shown}{' after BH' if adjusted else ''}"


def what_changed(finding: dict[str, Any]) -> str:
    """e.g. "FN rate 4.7% → 24.0% (95% CI 21.4–26.7%) on firmware 3.2 vs trailing 7d"."""
    if finding.get("detector") == "version_comparison" and finding["metric"] == "decision":
        return _decision(finding)[1]
    finding = _canary(finding)
    metric = finding["metric"]
    details = finding.get("details") or {}
    name = NAMES.get(metric.split(":")[0], metric)
    if finding.get("column"):
        name = f"{finding['column']} {details.get('method_display_name') or metric}"
    value = _fmt(finding.get("value"), metric)
    reference = details.get("reference_value")
    line = f"{name} {_fmt(reference, metric)} → {value}" if reference is not None else f"{name} {value}"
    ci = details.get("current_ci")
    if details.get("rule") == "calibrated" and finding.get("threshold") is not None:
        # Drift under the calibrated rule: the effect against its floor, and the test behind it.
        line += f" (floor {_fmt(finding['threshold'], metric)}{_test_evidence(finding, details)})"
    elif isinstance(ci, (list, tuple)) and len(ci) == 2 and None not in ci:
        level = round(float(details.get("confidence", 0.95)) * 100)
        line += f" ({level}% CI {_fmt(ci[0], metric).rstrip('%')}–{_fmt(ci[1], metric)})"
    elif reference is None and finding.get("threshold") is not None:
        line += f" (threshold {_fmt(finding['threshold'], metric)})"
    line += _segment(finding.get("segment"))
    if finding.get("reference"):
        line += f" vs {finding['reference']}"
    return line + behind(finding)


def behind(finding: dict[str, Any]) -> str:
    """e.g. "; 80% of the rise is firmware 3.2 (18% of traffic, 20.0%)" — the segment values
    that explain the change (``details.behind``, detectors/attribution.py), top two."""
    ranked = (finding.get("details") or {}).get("behind") or []
    if not ranked:
        return ""
    metric = finding["metric"]
    word = "change" if finding.get("column") or finding.get("detector", "").endswith("drift") else "rise"
    if word == "rise" and metric.split(":")[0] in ("precision", "recall", "f1", "accuracy", "roc_auc"):
        word = "drop"
    parts = []
    for item in ranked[:2]:
        where = ", ".join(f"{k} {v}" for k, v in (item.get("segment") or {}).items())
        value = item.get("value")
        shown = f", {_fmt(value, metric)}" if isinstance(value, (int, float)) and not finding.get("column") else ""
        parts.append(f"{item['share_of_change'] * 100:.0f}% of the {word} is {where} ({item['traffic_share'] * 100:.0f}% of traffic{shown})")
    return "; " + "; ".join(parts)
