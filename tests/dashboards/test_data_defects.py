"""Dashboard data defects a new user found (issue 14): which drift monitor a feature page
shows, and the Evidently report's sampling and cache. Real stores, real monitor runs, real
alert pipeline (the in-process app), real Evidently."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dashboards.data import DashboardData, TimeRange
from monitor.monitors import parse_monitor
from monitor.rollups import Rollups
from monitor.schema import ModelSchema
from monitor.service import Loopwatch
from monitor.validation import records_to_table
from tests.conftest import REPO, Api

MODEL = "harsh-braking"


def _hour_now() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def _ingest(
    service: Loopwatch, schema: ModelSchema, start: datetime, hours: int, n: int, speed: float, tag: str
) -> None:
    """``n`` predictions spread over ``hours`` from ``start``, speed around ``speed`` km/h."""
    rng = np.random.default_rng(zlib.crc32(tag.encode()))
    records: list[dict[str, Any]] = [
        {
            "prediction_id": f"{tag}-{i}",
            "timestamp": (start + timedelta(seconds=float(s))).isoformat(),
            "model_version": "1.0.0",
            "features": {
                "speed_kmh": float(rng.normal(speed, 5)),
                "road_type": ["urban", "highway"][i % 2],
                "night": bool(i % 3 == 0),
            },
            "prediction": "none",
            "score": 0.2,
            "latency_ms": 10.0,
            "segments": {"region": "eu", "firmware": "3.2"},
        }
        for i, s in enumerate(np.sort(rng.uniform(0, hours * 3600, n)))
    ]
    service.store.ingest_predictions(MODEL, records_to_table(records, schema))


def test_feature_page_picks_the_drift_monitor_that_watches_the_feature_and_fires(api: Api) -> None:
    """Rule: with several drift monitors, a feature page shows the one that watches the feature
    and has an open alert on it, else one with findings for it; monitors that neither watch
    the feature nor hold findings for it are no candidates. The candidates are listed (best
    first) so the page can offer a switch, and a monitor named in the URL wins if it is one.

    Before the fix the page took the first drift monitor by name ("a-drift", which only watches
    road_type) and said "no drift findings" while b-drift's alert on speed_kmh was firing."""
    app: Any = api.client.app
    service: Loopwatch = app.state.service
    schema = service.registry.get(MODEL).schema
    now = _hour_now()
    _ingest(service, schema, now - timedelta(days=2), 24, 800, 50.0, "ref")
    _ingest(service, schema, now - timedelta(hours=18), 6, 300, 50.0, "calm")
    _ingest(service, schema, now - timedelta(hours=6), 6, 300, 80.0, "shift")
    reference = {
        "kind": "window",
        "start": (now - timedelta(days=2)).isoformat(),
        "end": (now - timedelta(days=1)).isoformat(),
    }
    for name, columns in (("a-drift", ["road_type"]), ("b-drift", ["speed_kmh"]), ("c-drift", ["speed_kmh"])):
        spec = {"name": name, "detector": "data_drift", "every": "6h", "window": "6h", "reference": reference}
        service.monitors.save(MODEL, parse_monitor({**spec, "params": {"columns": columns}}))
    runs = [("a-drift", now), ("b-drift", now), ("c-drift", now - timedelta(hours=12))]
    for name, end in runs:
        outcome = service.runner.run(MODEL, name, window_end=end, mode="scheduled")
        assert outcome is not None and outcome.error is None, outcome.error if outcome else None

    firing = [
        a for a in app.state.alerts.alerts.list(model=MODEL) if a["state"] == "firing" and a["column"] == "speed_kmh"
    ]
    assert {a["monitor"] for a in firing} == {"b-drift"}, firing  # the situation the user saw
    data = DashboardData(service, Rollups(service))
    span = TimeRange(now - timedelta(days=3), now)
    first_by_name = data.monitor_for(MODEL, "data_drift")
    assert first_by_name == "a-drift" and data.series(MODEL, first_by_name, span, column="speed_kmh") == []

    choice = data.feature_drift_monitors(MODEL, "speed_kmh", span)
    assert choice.chosen == "b-drift"
    assert [c.name for c in choice.candidates] == ["b-drift", "c-drift"]  # a-drift does not watch it
    best, other = choice.candidates
    assert (best.firing, best.covers, best.configured) == (1, True, True) and best.findings >= 1
    assert (other.firing, other.pending, other.findings) == (0, 0, 1)
    assert data.series(MODEL, choice.chosen, span, column="speed_kmh")[-1]["status"] == "critical"

    assert data.feature_drift_monitors(MODEL, "speed_kmh", span, wanted="c-drift").chosen == "c-drift"
    assert data.feature_drift_monitors(MODEL, "speed_kmh", span, wanted="a-drift").chosen is None
    road = data.feature_drift_monitors(MODEL, "road_type", span)
    assert road.chosen == "a-drift" and [c.name for c in road.candidates] == ["a-drift"]

    # The page itself: b-drift's findings, a switch to c-drift, and no "no drift findings".
    page = api.client.get(
        f"/models/{MODEL}/features/speed_kmh", params={"days": 3}, headers={**api.read, "Accept": "text/html"}
    )
    assert page.status_code == 200, page.text[:500]
    assert "Drift monitor:" in page.text and "monitor=c-drift" in page.text and "b-drift · 1 firing" in page.text
    assert "No drift findings" not in page.text
    switched = api.client.get(
        f"/models/{MODEL}/features/speed_kmh",
        params={"days": 3, "monitor": "c-drift"},
        headers={**api.read, "Accept": "text/html"},
    )
    assert switched.status_code == 200
    assert re.search(r'class="chip active" href="[^"]*monitor=c-drift', switched.text), switched.text[:2000]


