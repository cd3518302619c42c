"""Sign in with an API key (sets a session cookie); the API docs page behind it.

Every endpoint but /healthz needs a key; a browser cannot send an Authorization header on a
page visit, so people sign in here once and land on the dashboards (``/models``, or the local
page they were sent here from). The API reference is Swagger UI 5 (it reads the OpenAPI 3.1
that FastAPI generates), served from ``dashboards/static/vendor/swagger-ui`` — never a CDN,
since loopwatch often runs behind firewalls. /docs, its assets and /openapi.json need a key
(a session will do): the schema is for signed-in users.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response

from api.deps import SESSION_COOKIE, ReadKey, ServiceDep
from dashboards.assets import APP_STATIC_URL, SWAGGER_DIR, SWAGGER_URL
from dashboards.html import templates
from monitor.errors import NotFound

router = APIRouter(include_in_schema=False)
SWAGGER_FILES = {"swagger-ui-bundle.js", "swagger-ui.css"}
LANDING = "/models"


def _login_page(request: Request, next_path: str, error: str = "", status: int = 200) -> Response:
    context: dict[str, Any] = {"title": "Sign in", "next": next_path, "error": error}
    return templates.TemplateResponse(
        request, "login.html", context, status_code=status, headers={"Cache-Control": "no-store"}
    )


def _safe_next(value: str | None) -> str:
    """Only local paths: never redirect a signed-in user to another site."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return LANDING
    return value


def _same_origin_form(request: Request) -> bool:
    """True unless Origin (or, without it, Referer) names a host other than this one. ``Origin:
    null`` (sandboxed frames, some redirects) is refused; a request with neither header is not
    from a browser form and is allowed (a script that has the key can call the API anyway)."""
    origin = request.headers.get("origin")
    source = origin if origin is not None else request.headers.get("referer")
    if source is None:
        return True
    parts = urlsplit(source.strip())
    if not parts.scheme or not parts.netloc:
        return False
    host = request.headers.get("host", "")
    return parts.netloc.lower() == host.lower() and parts.scheme in ("http", "https")


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> Response:
    return _login_page(request, _safe_next(next))


@router.post("/login")
async def login(request: Request, service: ServiceDep) -> Response:
    """Sign in. A browser always sends ``Origin`` (or at least ``Referer``) on a form POST; one
    naming another site is refused (403), so a page elsewhere cannot sign a visitor in."""
    if not _same_origin_form(request):
        return _login_page(request, LANDING, "Cross-site sign-in refused.", 403)
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    key_text = (form.get("key") or [""])[0].strip()
    next_values = form.get("next")
    target = _safe_next(next_values[0] if next_values else None)
    key = service.keys.verify(key_text)
    if key is None:
        return _login_page(request, target, "That key is not valid.", 401)
    token = service.sessions.create(key)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        max_age=12 * 3600,
    )
    service.audit.record(key.id, "session.created")
    return response


@router.post("/logout")
def logout(request: Request, service: ServiceDep) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        service.sessions.end(token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/openapi.json")
def openapi(request: Request, _: ReadKey) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs", response_class=HTMLResponse)
def docs(_: ReadKey) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="loopwatch API",
        swagger_js_url=f"{SWAGGER_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{SWAGGER_URL}/swagger-ui.css",
        swagger_favicon_url=f"{APP_STATIC_URL}/favicon.svg",
        swagger_ui_parameters={"docExpansion": "list", "tryItOutEnabled": False},
    )


@router.get(SWAGGER_URL + "/{name}")
def swagger_asset(name: str, _: ReadKey) -> FileResponse:
    """Swagger UI's files (pinned copy, see its VERSION), only the ones /docs uses."""
    if name not in SWAGGER_FILES:
        raise NotFound(f"no asset {name!r}")
    return FileResponse(SWAGGER_DIR / name, headers={"Cache-Control": "private, max-age=86400"})
