"""Reading tickets: one ticket, the queue (filtered, by due time, keyset-paginated), history, yearly costs.

Access control by district is a parameter: `district_codes=None` sees every district, a set sees only
those (an officer's or a technician's district); a ticket outside it is reported as not found, so that
its existence does not leak.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from monitor.db import UTCDateTime
from monitor.errors import InvalidInput, NotFound, Problem
from monitor.i18n import LOCAL_ZONE
from monitor.inventory.models import Device, District
from monitor.priority import Priority
from monitor.text import fold, like_pattern
from monitor.tickets.choices import OPEN_STATUSES, ProblemScope, TicketSource, TicketStatus
from monitor.tickets.models import Ticket, TicketAttachment, TicketEvent
from monitor.tickets.store import OPEN, find_ticket

DEFAULT_PAGE = 50
MAX_PAGE = 500


def get_ticket(code: str, *, session: Session, district_codes: Collection[str] | None = None) -> Ticket:
    """The ticket with `code`; NotFound if there is none or it belongs to a district outside `district_codes`."""
    ticket = find_ticket(code, session=session)
    if district_codes is not None and ticket.district_code not in district_codes:
        raise NotFound("ticket", code)
    return ticket


def history(code: str, *, session: Session, district_codes: Collection[str] | None = None) -> list[TicketEvent]:
    """The ticket's events, oldest first."""
    return events_of(get_ticket(code, session=session, district_codes=district_codes), session=session)


def events_of(ticket: Ticket, *, session: Session) -> list[TicketEvent]:
    """The events of a ticket already found (and checked against the reader's scope), oldest first."""
    return list(session.exec(_EVENTS, params={"ticket_id": ticket.id}))


def attachments(
    code: str, *, session: Session, district_codes: Collection[str] | None = None
) -> list[TicketAttachment]:
    """The ticket's photos, oldest first."""
    return attachments_of(get_ticket(code, session=session, district_codes=district_codes), session=session)


def attachments_of(ticket: Ticket, *, session: Session) -> list[TicketAttachment]:
    """The photos of a ticket already found (and checked against the reader's scope), oldest first."""
    return list(session.exec(_ATTACHMENTS, params={"ticket_id": ticket.id}))


# Built once: a ticket's page reads these on every view.
_EVENTS = (
    select(TicketEvent).where(col(TicketEvent.ticket_id) == sa.bindparam("ticket_id")).order_by(col(TicketEvent.id))
)
_ATTACHMENTS = (
    select(TicketAttachment)
    .where(col(TicketAttachment.ticket_id) == sa.bindparam("ticket_id"))
    .order_by(col(TicketAttachment.id))
)


@dataclass(frozen=True, slots=True, kw_only=True)
class TicketFilters:
    """What to list. Empty sets and None mean "any"; `statuses=OPEN_STATUSES` is the open queue.

    `text` finds tickets whose code, title, description, device or place names contain its words in
    order, accents and case ignored.
    """

    district: str | None = None
    commune: str | None = None
    device: str | None = None
    statuses: frozenset[TicketStatus] = frozenset()
    priorities: frozenset[Priority] = frozenset()
    sources: frozenset[TicketSource] = frozenset()
    assignee_id: int | None = None
    unassigned: bool = False  # only tickets nobody has taken (a technician's "free to take")
    breached: bool | None = None
    text: str | None = None

    @classmethod
    def open_queue(cls, **filters: Any) -> TicketFilters:
        """The open tickets (every status but resolved and closed), with other filters."""
        return cls(statuses=OPEN_STATUSES, **filters)


@dataclass(frozen=True, slots=True)
class TicketSummary:
    """One line of the queue: what a list shows, read as plain columns rather than whole ticket objects.

    A page of 50 full tickets costs the ORM 40 columns, 14 timestamps and 2 JSON documents per row;
    the queue is the page officers refresh all day, so it reads these columns only (about 5x less CPU).
    `get_ticket` gives the whole ticket.
    """

    id: int
    code: str
    title: str
    status: str
    priority: str
    source: str
    kind: str
    scope: str
    scope_code: str
    commune_code: str | None
    district_code: str | None  # None: a province ticket
    assignee_id: int | None
    created_at: datetime
    acknowledged_at: datetime | None
    ack_due_at: datetime | None
    resolve_due_at: datetime
    resolved_at: datetime | None
    sla_breached: bool

    @property
    def device_code(self) -> str | None:
        """The device's code, for a device ticket."""
        return self.scope_code if self.scope == ProblemScope.DEVICE.value else None


_SUMMARY_COLUMNS = [getattr(Ticket, name) for name in TicketSummary.__dataclass_fields__]


@dataclass(frozen=True, slots=True)
class TicketList:
    """One page of tickets, and the cursor of the next page (None on the last one)."""

    items: list[TicketSummary]
    next_cursor: str | None


def encode_cursor(due: datetime, ticket_id: int) -> str:
    """The opaque cursor after a ticket: its due time (UTC, microseconds) and id, base64url-encoded."""
    raw = f"{due.astimezone(UTC).strftime('%Y%m%dT%H%M%S.%f')}|{ticket_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """The (due time, id) a cursor stands for; InvalidInput for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        due_text, id_text = raw.split("|")
        return datetime.strptime(due_text, "%Y%m%dT%H%M%S.%f").replace(tzinfo=UTC), int(id_text)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("bad cursor", [Problem("after", "not a cursor given by this list")]) from None


