"""The web process's guard at the door: what a request must satisfy before any of the app's work starts.

    client ──► uvicorn (header deadline: monitor.web.serving) ──► RequestGuard ──► FastAPI routes
                                                                   │
               request id · NUL in URL refused · body read here, capped and timed · a turn per address

The body is read *here*, in full, before the route runs: a route (and its database connection, its worker
thread) never waits on the network. A body larger than the cap is refused with 413 while it streams in,
before it is parsed; a client that pauses too long or takes too long is cut off (408). Each address may
take over a second to send a bounded number of bodies at once, and have a bounded number of requests worked
on at once (the others wait their turn, at most `web_queue_timeout_s`, then 503): one client cannot hold
more than a share of the worker threads, whatever it does. Every answer carries `X-Request-ID`; an
unexpected error is logged once, with that id, and answered with a problem that carries it too.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from monitor.web.problems import REQUEST_ID, problem

log = logging.getLogger(__name__)
_GIVEN_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
UNGUARDED_PATHS = frozenset({"/healthz"})
SLOW_AFTER_S = 1.0  # a body that takes longer than this counts among its address's slow senders


@dataclass(frozen=True, slots=True)
class GuardLimits:
    """The guard's numbers (from the settings, `web_*`)."""

    max_body_bytes: int
    max_upload_bytes: int
    body_idle_timeout_s: float
    body_timeout_s: float
    client_max_receiving: int
    client_max_active: int
    queue_timeout_s: float


class _BodyTooLarge(Exception):
    pass


class _BodyTimeout(Exception):
    pass


class _ClientGone(Exception):
    pass


class _TooManySlow(Exception):
    pass


class _Turns:
    """One address's turns: how many of its requests are worked on at once."""

    __slots__ = ("semaphore", "users")

    def __init__(self, size: int) -> None:
        self.semaphore = asyncio.Semaphore(size)
        self.users = 0


