"""SLA figures from the tickets: opened, resolved, reopened, time to acknowledge, time to repair, breaches.

By district, priority, kind of device or month (Vietnam time), over the tickets opened in a period. The
districts' tickets only: a province ticket (the service's own trouble, no district) is the operator's work,
seen in the queue, the export and the metrics.

- **Time to acknowledge**: from the ticket's creation to its first acknowledgement (or start of work).
- **Time to repair**: the time the ticket was open, summed over its rounds: creation to its first
  resolution, then each reopening to the resolution that follows (a problem that came back counts its
  second repair too, not the days it stayed fixed in between). A ticket not resolved yet has none.
- **Breach rate**: tickets that missed their SLA due time, over the tickets opened.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from monitor.inventory.models import Device, District
from monitor.reports.timeline import local_day, period_bounds
from monitor.reports.uptime import check_period
from monitor.tickets.choices import EventKind, TicketStatus
from monitor.tickets.models import Ticket, TicketEvent

TICKETS = Ticket.__table__  # type: ignore[attr-defined]
EVENTS = TicketEvent.__table__  # type: ignore[attr-defined]
DEVICES = Device.__table__  # type: ignore[attr-defined]
DISTRICTS = District.__table__  # type: ignore[attr-defined]
_DONE = {TicketStatus.RESOLVED.value, TicketStatus.CLOSED.value}
_CHUNK = 1000


class SlaBy(StrEnum):
    DISTRICT = "district"
    PRIORITY = "priority"
    KIND = "kind"
    MONTH = "month"
    PROVINCE = "province"


def repair_seconds(created_at: datetime, events: Iterable[tuple[str, str | None, datetime]]) -> float | None:
    """Seconds a ticket was open, summed over its rounds, from its (kind, to_value, at) events in order;
    None while it has never been resolved (or closed)."""
    total, done = 0.0, False
    opened_at: datetime | None = created_at
    for kind, to_value, at in events:
        reopening = kind == EventKind.REOPENED.value or (
            kind == EventKind.STATUS.value and to_value == TicketStatus.REOPENED.value
        )
        finishing = kind in (EventKind.STATUS.value, EventKind.AUTO_RESOLVED.value) and to_value in _DONE
        if finishing and opened_at is not None:
            total += max(0.0, (at - opened_at).total_seconds())
            opened_at, done = None, True
        elif reopening and opened_at is None:
            opened_at, done = at, False
    return total if done else None


@dataclass(slots=True)
class SlaFigures:
    """The SLA figures of a group of tickets."""

    opened: int = 0
    resolved: int = 0
    reopened: int = 0
    reopenings: int = 0
    breached: int = 0
    acknowledged: int = 0
    ack_seconds: float = 0.0
    repaired: int = 0
    repair_seconds: float = 0.0

    @property
    def mtta_s(self) -> float | None:
        return None if self.acknowledged == 0 else self.ack_seconds / self.acknowledged

    @property
    def mttr_s(self) -> float | None:
        return None if self.repaired == 0 else self.repair_seconds / self.repaired

    @property
    def breach_rate(self) -> float | None:
        return None if self.opened == 0 else self.breached / self.opened

    def merge(self, other: SlaFigures) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass(slots=True)
class SlaRow:
    key: str
    name: str
    figures: SlaFigures = field(default_factory=SlaFigures)

    def as_dict(self) -> dict[str, Any]:
        f = self.figures
        return {
            "key": self.key,
            "name": self.name,
            "opened": f.opened,
            "resolved": f.resolved,
            "reopened": f.reopened,
            "reopenings": f.reopenings,
            "breached": f.breached,
            "breach_rate": None if f.breach_rate is None else round(f.breach_rate, 6),
            "mtta_s": None if f.mtta_s is None else round(f.mtta_s, 3),
            "mttr_s": None if f.mttr_s is None else round(f.mttr_s, 3),
        }


@dataclass(slots=True)
class SlaReport:
    first: date
    last: date
    by: SlaBy
    rows: list[SlaRow]
    total: SlaRow


def sla_report(
    session: Session,
    first: date,
    last: date,
    *,
    by: SlaBy = SlaBy.DISTRICT,
    districts: Collection[str] | None = None,
    sources: Sequence[str] | None = None,
) -> SlaReport:
    """SLA figures of the tickets opened on the local days [first, last] in `districts` (None: all)."""
    check_period(first, last)
    start, end = period_bounds(first, last)
    connection = session.connection()
    query = (
        sa.select(
            TICKETS.c.id,
            TICKETS.c.district_code,
            TICKETS.c.priority,
            TICKETS.c.scope,
            TICKETS.c.created_at,
            TICKETS.c.acknowledged_at,
            TICKETS.c.resolved_at,
            TICKETS.c.status,
            TICKETS.c.reopen_count,
            TICKETS.c.sla_breached,
            DEVICES.c.kind,
        )
        .select_from(TICKETS.outerjoin(DEVICES, DEVICES.c.id == TICKETS.c.device_id))
        .where(TICKETS.c.created_at >= start, TICKETS.c.created_at < end)
    )
    if districts is not None:
        query = query.where(TICKETS.c.district_code.in_(list(districts)))
    else:  # the districts' work: a province ticket (a collector, Prometheus) is the operator's, not theirs
        query = query.where(TICKETS.c.district_code.is_not(None))
    if sources is not None:
        query = query.where(TICKETS.c.source.in_(list(sources)))
    tickets = connection.execute(query).all()
    names: dict[str, str] = {
        row.code: row.name for row in connection.execute(sa.select(DISTRICTS.c.code, DISTRICTS.c.name))
    }
    repair, acknowledged = _times(connection, tickets)
    groups: dict[str, SlaRow] = {}
    for ticket in tickets:
        key, name = _group(ticket, by, names)
        row = groups.get(key) or groups.setdefault(key, SlaRow(key, name))
        figures = row.figures
        figures.opened += 1
        if ticket.status in _DONE or ticket.resolved_at is not None:
            figures.resolved += 1
        if ticket.reopen_count:
            figures.reopened += 1
            figures.reopenings += ticket.reopen_count
        if ticket.sla_breached:
            figures.breached += 1
        ack = acknowledged.get(ticket.id)
        if ack is not None:
            figures.acknowledged += 1
            figures.ack_seconds += ack
        seconds = repair.get(ticket.id)
        if seconds is not None:
            figures.repaired += 1
            figures.repair_seconds += seconds
    rows = sorted(groups.values(), key=lambda row: row.key)
    total = SlaRow("total", "Toàn tỉnh" if districts is None else "Tổng")
    for row in rows:
        total.figures.merge(row.figures)
    return SlaReport(first, last, by, rows, total)


def _group(ticket: Any, by: SlaBy, names: dict[str, str]) -> tuple[str, str]:
    if by is SlaBy.DISTRICT:
        return ticket.district_code, names.get(ticket.district_code, ticket.district_code)
    if by is SlaBy.PRIORITY:
        return ticket.priority, ticket.priority
    if by is SlaBy.KIND:
        kind = ticket.kind or ticket.scope  # a commune- or district-wide problem has no device
        return kind, kind
    if by is SlaBy.MONTH:
        month = local_day(ticket.created_at).strftime("%Y-%m")
        return month, month
    return "province", "Toàn tỉnh"


_ACK = {TicketStatus.ACKNOWLEDGED.value, TicketStatus.IN_PROGRESS.value}


def ack_seconds(created_at: datetime, events: Iterable[tuple[str, str | None, datetime]]) -> float | None:
    """Seconds from a ticket's creation to its first acknowledgement (or start of work), if any."""
    for kind, to_value, at in events:
        if kind == EventKind.STATUS.value and to_value in _ACK:
            return max(0.0, (at - created_at).total_seconds())
    return None


