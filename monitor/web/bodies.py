"""The route class of every router: one way a JSON body is decoded, and one worker thread per request.

JSON: bounded depth, no NUL character.

`json.loads` recurses once per level and raises RecursionError near 1,000 levels (a 500 before); what
it returns may then be walked again by the validators. Bodies of this service are a few levels deep, so a
body deeper than MAX_DEPTH is refused as invalid JSON (422) without going further. A NUL character is
refused too: PostgreSQL cannot store it in text, and no person types one.

Threads: a route written as a plain `def` (it uses the synchronous database session) runs in one worker
thread, whole, and closes its session there before it returns. FastAPI would run such a route in a thread,
then validate its answer in another and close the session in a third: each hop is two thread wake-ups and
a GIL hand-over, measured here (bench/bench_api.py) at 0.2-0.3 ms of CPU each, more than the query.

Every router is an `api_router(...)` (a test checks that no route escapes it).
"""

from __future__ import annotations

import functools
import inspect
import json
import os
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.routing import Match
from starlette.types import Scope

from monitor.errors import MonitorError

MAX_DEPTH = 32


class BodyRefused(MonitorError, json.JSONDecodeError):
    """A JSON body refused for its shape (too deep, a NUL), reported like any invalid JSON."""

    def __init__(self, why: str, document: str) -> None:
        super().__init__(why, document, 0)


def decode_json(body: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """Decode JSON, refusing nesting deeper than `max_depth` and NUL characters (BodyRefused)."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    try:
        value = json.loads(text)
    except RecursionError:
        raise BodyRefused(f"nested deeper than {max_depth} levels", text[:100]) from None
    _check(value, max_depth, text)
    return value


def _check(value: Any, max_depth: int, text: str) -> None:
    # Iterative: the walk itself must not be the recursion it guards against.
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise BodyRefused("a NUL character is not allowed in text", text[:100])
        elif isinstance(item, dict | list):
            if depth > max_depth:
                raise BodyRefused(f"nested deeper than {max_depth} levels", text[:100])
            if isinstance(item, dict):
                pending.extend((k, depth) for k in item)
                pending.extend((v, depth + 1) for v in item.values())
            else:
                pending.extend((v, depth + 1) for v in item)


class CheckedJsonRequest(Request):
    """A request whose `json()` is `decode_json`."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = decode_json(await self.body())
        return self._json


def in_one_thread(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """A plain `def` endpoint as a coroutine that runs it in one worker thread and closes its sessions there."""

    @functools.wraps(endpoint)  # FastAPI reads the signature (and its annotations' module) through __wrapped__
    async def run(*args: Any, **kwargs: Any) -> Any:
        def work() -> Any:
            try:
                return endpoint(*args, **kwargs)
            finally:
                for value in kwargs.values():
                    if isinstance(value, Session):
                        value.close()  # its connection back to the pool before the answer is sent

        return await run_in_threadpool(work)

    return run


class CheckedRoute(APIRoute):
    """A route that reads its JSON body through `decode_json`, and runs a plain `def` endpoint in one thread."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if not inspect.iscoroutinefunction(endpoint):
            endpoint = in_one_thread(endpoint)
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def checked(request: Request) -> Response:
            return await handler(CheckedJsonRequest(request.scope, request.receive))

        return checked


class PrefixedRouter(APIRouter):
    """An APIRouter that says "not mine" at once for a path outside the common prefix of its routes.

    FastAPI (0.16x) matches a request against each included router in turn, and each router against every one
    of its routes (a regular expression each): a page, included after the API's routers, was tried against
    every API route first (7 % of a ticket page's time, bench/bench_ui.py). No route of a router can match a
    path outside their common prefix, fully or partly (a partial match is a path that matches with another
    method), so answering NONE for it changes nothing but the time.
    """

    _prefix_for: tuple[int, str] = (-1, "")

    def _common_prefix(self) -> str:
        count, prefix = self._prefix_for
        if count != len(self.routes):  # routes added since: work it out again
            paths = [str(getattr(route, "path_format", None) or getattr(route, "path", "")) for route in self.routes]
            # by characters (os.path.commonpath would refuse a route path ""): any prefix of every path will do
            prefix = os.path.commonprefix(paths).split("{")[0] if paths else ""  # noqa: RUF071 (by characters, on purpose)
            self._prefix_for = (len(self.routes), prefix)
        return prefix

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        prefix = self._common_prefix()
        if prefix and not scope.get("root_path") and not scope.get("path", "").startswith(prefix):
            return Match.NONE, {}
        return super().matches(scope)


def api_router(**options: Any) -> APIRouter:
    """An APIRouter whose routes decode JSON the one way (and that matches only within its routes' prefix)."""
    return PrefixedRouter(route_class=CheckedRoute, **options)
