"""The segment behind a change: which segment values explain a whole-window finding.

When a monitor judges segments (``segments: [firmware]``), a run holds the whole-window finding
and one finding per segment value, each with its value, its reference value and its row counts.
On-call needs the link between them: *"FN rate up 2.4 points; 80 % of the rise is firmware 3.2,
which is 18 % of traffic"*.

**Decomposition.** A window metric is (approximately) the traffic-weighted mean of its segments'
values, ``M = Σ_s w_s · m_s`` with ``w_s`` the segment's share of the rows. The change splits
exactly into one term per segment (the shift-share identity of a weighted mean; Kitagawa,
"Components of a difference between two rates", JASA 1955):

``ΔM = Σ_s (w'_s · m'_s − w_s · m_s)``

(primes: the window; no prime: the reference). A segment's *contribution* is its term, oriented
so that a worsening is positive, and its *share of the change* is the term over the sum of all
terms. It includes both what changed *inside* the segment and a change of its *traffic share*
(a bad segment that grew). For a rate whose denominator is not the row count (an FN rate
counts positives), the row-weighted mean is an approximation of the exact window rate; the
ranking, not the third decimal, is what it is for.

Drift findings have no reference value: the segment's drift score weighted by its share of
traffic, ``w'_s · score_s``, ranks them (a big drift in a segment of 1 % of traffic matters
less than a moderate one in 40 %).

>>> from datetime import datetime, timezone
>>> from detectors import RunContext
>>> ctx = RunContext("m", datetime(2026, 1, 1, tzinfo=timezone.utc), datetime(2026, 1, 2, tzinfo=timezone.utc))
>>> def f(segment, value, ref, n, n_ref, status="ok"):
...     return ctx.finding("performance", metric="fnr", segment=segment, status=status, value=value,
...                        n_current=n, n_reference=n_ref, details={"reference_value": ref})
>>> findings = [f(None, 0.095, 0.071, 1000, 5000, "critical"),
...             f({"firmware": "3.1"}, 0.072, 0.071, 820, 4100),
...             f({"firmware": "3.2"}, 0.200, 0.072, 180, 900, "critical")]
>>> top = attach(findings)[0].details["behind"][0]
>>> top["segment"], round(top["share_of_change"], 2), round(top["traffic_share"], 2)
({'firmware': '3.2'}, 0.97, 0.18)
"""

from __future__ import annotations

import dataclasses
from typing import Any

from detectors.finding import BAD_STATUSES, Finding
from detectors.performance import HIGHER_IS_WORSE as WORSE_PERFORMANCE

#: Metrics where a larger value is worse (the rest: a smaller value is worse), for findings
#: that do not say so themselves (performance findings carry ``details.higher_is_worse``).
HIGHER_IS_WORSE = WORSE_PERFORMANCE | {"p50", "p95", "p99", "reconstruction_error", "mmd2"}


def _higher_is_worse(finding: Finding) -> bool:
    flag = finding.details.get("higher_is_worse")
    if isinstance(flag, bool):
        return flag
    return finding.metric.split(":")[0] in HIGHER_IS_WORSE


def _family(finding: Finding) -> tuple[str, str, str | None]:
    return (finding.detector, finding.metric, finding.column)


def rank_segments(whole: Finding, parts: list[Finding], top: int = 3) -> list[dict[str, Any]]:
    """The segment values behind ``whole``, largest share of the change first (at most ``top``
    per segment column; only values that pushed the change the same way as the window)."""
    decompose = isinstance(whole.details.get("reference_value"), (int, float))
    by_column: dict[str, list[Finding]] = {}
    for part in parts:
        if part.segment:
            by_column.setdefault(next(iter(part.segment)), []).append(part)
    ranked: list[dict[str, Any]] = []
    for column_parts in by_column.values():
        judged = [p for p in column_parts if p.value is not None and p.n_current]
        if decompose:  # a segment not judged against its own reference (e.g. new) has no term
            judged = [p for p in judged if isinstance(p.details.get("reference_value"), (int, float))]
        if not judged:
            continue
        rows = sum(p.n_current for p in judged)
        rows_ref = sum(p.n_reference for p in judged)
        terms: list[tuple[Finding, float, float]] = []
        for p in judged:
            share = p.n_current / rows
            value = float(p.value)  # type: ignore[arg-type]
            if decompose and rows_ref:
                term = share * value - (p.n_reference / rows_ref) * float(p.details["reference_value"])
                if not _higher_is_worse(p):
                    term = -term
            else:  # drift: the score weighted by traffic
                term = share * value
            terms.append((p, term, share))
        total = sum(t for _, t, _ in terms if t > 0)
        if total <= 0:
            continue
        for p, term, share in sorted(terms, key=lambda item: -item[1])[:top]:
            if term <= 0:
                break
            ranked.append(
                {
                    "segment": dict(p.segment or {}),
                    "share_of_change": term / total,
                    "traffic_share": share,
                    "value": p.value,
                    "reference_value": p.details.get("reference_value"),
                    "status": p.status.value,
                }
            )
    return sorted(ranked, key=lambda r: -r["share_of_change"])[:top]


def attach(findings: list[Finding], top: int = 3) -> list[Finding]:
    """``findings`` with ``details["behind"]`` on every bad whole-window finding that has
    segment siblings in the same run (same detector, metric and column)."""
    parts: dict[tuple[str, str, str | None], list[Finding]] = {}
    for finding in findings:
        if finding.segment:
            parts.setdefault(_family(finding), []).append(finding)
    out: list[Finding] = []
    for finding in findings:
        siblings = parts.get(_family(finding))
        if finding.segment is None and finding.status in BAD_STATUSES and siblings:
            behind = rank_segments(finding, siblings, top)
            if behind:
                finding = dataclasses.replace(finding, details={**finding.details, "behind": behind})
        out.append(finding)
    return out
