"""Dependencies shared by the routers: the session, the settings, who is asking, and the one door to
district data (scoped look-ups that answer 404, and the scope of lists)."""

from __future__ import annotations

import functools
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, ParamSpec, TypeVar

from fastapi import Depends, HTTPException, Query, Request
from fastapi import Path as PathParam
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from monitor.alerts.models import AlertProblem, MaintenanceWindow
from monitor.alerts.rules import AlertRules
from monitor.alerts.service import get_problem, get_window
from monitor.auth.audit import Actor
from monitor.auth.models import Role, User
from monitor.auth.service import Scope, SignedIn, find_session, token_key
from monitor.auth.tokens import is_personal_token, token_user
from monitor.config import Settings
from monitor.db import utcnow
from monitor.generations import Generations
from monitor.health.queries import DeviceRow, get_device
from monitor.inventory.models import Commune
from monitor.inventory.service import get_commune, get_district
from monitor.policies import Policies
from monitor.reports.submission import ReportSubmission, get_submission
from monitor.reports.training import TrainingSession
from monitor.reports.training import get_session as get_training_session
from monitor.tickets.models import Ticket
from monitor.tickets.policy import TicketPolicy
from monitor.tickets.queries import get_ticket
from monitor.web.answers import KeptAnswers
from monitor.web.params import IdPath, YearPath


async def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


async def get_settings(request: Request) -> Settings:
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


def known_generations(request: Request) -> Generations:
    """The data generations (monitor.generations) as the door read them for this request (`get_principal`,
    before anything a kept answer could stand for). Only reading requests use kept answers."""
    known = getattr(request.state, "generations", None)
    if not isinstance(known, Generations):
        raise RuntimeError("the generations are read by the door (get_principal) before a route uses them")
    return known


async def get_policies(request: Request) -> Policies:
    """The deployment's policies, built once when the app was created."""
    policies: Policies = request.app.state.policies
    return policies


async def get_ticket_policy(request: Request) -> TicketPolicy:
    return (await get_policies(request)).tickets


async def get_alert_rules(request: Request) -> AlertRules:
    return (await get_policies(request)).alerts


TicketPolicyDep = Annotated[TicketPolicy, Depends(get_ticket_policy)]
AlertRulesDep = Annotated[AlertRules, Depends(get_alert_rules)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]


# The dependencies above only read the app's state: `async def`, so FastAPI calls them on the event loop
# (a plain `def` dependency is run in a worker thread: a hand-off and back for every request).


# --- who is asking ------------------------------------------------------------------------------

SESSION_COOKIE = "monitor_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"  # the same token in a plain form
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_KEPT_SIGN_IN_BYTES = 2048  # about what a kept session and its user hold in memory
P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Principal:
    """The signed-in user of a request and what they may see."""

    user: User
    scope: Scope

    @property
    def role(self) -> Role:
        return self.scope.role


def _bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else None


def _personal_token_user(token: str, session: Session) -> User | None:
    found = token_user(token, session=session)
    if found is None:
        return None
    session.commit()  # "last used", noted at most every few minutes, is kept even if the route fails
    return found[0]


async def _read_generations_first(request: Request) -> Generations:
    """The request's data generations, read once before anything else of the database (monitor.generations):
    without a worker thread on PostgreSQL."""
    known = getattr(request.state, "generations", None)
    if not isinstance(known, Generations):
        known = request.state.generations = await request.app.state.generations.read()
    return known


def let_go(session: Session) -> None:
    """End a read's transaction, so that its connection goes back to the pool while the request waits for its
    next worker thread (the objects read stay loaded: the sessions do not expire them on commit).

    A request's dependencies and its route run in worker threads one after the other; in between, the request
    waits for a free thread. With many people at once, requests waiting there while holding a connection
    emptied the pool, and the pages answered 503 (bench/bench_ui.py, 50 people on a ticket's page). A session
    holding changes is left as it is.
    """
    if session.in_transaction() and not (session.new or session.dirty or session.deleted):
        session.commit()


