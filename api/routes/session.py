"""Sign in with an API key (sets a session cookie) and the API docs page behind it.

Every endpoint but /healthz needs a key; a browser cannot send an Authorization header on a
page visit, so people sign in here once. The API reference (Swagger UI) is served from the
bundled assets, never a CDN, since loopwatch often runs behind firewalls.
"""

from __future__ import annotations

import html
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import swagger_ui_bundle
from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response

from api.deps import SESSION_COOKIE, ReadKey, ServiceDep

router = APIRouter(include_in_schema=False)
SWAGGER_DIR = Path(swagger_ui_bundle.swagger_ui_path)
SWAGGER_FILES = {"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"}

LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>loopwatch · sign in</title>
<link rel="icon" href="data:,">
<style>body{{font:16px system-ui,sans-serif;max-width:26rem;margin:12vh auto;padding:0 1rem;color:#1f2937}}
input{{width:100%;padding:.6rem;font:inherit;margin:.4rem 0 1rem;box-sizing:border-box}}
button{{padding:.6rem 1.2rem;font:inherit}} .err{{color:#b91c1c}}</style></head>
<body><h1>loopwatch</h1><p>Sign in with an API key (<code>loopwatch keys create --scope read</code>).</p>
{error}<form method="post" action="/login"><input type="hidden" name="next" value="{next}">
<label>API key<input name="key" type="password" autocomplete="off" autofocus required></label>
<button type="submit">Sign in</button></form></body></html>"""


def _safe_next(value: str | None) -> str:
    """Only local paths: never redirect a signed-in user to another site."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/docs"
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
def login_page(next: str | None = None) -> HTMLResponse:
    return HTMLResponse(LOGIN_PAGE.format(error="", next=html.escape(_safe_next(next))))


@router.post("/login")
async def login(request: Request, service: ServiceDep) -> Response:
    """Sign in. A browser always sends ``Origin`` (or at least ``Referer``) on a form POST; one
    naming another site is refused (403), so a page elsewhere cannot sign a visitor in."""
    if not _same_origin_form(request):
        return HTMLResponse(
            LOGIN_PAGE.format(error='<p class="err">Cross-site sign-in refused.</p>', next="/docs"), status_code=403
        )
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    key_text = (form.get("key") or [""])[0].strip()
    next_values = form.get("next")
    target = _safe_next(next_values[0] if next_values else None)
    key = service.keys.verify(key_text)
    if key is None:
        page = LOGIN_PAGE.format(error='<p class="err">That key is not valid.</p>', next=html.escape(target))
        return HTMLResponse(page, status_code=401)
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
        swagger_js_url="/assets/swagger/swagger-ui-bundle.js",
        swagger_css_url="/assets/swagger/swagger-ui.css",
        swagger_favicon_url="/assets/swagger/favicon-32x32.png",
    )


@router.get("/assets/swagger/{name}")
def swagger_asset(name: str, _: ReadKey) -> FileResponse:
    if name not in SWAGGER_FILES:
        return JSONResponse({"error": {"code": "not_found", "message": "no such asset"}}, status_code=404)  # type: ignore[return-value]
    return FileResponse(SWAGGER_DIR / name, headers={"Cache-Control": "private, max-age=86400"})
