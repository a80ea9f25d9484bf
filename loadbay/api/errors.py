"""Error rendering: every failure in its surface's envelope, chosen by path prefix.

The default envelope is `{"error": {"code", "message", "details"?}}`; a surface with its own
contract registers another (see `install_error_handlers`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException
from starlette.responses import PlainTextResponse

from loadbay.api.responses import json_response
from loadbay.errors import LoadbayError

log = logging.getLogger("loadbay.api")

# (status, code, message, details) -> (status, body)
Envelope = Callable[[int, str, str, Any], tuple[int, Any]]


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    error: ErrorDetail


def default_envelope(status: int, code: str, message: str, details: Any) -> tuple[int, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return status, {"error": error}


def error_responses(*statuses: int, model: type[BaseModel] = ErrorBody) -> dict[int | str, Any]:
    """OpenAPI `responses` entries for the error statuses a route can answer."""
    return {status: {"model": model, "description": "Error"} for status in statuses}


def render_error(
    app: Any,
    path: str,
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> Response:
    envelopes: Sequence[tuple[str, Envelope]] = app.state.envelopes
    envelope = next((e for prefix, e in envelopes if path.startswith(prefix)), default_envelope)
    status, body = envelope(status, code, message, details)
    if isinstance(body, str):
        return PlainTextResponse(body, status_code=status, headers=headers)
    return json_response(body, status_code=status, headers=headers)


def render_domain_error(app: Any, path: str, error: LoadbayError) -> Response:
    return render_error(
        app, path, error.status_code, error.code, error.message, error.details, error.headers
    )


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoadbayError)
    return render_domain_error(request.app, request.url.path, exc)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = [
        {"field": ".".join(str(p) for p in e["loc"][1:]) or str(e["loc"][0]), "message": e["msg"]}
        for e in exc.errors()
    ]
    message = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
    return render_error(request.app, request.url.path, 422, "invalid_parameter", message, problems)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    code = codes.get(exc.status_code, "http_error")
    return render_error(
        request.app, request.url.path, exc.status_code, code, str(exc.detail), None, exc.headers
    )


async def _database_error(request: Request, exc: Exception) -> Response:
    if not is_database_outage(exc):
        return await _unexpected_error(request, exc)
    # The pool drops the connections that broke; the next request opens new ones.
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
    return render_outage(request.app, request.url.path)


# SQLite's primary result codes for a database it cannot use right now (busy, locked, I/O,
# full, cannot open), as opposed to a statement that is wrong.
_SQLITE_OUTAGES = {5, 6, 10, 13, 14}


def is_database_outage(exc: BaseException) -> bool:
    """A lost, refused or exhausted database connection, as opposed to a bug in a statement."""
    if isinstance(exc, PoolTimeout):
        return True
    if not isinstance(exc, DBAPIError):
        return isinstance(exc, ConnectionError | TimeoutError)
    if exc.connection_invalidated:
        return True
    code = getattr(exc.orig, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _SQLITE_OUTAGES
    return isinstance(exc, InterfaceError | OperationalError)


def render_outage(app: Any, path: str) -> Response:
    return render_error(
        app,
        path,
        503,
        "database_unavailable",
        "the database cannot be reached right now; nothing of this request was stored, retry it",
        headers={"Retry-After": "1"},
    )


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return render_error(request.app, request.url.path, 500, "internal_error", "internal error")


def install_error_handlers(app: FastAPI, envelopes: Sequence[tuple[str, Envelope]]) -> None:
    app.state.envelopes = list(envelopes)
    app.add_exception_handler(LoadbayError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(PoolTimeout, _database_error)
    app.add_exception_handler(ConnectionError, _database_error)
    app.add_exception_handler(Exception, _unexpected_error)
