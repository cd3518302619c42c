"""Dashboard pages (HTML + plotly) behind the same sign-in as the API.

Thin: parse the URL, hand it to ``dashboards.pages``, return the HTML. Pages read findings,
run records, alerts and the hourly rollups — never the raw prediction log.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from api.deps import ReadKey
from dashboards import pages
from dashboards.assets import APP_CSS, APP_JS, FAVICON_SVG, plotly_js_path
from dashboards.data import DashboardData
from monitor.rollups import RollupMaintainer

router = APIRouter(include_in_schema=False)
CACHE = {"Cache-Control": "private, max-age=3600"}
Days = Annotated[float | None, Query(gt=0, le=400)]


def _context(request: Request) -> pages.Context:
    state = request.app.state
    maintainer = getattr(state, "dashboards", None)
    if maintainer is None:  # an app assembled without the maintainer: roll up on demand
        maintainer = state.dashboards = RollupMaintainer(state.service, enabled=False)
    service = state.service
    return pages.Context(
        data=DashboardData(service, maintainer.rollups),
        alerts=getattr(state, "alerts", None),
        datasets=getattr(state, "datasets", None),
        now=service.now(),
    )


def _html(document: str) -> HTMLResponse:
    return HTMLResponse(document, headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


@router.get("/")
def home(_: ReadKey) -> Response:
    return RedirectResponse("/models", status_code=303)


@router.get("/models", response_class=HTMLResponse)
def models_page(request: Request, _: ReadKey) -> HTMLResponse:
    return _html(pages.models_page(_context(request)))


@router.get("/models/{model}", response_class=HTMLResponse)
def model_overview(
    model: str,
    request: Request,
    _: ReadKey,
    start: str | None = None,
    end: str | None = None,
    days: Days = None,
    cls: str | None = None,
) -> HTMLResponse:
    return _html(pages.overview_page(_context(request), model, start=start, end=end, days=days, cls=cls))


@router.get("/models/{model}/features/{feature}", response_class=HTMLResponse)
def feature_page(
    model: str,
    feature: str,
    request: Request,
    _: ReadKey,
    window: str | None = None,
    segment: str | None = None,
    start: str | None = None,
    end: str | None = None,
    days: Days = None,
) -> HTMLResponse:
    return _html(
        pages.feature_page(
            _context(request), model, feature, window=window, segment=segment, start=start, end=end, days=days
        )
    )


@router.get("/models/{model}/alerts/{alert_id}", response_class=HTMLResponse)
def alert_page(model: str, alert_id: str, request: Request, _: ReadKey) -> HTMLResponse:
    return _html(pages.alert_page(_context(request), model, alert_id))


@router.get("/models/{model}/report", response_class=HTMLResponse)
def report_page(
    model: str,
    request: Request,
    _: ReadKey,
    start: str | None = None,
    end: str | None = None,
    reference_start: str | None = None,
    reference_end: str | None = None,
) -> HTMLResponse:
    return _html(
        pages.report_page(
            _context(request),
            model,
            start=start,
            end=end,
            reference_start=reference_start,
            reference_end=reference_end,
        )
    )


@router.get("/labeling", response_class=HTMLResponse)
def labeling_page(request: Request, _: ReadKey, model: str | None = None, alert: str | None = None) -> HTMLResponse:
    return _html(pages.labeling_page(_context(request), model, alert))


@router.get("/gates", response_class=HTMLResponse)
def gates_page(request: Request, _: ReadKey, model: str | None = None) -> HTMLResponse:
    """Release gate runs, newest first."""
    return _html(pages.gates_page(request.app.state.gate_runs.list(model), model))


@router.get("/gates/{run_id}", response_class=HTMLResponse)
def gate_report(run_id: str, request: Request, _: ReadKey) -> FileResponse:
    """One gate run's report page (its self-contained report.html)."""
    return FileResponse(
        request.app.state.gate_runs.html_path(run_id),
        media_type="text/html",
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/assets/plotly.min.js")
def plotly_js(_: ReadKey) -> FileResponse:
    return FileResponse(plotly_js_path(), media_type="text/javascript", headers=CACHE)


@router.get("/assets/dashboards/app.js")
def app_js(_: ReadKey) -> Response:
    return Response(APP_JS, media_type="text/javascript", headers=CACHE)


@router.get("/assets/dashboards/app.css")
def app_css(_: ReadKey) -> Response:
    return Response(APP_CSS, media_type="text/css", headers=CACHE)


@router.get("/assets/dashboards/favicon.svg")
@router.get("/favicon.ico")
def favicon() -> Response:
    """Public: a browser asks for it before signing in, and it reveals nothing."""
    return Response(FAVICON_SVG, media_type="image/svg+xml", headers=CACHE)


def start_rollups(service: object, background: bool) -> RollupMaintainer:
    """Created in the app's lifespan: keeps the hourly rollups fresh in a daemon thread (if ``background``)."""
    return RollupMaintainer(service, enabled=background)  # type: ignore[arg-type]
