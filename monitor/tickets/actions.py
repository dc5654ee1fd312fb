"""What people do to tickets: record a report, move it through the workflow, assign, reprioritise, comment, cost.

Every function locks the ticket for the rest of the transaction, changes it and appends the matching
history events with the actor (a user id; None for the system) and the time. The caller commits.
Access control (which districts a user may touch) is the caller's: check with `get_ticket(code,
district_codes=...)` first.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from monitor.auth.models import Role, User
from monitor.errors import Conflict, InvalidInput, Problem
from monitor.inventory.models import Commune, Device
from monitor.priority import Priority
from monitor.tickets.choices import EventKind, ProblemScope, TicketAction, TicketSource, TicketStatus
from monitor.tickets.creation import NewTicket, insert_tickets
from monitor.tickets.models import Ticket, TicketEvent
from monitor.tickets.policy import TicketPolicy
from monitor.tickets.routing import route_district
from monitor.tickets.schemas import TicketCreate
from monitor.tickets.store import (
    begin_write,
    end_pause,
    find_ticket,
    record_event,
    refresh_due_times,
    reopen,
    resolve,
    start_pause,
)
from monitor.tickets.workflow import apply_action

#: Roles that can be assigned a ticket of their own district.
ASSIGNABLE_ROLES = frozenset({Role.TECHNICIAN.value, Role.OFFICER.value})
MAX_COMMENT = 5000
MAX_COST_VND = 10**12  # a thousand billion đồng: anything above is a typing error
MAX_PARTS = 100


def _locked(code: str, session: Session) -> Ticket:
    begin_write(session)
    return find_ticket(code, session=session, for_update=True)


def _refuse_if_closed(ticket: Ticket, what: str) -> None:
    if ticket.status == TicketStatus.CLOSED.value:
        raise Conflict(f"ticket {ticket.code} is closed: reopen it before changing its {what}")


def create_manual_ticket(
    data: TicketCreate, *, actor: int | None, session: Session, now: datetime, policy: TicketPolicy
) -> Ticket:
    """Record a report that a person brings (a commune calls: "the cluster in village X is silent").

    With a device, the ticket is about that device (which must stand in the commune, when one is
    given); without, about the commune. Routed like monitoring's tickets. Each manual ticket is its own
    problem (`manual:<code>`): two reports are two tickets, and recoveries never resolve them.
    """
    begin_write(session)
    problems: list[Problem] = []
    device: Device | None = None
    commune_code = data.commune_code
    if data.device_code is not None:
        device = session.exec(select(Device).where(col(Device.code) == data.device_code)).first()
        if device is None:
            problems.append(Problem("device_code", f"no device {data.device_code!r}"))
        elif commune_code is not None and device.commune_code != commune_code:
            problems.append(
                Problem(
                    "device_code", f"device {device.code} stands in commune {device.commune_code}, not {commune_code}"
                )
            )
        else:
            commune_code = device.commune_code
    if commune_code is None:
        if data.device_code is None:
            problems.append(Problem("commune_code", "say which commune the report comes from, or which device"))
    elif session.get(Commune, commune_code) is None:
        problems.append(Problem("commune_code", f"unknown commune {commune_code!r}"))
    if problems:
        raise InvalidInput("manual ticket refused", problems)
    assert commune_code is not None
    spec = NewTicket(
        problem_key=None,
        status=TicketStatus.NEW,
        source=TicketSource.MANUAL,
        priority=data.priority,
        title=data.title,
        description=data.description,
        scope=ProblemScope.DEVICE if device else ProblemScope.COMMUNE,
        scope_code=device.code if device else commune_code,
        kind=data.kind,
        device_id=device.id if device else None,
        commune_code=commune_code,
        district_code=route_district(commune_code, session=session, overrides=policy.routing_overrides),
        occurred_at=data.occurred_at,
        note="recorded from a report",
    )
    [ticket] = insert_tickets([spec], session=session, now=now, policy=policy, actor=actor)
    return ticket


def transition(
    code: str,
    action: TicketAction | str,
    *,
    actor: int | None,
    note: str = "",
    session: Session,
    now: datetime,
    policy: TicketPolicy,
) -> Ticket:
    """Move the ticket by `action` (acknowledge, start, wait, resume, resolve, close, reopen).

    Raises InvalidTransition (a Conflict) listing the allowed actions when the status does not allow
    it, and Conflict when reopening would make a second open ticket of the same problem.
    `wait` stops the SLA clock; `resume` restarts it and moves the due times by the time waited;
    `start` without an acknowledgement acknowledges too; `reopen` starts a new SLA round.
    """
    ticket = _locked(code, session)
    action = TicketAction(action)
    before = ticket.status
    after = apply_action(before, action)
    if action is TicketAction.RESOLVE:
        resolve(ticket, session=session, at=now, actor=actor, automatically=False, note=note)
        return ticket
    if action is TicketAction.REOPEN:
        try:
            with session.begin_nested():
                reopen(ticket, session=session, at=now, actor=actor, policy=policy, note=note)
        except sa.exc.IntegrityError as error:
            raise Conflict(f"ticket {code} cannot be reopened: another ticket of the same problem is open") from error
        return ticket
    if action in (TicketAction.ACKNOWLEDGE, TicketAction.START) and ticket.acknowledged_at is None:
        ticket.acknowledged_at = now
    if action is TicketAction.WAIT:
        start_pause(ticket, session=session, at=now, reason=note)
    if action is TicketAction.CLOSE:
        ticket.closed_at = now
    ticket.status = after.value
    record_event(
        session, ticket, EventKind.STATUS, at=now, actor=actor, from_value=before, to_value=after.value, note=note
    )
    if action is TicketAction.RESUME:
        end_pause(ticket, session=session, at=now)
        session.flush()
        refresh_due_times(ticket, session=session, policy=policy, at=now, actor=actor, note="the wait is over")
    return ticket


def assign(
    code: str, assignee_id: int | None, *, actor: int | None, note: str = "", session: Session, now: datetime
) -> Ticket:
    """Give the ticket to `assignee_id` (None: nobody), an active technician or officer of its district.

    Raises InvalidInput naming the reason when the person cannot take it, Conflict on a closed ticket.
    """
    ticket = _locked(code, session)
    _refuse_if_closed(ticket, "assignee")
    if assignee_id is not None:
        user = session.get(User, assignee_id)
        reason = None
        if user is None:
            reason = f"no user with id {assignee_id}"
        elif not user.active:
            reason = f"{user.username} is not active"
        elif user.role not in ASSIGNABLE_ROLES:
            reason = f"{user.username} is a {user.role}: only technicians and officers take tickets"
        elif ticket.district_code is None:
            reason = "a province ticket is the province operator's: no district's people take it"
        elif user.district_code != ticket.district_code:
            reason = f"{user.username} works for district {user.district_code}, the ticket for {ticket.district_code}"
        if reason is not None:
            raise InvalidInput(f"cannot assign ticket {code}", [Problem("assignee_id", reason)])
    if assignee_id == ticket.assignee_id:
        return ticket
    before, ticket.assignee_id = ticket.assignee_id, assignee_id
    record_event(
        session, ticket, EventKind.ASSIGNEE, at=now, actor=actor, from_value=before, to_value=assignee_id, note=note
    )
    return ticket


def change_priority(
    code: str,
    priority: Priority | str,
    *,
    actor: int | None,
    note: str = "",
    session: Session,
    now: datetime,
    policy: TicketPolicy,
) -> Ticket:
    """Set the ticket's priority; its due times follow the new targets, counted from the round's start.

    Raising a ticket to P1 after an hour can make it overdue at once: that is what escalating means
    (see `sla.py`). Only open tickets change priority (Conflict otherwise).
    """
    ticket = _locked(code, session)
    priority = Priority(priority)
    if not TicketStatus(ticket.status).is_open:
        raise Conflict(f"ticket {code} is {ticket.status}: only open tickets change priority")
    if priority.value == ticket.priority:
        return ticket
    before, ticket.priority = ticket.priority, priority.value
    record_event(
        session, ticket, EventKind.PRIORITY, at=now, actor=actor, from_value=before, to_value=priority.value, note=note
    )
    refresh_due_times(ticket, session=session, policy=policy, at=now, actor=actor, note="priority changed")
    return ticket


def add_comment(code: str, text: str, *, actor: int | None, session: Session, now: datetime) -> TicketEvent:
    """Append a comment to the ticket's history (any status: people talk about closed tickets too)."""
    text = text.strip()
    if not text or len(text) > MAX_COMMENT:
        raise InvalidInput("comment refused", [Problem("text", f"a comment has 1 to {MAX_COMMENT} characters")])
    ticket = _locked(code, session)
    return record_event(session, ticket, EventKind.COMMENT, at=now, actor=actor, note=text)