def filter_conditions(filters: TicketFilters, district_codes: Collection[str] | None) -> list[Any]:
    """The WHERE conditions of `filters` within `district_codes`: the list's and the export's, written once."""
    where: list[Any] = []
    if district_codes is not None and len(district_codes) == 1:
        where.append(col(Ticket.district_code) == next(iter(district_codes)))  # one range of the index, in order
    elif district_codes is not None:
        where.append(col(Ticket.district_code).in_(sorted(district_codes)) if district_codes else sa.false())
    if filters.district is not None:
        where.append(col(Ticket.district_code) == filters.district)
    if filters.commune is not None:
        where.append(col(Ticket.commune_code) == filters.commune)
    if filters.device is not None:
        device_id = select(Device.id).where(col(Device.code) == filters.device).scalar_subquery()
        where.append(col(Ticket.device_id) == device_id)
    if filters.statuses == OPEN_STATUSES:
        where.append(OPEN)  # literal, so that the partial indexes over open tickets serve the query
    elif filters.statuses:
        where.append(col(Ticket.status).in_(sorted(s.value for s in filters.statuses)))
    if filters.priorities:
        where.append(col(Ticket.priority).in_(sorted(p.value for p in filters.priorities)))
    if filters.sources:
        where.append(col(Ticket.source).in_(sorted(s.value for s in filters.sources)))
    if filters.assignee_id is not None:
        where.append(col(Ticket.assignee_id) == filters.assignee_id)
    if filters.unassigned:
        where.append(col(Ticket.assignee_id).is_(None))
    if filters.breached is not None:
        where.append(col(Ticket.sla_breached).is_(filters.breached))
    if filters.text is not None and fold(filters.text):
        where.append(col(Ticket.search_text).like(like_pattern(filters.text), escape="\\"))
    return where


def list_tickets(
    filters: TicketFilters,
    *,
    session: Session,
    district_codes: Collection[str] | None = None,
    after: str | None = None,
    limit: int = DEFAULT_PAGE,
) -> TicketList:
    """Tickets matching `filters` within `district_codes`, by resolution due time then id, as summaries.

    Keyset pagination: `after` is the `next_cursor` of the previous page, so a page costs the same
    wherever it is and a ticket that changes meanwhile is neither lost nor shown twice by the paging
    itself. `limit` is capped at MAX_PAGE.
    """
    limit = max(1, min(limit, MAX_PAGE))
    query = sa.select(*_SUMMARY_COLUMNS).where(*filter_conditions(filters, district_codes))
    if after is not None:
        due, ticket_id = decode_cursor(after)
        due_param = sa.bindparam("after_due", due, type_=UTCDateTime())
        query = query.where(sa.tuple_(col(Ticket.resolve_due_at), col(Ticket.id)) > sa.tuple_(due_param, ticket_id))
    query = query.order_by(col(Ticket.resolve_due_at), col(Ticket.id)).limit(limit + 1)
    rows = session.execute(query).all()
    items = [TicketSummary(*row) for row in rows[:limit]]
    last = items[-1] if len(rows) > limit else None
    return TicketList(items, None if last is None else encode_cursor(last.resolve_due_at, last.id))


@dataclass(frozen=True, slots=True)
class DistrictCost:
    """A district's tickets of one year and what their repairs cost, in đồng."""

    district_code: str
    tickets: int
    parts_cost_vnd: int
    labour_cost_vnd: int

    @property
    def total_cost_vnd(self) -> int:
        """Parts and labour together."""
        return self.parts_cost_vnd + self.labour_cost_vnd


def district_costs(year: int, *, session: Session) -> list[DistrictCost]:
    """Every district's tickets created in `year` (Vietnam time, as their codes say) and their repair costs.

    Districts without tickets are listed with zeros, so that a budget table has every row. Province tickets
    (no district: a collector, Prometheus) are no district's repairs and no district's budget: left out.
    """
    start = datetime(year, 1, 1, tzinfo=LOCAL_ZONE).astimezone(UTC)
    end = datetime(year + 1, 1, 1, tzinfo=LOCAL_ZONE).astimezone(UTC)
    joined = sa.and_(
        col(Ticket.district_code) == col(District.code), col(Ticket.created_at) >= start, col(Ticket.created_at) < end
    )
    query = (
        select(
            District.code,
            func.count(col(Ticket.id)),
            func.coalesce(func.sum(col(Ticket.parts_cost_vnd)), 0),
            func.coalesce(func.sum(col(Ticket.labour_cost_vnd)), 0),
        )
        .select_from(District)
        .outerjoin(Ticket, joined)
        .group_by(col(District.code))
        .order_by(col(District.code))
    )
    return [DistrictCost(code, int(n), int(parts), int(labour)) for code, n, parts, labour in session.exec(query)]


def open_tickets_by_district(*, session: Session) -> dict[str | None, int]:
    """The number of open tickets of each district that has any, by district code (`monitor status`);
    the province's own tickets (no district) under None."""
    district = col(Ticket.district_code)
    rows = session.execute(sa.select(district, sa.func.count()).where(OPEN).group_by(district))
    return {code: int(n) for code, n in rows}