def test_series_name_the_reference_each_finding_was_judged_against(api: Api) -> None:
    """Rule: a finding read for a page carries the reference its detector used (the findings'
    ``reference`` column, e.g. ``window …`` or ``model version 1.0.0 (…)``), so a figure can
    name its baseline."""
    app: Any = api.client.app
    service: Loopwatch = app.state.service
    schema = service.registry.get(MODEL).schema
    now = _hour_now()
    _ingest(service, schema, now - timedelta(days=2), 24, 400, 50.0, "ref")
    _ingest(service, schema, now - timedelta(hours=6), 6, 200, 50.0, "cur")
    start, end = now - timedelta(days=2), now - timedelta(days=1)
    reference = {"kind": "window", "start": start.isoformat(), "end": end.isoformat()}
    service.monitors.save(
        MODEL,
        parse_monitor(
            {"name": "drift", "detector": "data_drift", "every": "6h", "window": "6h", "reference": reference}
        ),
    )
    service.runner.run(MODEL, "drift", window_end=now, mode="scheduled")
    data = DashboardData(service, Rollups(service))
    series = data.series(MODEL, "drift", TimeRange(now - timedelta(days=1), now), column="speed_kmh")
    assert series and series[-1]["reference"] == f"window {start.isoformat()} – {end.isoformat()}"


# -- the Evidently report ------------------------------------------------------------------------


