"""Errors as JSON: every failure the API answers is ``{"error": "...", "detail": ...}``.

Invalid input (a bad limit, a malformed body, an unknown field) is a 422 that names each
problem; an unknown task, run or schedule a 404; a store that cannot be reached a 503. A bug
is logged with its traceback and answered with a 500 that says no more than that.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from wellkept.api.models import ErrorBody
from wellkept.errors import StoreError, UsageError
from wellkept.redact import redact

log = logging.getLogger("wellkept.api")

#: the methods that change nothing, and need no token
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")

def _json_error(description: str) -> dict[str, Any]:
    """An error answer for the OpenAPI document: always JSON, whatever the route serves when
    it succeeds (the dashboard's HTML, a report's CSV)."""
    return {"description": description,
            "content": {"application/json": {"schema": ErrorBody.model_json_schema()}}}


#: the answers every route may give besides its own, for the OpenAPI document
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: _json_error("invalid input: each problem is named"),
    503: _json_error("the state store cannot be reached, or the server is shutting down"),
}
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _json_error("no valid Authorization: Bearer token"),
    403: _json_error("the server has no api.tokens (read-only)"),
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: _json_error("no such task, run or schedule"),
}


def bad_request(description: str) -> dict[int | str, dict[str, Any]]:
    return {400: _json_error(description)}


def error(status: int, message: str, detail: list[dict[str, Any]] | None = None,
          headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": redact(message)}
    if detail is not None:
        body["detail"] = detail
    return JSONResponse(body, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    """Register the handlers that turn exceptions into JSON answers."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        if request.method not in SAFE_METHODS:
            # the body was read before the token was checked: a caller without a valid
            # token learns nothing about what its body should have been
            refused = request.app.state.wellkept.tokens.refusal(request)
            if refused is not None:
                return error(refused.status_code, str(refused.detail), headers=refused.headers)
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()))
            problems.append({"loc": where, "msg": err.get("msg", ""),
                             "type": err.get("type", "")})
        summary = "; ".join(f"{p['loc']}: {p['msg']}" for p in problems[:5])
        return error(422, f"invalid request: {summary}", jsonable_encoder(problems))

    @app.exception_handler(UsageError)
    async def usage(_request: Request, exc: UsageError) -> JSONResponse:
        return error(400, str(exc))

    @app.exception_handler(StoreError)
    async def store_error(_request: Request, exc: StoreError) -> JSONResponse:
        return error(503, str(exc))

    @app.exception_handler(DBAPIError)
    async def store_gone(_request: Request, exc: DBAPIError) -> JSONResponse:
        log.error("the state store failed: %s", redact(str(exc.orig)).splitlines()[0])
        return error(503, "the state store cannot be reached")

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return error(500, "internal error (logged by the server)")


def not_found(what: str) -> HTTPException:
    return HTTPException(404, what)
