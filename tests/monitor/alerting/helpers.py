"""Shared test helpers for the alert receiver tests: a group notice factory and a fake clock."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.alerting.notice import AlertLine, GroupNotice

T0 = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)

_LINE_FIELDS = {f.name for f in dataclasses.fields(AlertLine)}
_NOTICE_FIELDS = {f.name for f in dataclasses.fields(GroupNotice)}


def make_line(**overrides: Any) -> AlertLine:
    """A realistic FN-rate alert on harsh-braking firmware 3.2; override any field."""
    base = AlertLine(
        alert_id="al_7f3c2a",
        status="firing",
        severity="critical",
        title="FN rate above threshold",
        detector="performance",
        metric="fn_rate",
        column=None,
        segment={"firmware": "3.2", "region": "eu"},
        model_version="3.1.0",
        value=0.098,
        threshold=0.05,
        what_changed="FN rate 4.1% → 9.8% (95% CI 8.9–10.7%) on firmware 3.2 since 14:00",
        window_start=T0,
        window_end=T0 + timedelta(hours=1),
        started_at=T0,
        dashboard_url="http://loopwatch.local:8080/models/harsh-braking/alerts/al_7f3c2a",
    )
    return dataclasses.replace(base, **overrides)


def make_notice(*, lines: tuple[AlertLine, ...] | None = None, **overrides: Any) -> GroupNotice:
    """A one-alert group for harsh-braking / fn-rate. Keyword overrides go to the group when it
    has that field and to its alert otherwise (``alert_id`` also names the group, ``status``
    and ``severity`` both, ``model`` the group label and title) — so channel tests read as before."""
    group = {k: v for k, v in overrides.items() if k in _NOTICE_FIELDS}
    line = {k: v for k, v in overrides.items() if k in _LINE_FIELDS and k not in ("title",)}
    unknown = set(overrides) - _NOTICE_FIELDS - _LINE_FIELDS
    assert not unknown, f"unknown notice fields {unknown}"
    if "alert_id" in overrides:
        group.setdefault("group_id", "grp_" + overrides["alert_id"])
    if "title" in overrides:
        line["title"] = overrides["title"]
        group.pop("title", None)
    model = overrides.get("model", "harsh-braking")
    alerts = lines if lines is not None else (make_line(**line),)
    status = overrides.get("status") or ("firing" if any(a.status == "firing" for a in alerts) else "resolved")
    base = GroupNotice(
        group_id="grp_9d1e",
        kind="new",
        status=status,
        severity="critical",
        title=f"{model} · fn-rate",
        model=model,
        labels={"model": model, "monitor": "fn-rate"},
        alerts=alerts,
        channel="#ml-oncall",
        started_at=T0,
        ended_at=T0 + timedelta(hours=1) if status == "resolved" else None,
        dashboard_url="http://loopwatch.local:8080/models/harsh-braking#alerts",
        runbook_url="https://wiki.example.com/runbooks/harsh-braking",
    )
    return dataclasses.replace(base, **group)


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
