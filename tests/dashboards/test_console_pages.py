"""The on-call console pages (alerts, silences, audit log) and the two analysis views (model
versions side by side, performance per segment), rendered server-side through the real app with
real stores, signed in with a session cookie like a browser. Numbers on the analysis views are
checked against the API and an independent computation over the store's rows."""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import numpy as np
import pytest
from scipy.stats import norm

from dashboards.console import AUDIT_PAGE
from tests.dashboards.conftest import HOSTILE, NOW
from tests.dashboards.console_live import HTML, ConsoleLive, console_live

START = NOW - timedelta(days=14)  # the pages' default range: the last 14 days
RANGE = {"start": START.isoformat(), "end": NOW.isoformat()}
CHECKBOX = re.compile(r'class="pick" name="alert_id" value="([^"]+)"')


@pytest.fixture(scope="module")
def cl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleLive]:
    with console_live(tmp_path_factory.mktemp("console") / "data") as live:
        yield live


@pytest.fixture(scope="module")
def admin(cl: ConsoleLive) -> Iterator[httpx.Client]:
    client = cl.session()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="module")
def reader(cl: ConsoleLive) -> Iterator[httpx.Client]:
    client = cl.session(cl.read_key)
    try:
        yield client
    finally:
        client.close()


def _page(client: httpx.Client, path: str, status: int = 200) -> str:
    answer = client.get(path, headers=HTML)
    assert answer.status_code == status, (path, answer.status_code, answer.text[:800])
    assert answer.headers["content-type"].startswith("text/html")
    return answer.text


def _csv(client: httpx.Client, path: str) -> list[dict[str, str]]:
    sep = "&" if "?" in path else "?"
    answer = client.get(f"{path}{sep}format=csv", headers=HTML)
    assert answer.status_code == 200, answer.text[:500]
    assert answer.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(answer.text)))


def _api(cl: ConsoleLive, path: str, **params: Any) -> Any:
    answer = httpx.get(cl.url + path, headers=cl.headers, params=params, timeout=30)
    answer.raise_for_status()
    return answer.json()


def _wilson(hits: int, n: int) -> tuple[float, float]:
    """The Wilson score interval, written out here (not the detectors' function) to check it."""
    z = norm.ppf(0.975)
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


# -- alerts ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "api_params"),
    [
        ("", {"active": "true"}),
        ("?state=firing", {"state": "firing"}),
        ("?state=all&severity=critical", {"severity": "critical"}),
        ("?model=sleep-apnea", {"active": "true", "model": "sleep-apnea"}),
        ("?state=resolved", {"state": "resolved"}),
        ("?state=all&model=hostile&severity=", {"model": "hostile"}),
    ],
)
def test_alert_filters_show_what_the_api_lists(
    cl: ConsoleLive, admin: httpx.Client, query: str, api_params: dict[str, str]
) -> None:
    """/alerts shows exactly the alerts /v1/alerts lists for the same filters (state defaults to
    the open ones; an empty select means any), in the same order, and its CSV has those rows."""
    expected = [a["id"] for a in _api(cl, "/v1/alerts", limit=1000, **api_params)]
    html = _page(admin, "/alerts" + query)
    rendered = re.findall(r'href="/models/[^"/]+/alerts/([^"]+)" class="alert-link"', html)
    assert rendered == expected
    rows = _csv(admin, "/alerts" + query + ("&" if query else "?") + "table=alerts")
    assert [r["alert_id"] for r in rows] == expected
    if not query:
        assert expected and all(r["state"] in ("firing", "pending") for r in rows)


def test_alert_rows_link_to_their_alert_pages_and_resolved_ones_cannot_be_selected(
    cl: ConsoleLive, admin: httpx.Client
) -> None:
    """Each row links to its alert's page (which exists), and every open, unacknowledged alert has
    an enabled checkbox while resolved ones are disabled."""
    html = _page(admin, "/alerts?state=all")
    links = re.findall(r'href="(/models/[^"]+/alerts/[^"]+)" class="alert-link"', html)
    assert links
    assert admin.get(links[0], headers=HTML).status_code == 200
    for alert in _api(cl, "/v1/alerts", limit=1000):
        box = re.search(rf'<input type="checkbox" class="pick" name="alert_id" value="{alert["id"]}"[^>]*>', html)
        assert box is not None, alert["id"]
        assert ("disabled" in box.group(0)) == (alert["state"] == "resolved" or bool(alert["acked_by"]))


