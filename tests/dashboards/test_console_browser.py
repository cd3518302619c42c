"""The on-call console and the analysis views in a real headless Chromium: bulk acknowledge,
silences created and expired from the page (with the API's errors shown), the audit log for
admin and read-only sessions, the version comparison and the segment drill-down (a click on a
bar opens drift for that value). Each test saves full-page screenshots in test-artifacts/."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.dashboards.conftest import WAIT_MS, Session
from tests.dashboards.console_live import ConsoleLive, console_live

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleLive]:
    with console_live(tmp_path_factory.mktemp("console-browser") / "data") as live:
        yield live


def _sign_in(browser: Any, cl: ConsoleLive, key: str) -> tuple[Any, Session]:
    context = browser.new_context(viewport={"width": 1366, "height": 900}, timezone_id="Europe/Berlin")
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    session = Session(page, cl)
    page.goto(cl.url + "/login", wait_until="load")
    page.fill("input[name=key]", key)
    page.click("button[type=submit]")
    page.wait_for_url("**/models")
    return context, session


@pytest.fixture
def ctab(browser: Any, cl: ConsoleLive) -> Iterator[Session]:
    """A browser tab signed in with the admin key; no console errors or dialogs allowed."""
    context, session = _sign_in(browser, cl, cl.key)
    try:
        yield session
    finally:
        context.close()
    assert not session.errors, session.errors
    assert not session.dialogs, f"a page ran a dialog: {session.dialogs}"


def _api(cl: ConsoleLive, path: str, **params: Any) -> Any:
    answer = httpx.get(cl.url + path, headers=cl.headers, params=params, timeout=30)
    answer.raise_for_status()
    return answer.json()


def _shot(tab: Session, name: str) -> None:
    """A screenshot once every chart has its final size (plotly marks a chart before drawing it)."""
    tab.page.wait_for_function(
        """() => Array.from(document.querySelectorAll('.chart')).every(c => {
               const svg = c.querySelector('.main-svg');
               return svg && c.getBoundingClientRect().height >= svg.getBoundingClientRect().height; })""",
        timeout=WAIT_MS,
    )
    tab.shot(name)


def _result(tab: Session, text: str) -> str:
    """Wait until the page's status line (kept across the reload) contains ``text``."""
    tab.page.wait_for_function(
        "t => (document.getElementById('action-result') || {}).textContent.includes(t)", arg=text, timeout=WAIT_MS
    )
    return tab.page.inner_text("#action-result")


def test_acknowledge_selected_from_the_alerts_page(ctab: Session, cl: ConsoleLive) -> None:
    """Ticking two open alerts and pressing "Acknowledge selected" acknowledges both (the API then
    shows acked_by = the session's key id, and the audit log has it), the page reloads showing
    who acknowledged; an alert acknowledged meanwhile by someone else is reported as "already"."""
    ctab.open("/alerts?model=fleet-events")
    assert ctab.page.is_disabled("#ack-selected")
    boxes = ctab.page.locator("input.pick:not([disabled])")
    assert boxes.count() >= 3
    chosen = [boxes.nth(i).get_attribute("value") for i in range(2)]
    boxes.nth(0).check()
    boxes.nth(1).check()
    assert ctab.page.inner_text("#ack-selected") == "Acknowledge selected (2)"
    ctab.shot("console-alerts-selected")
    ctab.page.click("#ack-selected")
    assert "2 acknowledged" in _result(ctab, "acknowledged")
    for alert_id in chosen:
        assert _api(cl, f"/v1/alerts/{alert_id}")["acked_by"] == cl.key_id
        assert ctab.page.locator(f'input.pick[value="{alert_id}"]').is_disabled()
    audited = _api(cl, "/v1/audit", action="alert.acknowledged", actor=cl.key_id)
    assert {e["target"] for e in audited} >= set(chosen)
    assert cl.key_id in ctab.page.inner_text("table.console-alerts")
    ctab.shot("console-alerts")

    # someone else acknowledges an alert while it is ticked here
    other = ctab.page.locator("input.pick:not([disabled])").first
    late = other.get_attribute("value")
    other.check()
    answer = httpx.post(cl.url + f"/v1/alerts/{late}/ack", headers=cl.headers, timeout=30)
    assert answer.status_code == 200
    ctab.page.click("#ack-selected")
    assert "1 already acknowledged" in _result(ctab, "already")


def test_state_links_and_filter_form_change_the_listed_alerts(ctab: Session, cl: ConsoleLive) -> None:
    """The state links and the severity/model form put the filters in the URL and list what
    /v1/alerts lists for them."""
    ctab.open("/alerts")
    ctab.page.select_option("#alert-filters select[name=severity]", "critical")
    ctab.page.click("#alert-filters button[type=submit]")
    ctab.page.wait_for_url("**severity=critical**")
    shown = ctab.page.locator("a.alert-link").all_inner_texts()
    expected = [a["id"] for a in _api(cl, "/v1/alerts", active="true", severity="critical")]
    assert shown == expected and shown
    ctab.page.click("#state-links >> text=all")
    ctab.page.wait_for_url("**state=all**")
    assert "severity=critical" in ctab.page.url
    assert ctab.page.locator("a.alert-link").count() == len(_api(cl, "/v1/alerts", severity="critical"))


