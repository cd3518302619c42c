"""Dashboard pages (Jinja2 templates + plotly) behind the same sign-in as the API.

Thin: parse the URL, hand it to ``dashboards.pages``, render the view it returns with
Starlette's ``Jinja2Templates`` — or, for ``?format=csv&table=NAME``, one of its tables as CSV.
Pages read findings, run records, alerts and the hourly rollups, not the raw prediction log
(the version and segment views in ``api/routes/console.py`` read bounded samples of it).

Access: every page, plotly.js and the API docs need a key (or a session). The pages' own CSS,
script and favicon (``dashboards/static/app/``) are public static files: they hold no data,
and the sign-in and error pages need them before anyone has signed in.

Errors: a page answers 401/403/404/422/500 with an HTML page (what went wrong, a link back);
``/v1/...`` and the other machine endpoints keep the JSON error envelope (:func:`install_html_errors`).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from urllib.parse import unquote, urlencode

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from api.deps import SESSION_COOKIE, ReadKey
from dashboards import pages
from dashboards.assets import APP_STATIC_DIR, APP_STATIC_URL, plotly_js_path
from dashboards.data import DashboardData
from dashboards.html import View, templates
from dashboards.tables import csv_filename
from monitor.errors import NotFound
from monitor.rollups import RollupMaintainer

router = APIRouter(include_in_schema=False)
CACHE = {"Cache-Control": "private, max-age=3600"}
PAGE_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
Days = Annotated[float | None, Query(gt=0, le=400)]
From = Annotated[str | None, Query(alias="from", description="Range start: a date (2026-11-20) or ISO time.")]
To = Annotated[str | None, Query(alias="to", description="Range end: a date (inclusive) or ISO time.")]
Format = Annotated[str | None, Query(pattern="^(html|csv)$")]


def range_query(
    start: str | None = None,
    end: str | None = None,
    days: Days = None,
    date_from: From = None,
    date_to: To = None,
) -> pages.RangeQuery:
    """The page range from the URL: ``from``/``to``, ``start``/``end`` or ``days``."""
    return pages.RangeQuery(start, end, days, date_from, date_to)


Range = Annotated[pages.RangeQuery, Depends(range_query)]


def page_context(request: Request, *, links_reports: bool = False) -> pages.Context:
    """What a page reads. A page linking to an Evidently report starts importing Evidently in
    the background (seconds, once per process), so the report opens without that wait."""
    if links_reports:
        from dashboards.evidently_report import warm_up

        warm_up()
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


def respond(request: Request, view: View, format: str | None = None, table: str | None = None) -> Response:
    """The page, or with ``format=csv`` the rows of its table ``table`` (same filters)."""
    kept = [(k, v) for k, v in request.query_params.multi_items() if k not in ("format", "table")]
    for name, t in view.tables.items():
        t.csv_href = "?" + urlencode([*kept, ("format", "csv"), ("table", name)])
    if format == "csv":
        if not table or table not in view.tables:
            names = ", ".join(view.tables) or "none"
            raise NotFound(f"this page has no table {table!r} to download (its tables: {names})")
        filename = csv_filename(view.csv_name, table)
        return Response(
            view.tables[table].to_csv(),
            media_type="text/csv; charset=utf-8",
            headers={**PAGE_HEADERS, "Content-Disposition": f'attachment; filename="{filename}"'},
        )
    return templates.TemplateResponse(
        request, view.template, view.template_context(), status_code=view.status, headers=PAGE_HEADERS
    )


@router.get("/")
def home(_: ReadKey) -> Response:
    return RedirectResponse("/models", status_code=303)


@router.get("/models")
def models_page(request: Request, _: ReadKey, format: Format = None, table: str | None = None) -> Response:
    return respond(request, pages.models_page(page_context(request)), format, table)


@router.get("/models/{model}")
def model_overview(
    model: str,
    request: Request,
    _: ReadKey,
    query: Range,
    cls: str | None = None,
    format: Format = None,
    table: str | None = None,
) -> Response:
    return respond(
        request,
        pages.overview_page(page_context(request, links_reports=True), model, query=query, cls=cls),
        format,
        table,
    )


@router.get("/models/{model}/features/{feature}")
def feature_page(
    model: str,
    feature: str,
    request: Request,
    _: ReadKey,
    query: Range,
    window: str | None = None,
    segment: str | None = None,
    monitor: str | None = None,
    format: Format = None,
    table: str | None = None,
) -> Response:
    view = pages.feature_page(
        page_context(request, links_reports=True),
        model,
        feature,
        window=window,
        segment=segment,
        query=query,
        monitor=monitor,
    )
    return respond(request, view, format, table)


@router.get("/models/{model}/alerts/{alert_id}")
def alert_page(
    model: str, alert_id: str, request: Request, _: ReadKey, format: Format = None, table: str | None = None
) -> Response:
    return respond(request, pages.alert_page(page_context(request, links_reports=True), model, alert_id), format, table)


@router.get("/models/{model}/report")
def report_page(
    model: str,
    request: Request,
    _: ReadKey,
    start: str | None = None,
    end: str | None = None,
    reference_start: str | None = None,
    reference_end: str | None = None,
) -> Response:
    view = pages.report_page(
        page_context(request),
        model,
        start=start,
        end=end,
        reference_start=reference_start,
        reference_end=reference_end,
    )
    return respond(request, view)


@router.get("/labeling")
def labeling_page(
    request: Request,
    _: ReadKey,
    model: str | None = None,
    alert: str | None = None,
    format: Format = None,
    table: str | None = None,
) -> Response:
    return respond(request, pages.labeling_page(page_context(request), model, alert), format, table)


@router.get("/gates")
def gates_page(
    request: Request, _: ReadKey, model: str | None = None, format: Format = None, table: str | None = None
) -> Response:
    """Release gate runs, newest first."""
    return respond(request, pages.gates_page(request.app.state.gate_runs.list(model), model), format, table)


@router.get("/gates/{run_id}")
def gate_report(run_id: str, request: Request, _: ReadKey) -> FileResponse:
    """One gate run's report page (its self-contained report.html)."""
    return FileResponse(request.app.state.gate_runs.html_path(run_id), media_type="text/html", headers=PAGE_HEADERS)


