"""The alert state machine as a pure function over typed records (Prometheus alerting-rule semantics).

``step(alert, observation, rule, now)`` answers one question: given the open episode of a series
(or none) and one window's verdict for it, what is the episode now, and did it change state?
It reads no clock (``now`` is only stamped on the record), does no I/O and draws no randomness
(the id a new episode would get is passed in), so every rule below is tested as plain data.

Time is *data time*: ``for`` and ``keep_firing_for`` are measured between window ends, never by
counting runs, so re-running a window (manually, or as a retry) adds no evidence.

* **bad** (a status the monitor fires on): opens a ``pending`` episode whose clock starts at
  the first bad window's end; it fires on a bad window that ends at least ``for`` after that.
  ``for: 0s`` fires on the first bad window.
* **ok** (status ``ok``, the only *clearly ok* verdict): clears a pending episode at once; a
  firing one resolves once the windows have been clearly ok from the first ok window's end to
  the current window's end for at least ``keep_firing_for`` (0: the first ok window resolves).
* **neutral** (``warning`` unless listed in ``fire_on``, ``insufficient_data``): not evidence
  either way. It never fires, never resolves, never clears and resets no clock: a firing alert
  does not flap across a ``warning`` window.
* A bad window resets the ok streak of a firing episode.
* A window that ends before the last bad window the episode has seen (a re-judged older window)
  never moves the episode backwards: it changes nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

Verdict = Literal["bad", "ok", "neutral"]
AlertState = Literal["pending", "firing", "resolved"]
Change = Literal["none", "pending", "fired", "resolved", "cleared"]


@dataclass(frozen=True)
class LifecycleRule:
    """How one monitor's alerts move: ``for`` and ``keep_firing_for`` as data-time durations."""

    for_: timedelta = timedelta(0)
    keep_firing_for: timedelta = timedelta(0)
    fire_on: frozenset[str] = frozenset({"critical", "no_data"})

    def verdict(self, status: str) -> Verdict:
        """bad = a status the monitor fires on; ok = ``ok``; everything else is neutral."""
        if status in self.fire_on:
            return "bad"
        if status == "ok":
            return "ok"
        return "neutral"


@dataclass(frozen=True)
class Observation:
    """One series' verdict in one run's window, and what a new or updated episode records."""

    fingerprint: str
    verdict: Verdict
    status: str
    window_start: datetime
    window_end: datetime
    run_id: str
    model_id: int
    monitor: str
    detector: str
    metric: str
    column: str | None
    segment: Mapping[str, str] | None
    severity: str
    route: str  # the monitor's route, as JSON (copied onto the episode)
    value: float | None = None
    threshold: float | None = None
    model_version: str | None = None
    what_changed: str = ""


@dataclass(frozen=True)
class AlertRecord:
    """The fields of one alert episode that the state machine owns (the store persists them;
    delivery and acknowledgement columns are not part of the state and are never touched here).

    ``started_at`` is the end of the first bad window and ``first_window_start`` its start (data
    time: the ``for`` clock and the frozen trailing reference start from them); ``ok_since`` is
    the end of the first window of the current clearly-ok streak of a firing episode.
    ``fired_at``, ``resolved_at`` and ``updated_at`` are wall-clock times of the transitions.
    """

    id: str
    fingerprint: str
    model_id: int
    monitor: str
    detector: str
    metric: str
    column: str | None
    segment: Mapping[str, str] | None
    severity: str
    state: AlertState
    consecutive: int
    started_at: datetime
    first_window_start: datetime
    last_window_start: datetime
    last_window_end: datetime
    last_run_id: str
    route: str
    updated_at: datetime
    fired_at: datetime | None = None
    resolved_at: datetime | None = None
    ok_since: datetime | None = None
    value: float | None = None
    threshold: float | None = None
    model_version: str | None = None
    what_changed: str = ""
    finding_status: str | None = None

    @property
    def active(self) -> bool:
        return self.state in ("pending", "firing")