def test_create_and_expire_a_silence_from_the_page(ctab: Session, cl: ConsoleLive) -> None:
    """The form's mistakes are shown on the page: a malformed line (checked in the page) and a
    label the API refuses (its field and reason). A valid silence is created through the API as
    the session's key and listed; Expire ends it (DELETE), and it moves to the expired list."""
    ctab.open("/silences")
    form = "#silence-create"
    ctab.page.fill(f"{form} textarea[name=matchers]", "just words")
    ctab.page.click(f"{form} button[type=submit]")
    ctab.page.wait_for_selector("#silence-errors:not([hidden])")
    assert "matchers line 1" in ctab.page.inner_text("#silence-errors")
    ctab.page.fill(f"{form} textarea[name=matchers]", "colour=blue")
    ctab.page.click(f"{form} button[type=submit]")
    ctab.page.wait_for_function("document.getElementById('silence-errors').textContent.includes('matchers.colour')")
    assert "unknown label" in ctab.page.inner_text("#silence-errors")
    ctab.shot("console-silence-errors")
    ctab.errors[:] = [e for e in ctab.errors if "status of 422" not in e]  # the API's answer, shown on the page

    ctab.page.select_option(f"{form} select[name=model]", "fleet-events")
    ctab.page.select_option(f"{form} select[name=segment_name]", "firmware")
    ctab.page.fill(f"{form} input[name=segment_value]", "3.2")
    ctab.page.fill(f"{form} textarea[name=matchers]", "column=brightness")
    ctab.page.fill(f"{form} input[name=duration]", "6h")
    ctab.page.fill(f"{form} input[name=comment]", "firmware 3.2 exposure fix rolling out")
    ctab.page.click(f"{form} button[type=submit]")
    message = _result(ctab, "created")
    silence_id = message.split()[1]
    created = {s["id"]: s for s in _api(cl, "/v1/silences")}[silence_id]
    assert created["matchers"] == {"model": "fleet-events", "segment.firmware": "3.2", "column": "brightness"}
    assert created["created_by"] == cl.key_id and created["active"]
    assert silence_id in ctab.page.inner_text("table.console-silences")
    ctab.shot("console-silences")

    ctab.page.click(f'button.expire[data-id="{silence_id}"]')
    _result(ctab, "expired")
    assert not {s["id"]: s for s in _api(cl, "/v1/silences")}[silence_id]["active"]
    assert ctab.page.locator(f'button.expire[data-id="{silence_id}"]').count() == 0  # not listed as active
    ctab.page.click("#show-links >> text=expired")
    ctab.page.wait_for_url("**show=expired**")
    assert silence_id in ctab.page.inner_text("table.console-silences")
    actions = {(e["action"], e["target"]) for e in _api(cl, "/v1/audit", actor=cl.key_id)}
    assert {("silence.created", silence_id), ("silence.expired", silence_id)} <= actions


def test_audit_page_for_admin_and_read_only_sessions(ctab: Session, browser: Any, cl: ConsoleLive) -> None:
    """An admin session sees the audit log and filters it with the form; a read-only session
    gets the 403 page saying an admin key is needed."""
    httpx.post(
        cl.url + "/v1/silences",
        headers=cl.headers,
        json={"matchers": {"model": "hostile"}, "duration": "1h"},
        timeout=30,
    )
    ctab.open("/audit")
    assert ctab.page.locator("table.audit tbody tr").count() >= 1
    ctab.page.fill("#audit-filters input[name=action]", "silence.")
    ctab.page.click("#audit-filters button[type=submit]")
    ctab.page.wait_for_url("**action=silence.**")
    actions = ctab.page.locator("table.audit tbody td:nth-child(4)").all_inner_texts()
    assert actions and all(a.startswith("silence.") for a in actions)
    ctab.shot("console-audit")

    context, reader = _sign_in(browser, cl, cl.read_key)
    try:
        answer = reader.page.goto(cl.url + "/audit", wait_until="load")
        assert answer is not None and answer.status == 403
        assert "admin key" in reader.page.inner_text("#error-message")
        reader.shot("console-audit-403")
    finally:
        context.close()


def test_version_view_draws_both_versions(ctab: Session) -> None:
    """The comparison of sleep-apnea 1.4.2 and 1.5.0 draws volume, latency, the rates with their
    intervals and the prediction/score distributions, both versions in each."""
    ctab.open("/models/sleep-apnea/versions")
    figures = ctab.figures()
    assert {"fig-volume", "fig-latency", "fig-rates", "fig-dist-0", "fig-dist-1"} <= set(figures)
    assert {t["name"] for t in figures["fig-rates"]} == {"v1.4.2", "v1.5.0"}
    assert {t["name"] for t in figures["fig-dist-1"]} == {"v1.4.2", "v1.5.0"}
    assert "worse" in ctab.page.inner_text("table.summary")
    _shot(ctab, "console-versions")
    ctab.page.select_option("#version-picker select[name=a]", "1.5.0")
    ctab.page.select_option("#version-picker select[name=b]", "1.4.2")
    ctab.page.click("#version-picker button[type=submit]")
    ctab.page.wait_for_url("**a=1.5.0**")
    assert "A · v1.5.0" in ctab.page.locator("table.summary th").all_text_contents()


def test_segment_drilldown_bar_opens_drift_for_that_value(ctab: Session) -> None:
    """The drill-down draws FN and FP rates per device generation with error bars; clicking a bar
    opens the drift page filtered to that segment value."""
    ctab.open("/models/sleep-apnea/segments?segment=device_gen")
    traces = ctab.figures()["fig-segment-rates"]
    assert [t["name"] for t in traces] == ["FN rate", "FP rate"]
    assert traces[0]["x"][-1] == "gen6"  # too few labels: last
    _shot(ctab, "console-segments")
    bar = ctab.page.locator("#fig-segment-rates .trace.bars .point").first
    box = bar.bounding_box()
    assert box is not None
    ctab.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    ctab.page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    ctab.page.wait_for_url("**/features/**segment=device_gen**", timeout=WAIT_MS)
    first = traces[0]["x"][0]
    assert f"device_gen%3A{first}" in ctab.page.url
