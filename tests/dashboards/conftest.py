"""A live loopwatch on loopback with the demo data, monitors, their history and a few alerts.

Built once per session (about 15 s): the demo's two models with two weeks of traffic; drift,
latency and performance monitors backfilled over the last week; then one live run of each so
the demo incidents fire as alerts. A third model, ``hostile``, has a segment value that is an
HTML payload, to check that no page lets it through.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pytest
import uvicorn

from api.app import create_app
from api.demo import load_demo, run_demo_gates
from monitor.monitors import parse_monitor
from monitor.schema import ModelSchema
from monitor.settings import Settings
from tests.conftest import free_port

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
HOSTILE = "<img src=x onerror=alert(1)>"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _reference(days_ago_start: int, days_ago_end: int) -> dict[str, str]:
    return {
        "kind": "window",
        "start": (NOW - timedelta(days=days_ago_start)).isoformat(),
        "end": (NOW - timedelta(days=days_ago_end)).isoformat(),
    }


MONITORS: dict[str, list[dict[str, Any]]] = {
    "fleet-events": [
        {
            "name": "feature-drift",
            "detector": "data_drift",
            "every": "6h",
            "window": "6h",
            "reference": _reference(14, 9),
            "segments": ["firmware"],
            "severity": "warning",
            "route": {"runbook": "https://runbooks.example/drift"},
        },
        {
            "name": "latency",
            "detector": "latency",
            "every": "6h",
            "window": "6h",
            "reference": _reference(14, 9),
            "severity": "critical",
        },
        {
            "name": "quality",
            "detector": "performance",
            "every": "1d",
            "window": "1d",
            "reference": _reference(14, 9),
            "params": {"min_coverage": 0.1},
        },
    ],
    "sleep-apnea": [
        {
            "name": "fn-rate",
            "detector": "performance",
            "every": "1d",
            "window": "2d",
            "reference": _reference(14, 9),
            "params": {"min_coverage": 0.1},
            "severity": "critical",
        },
        {
            "name": "feature-drift",
            "detector": "data_drift",
            "every": "6h",
            "window": "6h",
            "reference": _reference(14, 9),
        },
    ],
}

HOSTILE_MODEL = ModelSchema(
    name="hostile",
    task="binary",
    classes=["no", "yes"],
    positive_class="yes",
    features={"speed": "numeric"},
    segments=["site"],
)


def _hostile_rows(rng: np.random.Generator, start: datetime, hours: int, shift: float, offset: int) -> pa.Table:
    n = hours * 40
    ts = [start + timedelta(seconds=float(s)) for s in np.sort(rng.uniform(0, hours * 3600, n))]
    site = rng.choice([HOSTILE, "plain"], n)
    speed = rng.normal(50, 5, n) + np.where(site == HOSTILE, shift, 0.0)
    return pa.table(
        {
            "prediction_id": [f"h-{offset + i}" for i in range(n)],
            "timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "model_version": ["1.0"] * n,
            "speed": speed,
            "prediction": rng.choice(["no", "yes"], n),
            "score": rng.uniform(0, 1, n),
            "latency_ms": rng.uniform(5, 15, n),
            "site": site,
        }
    )


@dataclass
class Live:
    url: str
    key: str
    app: Any
    alerts: dict[str, str]  # kind -> alert id

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(self.url + path, headers=self.headers, timeout=30, **kwargs)


def _seed(app: Any) -> dict[str, str]:
    service = app.state.service
    load_demo(service, NOW)
    for model, monitors in MONITORS.items():
        for spec in monitors:
            service.monitors.save(model, parse_monitor(spec))
    service.registry.register(HOSTILE_MODEL)
    rng = np.random.default_rng(5)
    service.store.ingest_predictions("hostile", _hostile_rows(rng, NOW - timedelta(days=3), 48, 0.0, 0))
    service.store.ingest_predictions("hostile", _hostile_rows(rng, NOW - timedelta(hours=6), 6, 25.0, 100_000))
    service.monitors.save(
        "hostile",
        parse_monitor(
            {
                "name": "drift",
                "detector": "data_drift",
                "every": "6h",
                "window": "6h",
                "reference": _reference(3, 1),
                "segments": ["site"],
            }
        ),
    )
    for model in MONITORS:
        service.runner.backfill(model, NOW - timedelta(days=7), NOW - timedelta(hours=1))
    for model, monitors in [*MONITORS.items(), ("hostile", [{"name": "drift"}])]:
        for spec in monitors:
            service.runner.run(model, spec["name"], window_end=NOW, mode="manual")
    _annotate(app)
    found: dict[str, str] = {}
    for run_id, verdict in run_demo_gates(service, NOW, app.state.datasets, app.state.gate_runs).values():
        found[f"gate_{verdict}"] = run_id
    for alert in app.state.alerts.alerts.list(limit=1000):
        if alert["model"] == "hostile" and alert["segment"]:
            found.setdefault("hostile", alert["id"])
        elif alert["detector"] == "data_drift" and alert["column"] == "brightness":
            found.setdefault("drift", alert["id"])
        elif alert["detector"] == "latency":
            found.setdefault("latency", alert["id"])
        elif alert["detector"] == "performance" and alert["model"] == "sleep-apnea":
            found.setdefault("performance", alert["id"])
    return found


def _annotate(app: Any) -> None:
    """Stand in for Label Studio: mark some routed fleet-events samples annotated, build a dataset."""
    from labeling.curation import BuildRequest

    service = app.state.service
    model_id = service.registry.get("fleet-events").id
    rows = service.db.query(
        "SELECT prediction_id FROM routed_samples WHERE model_id = ? ORDER BY prediction_id LIMIT 12", [model_id]
    )
    with service.db.transaction() as cur:
        for i, (pid,) in enumerate(rows):
            cur.execute(
                "UPDATE routed_samples SET status = 'annotated', label = 'none', agreement = ?, annotated_at = ? "
                "WHERE model_id = ? AND prediction_id = ?",
                [[1.0, 1.0, 0.67, 0.5][i % 4], NOW - timedelta(hours=i), model_id, pid],
            ).fetchall()
    app.state.datasets.build(BuildRequest(model="fleet-events", name="fleet-review", created_by="test"))


@contextmanager
def served(data_dir: Path) -> Iterator[tuple[Any, str]]:
    """An app on ``data_dir`` (clock at ``NOW``) served by uvicorn on 127.0.0.1 in a thread of
    this process: (app, base URL) until the block ends."""
    app = create_app(Settings(data_dir=data_dir), now=lambda: NOW, background=False)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the dashboard test server did not start")
        time.sleep(0.05)
    try:
        yield app, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """The app served by uvicorn on 127.0.0.1 (in this process) with the seeded data."""
    with served(tmp_path_factory.mktemp("dashboards") / "data") as (app, url):
        alerts = _seed(app)
        _, key = app.state.service.keys.create("admin", "dashboards")
        yield Live(url, key, app, alerts)


# -- a real headless Chromium (Debian's), driven by Python playwright ---------------------------

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 20_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no browser: {CHROMIUM} is missing (apt-get install chromium); CI installs it")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("python playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, timeout=WAIT_MS)
        try:
            yield browser
        finally:
            browser.close()


class Session:
    """A signed-in browser tab that records console errors, page errors and dialogs."""

    def __init__(self, page: Any, live: Live) -> None:
        self.page = page
        self.live = live
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))

        def on_dialog(dialog: Any) -> None:
            self.dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)

    def open(self, path: str) -> None:
        """Go to ``path`` and wait until every embedded figure is drawn."""
        self.page.goto(self.live.url + path, timeout=WAIT_MS, wait_until="load")
        self.page.wait_for_function(
            "document.querySelectorAll('.js-plotly-plot').length === "
            "document.querySelectorAll('script[data-figure]').length",
            timeout=WAIT_MS,
        )

    def figures(self) -> dict[str, list[dict[str, Any]]]:
        return self.page.evaluate(
            """() => Object.fromEntries(Array.from(document.querySelectorAll('.js-plotly-plot')).map(gd => [
                gd.id, gd.data.map(t => ({name: t.name, type: t.type, x: t.x || [], y: t.y || [],
                customdata: t.customdata || null, n: (t.x || []).length}))]))"""
        )

    def shot(self, name: str) -> None:
        """A full-page PNG in test-artifacts/ (gitignored), to look at."""
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"), full_page=True)


@pytest.fixture
def tab(browser: Any, live: Live) -> Iterator[Session]:
    context = browser.new_context(viewport={"width": 1366, "height": 900}, timezone_id="Europe/Berlin")
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    session = Session(page, live)
    page.goto(live.url + "/models", wait_until="load")  # no session yet: the sign-in page
    assert "/login" in page.url
    page.fill("input[name=key]", live.key)
    page.click("button[type=submit]")
    page.wait_for_url("**/models")
    try:
        yield session
    finally:
        context.close()
    assert not session.errors, session.errors
    assert not session.dialogs, f"a page ran a dialog: {session.dialogs}"
