"""One error envelope for every failure: ``{"error": {"code", "message", "errors": [...]}}``.

Bad input always gets a 4xx that says which row, which field and why; anything unexpected is
logged with its traceback and answered with a 500 that leaks nothing.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

import duckdb
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from monitor.errors import DiskFull, LoopwatchError, is_disk_full

log = logging.getLogger("loopwatch.api")


def error_body(code: str, message: str, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if errors:
        body["errors"] = errors
    return {"error": body}


class ApiError(Exception):
    """An HTTP error raised by the API layer itself (auth, limits)."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


class LoginRequired(Exception):
    """A browser asked for a page without a session: send it to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def disk_full_message() -> str:
    return (
        "the server's disk is full: nothing from this request was written; "
        f"retry after {DiskFull.RETRY_AFTER_SECONDS} s, once an operator has freed space"
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LoopwatchError)
    async def _domain(request: Request, exc: LoopwatchError) -> JSONResponse:
        headers = None
        if isinstance(exc, DiskFull):
            request.app.state.disk_full = exc.message
            headers = {"Retry-After": str(DiskFull.RETRY_AFTER_SECONDS)}
        return JSONResponse(
            error_body(exc.code, exc.message, [e.to_dict() for e in exc.errors]),
            status_code=exc.status,
            headers=headers,
        )

    async def _io(request: Request, exc: Exception) -> JSONResponse:
        """A full disk on any write path is a 507 the client can retry, not a 500."""
        if is_disk_full(exc):
            log.error("write refused on %s %s: the disk is full (%s)", request.method, request.url.path, exc)
            return await _domain(request, DiskFull(disk_full_message()))
        return await _unexpected(request, exc)

    app.add_exception_handler(OSError, _io)
    app.add_exception_handler(duckdb.Error, _io)

    @app.exception_handler(LoginRequired)
    async def _login(_: Request, exc: LoginRequired) -> RedirectResponse:
        return RedirectResponse(f"/login?next={quote(exc.next_path, safe='')}", status_code=303)

    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        about_body = False
        for err in exc.errors():
            about_body |= tuple(err.get("loc", ()))[:1] == ("body",)
            loc = [str(p) for p in err.get("loc", ()) if p != "body"]
            errors.append({"field": ".".join(loc) or "(body)", "reason": err.get("msg", "invalid")})
        message = "request is not valid"
        content_type = request.headers.get("content-type", "")
        if about_body and "json" not in content_type.lower():
            # curl -d sends a form by default: say what is wrong instead of "field required"
            message += (
                f": the body must be JSON sent with 'Content-Type: application/json' "
                f"(this request had {content_type or 'no Content-Type'})"
            )
        return JSONResponse(error_body("invalid_input", message, errors), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
            exc.status_code, "http_error"
        )
        return JSONResponse(
            error_body(code, str(exc.detail)), status_code=exc.status_code, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(
            error_body("internal_error", "internal error; the server log has the details"), status_code=500
        )