def _times(connection: Any, tickets: Sequence[Any]) -> tuple[dict[int, float], dict[int, float]]:
    """Time to repair and time to acknowledge of each ticket, from its history (the rows that matter)."""
    created = {t.id: t.created_at for t in tickets}
    events: dict[int, list[tuple[str, str | None, datetime]]] = defaultdict(list)
    kinds = [EventKind.STATUS.value, EventKind.AUTO_RESOLVED.value, EventKind.REOPENED.value]
    ids = sorted(created)
    for start in range(0, len(ids), _CHUNK):
        query = (
            sa.select(EVENTS.c.ticket_id, EVENTS.c.kind, EVENTS.c.to_value, EVENTS.c.at)
            .where(EVENTS.c.ticket_id.in_(ids[start : start + _CHUNK]), EVENTS.c.kind.in_(kinds))
            .order_by(EVENTS.c.ticket_id, EVENTS.c.id)
        )
        for row in connection.execute(query):
            events[row.ticket_id].append((row.kind, row.to_value, row.at))
    repair, acknowledged = {}, {}
    for ticket_id, created_at in created.items():
        history = events.get(ticket_id, [])
        seconds = repair_seconds(created_at, history)
        if seconds is not None:
            repair[ticket_id] = seconds
        ack = ack_seconds(created_at, history)
        if ack is not None:
            acknowledged[ticket_id] = ack
    return repair, acknowledged
