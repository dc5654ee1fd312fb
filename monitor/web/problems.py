"""Errors as HTTP answers, in one place: RFC 9457 problem details, never a stack trace."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from monitor.errors import Conflict, DatabaseNotMigrated, InvalidInput, MonitorError, NotFound

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"


def problem(
    status: int, title: str, detail: str, headers: Mapping[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """A problem-details response."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field_name(loc: tuple[Any, ...]) -> str:
    # ("query", "limit") -> "limit"; ("body", "items", 3, "code") -> "items.3.code"
    parts = [str(p) for p in loc[1:]] if loc and loc[0] in {"query", "path", "body", "header"} else map(str, loc)
    return ".".join(parts) or "request"


def install_problem_handlers(app: FastAPI) -> None:
    """Route every error raised on purpose, and every unexpected one, to a problem-details answer."""

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": _field_name(tuple(e["loc"])), "reason": e["msg"]} for e in exc.errors()]
        fields = ", ".join(sorted({e["field"] for e in errors}))
        return problem(422, "Invalid request", f"invalid value for: {fields}", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail), str(exc.detail), headers=exc.headers)

    @app.exception_handler(NotFound)
    async def _not_found(_request: Request, exc: NotFound) -> JSONResponse:
        return problem(404, "Not found", str(exc))

    @app.exception_handler(Conflict)
    async def _conflict(_request: Request, exc: Conflict) -> JSONResponse:
        allowed = getattr(exc, "allowed", None)  # an invalid ticket transition lists the allowed actions
        if allowed is not None:
            return problem(409, "Conflict", str(exc), allowed=[str(a) for a in allowed])
        return problem(409, "Conflict", str(exc))

    @app.exception_handler(InvalidInput)
    async def _invalid_input(_request: Request, exc: InvalidInput) -> JSONResponse:
        errors = [{"field": p.field, "reason": p.reason, "line": p.line} for p in exc.problems]
        return problem(422, "Invalid input", str(exc), errors=errors)

    @app.exception_handler(DatabaseNotMigrated)
    async def _not_migrated(_request: Request, exc: DatabaseNotMigrated) -> JSONResponse:
        return problem(503, "Database not migrated", str(exc))

    @app.exception_handler(OperationalError)
    async def _database_down(_request: Request, exc: OperationalError) -> JSONResponse:
        log.error("database unavailable: %s", exc.orig)
        return problem(503, "Database unavailable", "the database cannot be reached; try again shortly")

    @app.exception_handler(MonitorError)
    async def _other(_request: Request, exc: MonitorError) -> JSONResponse:
        return problem(400, "Bad request", str(exc))

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return problem(500, "Internal error", "an unexpected error happened; it has been logged")
