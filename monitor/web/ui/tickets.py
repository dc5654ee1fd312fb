"""The repair tickets' pages: the queue (`/tickets`, filters in the URL, soonest due first) and one ticket
(`/tickets/{code}`: its timeline and the actions people take on it).

The queue reads through the API's own filters (`ticket_filters`, `ScopedList`) and the same service; a
ticket is looked up through the door (`VisibleTicket`), so another district's ticket is a 404 here too.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, cast
from urllib.parse import urlencode

import sqlalchemy as sa
from fastapi import HTTPException, Query, Request
from fastapi.responses import Response
from sqlmodel import Session, col, select

from monitor.auth.models import Role, User
from monitor.db import utcnow
from monitor.health.models import DeviceHealthRow
from monitor.health.queries import state_changes_since
from monitor.inventory.models import Commune, Device, District
from monitor.priority import Priority
from monitor.tickets import service
from monitor.tickets.choices import OPEN_STATUSES, TicketSource, TicketStatus
from monitor.tickets.models import Ticket
from monitor.tickets.queries import TicketFilters, TicketSummary
from monitor.tickets.workflow import allowed_actions
from monitor.web.answers import KeptAnswers
from monitor.web.api.tickets import Filters
from monitor.web.bodies import api_router
from monitor.web.deps import ListScope, Principal, ScopedList, SessionDep, VisibleTicket, known_generations
from monitor.web.ui.door import PagePrincipal
from monitor.web.ui.render import render

router = api_router(include_in_schema=False)  # a `def` page runs in one thread, its session closed there
PAGE = 50
_SIZE = operator.attrgetter("size")  # what a kept read holds in memory, about (QueueRead, TicketRead)
OPEN_VALUES = frozenset(status.value for status in OPEN_STATUSES)


@dataclass(frozen=True, slots=True)
class Line:
    """A ticket of the queue with what the page shows beside it (its commune's name, its assignee's)."""

    ticket: TicketSummary
    commune: str
    assignee: str
    overdue: bool


# The pages' own statements, built once (building and keying a statement per request costs more than running
# it), over the tables' columns and run on the session's connection: rows, no ORM objects to build.
def _table(model: Any) -> sa.Table:
    return cast(sa.Table, sa.inspect(model).local_table)


_TICKET_T, _DEVICE_T, _HEALTH_T, _COMMUNE_T, _DISTRICT_T, _USER_T = map(
    _table, (Ticket, Device, DeviceHealthRow, Commune, District, User)
)
_t, _d, _h, _c, _di, _u = _TICKET_T.c, _DEVICE_T.c, _HEALTH_T.c, _COMMUNE_T.c, _DISTRICT_T.c, _USER_T.c
# The names of the communes and people of a page of tickets; the people and districts of the selects.
_COMMUNE_NAMES = sa.select(_c.code, _c.name).where(_c.code.in_(sa.bindparam("codes", expanding=True)))
_USER_NAMES = sa.select(_u.id, _u.full_name, _u.username).where(_u.id.in_(sa.bindparam("ids", expanding=True)))
_ASSIGNABLE = (
    sa.select(_u.id, _u.full_name, _u.username, _u.role, _u.district_code)
    .where(_u.active, _u.role.in_([Role.TECHNICIAN.value, Role.OFFICER.value]), _u.district_code.is_not(None))
    .order_by(_u.username)
)
_DISTRICTS = sa.select(_di.code, _di.name).order_by(_di.code)


def _names(session: Session, tickets: list[TicketSummary]) -> tuple[dict[str, str], dict[int, str]]:
    communes = sorted({t.commune_code for t in tickets if t.commune_code})
    people = sorted({t.assignee_id for t in tickets if t.assignee_id is not None})
    rows = session.connection().execute(_COMMUNE_NAMES, {"codes": communes}).all() if communes else []
    return {code: name for code, name in rows}, _user_names(session, people)


def _user_names(session: Session, ids: list[int]) -> dict[int, str]:
    rows = session.connection().execute(_USER_NAMES, {"ids": ids}).all() if ids else []
    return {user_id: full_name or username for user_id, full_name, username in rows}


@dataclass(frozen=True, slots=True)
class Listed:
    """A list of tickets as read, with the names its lines show: what a line needs but the time."""

    tickets: list[TicketSummary]
    communes: dict[str, str]
    people: dict[int, str]

    def lines(self, now: datetime) -> list[Line]:
        return [
            Line(
                t,
                self.communes.get(t.commune_code or "", t.commune_code or ""),
                self.people.get(t.assignee_id, "") if t.assignee_id is not None else "",
                t.sla_breached or (t.status in OPEN_VALUES and t.resolve_due_at < now),
            )
            for t in self.tickets
        ]


def _listed(session: Session, tickets: list[TicketSummary]) -> Listed:
    return Listed(tickets, *_names(session, tickets))


def _people(session: Session, district_codes: frozenset[str] | None) -> list[Any]:
    """Who can take a ticket of these districts: their active technicians and officers (as GET /api/v1/users),
    as rows of the columns the selects show (every page of the queue lists them)."""
    rows = session.connection().execute(_ASSIGNABLE).all()
    return [row for row in rows if district_codes is None or row.district_code in district_codes]


def _choices(session: Session, district_codes: frozenset[str] | None) -> dict[str, Any]:
    districts = session.connection().execute(_DISTRICTS).all()
    return {
        "districts": [d for d in districts if district_codes is None or d.code in district_codes],
        "people": _people(session, district_codes),
        "statuses": list(TicketStatus),
        "priorities": list(Priority),
        "sources": list(TicketSource),
    }


@dataclass(frozen=True, slots=True)
class QueueRead:
    """What the queue page reads from the database: a function of the tickets, people and places alone (and of
    who asks and their filters), kept while their generations are unchanged (monitor.web.answers)."""

    sections: tuple[Listed, ...]  # the queue; or "mine": the caller's tickets, then the district's free ones
    next_cursor: str | None
    choices: dict[str, Any] | None  # the filters' selects; None for the "Xem thêm" rows alone

    @property
    def size(self) -> int:
        """About the bytes it holds."""
        return 2000 + sum(800 * len(section.tickets) for section in self.sections)  # ~600 B a summary, measured


def _read_queue(
    session: Session,
    principal: Principal,
    scope: ListScope,
    filters: TicketFilters,
    view: str | None,
    after: str | None,
    more: bool,
) -> QueueRead:
    choices = None if more else _choices(session, principal.scope.district_codes)
    if view == "mine":
        sections = [
            service.list_tickets(section, session=session, district_codes=scope.district_codes, limit=200).items
            for section in (
                TicketFilters.open_queue(assignee_id=principal.user.id),
                TicketFilters.open_queue(unassigned=True),
            )
        ]
        return QueueRead(tuple(_listed(session, tickets) for tickets in sections), None, choices)
    page = service.list_tickets(filters, session=session, district_codes=scope.district_codes, after=after, limit=PAGE)
    return QueueRead((_listed(session, page.items),), page.next_cursor, choices)


@router.get("/tickets")
def queue(
    request: Request,
    principal: PagePrincipal,
    session: SessionDep,
    scope: ScopedList,
    filters: Filters,
    view: Annotated[str | None, Query(pattern=r"^(mine)$")] = None,
    after: Annotated[str | None, Query(max_length=200, pattern=r"^[A-Za-z0-9_-]*$")] = None,
) -> Response:
    """The queue, soonest due first, filtered as the URL says; `view=mine` is a technician's work: their open
    tickets, then their district's open tickets nobody has taken yet.

    What it reads is kept while the tickets, people and places are unchanged; the lines' "overdue" is worked
    out from the time of each request.
    """
    now = utcnow()
    query_args = [(key, value) for key, value in request.query_params.multi_items() if key != "after"]
    more = after is not None and request.headers.get("hx-request") == "true"  # "Xem thêm": the next rows only
    mine_of = principal.user.id if view == "mine" else None
    key = (view, mine_of, scope.district_codes, principal.scope.district_codes, filters, after, more)
    kept: KeptAnswers[QueueRead] = request.app.state.kept_queue_pages
    make = functools.partial(_read_queue, session, principal, scope, filters, view, after, more)
    # A device's filter names it by code, read from `devices`: not kept.
    read = make() if filters.device is not None else kept.get_or_make(key, known_generations(request), make, _SIZE)
    context: dict[str, Any] = {
        "principal": principal,
        "now": now,
        "args": dict(request.query_params),
        "selected": {key: request.query_params.getlist(key) for key in ("status", "priority", "source")},
        "export_query": urlencode([(k, v) for k, v in query_args if k != "view"]),
        "view": view,
        **(read.choices or {}),  # the filters' selects
    }
    if view == "mine":
        mine, free = read.sections
        context.update(mine=mine.lines(now), free=free.lines(now))
        return render(request, "my_work.html", context)
    next_url = None
    if read.next_cursor is not None:
        next_url = "/tickets?" + urlencode([*query_args, ("after", read.next_cursor)])
    context.update(
        lines=read.sections[0].lines(now),
        next_url=next_url,
        bulk=principal.role in (Role.ADMIN, Role.OFFICER),
    )
    return render(request, "_ticket_rows.html" if more else "tickets.html", context)


@router.get("/tickets/new")
def new_ticket(request: Request, principal: PagePrincipal, session: SessionDep) -> Response:
    """A commune's report (a call, a visit): about one of its devices or the commune's system as a whole."""
    if principal.role not in (Role.ADMIN, Role.OFFICER):
        raise HTTPException(403, "this needs one of the roles: admin, officer")
    communes = select(Commune).order_by(col(Commune.district_code), col(Commune.name))
    if principal.scope.district_codes is not None:
        communes = communes.where(col(Commune.district_code).in_(principal.scope.district_codes))
    return render(
        request,
        "ticket_new.html",
        {"principal": principal, "communes": list(session.exec(communes)), "priorities": list(Priority)},
    )


@dataclass(frozen=True, slots=True)
class DeviceView:
    """A ticket's device as its page shows it."""

    code: str
    name: str
    kind: str
    lat: float | None
    lon: float | None


