"""Figure defects a new user found (issue 14): the drift heatmap's cell extents, date axes of
daily/hourly bars, the latency evidence's baseline, and empty panels. Figures are built from
findings of real monitor runs on a real store wherever the defect lives in that data."""

from __future__ import annotations

import re
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from dashboards import figures
from dashboards.data import DashboardData, TimeRange
from monitor.monitors import parse_monitor
from monitor.rollups import HourRow, Rollups
from monitor.schema import ModelSchema
from monitor.service import Loopwatch
from monitor.validation import records_to_table
from tests.conftest import Api
from tests.dashboards.conftest import NOW, Live

MODEL = "harsh-braking"
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _hour_now() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def _ingest(
    service: Loopwatch,
    schema: ModelSchema,
    start: datetime,
    hours: float,
    n: int,
    tag: str,
    *,
    version: str = "1.0.0",
    latency: float = 10.0,
) -> None:
    rng = np.random.default_rng(zlib.crc32(tag.encode()))
    records: list[dict[str, Any]] = [
        {
            "prediction_id": f"{tag}-{i}",
            "timestamp": (start + timedelta(seconds=float(s))).isoformat(),
            "model_version": version,
            "features": {"speed_kmh": float(rng.normal(50, 5)), "road_type": "urban", "night": False},
            "prediction": "none",
            "score": 0.2,
            "latency_ms": float(rng.lognormal(np.log(latency), 0.2)),
            "segments": {"region": "eu", "firmware": "3.2"},
        }
        for i, s in enumerate(np.sort(rng.uniform(0, hours * 3600, n)))
    ]
    service.store.ingest_predictions(MODEL, records_to_table(records, schema))


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def draws(trace: dict[str, Any]) -> bool:
    """Whether a trace puts anything on the plot (a value that is not None)."""
    key = "z" if trace.get("type") == "heatmap" else "x" if trace.get("type") == "histogram" else "y"
    values = trace.get(key) or []
    return any(v is not None for row in values for v in (row if isinstance(row, list) else [row]))


def bare_axes(fig: dict[str, Any]) -> list[str]:
    """The y axes of a figure on which nothing is drawn and no note says why."""
    layout = fig["layout"]
    axes = {"y": layout.get("yaxis", {})} | {
        f"y{key[5:]}": value for key, value in layout.items() if re.fullmatch(r"yaxis\d+", key)
    }
    bare = []
    for name, axis in axes.items():
        drawn = [t for t in fig["data"] if t.get("yaxis", "y") == name and draws(t)]
        lo, hi = axis.get("domain", [0, 1])
        noted = [a for a in layout.get("annotations", []) if a.get("name") == "empty-state" and lo <= a["y"] <= hi]
        if not drawn and not noted:
            bare.append(name)
    return bare


# -- 1. the drift heatmap covers exactly its windows ---------------------------------------------


def test_heatmap_columns_cover_exactly_their_windows(service: Loopwatch, braking_model: ModelSchema) -> None:
    """Rule: each heatmap column spans the time its windows cover — the first edge is the first
    window's start, the last edge the last window's end, nothing is drawn after it — with 1, 2
    or many windows, with overlapping windows (every 6h, window 12h), with a gap between runs
    (a blank column), and when windows are grouped into buckets. Before the fix, plotly guessed
    the width from window ends and stretched a lone or last column past now."""
    now = _hour_now()
    _ingest(service, braking_model, now - timedelta(days=3), 72, 1500, "rows")
    reference = {
        "kind": "window",
        "start": (now - timedelta(days=3)).isoformat(),
        "end": (now - timedelta(days=2)).isoformat(),
    }
    for name, window in (("drift", "6h"), ("overlap", "12h")):
        spec = {"name": name, "detector": "data_drift", "every": "6h", "window": window, "reference": reference}
        service.monitors.save(MODEL, parse_monitor(spec))
    data = DashboardData(service, Rollups(service))
    span = TimeRange(now - timedelta(days=2), now + timedelta(hours=1))

    def heat(monitor: str, max_columns: int = 120) -> tuple[dict[str, Any], dict[str, Any]]:
        fig = figures.drift_heatmap(data.drift_grid(MODEL, monitor, span, max_columns), lambda f, w: f"/f/{f}")
        assert fig is not None and not bare_axes(fig)
        return fig["data"][0], fig["layout"]["xaxis"]

    ends: list[datetime] = []
    for count in (1, 2, 5):
        while len(ends) < count:
            ends.insert(0, now - timedelta(hours=6 * len(ends)))
            service.runner.run(MODEL, "drift", window_end=ends[0], mode="scheduled")
        cells, axis = heat("drift")
        edges = [_when(x) for x in cells["x"]]
        assert edges == [ends[0] - timedelta(hours=6), *ends], count  # one cell per window, exactly
        assert len(cells["z"][0]) == count and axis["range"] == [cells["x"][0], cells["x"][-1]]
        assert max(edges) == now  # nothing after the last window's end

    for hours_ago in (12, 6, 0):
        service.runner.run(MODEL, "overlap", window_end=now - timedelta(hours=hours_ago), mode="scheduled")
    cells, _ = heat("overlap")
    edges = [_when(x) for x in cells["x"]]
    assert edges == [now - timedelta(hours=24), now - timedelta(hours=12), now - timedelta(hours=6), now]

    service.runner.run(MODEL, "drift", window_end=now - timedelta(hours=42), mode="scheduled")  # a gap
    cells, axis = heat("drift")
    edges = [_when(x) for x in cells["x"]]
    assert edges[:3] == [now - timedelta(hours=48), now - timedelta(hours=42), now - timedelta(hours=30)]
    assert all(row[1] is None for row in cells["z"]) and cells["hoverongaps"] is False  # the blank gap column
    assert edges[-1] == now and axis["range"][1] == cells["x"][-1]

    cells, axis = heat("drift", max_columns=2)  # 6 windows into buckets of several hours
    edges = [_when(x) for x in cells["x"]]
    assert edges[0] == now - timedelta(hours=48) and edges[-1] == now
    assert edges == sorted(edges) and len(cells["z"][0]) == len(edges) - 1