@router.get("/assets/plotly.min.js")
def plotly_js(_: ReadKey) -> FileResponse:
    return FileResponse(plotly_js_path(), media_type="text/javascript", headers=CACHE)


@router.get("/favicon.ico")
def favicon() -> FileResponse:
    """Public: a browser asks for it before signing in, and it reveals nothing."""
    return FileResponse(APP_STATIC_DIR / "favicon.svg", media_type="image/svg+xml", headers=CACHE)


def mount_static(app: FastAPI) -> None:
    """The pages' CSS, script and favicon at ``/assets/dashboards/`` (public; no data in them)."""
    app.mount(APP_STATIC_URL, StaticFiles(directory=APP_STATIC_DIR), name="dashboards-static")


def start_rollups(service: object, background: bool) -> RollupMaintainer:
    """Created in the app's lifespan: keeps the hourly rollups fresh in a daemon thread (if ``background``)."""
    return RollupMaintainer(service, enabled=background)  # type: ignore[arg-type]


# -- error pages ---------------------------------------------------------------------------------

# Machine endpoints: their errors stay the JSON envelope whatever the client accepts.
API_PREFIXES = ("/v1/", "/slack/", "/healthz", "/readyz", "/metrics", "/openapi.json")
HEADINGS = {
    401: "Sign-in needed",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    422: "That address is not valid",
    500: "Something went wrong",
    507: "The server's disk is full",
}
KEPT_HEADERS = ("www-authenticate", "retry-after", "allow")


def wants_html(request: Request) -> bool:
    """An error is answered as a page for anything but the API, unless the client asks for JSON
    only (``Accept: application/json`` without ``text/html``)."""
    if request.url.path.startswith(API_PREFIXES):
        return False
    accept = request.headers.get("accept", "").lower()
    return not ("application/json" in accept and "text/html" not in accept)


def error_page(request: Request, status: int, code: str, message: str, errors: list[Any] | None = None) -> Response:
    path = request.url.path
    links = [("Back to the models", "/models")]
    if status == 401:
        links.insert(0, ("Sign in", "/login?" + urlencode({"next": path})))
    elif path.startswith("/models/") and status in (404, 422):
        model = path.split("/")[2]
        if status == 422 or path.count("/") > 2:
            links.insert(0, (f"Back to {unquote(model)}", f"/models/{model}"))
    if code == "not_found" and message == "Not Found":  # no route at all
        message = f"There is no page at {path}."
    return templates.TemplateResponse(
        request,
        "error.html",
        {
            "title": HEADINGS.get(status, f"Error {status}"),
            "heading": HEADINGS.get(status, f"Error {status}"),
            "status": status,
            "code": code,
            "message": message,
            "errors": errors or [],
            "path": path,
            "links": links,
            "signed_in": SESSION_COOKIE in request.cookies and status != 401,
        },
        status_code=status,
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


Handler = Callable[[Request, Exception], Response | Awaitable[Response]]


def _html_instead(handler: Handler) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def wrapped(request: Request, exc: Exception) -> Response:
        result = handler(request, exc)
        response = await result if inspect.isawaitable(result) else result
        if not isinstance(response, JSONResponse) or response.status_code < 400 or not wants_html(request):
            return response
        try:
            body = json.loads(bytes(response.body))["error"]
        except (ValueError, KeyError, TypeError):
            return response
        page = error_page(
            request, response.status_code, body.get("code", "error"), body.get("message", ""), body.get("errors")
        )
        for name in KEPT_HEADERS:
            if name in response.headers:
                page.headers[name] = response.headers[name]
        return page

    return wrapped


def install_html_errors(app: FastAPI) -> None:
    """Wrap the app's JSON error handlers (api/errors.py): a page request gets the same status,
    code and message as a styled HTML page; API requests get the JSON unchanged."""
    for key, handler in list(app.exception_handlers.items()):
        app.exception_handlers[key] = _html_instead(handler)
