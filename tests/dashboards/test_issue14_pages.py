"""Issue 14 without a browser: templates escape, CSV downloads, HTML error pages, the from/to
range, timeline wording, the evidence start and the missing-performance-monitor empty state."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from api.app import create_app
from dashboards.assets import APP_STATIC_DIR, SWAGGER_DIR, TEMPLATES_DIR
from dashboards.pages import RangeQuery, describe_event, evidence_start, resolve_range
from dashboards.tables import CsvColumn, Table, csv_filename
from monitor.settings import Settings
from tests.conftest import BRAKING, Api
from tests.dashboards.conftest import NOW, Live

SCRIPT = "<script>alert(1)</script>"
HTML = {"Accept": "text/html,application/xhtml+xml"}


def _html_get(live: Live, path: str) -> httpx.Response:
    return httpx.get(live.url + path, headers={**live.headers, **HTML}, timeout=30)


def _csv(response: httpx.Response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.text)))


# -- templates and static files ------------------------------------------------------------------


def test_no_page_is_built_from_python_strings() -> None:
    """Pages are templates and static files: no CSS/JS/HTML document lives in a Python string."""
    root = Path(__file__).resolve().parents[2]
    for name in ("pages.py", "html.py", "assets.py"):
        source = (root / "dashboards" / name).read_text()
        assert "<!doctype" not in source.lower() and "<table" not in source and "<div" not in source, name
        assert "{margin" not in source and "addEventListener" not in source, name
    assert {"base.html", "_macros.html", "models.html", "overview.html", "feature.html", "alert.html"} <= {
        p.name for p in TEMPLATES_DIR.iterdir()
    }
    assert {"app.css", "app.js", "favicon.svg"} <= {p.name for p in APP_STATIC_DIR.iterdir()}
    assert "5." in (SWAGGER_DIR / "VERSION").read_text().split()[1]


def test_script_in_names_descriptions_classes_and_urls_is_escaped(api: Api) -> None:
    """Autoescaping: a ``<script>`` in a model description, a class name or a name in the URL
    reaches the page only as text (``&lt;script&gt;``), on pages and on error pages."""
    model = {
        **BRAKING,
        "name": "multi",
        "task": "multiclass",
        "classes": ["a", SCRIPT],
        "positive_class": None,
        "description": SCRIPT,
    }
    api.client.post("/v1/models", json=model, headers=api.admin).raise_for_status()
    for path in (
        "/models",
        "/models/multi",
        f"/models/multi?cls={SCRIPT}",
        f"/models/multi/features/speed_kmh?segment=region:{SCRIPT}",
    ):
        page = api.client.get(path, headers=api.read)
        assert page.status_code == 200, path
        assert SCRIPT not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text, path
    for path in (f"/models/{SCRIPT}", f"/models/multi/features/{SCRIPT}"):
        missing = api.client.get(path, headers={**api.read, **HTML})
        assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
        assert SCRIPT not in missing.text and "&lt;script&gt;" in missing.text


def test_static_css_and_js_are_public_pages_and_plotly_are_not(live: Live) -> None:
    """The pages' CSS/JS/favicon are public static files (no data in them); pages, plotly.js,
    the docs and their Swagger UI files need a key."""
    for path, kind in (
        ("/assets/dashboards/app.css", "text/css"),
        ("/assets/dashboards/app.js", "javascript"),
        ("/assets/dashboards/favicon.svg", "image/svg"),
    ):
        response = httpx.get(live.url + path, timeout=10)
        assert response.status_code == 200 and kind in response.headers["content-type"], path
    for path in ("/models", "/assets/plotly.min.js", "/docs", "/assets/swagger/swagger-ui-bundle.js"):
        assert httpx.get(live.url + path, timeout=10).status_code == 401, path
    assert live.get("/assets/swagger/swagger-ui-bundle.js").status_code == 200
    assert live.get("/assets/swagger/VERSION").status_code == 404  # only what /docs uses
    assert httpx.get(live.url + "/assets/dashboards/nope.css", timeout=10).status_code == 404


# -- CSV export ------------------------------------------------------------------------------------


def test_every_table_downloads_as_csv_with_the_same_rows(live: Live) -> None:
    """Each table's CSV link downloads its rows (same filters as the page) as text/csv with a
    file name saying what it is; the row count matches the rendered table."""
    pages = [
        ("/models", "models", 3),
        ("/models/fleet-events", "alerts", None),
        (f"/models/fleet-events/alerts/{live.alerts['drift']}", "timeline", None),
        ("/labeling?model=fleet-events", "recent", None),
        ("/labeling?model=fleet-events", "datasets", 1),
        ("/gates", "gates", 2),
    ]
    for path, table, expected in pages:
        page = live.get(path).text
        links = re.findall(r'href="([^"]*)" download data-csv="' + table + '"', page)
        assert len(links) == 1, (path, table)
        href = links[0].replace("&amp;", "&")
        base = path.split("?")[0]
        response = live.get(base + href)
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
        disposition = response.headers["content-disposition"]
        assert disposition.startswith("attachment;") and f"-{table}.csv" in disposition, disposition
        rows = _csv(response)
        rendered = re.search(r'<table[^>]*data-table="' + table + r'".*?</table>', page, re.S)
        assert rendered is not None
        assert len(rows) - 1 == rendered.group(0).count("<tr>") - 1, (path, table)  # minus the header rows
        if expected is not None:
            assert len(rows) - 1 == expected, (path, table)
    assert live.get("/models?format=csv&table=nope").status_code == 404
    assert live.get("/models?format=xml&table=models").status_code == 422


def test_csv_cells_cannot_run_as_formulas() -> None:
    """A text cell starting with = + - @ (or a tab / carriage return) gets a leading quote;
    numbers stay numbers; the file name keeps only safe characters."""
    table = Table(
        "t",
        [],
        [{"v": "=HYPERLINK(1)"}, {"v": "+1"}, {"v": "-2"}, {"v": "@x"}, {"v": "\tx"}, {"v": -3.5}, {"v": "ok"}],
        [CsvColumn("value", lambda r: r["v"])],
        "",
    )
    values = [row[0] for row in csv.reader(io.StringIO(table.to_csv()))][1:]
    assert values == ["'=HYPERLINK(1)", "'+1", "'-2", "'@x", "'\tx", "-3.5", "ok"]
    assert csv_filename("loopwatch-a b/../c", "alerts") == "loopwatch-a_b_.._c-alerts.csv"


# -- HTML error pages ----------------------------------------------------------------------------


def test_pages_answer_errors_as_html_and_the_api_as_json(live: Live) -> None:
    """A page's 404/422/401 is an HTML page naming what went wrong with a link back; /v1/ keeps
    the JSON envelope, whatever the client accepts; a JSON-only client of a page gets JSON."""
    missing = _html_get(live, "/models/nope")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
    assert "nope" in missing.text and 'href="/models"' in missing.text and "Not found" in missing.text
    feature = _html_get(live, "/models/fleet-events/features/nope")
    assert feature.status_code == 404 and 'href="/models/fleet-events"' in feature.text
    nowhere = _html_get(live, "/no/such/page")
    assert nowhere.status_code == 404 and "There is no page at /no/such/page" in nowhere.text
    bad = _html_get(live, "/models/fleet-events?days=0")
    assert bad.status_code == 422 and "text/html" in bad.headers["content-type"] and "days" in bad.text
    anonymous = httpx.get(
        live.url + "/assets/plotly.min.js", headers={**HTML, "Authorization": "Bearer lw_not-a-key"}, timeout=10
    )
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
    assert "/login?next=" in anonymous.text
    api = _html_get(live, "/v1/models/nope")
    assert api.status_code == 404 and api.json()["error"]["code"] == "not_found"
    script = httpx.get(live.url + "/models/nope", headers={**live.headers, "Accept": "application/json"}, timeout=30)
    assert script.status_code == 404 and script.json()["error"]["code"] == "not_found"


# -- time range ------------------------------------------------------------------------------------


def test_from_to_dates_choose_the_range_and_to_is_inclusive(live: Live) -> None:
    """``?from=&to=`` dates show [from 00:00, the day after to 00:00) UTC; the form shows them."""
    page = live.get("/models/fleet-events", params={"from": "2026-11-10", "to": "2026-11-12"})
    assert page.status_code == 200
    assert "2026-11-10 00:00 UTC</time> → <time" in page.text and "2026-11-13 00:00 UTC" in page.text
    assert 'name="from" value="2026-11-10"' in page.text and 'name="to" value="2026-11-12"' in page.text
    feature = live.get("/models/fleet-events/features/brightness", params={"from": "2026-11-16", "to": "2026-11-20"})
    assert feature.status_code == 200 and 'name="from" value="2026-11-16"' in feature.text


def test_a_bad_range_is_explained_on_the_page(live: Live) -> None:
    """from after to, or a value that is not a date, shows the page with a clear message (422)
    and the default range; the presets stay."""
    backwards = live.get("/models/fleet-events", params={"from": "2026-11-20", "to": "2026-11-10"})
    assert backwards.status_code == 422 and "text/html" in backwards.headers["content-type"]
    assert "must be before" in backwards.text and 'id="range-error"' in backwards.text
    assert f"{(NOW - timedelta(days=14)):%Y-%m-%d %H:%M} UTC" in backwards.text  # the default range
    assert ">7d</a>" in backwards.text
    garbled = live.get("/models/fleet-events/features/brightness", params={"from": "soon"})
    assert garbled.status_code == 422 and "must be a date" in garbled.text


def test_resolve_range_rules() -> None:
    """Dates are UTC midnights and ``to`` is inclusive; ISO times are exact; from == to is one day."""
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    span, error = resolve_range(RangeQuery(date_from="2026-11-20", date_to="2026-11-20"), now)
    assert error is None and (span.start, span.end) == (
        datetime(2026, 11, 20, tzinfo=UTC),
        datetime(2026, 11, 21, tzinfo=UTC),
    )
    span, error = resolve_range(RangeQuery(date_from="2026-11-20T06:00:00Z"), now)
    assert error is None and span.start == datetime(2026, 11, 20, 6, tzinfo=UTC) and span.end == now
    _, error = resolve_range(RangeQuery(date_from="2026-11-21T00:00:00Z", date_to="2026-11-21T00:00:00Z"), now)
    assert error is not None and "before" in error
    _, error = resolve_range(RangeQuery(date_from="2020-01-01", date_to="2026-01-01"), now)
    assert error is not None and "At most" in error


# -- page defects ----------------------------------------------------------------------------------

EVENTS = [
    ("pending", {"run_id": "r", "line": "brightness drifted"}),
    ("fired", {"run_id": "r", "line": "brightness drifted"}),
    ("resolved", {"run_id": "r"}),
    ("cleared", {"run_id": "r"}),
    ("acknowledged", {}),
    ("notification_queued:new", {"group_id": "g", "not_before": "2026-11-23T12:05:30+00:00"}),
    ("notification_failed", {"group_id": "g", "error": "channel_not_found"}),
    ("notification_reconciled", {"group_id": "g", "message_id": "m"}),
    ("silenced", {"silence_id": "s1", "kind": "new"}),
    ("inhibited", {"by": "no_data", "kind": "new"}),
    ("samples_requested", {"via": "slack"}),
    ("samples_not_routed", {"reason": "labels cannot help a latency alert"}),
]


def test_every_timeline_event_reads_as_words() -> None:
    """Every event the alerting code records (monitor/alerting, api/routes/alerts.py) has human
    wording: no internal name, no raw ``not_before`` stamp, no run or group ids."""
    at = "2026-11-23T12:00:00Z"
    for event, details in EVENTS:
        text = describe_event(event, details, at)
        shown = f"{text.title} {text.detail}"
        assert "_" not in text.title and text.title[:1].isupper(), event
        assert event.isalpha() or event not in shown, event  # internal names (a_b, a:b) never shown
        assert "not_before" not in shown and "run_id" not in shown and "group_id" not in shown, event
    queued = describe_event("notification_queued:new", EVENTS[5][1], at)
    assert (queued.title, queued.detail) == ("Notification queued (new alert)", "Will notify after 12:05 UTC")
    later = describe_event("notification_queued:new", {"not_before": "2026-11-24T01:00:00Z"}, at)
    assert later.detail == "Will notify after 2026-11-24 01:00 UTC"
    assert describe_event("fired", EVENTS[1][1], at).detail == "brightness drifted"


def test_alert_timeline_page_uses_the_wording(live: Live) -> None:
    """The alert page's timeline shows the words, not the event names."""
    page = live.get(f"/models/fleet-events/alerts/{live.alerts['drift']}").text
    timeline = re.search(r'<table class="timeline".*?</table>', page, re.S)
    assert timeline is not None and "Fired" in timeline.group(0)
    assert "notification_queued" not in timeline.group(0) and "not_before" not in timeline.group(0)