@dataclass(frozen=True, slots=True)
class HealthView:
    """Its device's health now."""

    state: str
    since: datetime | None
    faults: list[str]


# What a ticket's page shows around the ticket, in one statement built once (it was five look-ups):
# its device and the device's health, its commune's and district's names, its assignee's name.
_AROUND = (
    sa.select(
        _d.code,
        _d.name,
        _d.kind,
        _d.lat,
        _d.lon,
        _h.state,
        _h.since,
        _h.faults,
        _c.name.label("commune_name"),
        _di.name.label("district_name"),
        _u.full_name,
        _u.username,
    )
    .select_from(_TICKET_T)
    .outerjoin(_DEVICE_T, _d.id == _t.device_id)
    .outerjoin(_HEALTH_T, _h.device_id == _t.device_id)
    .outerjoin(_COMMUNE_T, _c.code == _t.commune_code)
    .outerjoin(_DISTRICT_T, _di.code == _t.district_code)
    .outerjoin(_USER_T, _u.id == _t.assignee_id)
    .where(_t.id == sa.bindparam("ticket_id"))
)


@dataclass(frozen=True, slots=True)
class EventView:
    """An entry of a ticket's history as its page shows it."""

    at: datetime
    kind: str
    to_value: str | None
    note: str


@dataclass(frozen=True, slots=True)
class AttachmentView:
    """A photo of a ticket as its page lists it."""

    id: int
    original_filename: str
    uploaded_at: datetime