@dataclass(frozen=True)
class Step:
    """The outcome of one observation: the record to persist (``None``: nothing changed),
    whether it is a new episode, and the state change (``none`` for in-place updates)."""

    record: AlertRecord | None
    change: Change
    created: bool = False


NOTHING = Step(None, "none")


def step(alert: AlertRecord | None, obs: Observation, rule: LifecycleRule, now: datetime, *, new_id: str) -> Step:
    """Apply one observation to the open episode of its series (``alert``: pending or firing, or
    ``None``). ``now`` stamps wall-clock fields only; ``new_id`` names an episode this opens."""
    if alert is not None and not alert.active:
        alert = None  # a resolved episode is history: a bad window opens a new one
    if alert is not None and obs.window_end < alert.last_window_end:
        return NOTHING  # a re-judged older window never moves an episode backwards
    if obs.verdict == "neutral":
        return NOTHING
    if obs.verdict == "bad":
        return _open(obs, rule, now, new_id) if alert is None else _still_bad(alert, obs, rule, now)
    if alert is None:
        return NOTHING
    return _ok(alert, obs, rule, now)


def _open(obs: Observation, rule: LifecycleRule, now: datetime, new_id: str) -> Step:
    fires = rule.for_ <= timedelta(0)
    record = AlertRecord(
        id=new_id,
        fingerprint=obs.fingerprint,
        model_id=obs.model_id,
        monitor=obs.monitor,
        detector=obs.detector,
        metric=obs.metric,
        column=obs.column,
        segment=obs.segment,
        severity=obs.severity,
        state="firing" if fires else "pending",
        consecutive=1,
        started_at=obs.window_end,
        first_window_start=obs.window_start,
        last_window_start=obs.window_start,
        last_window_end=obs.window_end,
        last_run_id=obs.run_id,
        route=obs.route,
        updated_at=now,
        fired_at=now if fires else None,
        value=obs.value,
        threshold=obs.threshold,
        model_version=obs.model_version,
        what_changed=obs.what_changed,
        finding_status=obs.status,
    )
    return Step(record, "fired" if fires else "pending", created=True)


def _still_bad(alert: AlertRecord, obs: Observation, rule: LifecycleRule, now: datetime) -> Step:
    fires = alert.state == "pending" and obs.window_end - alert.started_at >= rule.for_
    record = dataclasses.replace(
        alert,
        state="firing" if fires or alert.state == "firing" else "pending",
        consecutive=alert.consecutive + (1 if obs.window_end > alert.last_window_end else 0),
        fired_at=alert.fired_at or (now if fires else None),
        ok_since=None,
        last_window_start=obs.window_start,
        last_window_end=obs.window_end,
        last_run_id=obs.run_id,
        value=obs.value,
        threshold=obs.threshold,
        what_changed=obs.what_changed,
        finding_status=obs.status,
        severity=obs.severity,
        route=obs.route,
        updated_at=now,
    )
    return Step(record, "fired" if fires else "none")


def _ok(alert: AlertRecord, obs: Observation, rule: LifecycleRule, now: datetime) -> Step:
    if alert.state == "pending":
        return Step(_closed(alert, obs, now), "cleared")
    ok_since = obs.window_end if alert.ok_since is None else min(alert.ok_since, obs.window_end)
    if obs.window_end - ok_since >= rule.keep_firing_for:
        return Step(_closed(alert, obs, now), "resolved")
    return Step(dataclasses.replace(alert, ok_since=ok_since, last_run_id=obs.run_id, updated_at=now), "none")


def _closed(alert: AlertRecord, obs: Observation, now: datetime) -> AlertRecord:
    return dataclasses.replace(
        alert,
        state="resolved",
        resolved_at=now,
        consecutive=0,
        last_run_id=obs.run_id,
        finding_status=obs.status,
        value=obs.value,
        updated_at=now,
    )


__all__ = ["AlertRecord", "Change", "LifecycleRule", "Observation", "Step", "Verdict", "step"]
