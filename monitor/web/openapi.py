"""The OpenAPI document tells the truth: every status a route can answer, with the problem-details schema.

FastAPI documents a route's success and its own 422 (`HTTPValidationError`, a shape this service never
sends). Here, once the routes are known, every operation's errors are documented as they are answered
(monitor.web.problems, monitor.web.guard): `application/problem+json` with the `Problem` schema, for

- every operation: 422 (a NUL in the path or query, a value out of bounds), 500 (a defect, logged with the
  request id), 503 with Retry-After (database busy or away, every connection in use, this address's turn
  not come);
- an operation with a body: 408 (the body did not arrive in time), 413 (larger than the cap);
- an operation of a signed-in user: 401; of some roles only, or changing something (the CSRF token of a
  cookie session): 403; with a path parameter (a look-up, scoped to the district): 404;
- and what a route declares itself with `responses=problems(409, ...)`.

Starlette answers a method a path does not take with the `Allow` of the first route of that path only
(GET of `/channels/{id}` when PATCH and DELETE are other routes): `install_openapi` also completes a 405's
`Allow` with every method of the path, in the error handler, so that the requests that do find their route
pay nothing for it (a route per path put first, as before, cost every request 69 regular expressions).
"""

from __future__ import annotations

import inspect
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import compile_path

from monitor.web.deps import get_principal
from monitor.web.problems import PROBLEM_JSON

DESCRIPTIONS = {
    400: "Bad request: the body cannot be read (e.g. invalid multipart data)",
    401: "Not signed in, or a wrong token (`WWW-Authenticate: Bearer`)",
    403: "Not allowed for this role, or a cookie session without its CSRF token",
    404: "No such thing, or not in your district",
    408: "The request body did not arrive in time",
    409: "Conflicts with the current state (an invalid transition lists the `allowed` actions)",
    413: "The request body is larger than allowed",
    422: "Invalid request: `errors` names every field and why (NUL characters, bounds, formats)",
    429: "Too many requests or failures for a while; try again later",
    500: "An unexpected error (a defect); logged with the `request_id`",
    502: "The peer (a notification channel) did not accept the message",
    503: "Busy or unavailable (database busy or away, no free connection); see `Retry-After`",
}
_EVERY_OPERATION = (422, 500, 503)
_WITH_BODY = (408, 413)
_SAFE = frozenset({"get", "head", "options"})


class FieldError(BaseModel):
    """One refused field: where and why (`line` for a row of an imported file)."""

    field: str
    reason: str
    line: int | None = None


class Problem(BaseModel):
    """RFC 9457 problem details, as every error of this service is answered (`application/problem+json`)."""

    type: str = Field(default="about:blank")
    title: str
    status: int = Field(ge=400, le=599)
    detail: str
    request_id: str = Field(description="quote it: the operator finds the log line by it (also `X-Request-ID`)")
    errors: list[FieldError] | None = Field(default=None, description="422: every field refused and why")
    allowed: list[str] | None = Field(default=None, description="409 of a ticket transition: the allowed actions")


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: these statuses, answered as problems."""
    return {status: {"description": DESCRIPTIONS[status]} for status in statuses}


def _calls(route: RouteContext) -> set[str]:
    names: set[str] = set()
    pending = [route.dependant]
    while pending:
        dependant = pending.pop()
        if dependant.call is not None:
            names.add(getattr(dependant.call, "__qualname__", ""))
        pending.extend(dependant.dependencies)
    return names


def _statuses(route: RouteContext, method: str, operation: dict[str, Any]) -> set[int]:
    calls = _calls(route)
    found = set(_EVERY_OPERATION)
    if "requestBody" in operation:
        found |= set(_WITH_BODY)
    if get_principal.__qualname__ in calls:
        found.add(401)
        if method not in _SAFE or any(name.startswith("require_roles.") for name in calls):
            found.add(403)
    if route.param_convertors:
        found.add(404)
    return found


def _document(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes, tags=app.openapi_tags
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components.update(Problem.model_json_schema(ref_template="#/components/schemas/{model}").pop("$defs", {}))
    components["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    problem_content = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for route in _api_routes(app):
        if not route.include_in_schema:
            continue
        for method in route.methods or ():
            operation = schema["paths"].get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            for status in _statuses(route, method.lower(), operation) | {int(s) for s in responses if s.isdigit()}:
                if status < 400:
                    continue
                answer = responses.setdefault(str(status), {})
                answer["description"] = answer.get("description") or DESCRIPTIONS.get(status, "A problem")
                if status == 422 and answer["description"] == "Validation Error":
                    answer["description"] = DESCRIPTIONS[422]
                answer["content"] = problem_content
                if status == 503:
                    answer["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}
    return schema


def _api_routes(app: FastAPI) -> list[RouteContext]:
    return [r for r in iter_route_contexts(app.routes) if isinstance(r.original_route, APIRoute)]


def _fix_allow(app: FastAPI) -> None:
    by_path: dict[str, set[str]] = {}
    for route in _api_routes(app):
        if route.path_format is not None:
            by_path.setdefault(route.path_format, set()).update(route.methods or ())
    # A concrete path before a templated one that also matches it (OpenAPI's rule): `/tickets/bulk` is the bulk
    # action's (POST), not `/tickets/{code}`'s (GET).
    concrete_first = sorted(by_path, key=lambda path: (path.count("{"), -len(path)))
    allow = [(compile_path(path)[0], ", ".join(sorted(by_path[path]))) for path in concrete_first]
    answer = app.exception_handlers[StarletteHTTPException]

    async def method_not_allowed(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 405:
            path = request.url.path.removeprefix(request.scope.get("root_path", ""))
            methods = next((methods for regex, methods in allow if regex.match(path)), None)
            if methods is not None:
                exc = StarletteHTTPException(405, exc.detail, headers={**(exc.headers or {}), "Allow": methods})
        answered = answer(request, exc)
        return await answered if inspect.isawaitable(answered) else answered

    app.add_exception_handler(StarletteHTTPException, method_not_allowed)


def install_openapi(app: FastAPI) -> None:
    """Document every operation's problems (see the module), and a true `Allow` on 405. Call it last."""
    _fix_allow(app)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