# -- 3. daily and hourly bars read as dates ------------------------------------------------------


def _assert_whole_periods(fig: dict[str, Any], step: timedelta) -> None:
    step_ms = int(step.total_seconds() * 1000)
    axis = fig["layout"]["xaxis"]
    assert axis["type"] == "date" and axis["dtick"] % step_ms == 0
    assert not re.search(r"%[SLfQs]", axis["tickformat"]), axis["tickformat"]  # no seconds or less
    bars = [t for t in fig["data"] if t["type"] == "bar" and t["x"]]
    assert bars
    starts = sorted({_when(x) for t in bars for x in t["x"]})
    floor = {timedelta(days=1): dict(hour=0, minute=0, second=0, microsecond=0)}.get(
        step, dict(minute=0, second=0, microsecond=0)
    )
    assert all(s == s.replace(**floor) for s in starts)  # buckets start at whole periods
    assert [_when(x) for x in axis["range"]] == [starts[0], starts[-1] + step]
    for t in bars:
        assert 0 < t["width"] <= step_ms and t["offset"] >= 0 and t["offset"] + t["width"] <= step_ms


def test_labeling_throughput_axis_reads_days(live: Live) -> None:
    """Rule: the labeling throughput chart buckets counts to UTC day starts and its axis ticks
    whole days with date labels. The seeded data routes and annotates everything on one day;
    before the fix plotly inferred a millisecond bar width and labelled the axis 23:59:59.9995."""
    summary = DashboardData(live.app.state.service, Rollups(live.app.state.service)).labeling_summary(None, None, NOW)
    fig = figures.throughput_figure(summary["routed_per_day"], summary["annotated_per_day"])
    assert fig is not None and [t["name"] for t in fig["data"]] == ["routed", "annotated"]
    _assert_whole_periods(fig, timedelta(days=1))
    assert fig["layout"]["xaxis"]["tickformat"] == "%b %d"
    late = figures.throughput_figure([(datetime(2026, 11, 23, 17, 5, tzinfo=UTC), 4)], [])
    assert late is not None and late["data"][0]["x"] == ["2026-11-23 00:00:00"]  # re-bucketed to its day


def test_hourly_and_daily_volume_bars_read_as_hours_and_days() -> None:
    """Rule: volume bars are exactly one hour (or one day) wide and the axis ticks whole
    hours (or days), also for a single bucket."""
    one_hour = [HourRow(T0 + timedelta(hours=5), "1", 10, 2, 10, 5.0, 9.0, 12.0)]
    hourly = figures.volume_figure(one_hour, daily=False)
    assert hourly is not None and "%H:%M" in hourly["layout"]["xaxis"]["tickformat"]
    _assert_whole_periods(hourly, timedelta(hours=1))
    many = [HourRow(T0 + timedelta(hours=h), "1", 10, 2, 10, 5.0, 9.0, 12.0) for h in range(0, 24 * 30, 7)]
    daily = figures.volume_figure(many, daily=True)
    assert daily is not None and daily["layout"]["xaxis"]["dtick"] == 3 * 86_400_000  # ≤ 10 labels for 30 days
    _assert_whole_periods(daily, timedelta(days=1))
    latency = figures.latency_figure(one_hour, [], [], T0, T0 + timedelta(days=1))
    assert latency is not None and latency["layout"]["xaxis"]["range"] == ["2026-11-01 04:00:00", "2026-11-01 06:00:00"]