@dataclass(frozen=True, slots=True)
class TicketRead:
    """What a ticket's page reads of the ticket's own history, its photos and who may take it: a function of the
    tickets (their events and photos included) and people alone, kept while their generations are unchanged.
    The ticket itself, its device's health and the device's state changes are read for every request."""

    history: tuple[tuple[EventView, str], ...]  # each entry with who made it
    attachments: tuple[AttachmentView, ...]
    people: list[Any]

    @property
    def size(self) -> int:
        """About the bytes it holds."""
        return 1000 + 400 * (len(self.history) + len(self.attachments) + len(self.people))


def _read_ticket(session: Session, ticket: Ticket, can_assign: bool) -> TicketRead:
    events = service.events_of(ticket, session=session)
    actors = sorted({event.actor_user_id for event in events if event.actor_user_id is not None})
    names = _user_names(session, actors)
    history = tuple((EventView(e.at, e.kind, e.to_value, e.note), names.get(e.actor_user_id or 0, "")) for e in events)
    attachments = tuple(
        AttachmentView(a.id or 0, a.original_filename, a.uploaded_at)
        for a in service.attachments_of(ticket, session=session)
    )
    # A province ticket (no district) is the province operator's: no district's people take it.
    people = _people(session, frozenset([ticket.district_code] if ticket.district_code else [])) if can_assign else []
    return TicketRead(history, attachments, people)


def _timeline(session: Session, ticket: Ticket, read: TicketRead) -> list[dict[str, Any]]:
    """The ticket's history and its device's state changes since it opened, newest first."""
    items: list[dict[str, Any]] = [
        {"at": event.at, "kind": event.kind, "event": event, "who": who} for event, who in read.history
    ]
    if ticket.device_id is not None:  # the ticket was found through the door: its device is in scope
        for change in state_changes_since(ticket.device_id, ticket.created_at, session=session):
            items.append({"at": change.at, "kind": "state", "change": change, "who": ""})
    items.sort(key=lambda item: item["at"], reverse=True)
    return items


@router.get("/tickets/{code}")
def ticket_page(request: Request, ticket: VisibleTicket, principal: PagePrincipal, session: SessionDep) -> Response:
    """One ticket: what, where, due when, its device now, the actions allowed, and its timeline."""
    around = session.connection().execute(_AROUND, {"ticket_id": ticket.id}).one()
    device = health = None
    if around.code is not None:
        device = DeviceView(around.code, around.name, around.kind, around.lat, around.lon)
        if around.state is not None:
            health = HealthView(around.state, around.since, list(around.faults or ()))
    can_work = principal.role in (Role.ADMIN, Role.OFFICER, Role.TECHNICIAN)
    can_assign = principal.role in (Role.ADMIN, Role.OFFICER)
    generations = known_generations(request)
    kept: KeptAnswers[TicketRead] = request.app.state.kept_ticket_pages
    read = kept.get_or_make(
        (ticket.id, can_assign),
        (generations.tickets, generations.people),
        functools.partial(_read_ticket, session, ticket, can_assign),
        _SIZE,
    )
    return render(
        request,
        "ticket.html",
        {
            "principal": principal,
            "now": utcnow(),
            "t": ticket,
            "device": device,
            "health": health,
            "commune_name": around.commune_name or "",
            "district_name": around.district_name or "",
            "assignee_name": around.full_name or around.username or "",  # the outer join: None when unassigned
            "actions": allowed_actions(ticket.status) if can_work else [],
            "timeline": _timeline(session, ticket, read),
            "attachments": read.attachments,
            "can_work": can_work,
            "can_assign": can_assign,
            "people": read.people,
        },
    )
