"""Dependencies shared by the routers: the session, the settings, look-ups that 404."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from monitor.auth.models import Role, User
from monitor.auth.service import Scope, session_user
from monitor.config import Settings


def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


# The database is synchronous (SQLAlchemy's Session): every route that uses it is a plain `def`, run whole in
# one worker thread that also closes the session (monitor.web.bodies.CheckedRoute), so that a slow query, a
# locked SQLite file or an empty pool never stops the event loop (which then could not even answer /healthz
# or take a signal). Creating the Session does no I/O; closing one that still holds a connection does (a
# rollback), so that happens in a thread too. scope="function": the connection goes back to the pool when
# the route returns, not after a slow client has read the answer.
async def get_session(engine: Annotated[Engine, Depends(get_engine)]) -> AsyncIterator[Session]:
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
    finally:
        if session.in_transaction():
            await run_in_threadpool(session.close)
        else:
            session.close()


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]


# --- who is asking ------------------------------------------------------------------------------

SESSION_COOKIE = "monitor_session"
CSRF_HEADER = "X-CSRF-Token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Principal:
    """The signed-in user of a request and what they may see."""

    user: User
    scope: Scope

    @property
    def role(self) -> Role:
        return self.scope.role


async def get_principal(request: Request, session: SessionDep) -> Principal:
    """The signed-in user, from a bearer token (API clients) or the session cookie (browsers).

    A cookie-authenticated request that changes something must echo the session's CSRF token in the
    X-CSRF-Token header; a bearer token is not sent by browsers on their own, so it needs none.
    """
    header = request.headers.get("authorization", "")
    from_cookie = False
    if header.lower().startswith("bearer "):
        token = header[7:].strip()
    else:
        token = request.cookies.get(SESSION_COOKIE, "")
        from_cookie = True
    found = await run_in_threadpool(session_user, token, session=session) if token else None
    if found is None:
        raise HTTPException(401, "sign in first", headers={"WWW-Authenticate": "Bearer"})
    user, user_session = found
    if from_cookie and request.method not in _SAFE_METHODS:
        given = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(given, user_session.csrf_token):
            raise HTTPException(403, "missing or wrong CSRF token")
    return Principal(user, Scope.of(user))


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_roles(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that lets only these roles through (403 for the others)."""

    async def check(principal: PrincipalDep) -> Principal:
        if principal.role not in roles:
            raise HTTPException(403, f"this needs one of the roles: {', '.join(r.value for r in roles)}")
        return principal

    return check