class RequestGuard:
    """Pure ASGI middleware; see the module's docstring."""

    def __init__(self, app: ASGIApp, *, limits: GuardLimits, is_upload: Callable[[str, str], bool]) -> None:
        self.app = app
        self.limits = limits
        self.is_upload = is_upload
        self._receiving: dict[str, int] = {}
        self._turns: dict[str, _Turns] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        token = REQUEST_ID.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self._guarded(scope, receive, send_with_id)
        except asyncio.CancelledError:
            # The server is stopping and its grace is over (uvicorn cancels what still runs): say so, and end
            # the request here rather than as an "Exception in ASGI application" with a traceback.
            log.warning("stopping: %s %s (request %s) cut short", scope.get("method"), scope.get("path"), request_id)
            if not started:
                stopping = problem(
                    503, "Stopping", "the service is restarting; try again shortly", headers={"Retry-After": "5"}
                )
                await _answer(send_with_id, stopping, close=True)
        except Exception as exc:  # the one place an unexpected error is logged (once) and answered
            log.error(
                "unexpected error in %s %s (request %s)",
                scope.get("method"),
                scope.get("path"),
                request_id,
                exc_info=exc,
            )
            if not started:
                await _answer(
                    send_with_id,
                    problem(500, "Internal error", f"an unexpected error happened; it has been logged as {request_id}"),
                )
        finally:
            REQUEST_ID.reset(token)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        fields = _fields_with_nul(path, scope.get("query_string", b""))
        if fields:
            errors = [{"field": f, "reason": "a NUL character is not allowed"} for f in fields]
            detail = f"invalid value for: {', '.join(fields)}"
            await _answer(send, problem(422, "Invalid request", detail, errors=errors))
            return
        method: str = scope.get("method", "GET")
        limit = self.limits.max_upload_bytes if self.is_upload(method, path) else self.limits.max_body_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _answer(send, _too_large(limit), close=True)
            return
        client = _client(scope)
        if declared == 0 or (declared is None and not _chunked(scope)):
            body = b""  # nothing to wait for
            message = await receive()
            if message["type"] == "http.disconnect":
                return
        else:
            try:
                deadline = self.limits.body_timeout_s * (5 if limit == self.limits.max_upload_bytes else 1)
                body = await self._read_body(client, receive, limit, deadline)
            except _BodyTooLarge:
                await _answer(send, _too_large(limit), close=True)
                return
            except _TooManySlow:
                why = "too many requests of this address are sending their bodies slowly"
                await _answer(send, _busy(why), close=True)
                return
            except _BodyTimeout:
                log.info("cut off %s: its request body did not arrive in time (%s %s)", client, method, path)
                await _answer(
                    send, problem(408, "Request timeout", "the request body did not arrive in time"), close=True
                )
                return
            except _ClientGone:
                log.info("%s went away while sending %s %s", client, method, path)
                return
        if path in UNGUARDED_PATHS:  # answered on the event loop at once; must answer while clients queue
            await self.app(scope, _replay(body, receive), send)
            return
        turns = self._turns.get(client)
        if turns is None:
            turns = self._turns[client] = _Turns(self.limits.client_max_active)
        turns.users += 1
        try:
            try:
                async with asyncio.timeout(self.limits.queue_timeout_s):
                    await turns.semaphore.acquire()
            except TimeoutError:
                await _answer(send, _busy("this address has too many requests being worked on"))
                return
            try:
                await self.app(scope, _replay(body, receive), send)
            finally:
                turns.semaphore.release()
        finally:
            turns.users -= 1
            if not turns.users:
                del self._turns[client]

    async def _read_body(self, client: str, receive: Receive, limit: int, deadline_s: float) -> bytes:
        """The whole body, within the deadlines. A body still arriving after SLOW_AFTER_S takes one of its
        address's places among slow senders (a fast client never does), refused beyond the cap."""
        chunks: list[bytes] = []
        size = 0
        began = last = time.monotonic()
        ends_at = began + deadline_s
        counted = False
        try:
            while True:
                now = time.monotonic()
                if now >= ends_at or now - last >= self.limits.body_idle_timeout_s:
                    raise _BodyTimeout
                if not counted and now - began >= SLOW_AFTER_S:
                    slow = self._receiving.get(client, 0)
                    if slow >= self.limits.client_max_receiving:
                        raise _TooManySlow
                    self._receiving[client] = slow + 1
                    counted = True
                wake = min(ends_at, last + self.limits.body_idle_timeout_s)
                if not counted:
                    wake = min(wake, began + SLOW_AFTER_S)
                try:
                    async with asyncio.timeout(max(0.0, wake - now)):
                        message = await receive()
                except TimeoutError:
                    continue
                if message["type"] == "http.disconnect":
                    raise _ClientGone
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise _BodyTooLarge
                chunks.append(chunk)
                last = time.monotonic()
                if not message.get("more_body", False):
                    return b"".join(chunks)
        finally:
            if counted:
                left = self._receiving[client] - 1
                if left:
                    self._receiving[client] = left
                else:
                    del self._receiving[client]


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, then the client's own receive (which tells a disconnect)."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _fields_with_nul(path: str, query: bytes) -> list[str]:
    """The parts of the address holding a NUL character (PostgreSQL cannot store one; nobody types one)."""
    found = ["path"] if "\x00" in path else []
    if b"%00" in query.lower() or b"\x00" in query:
        pairs = urllib.parse.parse_qsl(query.decode("latin-1"), keep_blank_values=True)
        found += sorted({name for name, value in pairs if "\x00" in name or "\x00" in value})
    return found


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            given: str = value.decode("latin-1")
            if _GIVEN_ID.match(given):
                return given
            break
    return uuid.uuid4().hex[:16]


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def _chunked(scope: Scope) -> bool:
    return any(name == b"transfer-encoding" for name, _value in scope.get("headers", ()))


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "-"


def _too_large(limit: int) -> Any:
    return problem(413, "Payload too large", f"the request body is larger than {limit:,} bytes")


def _busy(why: str) -> Any:
    return problem(503, "Service busy", f"{why}; try again shortly", headers={"Retry-After": "2"})


async def _answer(send: Send, response: Any, *, close: bool = False) -> None:
    """Send a complete small response (a problem) without involving the app."""
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()]
    if close:  # the rest of a refused body is not read: the connection cannot be reused
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})