def record_costs(
    code: str,
    parts_cost_vnd: int,
    labour_cost_vnd: int,
    parts_replaced: Sequence[str],
    *,
    actor: int | None,
    note: str = "",
    session: Session,
    now: datetime,
) -> Ticket:
    """Record what the repair cost (parts and labour, whole đồng) and which parts were replaced.

    The figures replace the earlier ones (the history keeps both); any status, since invoices come late.
    """
    problems = [
        Problem(name, f"a cost is a whole number of đồng from 0 to {MAX_COST_VND:,}")
        for name, value in (("parts_cost_vnd", parts_cost_vnd), ("labour_cost_vnd", labour_cost_vnd))
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COST_VND
    ]
    parts = [p.strip() for p in parts_replaced]
    if len(parts) > MAX_PARTS or any(not p or len(p) > 200 for p in parts):
        problems.append(Problem("parts_replaced", f"up to {MAX_PARTS} parts, each named in 1 to 200 characters"))
    if problems:
        raise InvalidInput("repair costs refused", problems)
    ticket = _locked(code, session)
    before = f"parts={ticket.parts_cost_vnd} labour={ticket.labour_cost_vnd}"
    ticket.parts_cost_vnd, ticket.labour_cost_vnd, ticket.parts_replaced = parts_cost_vnd, labour_cost_vnd, parts
    after = f"parts={parts_cost_vnd} labour={labour_cost_vnd}"
    words = "; ".join(filter(None, [note.strip(), ", ".join(parts)]))
    record_event(session, ticket, EventKind.COST, at=now, actor=actor, from_value=before, to_value=after, note=words)
    return ticket
