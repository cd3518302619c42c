"""The alert state machine as plain data: no database, no clock, no randomness."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import numpy as np

from monitor.alerting.state import AlertRecord, LifecycleRule, Observation, Verdict, step

T0 = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
EVERY = timedelta(minutes=15)
WALL = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)  # wall-clock "now": deliberately unrelated to data time


def obs(verdict: Verdict, window_end: datetime, status: str | None = None) -> Observation:
    status = status or {"bad": "critical", "ok": "ok", "neutral": "warning"}[verdict]
    return Observation(
        fingerprint="fp",
        verdict=verdict,
        status=status,
        window_start=window_end - timedelta(hours=1),
        window_end=window_end,
        run_id=f"run-{window_end.isoformat()}",
        model_id=1,
        monitor="fn-rate",
        detector="performance",
        metric="fnr",
        column=None,
        segment={"firmware": "3.2"},
        severity="critical",
        route="{}",
        value=0.1 if verdict == "bad" else 0.04,
    )


def replay(
    verdicts: list[Verdict], rule: LifecycleRule, *, ends: list[datetime] | None = None
) -> tuple[list[str], AlertRecord | None]:
    """Feed one window per verdict (every 15 minutes unless ``ends`` is given); the changes and the open episode."""
    alert: AlertRecord | None = None
    changes: list[str] = []
    ids = itertools.count()
    for i, verdict in enumerate(verdicts):
        end = ends[i] if ends else T0 + i * EVERY
        result = step(alert, obs(verdict, end), rule, WALL, new_id=f"al_{next(ids)}")
        changes.append(result.change)
        if result.record is not None:
            alert = result.record if result.record.active else None
    return changes, alert


def test_for_is_measured_in_data_time_from_the_first_bad_window() -> None:
    """for: 30m fires on the bad window ending 30 minutes after the first bad window's end (the third of 15m)."""
    changes, alert = replay(["bad", "bad", "bad", "bad"], LifecycleRule(for_=timedelta(minutes=30)))
    assert changes == ["pending", "none", "fired", "none"]
    assert alert is not None and alert.state == "firing" and alert.started_at == T0
    assert alert.fired_at == WALL  # wall-clock stamp, from the argument only


def test_for_zero_fires_on_the_first_bad_window() -> None:
    """for: 0s (or for: 1 window) fires at once."""
    changes, _ = replay(["bad"], LifecycleRule())
    assert changes == ["fired"]


def test_repeated_runs_of_the_same_window_never_fire() -> None:
    """Two (or ten) runs of one window add no data time: a pending alert stays pending."""
    same = [T0] * 10
    changes, alert = replay(["bad"] * 10, LifecycleRule(for_=timedelta(minutes=15)), ends=same)
    assert changes == ["pending"] + ["none"] * 9
    assert alert is not None and alert.state == "pending" and alert.consecutive == 1


def test_a_pending_alert_that_sees_ok_is_cleared_and_a_new_episode_starts_its_own_clock() -> None:
    """ok clears a pending alert; the next bad window opens a new episode whose for clock starts again."""
    changes, alert = replay(["bad", "ok", "bad", "bad"], LifecycleRule(for_=timedelta(minutes=30)))
    assert changes == ["pending", "cleared", "pending", "none"]
    assert alert is not None and alert.id == "al_2" and alert.started_at == T0 + 2 * EVERY


def test_neutral_windows_neither_count_nor_clear_a_pending_alert() -> None:
    """warning / insufficient_data while pending: no fire, no clear; the next bad window past for fires."""
    changes, _ = replay(["bad", "neutral", "neutral", "bad"], LifecycleRule(for_=timedelta(minutes=30)))
    assert changes == ["pending", "none", "none", "fired"]


def test_warning_never_resolves_a_firing_alert() -> None:
    """A false-positive rate that stays high with warning windows in between is one alert, not three."""
    verdicts: list[Verdict] = ["bad", "neutral", "bad", "neutral", "bad"]
    changes, alert = replay(verdicts, LifecycleRule())
    assert changes == ["fired", "none", "none", "none", "none"]
    assert alert is not None and alert.id == "al_0" and alert.state == "firing"