def test_evidence_start_is_the_first_bad_window_of_the_run() -> None:
    """The evidence began at the start of the first window of the bad run that ends at the
    alert's window; an ok window before it ends the run; reaching the first window read says so."""
    t0 = datetime(2026, 11, 20, tzinfo=UTC)

    def finding(i: int, status: str) -> dict[str, object]:
        return {
            "window_start": t0 + timedelta(hours=6 * i),
            "window_end": t0 + timedelta(hours=6 * (i + 1)),
            "status": status,
        }

    series = [finding(0, "critical"), finding(1, "ok"), finding(2, "warning"), finding(3, "critical"), finding(4, "ok")]
    start, earlier = evidence_start(series, t0 + timedelta(hours=24))
    assert start == t0 + timedelta(hours=12) and not earlier
    start, earlier = evidence_start(series, None)  # the latest window is ok: the last bad run before it
    assert start == t0 + timedelta(hours=12)
    start, earlier = evidence_start(series[:1], t0 + timedelta(hours=6))
    assert start == t0 and earlier
    assert evidence_start([finding(0, "ok")], None) == (None, False)


def test_alert_page_labels_the_evidence_start(live: Live) -> None:
    """The alert page shows when the evidence began (a bad window's start, before the run that
    opened the alert), labelled as such, next to when the alert was opened and fired."""
    alert = live.get(f"/v1/alerts/{live.alerts['drift']}").json()
    page = live.get(f"/models/fleet-events/alerts/{live.alerts['drift']}").text
    began = re.search(r'id="evidence-began"><time datetime="([^"]+)"', page)
    assert began is not None and "start of the first bad window" in page
    assert began.group(1) <= alert["last_window_start"].replace("+00:00", "Z")
    assert began.group(1) < alert["started_at"].replace("+00:00", "Z")


