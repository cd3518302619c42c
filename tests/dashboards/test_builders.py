"""Fast checks of the page and figure builders and the rollups (no browser)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pyarrow as pa
import pytest

from dashboards import figures
from dashboards.data import drift_ratio, parse_segment
from dashboards.html import Page, e, json_for_script, when
from monitor.errors import InvalidInput
from monitor.rollups import HourRow, Rollups
from monitor.schema import ModelSchema
from monitor.service import Loopwatch
from monitor.validation import records_to_table
from tests.conftest import braking_record
from tests.dashboards.conftest import HOSTILE, NOW, Live

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def test_figure_json_cannot_close_the_script_tag() -> None:
    """Embedded figure JSON escapes <, > and &, so a name cannot end the script or add markup."""
    page = Page("t")
    html = page.render(page.figure({"data": [{"name": "</script><img src=x onerror=alert(1)>"}]}, "f", ""))
    assert "</script><img" not in html and "<img" not in html and "\\u003cimg" in html
    assert json.loads(json_for_script('{"a": "<&>"}').encode().decode("unicode_escape")) == {"a": "<&>"}


def test_escaping_of_text_and_times() -> None:
    """Text and attributes are escaped; times are shown in UTC with a machine-readable datetime."""
    assert e(HOSTILE) == "&lt;img src=x onerror=alert(1)&gt;" and e('"') == "&quot;"
    assert when("2026-11-20T14:05:00Z") == '<time datetime="2026-11-20T14:05:00Z">2026-11-20 14:05 UTC</time>'
    assert when(None, "never") == "never"


def test_empty_state_instead_of_a_chart() -> None:
    """A builder with nothing to show returns None and the page shows the message instead."""
    assert figures.volume_figure([], daily=False) is None
    assert figures.drift_heatmap({"step_hours": 0, "cells": []}, lambda f, w: "") is None
    page = Page("t")
    assert 'class="empty"' in page.figure(None, "fig-x", "No labels yet.")
    assert "plotly.min.js" not in page.render("")  # no figures: no plotly download


def test_segment_values_are_escaped_in_figures() -> None:
    """Segment values reach plotly HTML-escaped (plotly interprets some tags in labels)."""
    rows = [
        {"segment": {"site": HOSTILE}, "metric": "wasserstein", "value": 0.3, "threshold": 0.1, "status": "critical"}
    ]
    fig = figures.segment_figure(rows, lambda s: "/x")
    assert fig is not None and fig["data"][0]["x"] == ["site=&lt;img src=x onerror=alert(1)&gt;"]


def test_drift_ratio_compares_p_values_and_distances() -> None:
    """1.0 at the threshold for both kinds of score; higher means more drift."""
    assert drift_ratio("wasserstein", 0.2, 0.1) == pytest.approx(2.0)
    assert drift_ratio("ks", 0.05, 0.05) == pytest.approx(1.0)
    assert drift_ratio("ks", 0.5, 0.05) < 1 < drift_ratio("ks", 0.001, 0.05)
    assert drift_ratio("psi", None, 0.1) is None


def test_segment_parameter() -> None:
    """``name:value`` (values may contain ':'); anything else is refused."""
    assert parse_segment("firmware:3.2") == {"firmware": "3.2"}
    assert parse_segment("site:a:b") == {"site": "a:b"}
    with pytest.raises(InvalidInput):
        parse_segment("firmware")


def test_volume_and_latency_figures_from_rollup_rows() -> None:
    """Volume stacks one bar trace per version plus the labelled line; latency marks regressions
    and the first hour of each model version."""
    rows = [HourRow(T0 + timedelta(hours=h), v, 10, 3, 10, 5.0, 9.0, 12.0) for h in range(6) for v in ("1", "2")]
    volume = figures.volume_figure(rows, daily=False)
    assert [t["name"] for t in volume["data"]] == ["v1", "v2", "labelled"]
    assert volume["data"][0]["y"] == [10] * 6 and volume["data"][2]["y"] == [6] * 6
    finding = {
        "status": "critical",
        "value": 15.0,
        "window_end": T0 + timedelta(hours=5),
        "metric": "p95",
        "threshold": 10.0,
    }
    versions = [{"version": "2", "first_seen": (T0 + timedelta(hours=3)).isoformat()}]
    latency = figures.latency_figure(rows, [finding], versions, T0, T0 + timedelta(hours=6))
    assert [t["name"] for t in latency["data"]] == ["p50", "p95", "p99", "regression"]
    assert latency["layout"]["annotations"][0]["text"] == "v2"


def test_drift_heatmap_outlines_critical_cells_and_links_them() -> None:
    """Each critical cell gets a 'drifted' marker linking to the feature page for its window."""
    epoch = T0.timestamp()
    grid = {
        "step_hours": 0,
        "cells": [("a", epoch, 2.5, epoch, 0.25, 3), ("b", epoch, 0.3, epoch, 0.03, 1)],
    }
    fig = figures.drift_heatmap(grid, lambda f, w: f"/f/{f}?w={w:%H}")
    heat, drifted = fig["data"]
    assert heat["y"] == ["a", "b"] and heat["z"] == [[2.5], [0.3]]
    assert drifted["y"] == ["a"] and drifted["customdata"] == ["/f/a?w=00"]


def test_rollups_are_incremental(service: Loopwatch, braking_model: ModelSchema) -> None:
    """The first refresh rolls up all history; later ones only the days with new rows; counts
    and label counts match the log."""
    ts = datetime.now(UTC).replace(minute=30, second=0, microsecond=0) - timedelta(days=3)

    def ingest(ids: range, at: datetime) -> None:
        table = records_to_table([braking_record(i, at + timedelta(seconds=i)) for i in ids], braking_model)
        service.store.ingest_predictions("harsh-braking", table)

    ingest(range(0, 50), ts)
    rollups = Rollups(service)
    assert rollups.refresh("harsh-braking") == -1  # first: everything
    assert rollups.refresh("harsh-braking") == 0  # nothing new
    ingest(range(50, 80), ts + timedelta(days=2))
    assert rollups.refresh("harsh-braking") == 1  # one day
    service.store.ingest_labels(
        "harsh-braking", pa.table({"prediction_id": ["p-1", "p-2"], "label": ["brake", "none"]})
    )
    rollups.refresh("harsh-braking")
    totals = rollups.totals("harsh-braking", ts - timedelta(days=1), ts + timedelta(days=4))
    assert totals == {"predictions": 80, "labels": 2, "label_coverage": 2 / 80}
    hours = rollups.hourly("harsh-braking", ts - timedelta(hours=1), ts + timedelta(hours=1))
    assert hours[0].predictions == 50 and hours[0].p50 is not None


def test_pages_need_sign_in_and_escape_hostile_segments(live: Live) -> None:
    """Without a session a page redirects to /login; with a key the pages render, and a hostile
    segment value appears only escaped in the HTML."""
    response = httpx.get(live.url + "/models", headers={"Accept": "text/html"}, timeout=10)
    assert response.status_code == 303 and response.headers["location"].startswith("/login?next=")
    page = live.get(f"/models/hostile/alerts/{live.alerts['hostile']}").text
    assert HOSTILE not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert live.get("/models/fleet-events/features/nope").status_code == 404
    assert live.get("/models/fleet-events", params={"start": "yesterday"}).status_code == 422


def test_overview_states_its_range_in_utc(live: Live) -> None:
    """The range in the URL is the range on the page, stated in UTC."""
    response = live.get("/models/fleet-events", params={"days": 14})
    assert response.status_code == 200
    assert f"{(NOW - timedelta(days=14)):%Y-%m-%d %H:%M} UTC" in response.text


def test_rollups_read_the_injected_clock(service: Loopwatch, braking_model: ModelSchema) -> None:
    """Staleness and refresh stamps come from the injected clock, not the wall clock: a rollup is
    refreshed again by ensure() only when the injected time has moved past max_age."""
    clock = [T0]
    rollups = Rollups(service, now=lambda: clock[0])
    table = records_to_table([braking_record(i, T0 - timedelta(hours=2)) for i in range(5)], braking_model)
    service.store.ingest_predictions("harsh-braking", table)
    rollups.ensure("harsh-braking")
    registered = service.registry.get("harsh-braking")
    stamp = service.db.query_one("SELECT refreshed_at FROM rollup_state WHERE model_id = ?", [registered.id])
    assert stamp is not None and stamp[0] == T0
    clock[0] = T0 + timedelta(minutes=4)
    rollups.ensure("harsh-braking")  # not stale yet by the injected clock: no refresh
    assert service.db.query_one("SELECT refreshed_at FROM rollup_state WHERE model_id = ?", [registered.id]) == stamp
    clock[0] = T0 + timedelta(minutes=6)
    rollups.ensure("harsh-braking")
    after = service.db.query_one("SELECT refreshed_at FROM rollup_state WHERE model_id = ?", [registered.id])
    assert after is not None and after[0] == T0 + timedelta(minutes=6)
