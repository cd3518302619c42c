"""The on-call console pages (alerts, silences, audit log) and two analysis pages of a model
(versions side by side, performance per segment), behind the same sign-in as the other pages.

Thin, like ``api.routes.dashboards``: parse the URL, call the application layer
(``request.app.state.application``) for alerts, silences and the audit log, hand the result to
``dashboards.console`` / ``dashboards.analysis``, render the view (or one of its tables as CSV).
Their actions go to the JSON API from the page (``/v1/alerts/ack``, ``/v1/silences``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.deps import AppDep, ReadKey
from api.errors import ApiError
from api.routes.dashboards import Format, Range, page_context, respond
from dashboards import analysis, console
from dashboards import sources as sources_view
from monitor.keys import scope_allows

router = APIRouter(include_in_schema=False)
Text = Annotated[str | None, Query(max_length=500)]
ADMIN_ONLY = (
    "The audit log is for administrators: this session signed in with a '{scope}' key. "
    "Sign out and sign in with an admin key (`loopwatch keys create --scope admin`)."
)


def _blank(value: str | None) -> str | None:
    """An empty form field means "any"."""
    return value.strip() if value and value.strip() else None


@router.get("/alerts")
def alerts_page(
    request: Request,
    app: AppDep,
    _: ReadKey,
    state: str = "active",
    severity: Text = None,
    model: Text = None,
    format: Format = None,
    table: str | None = None,
) -> Response:
    """Alerts across models (default: the open ones), with bulk acknowledge."""
    filters = console.AlertFilters(state=_blank(state) or "active", severity=_blank(severity), model=_blank(model))
    models = [m["name"] for m in app.models.list()]
    view = console.alerts_page(app.alerts.list(**filters.query()), filters, models)
    return respond(request, view, format, table)


@router.get("/silences")
def silences_page(
    request: Request, app: AppDep, _: ReadKey, show: str = "active", format: Format = None, table: str | None = None
) -> Response:
    """Active or expired silences, a form to create one, an Expire button per active one."""
    models = app.models.list()
    monitors = sorted({m["name"] for m in app.monitors.list()})
    segments = sorted({s for m in models for s in m.get("segments") or []})
    view = console.silences_page(app.alerts.silences(), show, [m["name"] for m in models], monitors, segments)
    return respond(request, view, format, table)


@router.get("/audit")
def audit_page(
    request: Request,
    app: AppDep,
    principal: ReadKey,
    action: Text = None,
    actor: Text = None,
    target: Text = None,
    date_from: Annotated[str | None, Query(alias="from", max_length=40)] = None,
    date_to: Annotated[str | None, Query(alias="to", max_length=40)] = None,
    before_id: Annotated[int | None, Query(ge=1)] = None,
    format: Format = None,
    table: str | None = None,
) -> Response:
    """The audit log (admin sessions only), newest first, one page at a time."""
    if not scope_allows(principal.scope, "admin"):
        raise ApiError(403, "forbidden", ADMIN_ONLY.format(scope=principal.scope))
    filters = console.AuditFilters(
        _blank(action), _blank(actor), _blank(target), _blank(date_from), _blank(date_to), before_id
    )
    since, until = filters.window()
    entries = app.audit.list(
        limit=console.AUDIT_PAGE + 1,
        action=filters.action,
        actor=filters.actor,
        target=filters.target,
        since=since,
        until=until,
        before_id=before_id,
    )
    return respond(request, console.audit_page(entries, filters), format, table)


@router.get("/sources")
def sources_page(
    request: Request, app: AppDep, _: ReadKey, format: Format = None, table: str | None = None
) -> Response:
    """Streaming sources with their consumers' state and counts, and their newest dead letters."""
    listed = app.sources.list()
    letters = {s["name"]: app.sources.dead_letters(s["name"], sources_view.LETTERS_PER_SOURCE) for s in listed}
    return respond(request, sources_view.sources_page(listed, letters), format, table)


@router.get("/models/{model}/versions")
def versions_page(
    model: str,
    request: Request,
    _: ReadKey,
    query: Range,
    a: Text = None,
    b: Text = None,
    cls: Text = None,
    format: Format = None,
    table: str | None = None,
) -> Response:
    """Two model versions side by side (default: the two most recent with traffic)."""
    view = analysis.versions_page(page_context(request), model, query=query, a=_blank(a), b=_blank(b), cls=_blank(cls))
    return respond(request, view, format, table)


@router.get("/models/{model}/segments")
def segments_page(
    model: str,
    request: Request,
    _: ReadKey,
    query: Range,
    segment: Text = None,
    cls: Text = None,
    sort: Text = None,
    format: Format = None,
    table: str | None = None,
) -> Response:
    """Realized FN/FP rate, precision and recall per value of one segment column, worst first."""
    view = analysis.segments_page(
        page_context(request), model, query=query, segment=_blank(segment), cls=_blank(cls), sort=_blank(sort)
    )
    return respond(request, view, format, table)