# -- 4. the latency evidence shows the previous version's baseline ------------------------------


def test_latency_evidence_shows_the_previous_versions_baseline(api: Api) -> None:
    """Rule: the evidence of a latency-regression alert draws the baseline the detector judged
    against — the previous model version's p95 (``details.reference_value``) with its interval
    — named after the reference it used, next to the current p95 and the threshold."""
    app: Any = api.client.app
    service: Loopwatch = app.state.service
    schema = service.registry.get(MODEL).schema
    now = _hour_now()
    _ingest(service, schema, now - timedelta(days=2), 24, 1500, "v1", version="1.0.0", latency=10.0)
    _ingest(service, schema, now - timedelta(hours=6), 6, 800, "v2", version="2.0.0", latency=16.0)
    spec = {
        "name": "latency",
        "detector": "latency",
        "every": "6h",
        "window": "6h",
        "reference": {"kind": "previous_version"},
        "severity": "critical",
    }
    service.monitors.save(MODEL, parse_monitor(spec))
    outcome = service.runner.run(MODEL, "latency", window_end=now, mode="scheduled")
    assert outcome is not None and outcome.error is None, outcome.error if outcome else None
    alert = next(
        a for a in app.state.alerts.alerts.list(model=MODEL) if a["detector"] == "latency" and a["metric"] == "p95"
    )
    data = DashboardData(service, Rollups(service))
    finding = data.finding_for_alert(alert)
    assert finding is not None and finding["status"] == "critical"
    series = data.series(MODEL, alert["monitor"], TimeRange(now - timedelta(days=1), now), metrics=["p95"])
    fig = figures.evidence_figure(series, alert)
    assert fig is not None and not bare_axes(fig)
    traces = {t["name"]: t for t in fig["data"]}
    baseline = next(t for name, t in traces.items() if name.startswith("baseline p95"))
    assert "model version 1.0.0" in baseline["name"] and "model version 1.0.0" in baseline["customdata"][-1]
    assert baseline["y"][-1] == finding["details"]["reference_value"]
    v1_p95 = float(np.percentile(np.random.default_rng(zlib.crc32(b"v1")).lognormal(np.log(10.0), 0.2, 1500), 95))
    assert abs(baseline["y"][-1] - v1_p95) / v1_p95 < 0.15  # the previous version's p95, not the current one
    assert traces["p95"]["y"][-1] > traces["threshold"]["y"][-1] > baseline["y"][-1]
    assert "baseline 95% interval" in traces and "baseline" in fig["layout"]["title"]["text"]


# -- 6. no figure shows bare axes ----------------------------------------------------------------


def test_figures_with_nothing_to_draw_say_so() -> None:
    """Rule: a figure with nothing to draw is ``None`` (the page shows its empty-state message)
    and a panel of a multi-panel figure with nothing to draw carries a note saying so — never
    bare axes. Before the fix, performance findings of another class, or coverage without any
    judged window, drew empty axes."""
    window = {"window_start": T0, "window_end": T0 + timedelta(days=1), "details": {}, "threshold": None}
    other_class = [{**window, "metric": "fpr:cat", "value": 0.1, "status": "ok"}]
    roles = {"fpr:dog": "fpr", "fnr:dog": "fnr", "precision:dog": "precision", "recall:dog": "recall"}
    assert figures.performance_figure(other_class, roles, []) is None
    coverage_only = figures.performance_figure([], roles, [(T0, 0.4), (T0 + timedelta(days=1), 0.5)])
    assert coverage_only is not None and not bare_axes(coverage_only)
    notes = [a["text"] for a in coverage_only["layout"]["annotations"] if a.get("name") == "empty-state"]
    assert len(notes) == 2 and all(n.startswith("No windows") for n in notes)
    judged = [{**window, "metric": "fpr:dog", "value": 0.1, "status": "ok"}]
    fpr_only = figures.performance_figure(judged, roles, [(T0, 0.4)])
    assert fpr_only is not None and not bare_axes(fpr_only)
    assert figures.distribution_figure({"categories": ["a", "b"], "reference_share": [], "current_share": []}) is None
    assert figures.distribution_figure({"histogram": {"edges": [0, 1], "reference": [], "current": []}}) is None
    assert figures.throughput_figure([(T0, 0)], [(None, 3)]) is None
    assert figures.queue_depth_figure({}) is None and figures.agreement_figure([]) is None
    assert figures.latency_figure([HourRow(T0, "1", 5, 0, 0, None, None, None)], [], [], T0, T0) is None
