"""Errors as HTTP answers, in one place: RFC 9457 problem details, never a stack trace.

Errors raised on purpose are mapped here; an unexpected one is logged once and answered by the guard at the
door (`monitor.web.guard`), which knows the request's id. Every problem body carries that id
(`request_id`), so that a person can quote it and the operator find the log line.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from monitor.errors import Conflict, DatabaseNotMigrated, InvalidInput, MonitorError, NotFound
from monitor.sealing import SealingRefused

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"
REQUEST_ID: ContextVar[str] = ContextVar("request_id", default="-")
RETRY_AFTER_S = 2  # the database busy or away: a short wait is the right advice
OUTAGE_REPEAT_S = 60.0  # while the database stays away, say so again at most this often


def problem(
    status: int, title: str, detail: str, headers: Mapping[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """A problem-details response."""
    body = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        **extra,
        "request_id": REQUEST_ID.get(),
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field_name(loc: tuple[Any, ...]) -> str:
    # ("query", "limit") -> "limit"; ("body", "items", 3, "code") -> "items.3.code"
    parts = [str(p) for p in loc[1:]] if loc and loc[0] in {"query", "path", "body", "header"} else map(str, loc)
    return ".".join(parts) or "request"


def _reason(error: Mapping[str, Any]) -> str:
    # A JSON body that cannot be decoded says why (its position, too deep, a NUL), not just "JSON decode error".
    context = error.get("ctx") or {}
    why = context.get("error") if isinstance(context, Mapping) else None
    message = str(error["msg"])
    return f"{message}: {why}" if why and str(why) not in message else message


def _try_again_shortly(title: str, why: str) -> JSONResponse:
    return problem(503, title, f"{why}; try again shortly", headers={"Retry-After": str(RETRY_AFTER_S)})


class DatabaseOutage:
    """The database's absence as one web process tells it: a line when requests start failing, a line a minute
    while they do, a line once a statement succeeds again; never a line per request, which a busy API (or
    thousands of devices' heartbeats) would turn into thousands during a restart."""

    def __init__(self, repeat_s: float = OUTAGE_REPEAT_S) -> None:
        self.repeat_s = repeat_s
        self.refused = 0  # requests answered 503 since the outage was told
        self._told = False
        self._since = 0.0
        self._last_said = -repeat_s
        self._lock = threading.Lock()  # requests fail on the worker threads

    def failed(self, exc: OperationalError) -> None:
        """A request could not reach the database (answered 503)."""
        now = time.monotonic()
        with self._lock:
            self.refused += 1
            if now - self._last_said < self.repeat_s:
                return
            first, self._told, self._last_said = not self._told, True, now
            if first:
                self._since = now
            refused, lasted = self.refused, now - self._since
        if first:
            reason = (str(exc.orig or exc).splitlines() or ["?"])[0][:300]
            log.error("database unavailable: %s; answering 503 until it is back", reason)
        else:
            log.error("database still unavailable: %d requests answered 503 in %.0f s", refused, lasted)

    def answered(self, *_args: object) -> None:
        """A statement succeeded (an engine's `after_cursor_execute` event)."""
        if not self._told:  # the usual case, on every statement: no lock taken
            return
        with self._lock:
            if not self._told:
                return
            refused, lasted = self.refused, time.monotonic() - self._since
            self.refused, self._told = 0, False
        log.warning("the database answers again: %d requests were answered 503 over %.0f s", refused, lasted)


def database_unavailable(app: Any, exc: OperationalError | PoolTimeout) -> JSONResponse:
    """The answer to a request that could not reach the database, for the middlewares outside the routes'
    handlers (the Idempotency-Key's claim): the same 503 as a route's, told in the same outage report."""
    if isinstance(exc, PoolTimeout):
        log.warning("no free database connection within the pool timeout: answering 503")
        return _try_again_shortly("Service busy", "every database connection is in use")
    outage: DatabaseOutage = app.state.database_outage
    outage.failed(exc)
    return _try_again_shortly("Database unavailable", "the database is busy or cannot be reached")


def install_problem_handlers(app: FastAPI, engine: Engine | None = None) -> None:
    """Route every error raised on purpose, and every unexpected one, to a problem-details answer.

    With `engine`, the first statement that succeeds after the database was away ends the outage's report.
    """
    app.state.database_outage = DatabaseOutage()
    if engine is not None:
        event.listen(engine, "after_cursor_execute", app.state.database_outage.answered)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": _field_name(tuple(e["loc"])), "reason": _reason(e)} for e in exc.errors()]
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

    @app.exception_handler(SealingRefused)
    async def _cannot_seal(_request: Request, exc: SealingRefused) -> JSONResponse:
        # The deployment's gap, not the client's mistake: nothing the client sends would make it work.
        return problem(503, "Not configured to store secrets", str(exc))

    @app.exception_handler(DatabaseNotMigrated)
    async def _not_migrated(_request: Request, exc: DatabaseNotMigrated) -> JSONResponse:
        return problem(503, "Database not migrated", str(exc))

    @app.exception_handler(OperationalError)
    async def _database_down(request: Request, exc: OperationalError) -> JSONResponse:
        return database_unavailable(request.app, exc)

    @app.exception_handler(PoolTimeout)
    async def _no_connection(request: Request, exc: PoolTimeout) -> JSONResponse:
        return database_unavailable(request.app, exc)

    @app.exception_handler(ClientDisconnect)
    async def _client_gone(request: Request, _exc: ClientDisconnect) -> JSONResponse:
        # Not an error of the service: nobody is left to read the answer.
        log.info("the client went away during %s %s", request.method, request.url.path)
        return problem(400, "Client disconnected", "the client went away before the request was read")

    @app.exception_handler(MonitorError)
    async def _other(_request: Request, exc: MonitorError) -> JSONResponse:
        return problem(400, "Bad request", str(exc))