def test_insufficient_data_never_resolves_a_firing_alert() -> None:
    """A quiet window is not a recovery."""
    alert = step(None, obs("bad", T0), LifecycleRule(), WALL, new_id="al_0").record
    quiet = obs("neutral", T0 + EVERY, status="insufficient_data")
    assert step(alert, quiet, LifecycleRule(), WALL, new_id="x").change == "none"


def test_keep_firing_for_needs_clearly_ok_windows_for_that_long() -> None:
    """keep_firing_for: 30m resolves on the ok window ending 30 minutes after the first ok window's end."""
    changes, alert = replay(["bad", "ok", "ok", "ok"], LifecycleRule(keep_firing_for=timedelta(minutes=30)))
    assert changes == ["fired", "none", "none", "resolved"]
    assert alert is None


def test_keep_firing_for_zero_resolves_on_the_first_ok_window() -> None:
    """The default keep_firing_for (0) resolves on the first clearly-ok window."""
    changes, _ = replay(["bad", "ok"], LifecycleRule())
    assert changes == ["fired", "resolved"]


def test_a_bad_window_restarts_the_ok_streak_and_neutral_windows_reset_nothing() -> None:
    """ok, bad, ok ... the streak restarts at the bad window; a warning inside a streak neither breaks nor extends it."""
    rule = LifecycleRule(keep_firing_for=timedelta(minutes=30))
    changes, _ = replay(["bad", "ok", "ok", "bad", "ok", "neutral", "ok"], rule)
    assert changes == ["fired", "none", "none", "none", "none", "none", "resolved"]


def test_an_older_rejudged_window_never_moves_an_alert_backwards() -> None:
    """A window ending before the episode's last bad window changes nothing (neither ok nor bad)."""
    rule = LifecycleRule(for_=timedelta(minutes=15))
    alert = step(None, obs("bad", T0), rule, WALL, new_id="al_0").record
    alert = step(alert, obs("bad", T0 + EVERY), rule, WALL, new_id="x").record
    assert alert is not None and alert.state == "firing"
    for verdict in ("ok", "bad", "neutral"):
        result = step(alert, obs(verdict, T0), rule, WALL, new_id="x")  # type: ignore[arg-type]
        assert result.record is None and result.change == "none"


def test_no_flapping_across_warning_on_random_sequences() -> None:
    """Seeded: on any sequence of bad and warning windows (no ok), an alert fires at most once and never resolves."""
    rng = np.random.default_rng(7)
    for _ in range(200):
        verdicts: list[Verdict] = ["bad"] + [rng.choice(["bad", "neutral"]) for _ in range(int(rng.integers(1, 30)))]
        changes, alert = replay(verdicts, LifecycleRule(for_=timedelta(minutes=int(rng.integers(0, 4)) * 15)))
        assert changes.count("fired") <= 1
        assert "resolved" not in changes and "cleared" not in changes
        assert alert is not None and alert.id == "al_0"


def test_resolution_needs_keep_firing_for_on_random_sequences() -> None:
    """Seeded: a resolution only ever happens on an ok window that ends keep_firing_for after an ok
    window with no bad window in between."""
    rng = np.random.default_rng(11)
    keep = timedelta(minutes=45)
    for _ in range(200):
        verdicts: list[Verdict] = [rng.choice(["bad", "ok", "neutral"]) for _ in range(40)]
        changes, _ = replay(verdicts, LifecycleRule(keep_firing_for=keep))
        for i, change in enumerate(changes):
            if change != "resolved":
                continue
            assert verdicts[i] == "ok"
            last_bad = max(j for j in range(i) if verdicts[j] == "bad")
            first_ok = min(j for j in range(last_bad, i + 1) if verdicts[j] == "ok")
            assert (i - first_ok) * EVERY >= keep