def test_no_performance_monitor_shows_how_to_add_one(live: Live) -> None:
    """Without a performance monitor the quality section explains how to add one instead of
    drawing empty axes; with one, the chart is there."""
    page = live.get("/models/hostile").text
    assert 'id="no-performance-monitor"' in page and "detector: performance" in page
    assert 'id="fig-quality"' not in page and 'data-empty-for="fig-quality"' not in page
    with_monitor = live.get("/models/fleet-events").text
    assert 'id="fig-quality"' in with_monitor and 'id="no-performance-monitor"' not in with_monitor


def test_sign_in_lands_on_the_dashboards(live: Live) -> None:
    """After sign-in a browser lands on /models, or on the local page it was sent from."""
    form = {"key": live.key}
    plain = httpx.post(live.url + "/login", data=form, timeout=10)
    assert plain.status_code == 303 and plain.headers["location"] == "/models"
    back = httpx.post(live.url + "/login", data={**form, "next": "/labeling?model=x"}, timeout=10)
    assert back.headers["location"] == "/labeling?model=x"
    away = httpx.post(live.url + "/login", data={**form, "next": "//evil.example/"}, timeout=10)
    assert away.headers["location"] == "/models"


def test_an_unexpected_error_on_a_page_is_an_html_500_and_json_on_the_api(settings: Settings) -> None:
    """An unhandled exception answers 500 without details: an HTML page for a page, the JSON
    envelope for /v1/."""
    app = create_app(settings, background=False)

    def boom() -> None:
        raise RuntimeError("secret detail")

    app.add_api_route("/models-boom", boom)
    app.add_api_route("/v1/boom", boom)
    with TestClient(app, raise_server_exceptions=False) as client:
        page = client.get("/models-boom", headers=HTML)
        assert page.status_code == 500 and page.headers["content-type"].startswith("text/html")
        assert "Something went wrong" in page.text and "secret detail" not in page.text
        api = client.get("/v1/boom", headers=HTML)
        assert api.status_code == 500 and api.json()["error"]["code"] == "internal_error"
