"""`Idempotency-Key` on the API's changes: the same action sent twice is applied once (see
monitor/auth/idempotency.py for why and how keys are kept).

A pure ASGI middleware, inside the request guard: for a POST, PUT, PATCH or DELETE under /api/ that carries the
header and a credential (bearer token or session cookie), it claims the key before the route runs, stores the
answer after, and answers a repeat with the stored answer (`Idempotent-Replayed: true`). A repeat that arrives
while the first is still being answered gets 409 with Retry-After; a key reused for another method or path is
a 422. Requests without the header are untouched.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from monitor.auth.idempotency import MAX_KEY_LENGTH, claim, complete, key_hash, release
from monitor.db import utcnow
from monitor.web.deps import SESSION_COOKIE
from monitor.web.problems import PROBLEM_JSON, REQUEST_ID, database_unavailable

HEADER = b"idempotency-key"
CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _credential(headers: dict[bytes, bytes]) -> str | None:
    authorization = headers.get(b"authorization", b"").decode("latin-1")
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip() or None
    for part in headers.get(b"cookie", b"").decode("latin-1").split(";"):
        name, _, value = part.strip().partition("=")
        if name == SESSION_COOKIE and value:
            return value
    return None


async def _answer(send: Send, status: int, body: bytes, content_type: str, extra: list[tuple[bytes, bytes]]) -> None:
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _problem(
    send: Send, status: int, title: str, detail: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, "request_id": REQUEST_ID.get()}
    await _answer(send, status, json.dumps(body).encode(), PROBLEM_JSON, extra or [])


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in CHANGES or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        raw_key = headers.get(HEADER)
        credential = _credential(headers)
        if raw_key is None or credential is None:
            await self.app(scope, receive, send)
            return
        key = raw_key.decode("latin-1").strip()
        if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
            await _problem(send, 422, "Invalid Idempotency-Key", f"a key of 1 to {MAX_KEY_LENGTH} printable characters")
            return
        engine = scope["app"].state.engine
        hashed = key_hash(key, credential)
        method, path = scope["method"], scope["path"]
        try:
            stored = await run_in_threadpool(claim, engine, hashed, method=method, path=path, now=utcnow())
        except (OperationalError, PoolTimeout) as exc:  # the database away: a 503 like a route's, not a 500
            await database_unavailable(scope["app"], exc)(scope, receive, send)
            return
        if stored is not None:
            if (stored.method, stored.path) != (method, path):
                await _problem(send, 422, "Idempotency-Key reused", "this key was sent with another request")
            elif stored.status_code is None:
                await _problem(
                    send,
                    409,
                    "Still being answered",
                    "the same action is being applied; ask again shortly",
                    [(b"retry-after", b"2")],
                )
            else:
                await _answer(
                    send,
                    stored.status_code,
                    stored.body or b"",
                    stored.content_type or "application/json",
                    [(b"idempotent-replayed", b"true")],
                )
            return

        answer: dict[str, Any] = {"status": None, "type": None, "body": bytearray()}

        async def keep(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                for name, value in message.get("headers", []):
                    if name.lower() == b"content-type":
                        answer["type"] = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                answer["body"].extend(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, keep)
        except BaseException:
            await run_in_threadpool(release, engine, hashed)
            raise
        try:
            if answer["status"] is None:
                await run_in_threadpool(release, engine, hashed)
                return
            await run_in_threadpool(
                complete,
                engine,
                hashed,
                status_code=answer["status"],
                content_type=answer["type"],
                body=bytes(answer["body"]),
            )
        except (OperationalError, PoolTimeout) as exc:
            # The database went away after the answer was sent: the key stays claimed, and a copy sent later
            # takes it over once the claim is abandoned (monitor.auth.idempotency.ABANDONED_AFTER).
            scope["app"].state.database_outage.failed(exc)
