"""What every ticket-writing path shares: write locks, look-ups, events, pauses, due times, resolve, reopen.

Internal to `monitor.tickets`: callers use `service`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from monitor import db
from monitor.errors import NotFound
from monitor.priority import Priority
from monitor.tickets.choices import OPEN_STATUS_SQL, EventKind, TicketSource, TicketStatus
from monitor.tickets.models import Ticket, TicketEvent, TicketPause
from monitor.tickets.policy import TicketPolicy
from monitor.tickets.sla import Pause, SlaClock, as_utc

# Literal SQL on purpose: a bound parameter would hide the predicate from the planners, which then could
# not use the partial indexes over open tickets (SQLite never, PostgreSQL not with generic plans).
OPEN = sa.text(f"tickets.{OPEN_STATUS_SQL}")
RESOLVED = sa.text("tickets.status = 'resolved'")  # as in the partial index ix_tickets_resolved_at


def begin_write(session: Session) -> None:
    """Make the session's transaction a writer from here on (see `monitor.db.begin_write`); on SQLite this
    also keeps savepoints from committing early, since the driver starts no transaction before a write."""
    db.begin_write(session.connection())


def record_event(
    session: Session,
    ticket: Ticket,
    kind: EventKind,
    *,
    at: datetime,
    actor: int | None,
    from_value: object = None,
    to_value: object = None,
    note: str = "",
) -> TicketEvent:
    """Append one event to the ticket's history and touch the ticket's `updated_at`."""
    assert ticket.id is not None, "flush the ticket before recording its history"
    event = TicketEvent(
        ticket_id=ticket.id,
        at=at,
        actor_user_id=actor,
        kind=kind.value,
        from_value=_text(from_value),
        to_value=_text(to_value),
        note=note,
    )
    session.add(event)
    ticket.updated_at = at
    return event


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    return str(value)[:200]


_BY_CODE = select(Ticket).where(col(Ticket.code) == sa.bindparam("code"))


def find_ticket(code: str, *, session: Session, for_update: bool = False) -> Ticket:
    """The ticket with `code`, locked until the transaction ends when `for_update`; NotFound otherwise."""
    if for_update:
        query = select(Ticket).where(col(Ticket.code) == code)
        ticket = session.exec(query.with_for_update().execution_options(populate_existing=True)).first()
    else:  # every view of a ticket: a statement built once
        ticket = session.exec(_BY_CODE, params={"code": code}).first()
    if ticket is None:
        raise NotFound("ticket", code)
    return ticket


def pauses_of(ticket: Ticket, *, session: Session) -> list[TicketPause]:
    """The ticket's waiting times, oldest first."""
    query = select(TicketPause).where(col(TicketPause.ticket_id) == ticket.id).order_by(col(TicketPause.started_at))
    return list(session.exec(query))


def sla_clock(ticket: Ticket, pauses: Sequence[TicketPause], policy: TicketPolicy) -> SlaClock:
    """The SLA clock of the ticket's current round (since creation or the latest reopening)."""
    return SlaClock(
        created_at=ticket.sla_started_at,
        priority=Priority(ticket.priority),
        policy=policy.sla,
        pauses=tuple(Pause(p.started_at, p.ended_at) for p in pauses if p.started_at >= ticket.sla_started_at),
    )


def refresh_due_times(
    ticket: Ticket, *, session: Session, policy: TicketPolicy, at: datetime, actor: int | None, note: str = ""
) -> bool:
    """Recompute the ticket's due times from its clock; record a `due` event when they moved.

    Planned tickets keep the due date of their schedule. While the ticket waits a due time that is
    not reached yet is unknown, so the stored one stays until the wait ends.
    """
    if ticket.source == TicketSource.PLANNED.value:
        return False
    clock = sla_clock(ticket, pauses_of(ticket, session=session), policy)
    ack_due, resolve_due = clock.ack_due(), clock.resolve_due()
    ack_due = ack_due if ack_due is not None else ticket.ack_due_at
    resolve_due = resolve_due if resolve_due is not None else ticket.resolve_due_at
    if (ack_due, resolve_due) == (ticket.ack_due_at, ticket.resolve_due_at):
        return False
    before = ticket.resolve_due_at
    ticket.ack_due_at, ticket.resolve_due_at = ack_due, resolve_due
    ack_text = f"acknowledge by {as_utc(ack_due).isoformat()}" if ack_due is not None else ""
    record_event(
        session,
        ticket,
        EventKind.DUE,
        at=at,
        actor=actor,
        from_value=before,
        to_value=resolve_due,
        note="; ".join(filter(None, [note, ack_text])),
    )
    return True


def start_pause(ticket: Ticket, *, session: Session, at: datetime, reason: str) -> None:
    """Stop the ticket's SLA clock at `at` (it starts waiting)."""
    assert ticket.id is not None
    session.add(TicketPause(ticket_id=ticket.id, started_at=at, reason=reason[:500]))
    ticket.paused_since = at


def end_pause(ticket: Ticket, *, session: Session, at: datetime) -> None:
    """Restart the ticket's SLA clock at `at` (the wait is over), if it was stopped."""
    if ticket.paused_since is None:
        return
    query = select(TicketPause).where(col(TicketPause.ticket_id) == ticket.id, col(TicketPause.ended_at).is_(None))
    for pause in session.exec(query):
        pause.ended_at = max(at, pause.started_at)
    ticket.paused_seconds += max(0, int((at - ticket.paused_since).total_seconds()))
    ticket.paused_since = None


def resolve(
    ticket: Ticket, *, session: Session, at: datetime, actor: int | None, automatically: bool, note: str = ""
) -> None:
    """Mark the ticket resolved at `at` (its clock stops; a wait in progress ends there)."""
    before = ticket.status
    end_pause(ticket, session=session, at=at)
    ticket.status = TicketStatus.RESOLVED.value
    ticket.resolved_at = at
    ticket.auto_resolved = automatically
    kind = EventKind.AUTO_RESOLVED if automatically else EventKind.STATUS
    record_event(session, ticket, kind, at=at, actor=actor, from_value=before, to_value=ticket.status, note=note)


def reopen(
    ticket: Ticket,
    *,
    session: Session,
    at: datetime,
    actor: int | None,
    policy: TicketPolicy,
    note: str = "",
    priority: Priority | None = None,
) -> None:
    """Reopen a resolved or closed ticket at `at`: a new SLA round starts, as for a new report.

    The round's acknowledgement, breach and resolution are cleared on the row (the history keeps
    the earlier ones). Flushes at once, so that a second open ticket of the same problem fails here
    with IntegrityError (the caller holds a savepoint).
    """
    before = ticket.status
    ticket.status = TicketStatus.REOPENED.value
    ticket.reopened_at = at
    ticket.reopen_count += 1
    ticket.acknowledged_at = ticket.resolved_at = ticket.closed_at = None
    ticket.auto_resolved = False
    ticket.sla_started_at = at
    ticket.sla_breached = False
    ticket.breached_at = ticket.escalated_at = None
    if priority is not None and priority.value < ticket.priority:
        ticket.priority = priority.value
    session.flush()
    record_event(
        session, ticket, EventKind.REOPENED, at=at, actor=actor, from_value=before, to_value=ticket.status, note=note
    )
    refresh_due_times(ticket, session=session, policy=policy, at=at, actor=actor, note="new SLA round after reopening")