def test_bad_alert_filters_answer_a_422_page_naming_the_field(admin: httpx.Client) -> None:
    """An unknown state or severity in the URL is a 422 HTML page that names the field."""
    html = _page(admin, "/alerts?state=burning&severity=loud", status=422)
    assert "<code>state</code>" in html and "<code>severity</code>" in html


def test_bulk_ack_with_a_session_acknowledges_and_audits_with_the_key_id(cl: ConsoleLive, admin: httpx.Client) -> None:
    """The page's bulk action (POST /v1/alerts/ack with the session cookie, same origin) really
    acknowledges: the API shows acked_by = the session's key id, the audit log records it with
    that actor, and the page then shows who acknowledged and disables those checkboxes."""
    open_ids = [a["id"] for a in _api(cl, "/v1/alerts", active="true", model="sleep-apnea") if not a["acked_by"]]
    chosen = open_ids[:2]
    assert len(chosen) == 2
    answer = admin.post("/v1/alerts/ack", json={"alert_ids": [*chosen, "al_nope"]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["acknowledged"] == chosen and "al_nope" in answer.json()["refused"]
    for alert_id in chosen:
        assert _api(cl, f"/v1/alerts/{alert_id}")["acked_by"] == cl.key_id
    audited = _api(cl, "/v1/audit", action="alert.acknowledged", actor=cl.key_id)
    assert {e["target"] for e in audited} >= set(chosen)
    html = _page(admin, "/alerts?model=sleep-apnea")
    assert cl.key_id in html
    for alert_id in chosen:
        box = re.search(rf'value="{alert_id}"[^>]*>', html)
        assert box is not None and "disabled" in box.group(0)


def test_cookie_writes_from_another_origin_are_refused(cl: ConsoleLive) -> None:
    """The console's writes ride on the session cookie, so one coming from another site is refused."""
    client = cl.session()
    try:
        answer = client.post("/v1/alerts/ack", json={"alert_ids": ["al_x"]}, headers={"Origin": "http://evil.example"})
    finally:
        client.close()
    assert answer.status_code == 403


# -- silences ----------------------------------------------------------------------------------


def test_silences_page_lists_active_and_expired_silences_and_exports_them(cl: ConsoleLive, admin: httpx.Client) -> None:
    """/silences shows active silences by default and expired ones with ?show=expired; the
    Expire button targets DELETE /v1/silences/ID; the CSV has the listed rows and their matchers."""
    keep = admin.post(
        "/v1/silences",
        json={"matchers": {"model": "fleet-events", "segment.firmware": "3.2"}, "duration": "4h", "comment": "rollout"},
    ).json()
    gone = admin.post("/v1/silences", json={"matchers": {"monitor": "latency"}, "duration": "1h"}).json()
    assert admin.delete(f"/v1/silences/{gone['id']}").status_code == 200
    active = _page(admin, "/silences")
    assert keep["id"] in active and gone["id"] not in active
    assert f'data-delete="/v1/silences/{keep["id"]}"' in active
    assert '<code class="matcher">model=fleet-events</code> <code class="matcher">segment.firmware=3.2</code>' in active
    expired = _page(admin, "/silences?show=expired")
    assert gone["id"] in expired and keep["id"] not in expired
    assert 'class="expire"' not in expired.split('data-table="silences"')[1]
    rows = _csv(admin, "/silences?show=all&table=silences")
    by_id = {r["silence_id"]: r for r in rows}
    assert by_id[keep["id"]]["state"] == "active" and by_id[gone["id"]]["state"] == "expired"
    assert by_id[keep["id"]]["matchers"] == "model=fleet-events, segment.firmware=3.2"
    assert by_id[keep["id"]]["created_by"] == cl.key_id
    api_ids = {s["id"] for s in _api(cl, "/v1/silences")}
    assert set(by_id) == api_ids


def test_silence_form_offers_the_models_monitors_and_segments(admin: httpx.Client) -> None:
    """The create form lists the registered models, the monitors' names and the segment columns."""
    html = _page(admin, "/silences")
    form = html.split('id="silence-create"')[1]
    for name in ("fleet-events", "sleep-apnea", "feature-drift", "fn-rate", "firmware", "device_gen"):
        assert f">{name}<" in form or f'value="{name}"' in form, name


# -- audit log ---------------------------------------------------------------------------------


def test_audit_page_is_for_admin_sessions_only(reader: httpx.Client) -> None:
    """A read-only session gets the HTML 403 page saying the audit log needs an admin key."""
    html = _page(reader, "/audit", status=403)
    assert "administrators" in html and "--scope admin" in html and "read" in html


def test_audit_page_filters_and_pages_back_newest_first(cl: ConsoleLive, admin: httpx.Client) -> None:
    """Entries are newest first, 100 a page; "Older" pages back with before_id; filters on the
    action family, actor and target prefix give what /v1/audit gives; details are compact JSON."""
    audit = cl.app.state.service.audit
    for i in range(AUDIT_PAGE + 7):
        audit.record("console-test", "console.probe", f"probe/{i}", {"i": i, "note": "a b"})
    html = _page(admin, "/audit?action=console.&target=probe/")
    ids = [int(x) for x in re.findall(r'<td class="muted">(\d+)</td>', html)]
    expected = [e["id"] for e in _api(cl, "/v1/audit", action="console.", target="probe/", limit=AUDIT_PAGE)]
    assert ids == expected and ids == sorted(ids, reverse=True) and len(ids) == AUDIT_PAGE
    assert '{"i":106,"note":"a b"}' in html.replace("&#34;", '"')
    older = re.search(r'href="([^"]+)" id="audit-older"', html)
    assert older is not None and f"before_id={ids[-1]}" in older.group(1)
    rest = _page(admin, older.group(1).replace("&amp;", "&"))
    rest_ids = [int(x) for x in re.findall(r'<td class="muted">(\d+)</td>', rest)]
    assert len(rest_ids) == 7 and max(rest_ids) < min(ids)
    assert 'id="audit-older"' not in rest and 'id="audit-newest"' in rest
    by_actor = _csv(admin, f"/audit?actor={cl.key_id}&table=audit")
    assert by_actor and {r["actor"] for r in by_actor} == {cl.key_id}
    assert [int(r["id"]) for r in by_actor] == [e["id"] for e in _api(cl, "/v1/audit", actor=cl.key_id)][
        : len(by_actor)
    ]


def test_audit_time_filters_use_dates_and_explain_mistakes(cl: ConsoleLive, admin: httpx.Client) -> None:
    """from/to take dates (to includes its day); a bad date or from after to is a 422 page naming the field."""
    day = NOW.date().isoformat()
    same_day = _csv(admin, f"/audit?from={day}&to={day}&table=audit")
    assert same_day and all(r["at"].startswith(day) for r in same_day)
    assert _csv(admin, f"/audit?to={(NOW - timedelta(days=30)).date().isoformat()}&table=audit") == []
    bad = _page(admin, "/audit?from=yesterday", status=422)
    assert "<code>from</code>" in bad
    backwards = _page(admin, f"/audit?from={day}&to=2026-01-01", status=422)
    assert "<code>to</code>" in backwards


# -- model versions side by side ---------------------------------------------------------------


def _summary(admin: httpx.Client, path: str) -> dict[str, dict[str, str]]:
    return {r["measure"]: r for r in _csv(admin, path + ("&" if "?" in path else "?") + "table=summary")}


def test_version_view_defaults_to_the_two_latest_versions_and_matches_the_store(
    cl: ConsoleLive, admin: httpx.Client
) -> None:
    """Without a or b, /models/sleep-apnea/versions compares 1.4.2 with 1.5.0 (the two most
    recent versions with traffic); predictions and labels equal /v1/models/…/stats per version;
    latency p50/p95 and the realized FN/FP rates with their Wilson intervals equal a computation
    over the store's rows; the FN-rate rise of 1.5.0 is flagged worse."""
    html = _page(admin, "/models/sleep-apnea/versions")
    assert 'option value="1.4.2" selected' in html and 'option value="1.5.0" selected' in html
    summary = _summary(admin, "/models/sleep-apnea/versions")
    stats = {v["model_version"]: v for v in _api(cl, "/v1/models/sleep-apnea/stats", **RANGE)["by_version"]}
    store = cl.app.state.service.store
    for side, version in (("a", "1.4.2"), ("b", "1.5.0")):
        assert summary["Predictions"][f"version_{side}"] == version
        assert int(summary["Predictions"][f"value_{side}"]) == stats[version]["predictions"]
        assert int(summary["Labelled"][f"value_{side}"]) == stats[version]["labels"]
        rows = store.scan("sleep-apnea", START, NOW, model_version=version).to_pylist()
        latency = np.array([r["latency_ms"] for r in rows])
        assert float(summary["Latency p50"][f"value_{side}"]) == pytest.approx(np.percentile(latency, 50))
        assert float(summary["Latency p95"][f"value_{side}"]) == pytest.approx(np.percentile(latency, 95))
        labelled = [r for r in rows if r["label"] is not None]
        positives = [r for r in labelled if r["label"] == "apnea"]
        negatives = [r for r in labelled if r["label"] == "normal"]
        missed = sum(1 for r in positives if r["prediction"] != "apnea")
        false_alarms = sum(1 for r in negatives if r["prediction"] == "apnea")
        fnr, fpr = summary["FN rate (apnea)"], summary["FP rate (apnea)"]
        assert int(fnr[f"n_{side}"]) == len(positives) and int(fpr[f"n_{side}"]) == len(negatives)
        assert float(fnr[f"value_{side}"]) == pytest.approx(missed / len(positives))
        assert float(fpr[f"value_{side}"]) == pytest.approx(false_alarms / len(negatives))
        lo, hi = _wilson(missed, len(positives))
        assert float(fnr[f"low_{side}"]) == pytest.approx(lo) and float(fnr[f"high_{side}"]) == pytest.approx(hi)
    fnr = summary["FN rate (apnea)"]
    assert float(fnr["b_minus_a"]) == pytest.approx(float(fnr["value_b"]) - float(fnr["value_a"]))
    assert fnr["b_versus_a"] == "worse" and float(fnr["b_minus_a_low"]) > 0


def test_version_view_drift_table_and_charts(admin: httpx.Client) -> None:
    """The drift table judges every feature plus prediction and score (B against A), and the page
    draws volume, latency, the rates and the prediction/score distributions."""
    drift = _csv(admin, "/models/sleep-apnea/versions?table=drift")
    columns = {r["column"] for r in drift}
    assert {"prediction", "score", "spo2_min", "sleep_stage", "on_charger"} <= columns
    assert all(r["status"] in ("ok", "warning", "critical", "insufficient_data") for r in drift)
    html = _page(admin, "/models/sleep-apnea/versions")
    for fig in ("fig-volume", "fig-latency", "fig-rates", "fig-dist-0", "fig-dist-1"):
        assert f'data-figure="{fig}"' in html, fig


def test_version_view_explicit_pair_multiclass_and_problems(cl: ConsoleLive, admin: httpx.Client) -> None:
    """a/b pick the versions (here reversed); a multiclass model shows one class's rates (cls);
    the same version twice, or a model with one version, says so instead of comparing."""
    reversed_ = _summary(admin, "/models/sleep-apnea/versions?a=1.5.0&b=1.4.2")
    assert reversed_["Predictions"]["version_a"] == "1.5.0"
    fleet = _summary(admin, "/models/fleet-events/versions?cls=tailgating")
    assert "FN rate (tailgating)" in fleet
    same = _page(admin, "/models/sleep-apnea/versions?a=1.4.2&b=1.4.2")
    assert 'id="versions-problem"' in same and "two different versions" in same
    single = _page(admin, "/models/hostile/versions")
    assert "Fewer than two model versions" in single and "only v1.0" in single


# -- performance per segment -------------------------------------------------------------------


def test_segment_drilldown_matches_the_store_and_sorts_worst_first(cl: ConsoleLive, admin: httpx.Client) -> None:
    """Per device_gen value: rows, labelled rows, coverage, FN/FP rate, precision and recall with
    Wilson intervals equal a computation over the store's rows; values with at least 30 labels
    come first, by FN rate, highest first; gen6 (few labels yet) is last and marked."""
    rows = _csv(admin, "/models/sleep-apnea/segments?segment=device_gen&table=segments")
    assert rows[0]["value"] == "all traffic"
    scanned = cl.app.state.service.store.scan("sleep-apnea", START, NOW).to_pylist()
    for row in rows:
        mine = scanned if row["value"] == "all traffic" else [r for r in scanned if r["device_gen"] == row["value"]]
        labelled = [r for r in mine if r["label"] is not None]
        positives = [r for r in labelled if r["label"] == "apnea"]
        called = [r for r in labelled if r["prediction"] == "apnea"]
        tp = sum(1 for r in positives if r["prediction"] == "apnea")
        assert int(row["rows"]) == len(mine) and int(row["labelled"]) == len(labelled)
        assert float(row["coverage"]) == pytest.approx(len(labelled) / len(mine))
        assert row["enough_labels"] == ("true" if len(labelled) >= 30 else "false")
        assert int(row["fnr_n"]) == len(positives)
        assert float(row["fnr"]) == pytest.approx(1 - tp / len(positives))
        assert float(row["precision"]) == pytest.approx(tp / len(called))
        lo, hi = _wilson(len(positives) - tp, len(positives))
        assert float(row["fnr_low"]) == pytest.approx(lo) and float(row["fnr_high"]) == pytest.approx(hi)
    values = rows[1:]
    judged = [r for r in values if r["enough_labels"] == "true"]
    assert [float(r["fnr"]) for r in judged] == sorted((float(r["fnr"]) for r in judged), reverse=True)
    assert values[-1]["value"] == "gen6" and values[-1]["enough_labels"] == "false"
    html = _page(admin, "/models/sleep-apnea/segments?segment=device_gen")
    assert "too few labels" in html and 'data-figure="fig-segment-rates"' in html


def test_segment_drilldown_sorts_by_the_chosen_metric_and_links_each_value(admin: httpx.Client) -> None:
    """sort=precision puts the lowest precision first; each value links to drift in that segment
    and to its rows; an unknown segment column is a 422 page naming the known ones."""
    rows = _csv(admin, "/models/sleep-apnea/segments?segment=region&sort=precision&table=segments")[1:]
    judged = [float(r["precision"]) for r in rows if r["enough_labels"] == "true"]
    assert judged == sorted(judged)
    html = _page(admin, "/models/sleep-apnea/segments?segment=region")
    assert "/models/sleep-apnea/features/spo2_min?segment=region%3Aeu" in html
    assert "/v1/models/sleep-apnea/predictions?segment=region%3Aeu" in html
    missing = _page(admin, "/models/sleep-apnea/segments?segment=firmware", status=422)
    assert "device_gen, region" in missing


# -- escaping, navigation, links ---------------------------------------------------------------


def test_hostile_names_reach_the_new_pages_only_as_text(cl: ConsoleLive, admin: httpx.Client) -> None:
    """A segment value, a silence matcher and comment that are HTML payloads appear escaped on the
    alerts, silences and segment pages (and in the chart JSON), never as markup."""
    created = admin.post(
        "/v1/silences",
        json={"matchers": {"model": "hostile", "segment.site": HOSTILE}, "duration": "1h", "comment": HOSTILE},
    )
    assert created.status_code == 201, created.text
    for path in ("/alerts?model=hostile&state=all", "/silences", "/models/hostile/segments?segment=site"):
        html = _page(admin, path)
        assert HOSTILE not in html, path
        assert "&lt;img src=x onerror=alert(1)&gt;" in html, path
    csv_rows = _csv(admin, "/models/hostile/segments?segment=site&table=segments")
    assert HOSTILE in {r["value"] for r in csv_rows}  # the CSV carries the plain value


def test_nav_and_overview_link_the_new_pages(admin: httpx.Client) -> None:
    """Every page's nav links Alerts, Silences and Audit; the overview links the version view and
    the segment drill-down with its range."""
    html = _page(admin, "/models/sleep-apnea?days=7")
    for path in ("/alerts", "/silences", "/audit"):
        assert f'<a href="{path}">' in html
    assert 'href="/models/sleep-apnea/versions?days=7" id="versions-link"' in html
    assert 'href="/models/sleep-apnea/segments?days=7" id="segments-link"' in html
    custom = _page(admin, "/models/sleep-apnea?from=2026-11-16&to=2026-11-19")
    assert 'href="/models/sleep-apnea/versions?from=2026-11-16&amp;to=2026-11-19"' in custom


def test_pages_without_a_session_send_the_browser_to_sign_in(cl: ConsoleLive) -> None:
    """Like the other pages, the new ones need a session: a browser without one goes to /login."""
    for path in ("/alerts", "/silences", "/audit", "/models/sleep-apnea/versions", "/models/sleep-apnea/segments"):
        answer = httpx.get(cl.url + path, headers=HTML, follow_redirects=False, timeout=30)
        assert answer.status_code in (302, 303, 307) and "/login" in answer.headers["location"], path


def test_regression_model_shows_error_means_per_version_and_segment(cl: ConsoleLive, admin: httpx.Client) -> None:
    """A regression model has no FN/FP rates: the version view and the drill-down show MAE and
    RMSE with their intervals instead (MAE equal to the mean absolute error of the labelled rows),
    and a version named in the URL without traffic in the range says so."""
    schema = {
        "name": "eta",
        "task": "regression",
        "features": {"distance_km": "numeric"},
        "segments": ["city"],
    }
    httpx.post(cl.url + "/v1/models", json=schema, headers=cl.headers, timeout=30).raise_for_status()
    rng = np.random.default_rng(3)
    records: list[dict[str, Any]] = []
    labels: list[dict[str, Any]] = []
    errors: dict[str, list[float]] = {"1": [], "2": []}
    for i in range(400):
        version = "1" if i < 200 else "2"
        at = START + timedelta(days=2 + i // 40, minutes=i)
        truth = float(rng.uniform(5, 50))
        guess = truth + float(rng.normal(0, 2 if version == "1" else 5))
        records.append(
            {
                "prediction_id": f"eta-{i}",
                "timestamp": at.isoformat(),
                "model_version": version,
                "features": {"distance_km": truth / 2},
                "prediction": guess,
                "latency_ms": 5.0,
                "segments": {"city": "berlin" if i % 2 else "paris"},
            }
        )
        if i % 3:
            labels.append({"prediction_id": f"eta-{i}", "label": truth})
            errors[version].append(abs(guess - truth))
    for path, body in (("predictions", records), ("labels", labels)):
        answer = httpx.post(f"{cl.url}/v1/models/eta/{path}", json=body, headers=cl.headers, timeout=60)
        assert answer.status_code in (200, 201), answer.text[:500]
    summary = _summary(admin, "/models/eta/versions")
    assert float(summary["MAE"]["value_a"]) == pytest.approx(np.mean(errors["1"]))
    assert float(summary["MAE"]["value_b"]) == pytest.approx(np.mean(errors["2"]))
    assert "RMSE" in summary and not any(k.startswith("FN rate") for k in summary)
    rows = _csv(admin, "/models/eta/segments?table=segments")
    assert rows[0]["value"] == "all traffic" and {r["value"] for r in rows[1:]} == {"berlin", "paris"}
    assert float(rows[0]["mae"]) == pytest.approx(np.mean(errors["1"] + errors["2"]))
    assert float(rows[1]["mae"]) >= float(rows[2]["mae"])  # worst (largest error) first
    html = _page(admin, "/models/eta/versions?a=1&b=7")
    assert "v7 has no predictions in this range" in html