@pytest.mark.slow  # Evidently takes seconds to import and run
def test_evidently_report_is_sampled_in_the_store_and_cached_by_data_state(
    service: Loopwatch, braking_model: ModelSchema, tmp_path: Path
) -> None:
    """Rule: a store-window report compares at most ``max_rows`` sampled rows per side and says
    so (with the window's real row counts); the same request again is served from the cache
    (memory, and disk after a restart) with the identical document, and so is a request whose
    windows select the same rows (its banner names its own windows); a new row in a window
    changes the data state, so the report is rendered anew and counts it."""
    from dashboards.evidently_report import ReportCache, window_report

    now = _hour_now()
    _ingest(service, braking_model, now - timedelta(hours=6), 3, 600, 50.0, "ref")
    _ingest(service, braking_model, now - timedelta(hours=2), 2, 500, 70.0, "cur")
    current = (now - timedelta(hours=2), now)
    reference = (now - timedelta(hours=6), now - timedelta(hours=3))
    cache = ReportCache(tmp_path / "reports")

    first = window_report(service, MODEL, current, reference, max_rows=200, cache=cache)
    assert (cache.hits, cache.misses) == (0, 1)
    assert "Sampled to 200 rows per side at most" in first and "of 600" in first and "of 500" in first
    assert "seeded" in first and "(500 rows)" in first and "(600 rows)" in first
    again = window_report(service, MODEL, current, reference, max_rows=200, cache=cache)
    assert again == first and (cache.hits, cache.misses) == (1, 1)
    assert len(list((tmp_path / "reports").glob("*.html"))) == 1

    restarted = ReportCache(tmp_path / "reports")  # a new process: memory is empty, disk is not
    assert window_report(service, MODEL, current, reference, max_rows=200, cache=restarted) == first
    assert (restarted.hits, restarted.misses) == (1, 0)

    later = (current[0], now + timedelta(minutes=1))  # "the last 2 hours" asked a minute later: same rows
    moved = window_report(service, MODEL, later, reference, max_rows=200, cache=cache)
    assert (cache.hits, cache.misses) == (2, 1) and later[1].isoformat() in moved and moved != first

    _ingest(service, braking_model, now - timedelta(minutes=30), 0, 1, 70.0, "late")
    changed = window_report(service, MODEL, current, reference, max_rows=200, cache=cache)
    assert changed != first and "(501 rows)" in changed and (cache.hits, cache.misses) == (2, 2)


def test_report_cache_is_bounded_in_memory_and_on_disk(tmp_path: Path) -> None:
    """Rule: the report cache keeps at most its entry and byte bounds, in memory and on disk,
    dropping the least recently used first; a damaged disk entry is a miss, not an error."""
    from dashboards.evidently_report import ReportCache

    cache = ReportCache(tmp_path, max_entries=2, max_bytes=10_000, max_files=3)
    for i in range(5):
        cache.put(f"k{i}", f"report {i} " + "x" * 1000)
        time.sleep(0.02)  # distinct modification times: disk eviction goes by them
    assert sorted(p.stem for p in tmp_path.glob("*.html")) == ["k2", "k3", "k4"]
    assert cache.get("k0") is None and cache.get("k1") is None  # gone from memory and disk
    assert (cache.get("k2") or "").startswith("report 2")  # from disk
    fresh = ReportCache(tmp_path, max_entries=2, max_bytes=10_000, max_files=3)
    assert [k for k in ("k0", "k1", "k2", "k3", "k4") if fresh.get(k) is not None] == ["k2", "k3", "k4"]
    (tmp_path / "k4.html").write_bytes(b"\xff\xfe broken")
    assert ReportCache(tmp_path).get("k4") is None
    small = ReportCache(tmp_path / "small", max_bytes=100, max_disk_bytes=100)
    small.put("huge", "y" * 1000)
    assert small.get("huge") is None  # larger than the bounds: not kept anywhere


@pytest.mark.slow  # imports Evidently in a fresh interpreter
def test_warm_up_imports_evidently_once_in_the_background() -> None:
    """Rule: ``warm_up()`` loads Evidently in one daemon thread per process (repeated calls
    return the same thread), so the first report does not pay the import."""
    code = (
        "import sys\n"
        "from dashboards.evidently_report import warm_up\n"
        "assert 'evidently' not in sys.modules\n"
        "thread = warm_up()\n"
        "assert thread.daemon and warm_up() is thread\n"
        "thread.join(timeout=120)\n"
        "assert not thread.is_alive() and 'evidently.presets' in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
