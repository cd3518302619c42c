"""The dashboard pages in a real headless Chromium (Debian's, driven by Python playwright).

Each page loads with the demo data, draws the expected traces, logs no console errors, opens
the state its URL names, and shows hostile names as text. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.dashboards.conftest import HOSTILE, WAIT_MS, Live, Session

pytestmark = pytest.mark.slow


def _names(traces: list[dict[str, Any]]) -> list[str]:
    return [t["name"] for t in traces]


def test_models_page_lists_every_model_with_health(tab: Session) -> None:
    """The models page (reached after sign-in) shows each model with alerts, volume and coverage."""
    tab.open("/models")
    rows = tab.page.locator("table.models tbody tr")
    assert rows.count() == 3
    text = tab.page.inner_text("table.models")
    assert "fleet-events" in text and "sleep-apnea" in text and "firing" in text
    tab.shot("models")


def test_model_overview_draws_volume_latency_quality_and_drift(tab: Session) -> None:
    """The overview has volume by version, latency percentiles with regressions and version
    boundaries, FP/FN with bands, and a drift heatmap whose drifted cells include brightness."""
    tab.open("/models/fleet-events?days=14")
    figs = tab.figures()
    assert set(figs) == {"fig-volume", "fig-latency", "fig-quality", "fig-drift"}
    assert {"v2.2.1", "v2.3.0", "labelled"} <= set(_names(figs["fig-volume"]))
    assert sum(t["n"] for t in figs["fig-volume"]) > 300  # hourly bars over two weeks
    latency = {t["name"]: t for t in figs["fig-latency"]}
    assert {"p50", "p95", "p99"} <= set(latency) and latency["p95"]["n"] > 300
    assert latency["regression"]["n"] >= 1
    annotations = tab.page.evaluate("() => document.getElementById('fig-latency').layout.annotations.map(a => a.text)")
    assert "v2.3.0" in annotations
    quality = _names(figs["fig-quality"])
    assert "FPR" in quality and "FNR" in quality and "label coverage" in quality
    heatmap, drifted = figs["fig-drift"]
    assert heatmap["type"] == "heatmap" and "brightness" in heatmap["y"] and "speed_kmh" in heatmap["y"]
    assert drifted["name"] == "drifted" and "brightness" in drifted["y"]
    assert all(c.startswith("/models/fleet-events/features/") for c in drifted["customdata"])
    tab.shot("overview-fleet-events")


def test_overview_deep_link_range_and_class(tab: Session) -> None:
    """?days= and ?cls= in the URL choose the range and the class whose FP/FN rates are shown."""
    tab.open("/models/fleet-events?days=7&cls=tailgating")
    assert tab.page.inner_text(".ranges a.active >> nth=0") == "7d"
    assert "tailgating" in tab.page.locator(".ranges a.active").all_inner_texts()
    volume = tab.figures()["fig-volume"]
    assert max(t["n"] for t in volume) <= 7 * 24 + 1
    tab.open("/models/sleep-apnea?days=7")
    quality = {t["name"]: t for t in tab.figures()["fig-quality"]}
    assert quality["FNR"]["n"] >= 3
    tab.shot("overview-sleep-apnea")


def test_feature_page_deep_link_opens_window_and_segment(tab: Session, live: Live) -> None:
    """The feature page opens the window and segment its URL names: the score chart marks that
    window, the distribution overlay and the per-segment breakdown are for it."""
    tab.open("/models/fleet-events/features/brightness")
    score = {t["name"]: t for t in tab.figures()["fig-score"]}
    window = score["score (wasserstein)"]["x"][-3]
    stamp = window.replace(" ", "T") + "Z"
    tab.open(f"/models/fleet-events/features/brightness?window={stamp}&segment=firmware:3.2&days=14")
    figs = tab.figures()
    traces = {t["name"]: t for t in figs["fig-score"]}
    assert traces["selected window"]["x"] == [window]
    assert "threshold" in traces
    assert _names(figs["fig-distribution"]) == ["reference", "current"]
    segments = figs["fig-segments"][0]
    assert sorted(segments["x"]) == ["firmware=3.1", "firmware=3.2"]
    assert tab.page.inner_text("#segment-label") == "firmware=3.2"
    assert tab.page.locator("select[name=window]").input_value() == stamp
    tab.shot("feature-brightness")


def test_alert_page_evidence_timeline_and_acknowledge(tab: Session, live: Live) -> None:
    """The alert page shows the evidence for the window that fired and the timeline, and its
    Acknowledge button acknowledges the alert in the API."""
    alert_id = live.alerts["drift"]
    tab.open(f"/models/fleet-events/alerts/{alert_id}")
    figs = tab.figures()
    evidence = {t["name"]: t for t in figs["fig-evidence"]}
    assert evidence["alert window"]["n"] == 1 and "threshold" in evidence
    assert _names(figs["fig-distribution"]) == ["reference", "current"]
    timeline = tab.page.inner_text("table.timeline")
    assert "Fired" in timeline and "notification_queued" not in timeline
    assert "routed samples" in tab.page.inner_text("#routed-link")
    tab.shot("alert-drift-before-ack")
    tab.page.click("#ack")
    tab.page.wait_for_function("document.body.getAttribute('data-acked') === '1'", timeout=WAIT_MS)
    alert = live.get(f"/v1/alerts/{alert_id}").json()
    assert alert["acked_by"] is not None and any(ev["event"] == "acknowledged" for ev in alert["timeline"])
    tab.open(f"/models/fleet-events/alerts/{alert_id}")
    assert tab.page.is_disabled("#ack") and "acknowledged by" in tab.page.inner_text("#ack-state")
    tab.shot("alert-drift")


def test_alert_page_silence_button(tab: Session, live: Live) -> None:
    """Silencing from the alert page creates a silence matching that alert."""
    alert_id = live.alerts["latency"]
    tab.open(f"/models/fleet-events/alerts/{alert_id}")
    assert {"p95", "alert window"} & set(_names(tab.figures()["fig-evidence"]))
    tab.page.select_option("select[name=duration]", "1h")
    tab.page.click("#silence-form button[type=submit]")
    tab.page.wait_for_function("document.getElementById('action-result').textContent === 'Silenced.'", timeout=WAIT_MS)
    silences = live.get("/v1/silences", params={"active": "true"}).json()
    assert any(s["matchers"] == {"alert_id": alert_id} for s in silences)
    tab.shot("alert-latency")


def test_hostile_segment_value_is_shown_as_text(tab: Session, live: Live) -> None:
    """A segment value that is an HTML payload is shown literally on the alert and feature
    pages: no element is created from it and no script runs (no dialog)."""
    alert_id = live.alerts["hostile"]
    tab.open(f"/models/hostile/alerts/{alert_id}")
    assert HOSTILE in tab.page.inner_text("h1")
    assert tab.page.locator('img[src="x"]').count() == 0
    tab.open(f"/models/hostile/features/speed?segment={quote('site:' + HOSTILE)}")
    assert tab.page.inner_text("#segment-label") == f"site={HOSTILE}"
    assert tab.page.locator('img[src="x"]').count() == 0
    hover = tab.page.evaluate(
        """() => { const gd = document.getElementById('fig-segments');
                   const i = gd.data[0].x.findIndex(x => x.includes('img'));
                   Plotly.Fx.hover(gd, [{curveNumber: 0, pointNumber: i}], 'xy');
                   return document.querySelector('#fig-segments .hoverlayer').textContent; }"""
    )
    ticks = tab.page.locator("#fig-segments .xtick text").all_text_contents()
    assert f"site={HOSTILE}" in ticks and HOSTILE in hover  # axis and hover label show the value literally
    assert tab.page.locator('img[src="x"]').count() == 0
    tab.shot("hostile")


def test_labeling_page_queue_throughput_agreement_datasets(tab: Session) -> None:
    """The labeling page charts queue depth, throughput and agreement and lists built datasets."""
    tab.open("/labeling?model=fleet-events")
    figs = tab.figures()
    assert set(figs) == {"fig-depth", "fig-throughput", "fig-agreement"}
    assert {"queued", "annotated"} <= set(figs["fig-depth"][0]["x"])
    assert _names(figs["fig-throughput"]) == ["routed", "annotated"]
    assert "fleet-review" in tab.page.inner_text("body")
    tab.shot("labeling")


def test_report_page_embeds_the_evidently_report(tab: Session, live: Live) -> None:
    """The report page embeds the Evidently report for the window and reference in its URL."""
    path = (
        "/models/fleet-events/report?start=2026-11-22T12:00:00Z&end=2026-11-23T12:00:00Z"
        "&reference_start=2026-11-10T00:00:00Z&reference_end=2026-11-14T00:00:00Z"
    )
    tab.page.goto(live.url + path, wait_until="domcontentloaded")
    src = tab.page.get_attribute("iframe#report", "src") or ""
    assert src.startswith("/v1/models/fleet-events/report?") and "reference_start=2026-11-10T00%3A00%3A00Z" in src
    assert tab.page.input_value("input[name=start]") == "2026-11-22T12:00:00Z"
    frame = tab.page.frame_locator("iframe#report")
    frame.locator("body").get_by_text("fleet-events", exact=False).first.wait_for(timeout=90_000)
    tab.shot("report")


def test_favicon_and_plotly_are_served_locally(live: Live) -> None:
    """plotly.js comes from the app (no CDN) and the favicon exists (no 404 in the console)."""
    assert httpx.get(live.url + "/favicon.ico", timeout=10).status_code == 200
    js = live.get("/assets/plotly.min.js")
    assert js.status_code == 200 and len(js.content) > 1_000_000


def test_labeling_page_review_button_settles_a_conflict(tab: Session, live: Live) -> None:
    """A conflict (annotator vs. ground truth) shows on the labeling page; clicking "Keep" records
    a review that confirms the kept label, and the API then reports no conflict for it."""
    base = "/v1/models/fleet-events/labels"
    for row in (
        {"prediction_id": "conflict-1", "label": "harsh_braking"},
        {"prediction_id": "conflict-1", "label": "none", "authority": "annotator", "annotator": "a@x"},
    ):
        httpx.post(live.url + base, json=[row], headers=live.headers, timeout=30).raise_for_status()
    assert httpx.get(live.url + base + "/conflict-1", headers=live.headers, timeout=30).json()["conflict"] is True
    tab.open("/labeling?model=fleet-events")
    keep = tab.page.locator('#label-conflicts button.review[data-id="conflict-1"]', has_text="Keep")
    keep.click()
    tab.page.wait_for_function(
        "document.getElementById('action-result').textContent === 'Review recorded.'", timeout=WAIT_MS
    )
    label = httpx.get(live.url + base + "/conflict-1", headers=live.headers, timeout=30).json()
    assert (label["label"], label["authority"], label["conflict"]) == ("harsh_braking", "ground_truth", False)
    tab.shot("labeling-review")


def test_gates_page_lists_runs_and_opens_the_report(tab: Session, live: Live) -> None:
    """The gates page lists the demo's two release-gate runs with their verdicts; a run opens its
    report page with the verdict, the failing slice and one drawn plot per criterion."""
    tab.open("/gates")
    rows = tab.page.locator("table.gates tbody tr")
    assert rows.count() == 2
    text = tab.page.locator("table.gates").inner_text()
    assert "ship" in text and "no ship" in text and "device_gen=gen4" in text
    tab.shot("gates")
    tab.page.click(f"a[href='/gates/{live.alerts['gate_no_ship']}']")
    tab.page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length === 3", timeout=WAIT_MS)
    body = tab.page.locator("body").inner_text()
    assert "no ship" in body and "recall non-inferior (margin 0.05) [device_gen=gen4]" in body
    tab.shot("gate-report")