def _lets_go(look_up: Callable[P, T]) -> Callable[P, T]:
    """`look_up`, then `let_go` of the session it was given (as an argument or a keyword), whatever happened."""

    @functools.wraps(look_up)  # FastAPI reads a dependency's signature through __wrapped__
    def released(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return look_up(*args, **kwargs)
        finally:
            for value in (*args, *kwargs.values()):
                if isinstance(value, Session):
                    let_go(value)

    return released


def _stored_session(request: Request, key: str, generation: int, session: Session) -> SignedIn | None:
    found = _lets_go(find_session)(key, session=session)
    if found is not None:  # an unknown token is not kept: a stream of random ones would only fill the store
        request.app.state.kept_sign_ins.put(key, generation, found, _KEPT_SIGN_IN_BYTES)
    return found


async def _signed_in(request: Request, key: str, session: Session) -> SignedIn | None:
    """The stored session of a token's key: kept per process while the people's generation is unchanged (a
    sign-in, a sign-out, a user or a token changed anywhere moves it), else read (in a worker thread) and
    kept."""
    generation = (await _read_generations_first(request)).people
    kept: KeptAnswers[SignedIn] = request.app.state.kept_sign_ins
    found = kept.get(key, generation)
    if found is None:
        found = await run_in_threadpool(_stored_session, request, key, generation, session)
    return found


async def get_principal(request: Request, session: SessionDep) -> Principal:
    """The signed-in user, from a bearer token (a personal API token or a session's token, for API clients)
    or the session cookie (browsers). A disabled user's tokens and sessions are refused on the spot.

    A cookie-authenticated request that changes something must echo the session's CSRF token in the
    X-CSRF-Token header; a bearer token is not sent by browsers on their own, so it needs none.
    """
    known = getattr(request.state, "principal", None)
    if isinstance(known, Principal):  # asked again in the same request (a page's door, then a scoped lookup)
        return known
    unauthorized = HTTPException(401, "sign in first", headers={"WWW-Authenticate": "Bearer"})
    token = _bearer_token(request)
    if token is not None and is_personal_token(token):
        await _read_generations_first(request)  # first, as for a session (the route's kept answers need them)
        user = await run_in_threadpool(_personal_token_user, token, session)
        if user is None:
            raise unauthorized
        principal = Principal(user, Scope.of(user))
        request.state.principal = principal
        return principal
    from_cookie = token is None
    if token is None:
        token = request.cookies.get(SESSION_COOKIE, "")
    found = await _signed_in(request, token_key(token), session) if token else None
    if found is None or not found.valid(utcnow()):
        raise unauthorized
    user, csrf_token = found.user, found.csrf_token
    if from_cookie and request.method not in _SAFE_METHODS:
        given = request.headers.get(CSRF_HEADER, "")
        content_type = request.headers.get("content-type", "")
        if not given and content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()  # a plain form (no script) carries it as a field, read once it is parsed
            field = form.get(CSRF_FIELD)
            given = field if isinstance(field, str) else ""
        if not hmac.compare_digest(given, csrf_token):
            raise HTTPException(403, "missing or wrong CSRF token")
    if from_cookie:
        request.state.csrf_token = csrf_token  # the pages write it into their forms
    principal = Principal(user, Scope.of(user))
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def client_address(request: Request) -> str | None:
    """The address the request came from, as the server saw it."""
    return request.client.host if request.client else None


async def audit_actor(request: Request, principal: PrincipalDep) -> Actor:
    """Who acts in this request, for the audit log (monitor.auth.audit): the signed-in user and their address."""
    return Actor.user(principal.user, client_address(request))


AuditActor = Annotated[Actor, Depends(audit_actor)]


def require_roles(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that lets only these roles through (403 for the others)."""

    async def check(principal: PrincipalDep) -> Principal:
        if principal.role not in roles:
            raise HTTPException(403, f"this needs one of the roles: {', '.join(r.value for r in roles)}")
        return principal

    return check


# --- the one door: what a caller may see ----------------------------------------------------------
# Every route (API and pages) reaches district data through these: a thing of another district is a 404,
# the same answer as a thing that does not exist, so existence is not leaked. A route takes the looked-up
# object, never its code alone (tests/test_authorization_door.py checks every route of the app).

TicketCode = Annotated[str, PathParam(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
PlaceCode = Annotated[str, PathParam(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
DistrictFilter = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="only this district (or maintenance area); one outside your scope is a 404, like an unknown one",
    ),
]


@_lets_go
def visible_ticket(code: TicketCode, session: SessionDep, principal: PrincipalDep) -> Ticket:
    return get_ticket(code, session=session, district_codes=principal.scope.district_codes)


@_lets_go
def visible_device(code: PlaceCode, session: SessionDep, principal: PrincipalDep) -> DeviceRow:
    return get_device(code, session=session, district_codes=principal.scope.district_codes)


@_lets_go
def visible_commune(code: PlaceCode, session: SessionDep, principal: PrincipalDep) -> tuple[Commune, list[Any]]:
    return get_commune(code, session=session, district_codes=principal.scope.district_codes)


@_lets_go
def visible_problem(problem_id: IdPath, session: SessionDep, principal: PrincipalDep) -> AlertProblem:
    return get_problem(problem_id, session=session, district_codes=principal.scope.district_codes)


@_lets_go
def visible_window(window_id: IdPath, session: SessionDep, principal: PrincipalDep) -> MaintenanceWindow:
    return get_window(window_id, session=session, district_codes=principal.scope.district_codes)


@_lets_go
def visible_training(session_id: IdPath, session: SessionDep, principal: PrincipalDep) -> TrainingSession:
    return get_training_session(session_id, session=session, district_codes=principal.scope.district_codes)


@_lets_go
def visible_submission(
    year: YearPath, submission_id: IdPath, session: SessionDep, principal: PrincipalDep
) -> ReportSubmission:
    """An uploaded annual report of `year`: another district's, or the province's own for a district's
    people, is a 404."""
    return get_submission(submission_id, year=year, session=session, district_codes=principal.scope.district_codes)


VisibleTicket = Annotated[Ticket, Depends(visible_ticket)]
VisibleDevice = Annotated[DeviceRow, Depends(visible_device)]
VisibleCommune = Annotated[tuple[Commune, list[Any]], Depends(visible_commune)]
VisibleProblem = Annotated[AlertProblem, Depends(visible_problem)]
VisibleWindow = Annotated[MaintenanceWindow, Depends(visible_window)]
VisibleTraining = Annotated[TrainingSession, Depends(visible_training)]
VisibleSubmission = Annotated[ReportSubmission, Depends(visible_submission)]


@dataclass(frozen=True, slots=True)
class ListScope:
    """The districts a list may show: the caller's own scope, narrowed by its `?district=` filter.

    `district_codes` is None for the whole province. A filter naming a district outside the caller's scope is a
    404 on every list, exactly like an unknown district.
    """

    district_codes: frozenset[str] | None
    district: str | None


async def list_scope(session: SessionDep, principal: PrincipalDep, district: DistrictFilter = None) -> ListScope:
    if district is None:  # no look-up, so no worker thread (a sync dependency costs a thread hop)
        return ListScope(principal.scope.district_codes, None)
    await run_in_threadpool(
        _lets_go(get_district), district, session=session, district_codes=principal.scope.district_codes
    )
    return ListScope(frozenset({district}), district)


ScopedList = Annotated[ListScope, Depends(list_scope)]
