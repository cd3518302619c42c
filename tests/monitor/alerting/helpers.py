"""Shared test helpers for the alert channel tests: a notice factory and a fake clock."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.alerting.notice import AlertNotice

T0 = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)


def make_notice(**overrides: Any) -> AlertNotice:
    """A realistic FN-rate alert on harsh-braking firmware 3.2; override any field."""
    base = AlertNotice(
        alert_id="al_7f3c2a",
        fingerprint="fp_9d1e",
        status="firing",
        severity="critical",
        title="FN rate above threshold",
        model="harsh-braking",
        model_version="3.1.0",
        segment={"firmware": "3.2", "region": "eu"},
        detector="performance",
        metric="fn_rate",
        value=0.098,
        threshold=0.05,
        window_start=T0,
        window_end=T0 + timedelta(hours=1),
        what_changed="FN rate 4.1% → 9.8% (95% CI 8.9–10.7%) on firmware 3.2 since 14:00",
        started_at=T0,
        dashboard_url="http://loopwatch.local:8080/models/harsh-braking?alert=al_7f3c2a",
        runbook_url="https://wiki.example.com/runbooks/harsh-braking",
        channel="#ml-oncall",
    )
    return dataclasses.replace(base, **overrides)


class FakeClock:
    """Monotonic seconds that only move when something sleeps (or the test advances them)."""

    def __init__(self, start: float = 10_000.0) -> None:
        self.t = start
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        assert 0 <= seconds < 3600, f"unexpected sleep {seconds}"
        self.sleeps.append(seconds)
        self.t += seconds

    def advance(self, seconds: float) -> None:
        self.t += seconds
