"""The automatic life of tickets: open or update on a problem, resolve on recovery, close, reconcile, breaches.

This is what the alerts part calls. Tickets never import health: callers say which problems exist.

Guarantees, and how they are kept:
- One open ticket per problem: the database's partial unique index. A writer that loses a race gets
  an IntegrityError inside a savepoint, rolls back to it and joins the winner's ticket.
- A problem that returns within `reopen_window` of its ticket's resolution reopens that ticket; later,
  a new ticket is opened and linked to it (`previous_ticket_id`).
- Only automatic tickets (`auto`, `alertmanager`) are resolved by a recovery, and only when the policy
  says so; people's tickets (`manual`, `planned`) are resolved by people.
- `reconcile` resolves open automatic tickets whose problem is gone, so a lost recovery never leaves
  a ticket open forever, and opens those missing.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence, Set
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from monitor.durations import format_duration
from monitor.errors import Conflict, InvalidInput, Problem
from monitor.priority import Priority
from monitor.tickets.choices import (
    AUTOMATIC_SOURCES,
    EventKind,
    ProblemScope,
    TicketOutcomeAction,
    TicketSource,
    TicketStatus,
    problem_key,
)
from monitor.tickets.creation import NewTicket, insert_tickets
from monitor.tickets.models import Ticket
from monitor.tickets.policy import TicketPolicy
from monitor.tickets.routing import places, route_district
from monitor.tickets.store import (
    OPEN,
    RESOLVED,
    begin_write,
    record_event,
    refresh_due_times,
    reopen,
    resolve,
)

_CHUNK = 500  # keys per IN (...) clause
_ATTEMPTS = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class ProblemReport:
    """A problem as the alerts part reports it: what it is about, what kind, how urgent, since when.

    `scope_code` is a device code, a commune code, a district code or the province-level thing's name
    (`collectors`) according to `scope`; `commune_code` is where the problem stands (None for a
    district-wide problem, and always None for a province one, which stands in no place of the inventory).
    """

    scope: ProblemScope
    scope_code: str
    kind: str
    title: str
    device_id: int | None = None
    commune_code: str | None = None
    description: str = ""
    priority: Priority = Priority.P3
    source: TicketSource = TicketSource.AUTO
    occurred_at: datetime | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "scope", ProblemScope(self.scope))
        object.__setattr__(self, "priority", Priority(self.priority))
        object.__setattr__(self, "source", TicketSource(self.source))
        problems = []
        if not self.scope_code or not self.kind:
            problems.append(Problem("scope_code", "a problem needs a scope code and a kind"))
        if not self.title.strip():
            problems.append(Problem("title", "a problem needs a title"))
        if self.scope is ProblemScope.PROVINCE:
            if self.commune_code is not None or self.device_id is not None:
                problems.append(Problem("commune_code", "a province problem stands in no commune and no device"))
        elif self.scope is not ProblemScope.DISTRICT and not self.commune_code:
            problems.append(Problem("commune_code", f"a {self.scope.value} problem needs its commune"))
        if self.source not in AUTOMATIC_SOURCES:
            problems.append(Problem("source", "reports come from monitoring; people use create_manual_ticket"))
        if problems:
            raise InvalidInput("problem report refused", problems)

    @property
    def key(self) -> str:
        """The problem's identity (see `problem_key`)."""
        return problem_key(self.scope, self.scope_code, self.kind)


@dataclass(frozen=True, slots=True)
class TicketOutcome:
    """What `open_or_update_ticket` did, and to which ticket."""

    ticket: Ticket
    action: TicketOutcomeAction


@dataclass(frozen=True, slots=True)
class ReconcileResult:
    """What `reconcile` changed: tickets resolved because their problem is gone, outcomes of missing ones."""

    resolved: list[Ticket]
    opened: list[TicketOutcome]


def _chunks(keys: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(keys), _CHUNK):
        yield keys[start : start + _CHUNK]


def _open_tickets(keys: Sequence[str], *, session: Session) -> dict[str, Ticket]:
    """The open ticket of each problem that has one, locked until the transaction ends."""
    found: dict[str, Ticket] = {}
    for chunk in _chunks(keys):
        query = select(Ticket).where(col(Ticket.problem_key).in_(chunk), OPEN).with_for_update()
        found.update((t.problem_key, t) for t in session.exec(query.execution_options(populate_existing=True)))
    return found


def _latest_tickets(keys: Sequence[str], *, session: Session) -> dict[str, tuple[int, datetime | None]]:
    """The newest ticket of each problem that has any: (id, resolved at)."""
    found: dict[str, tuple[int, datetime | None]] = {}
    for chunk in _chunks(keys):
        newest = select(func.max(Ticket.id)).where(col(Ticket.problem_key).in_(chunk)).group_by(col(Ticket.problem_key))
        query = select(Ticket.problem_key, Ticket.id, Ticket.resolved_at).where(col(Ticket.id).in_(newest))
        for key, ticket_id, resolved_at in session.exec(query):
            assert ticket_id is not None
            found[key] = (ticket_id, resolved_at)
    return found


def _district_of(problem: ProblemReport, *, session: Session, policy: TicketPolicy) -> str | None:
    """The district that must fix the problem; None for a province problem (the province operator's)."""
    if problem.scope is ProblemScope.PROVINCE:
        return None
    if problem.commune_code is not None:
        return route_district(problem.commune_code, session=session, overrides=policy.routing_overrides)
    if problem.scope_code not in places(session).districts:
        raise InvalidInput(
            "problem report refused", [Problem("scope_code", f"unknown district {problem.scope_code!r}")]
        )
    return problem.scope_code


def _update(
    ticket: Ticket, problem: ProblemReport, *, session: Session, now: datetime, policy: TicketPolicy
) -> TicketOutcome:
    """A report of a problem that already has an open ticket: raise its priority if more urgent, never lower it."""
    ticket.last_reported_at = now
    if dict(problem.details) != ticket.details:
        ticket.details = dict(problem.details)
    if problem.priority.value >= ticket.priority:
        return TicketOutcome(ticket, TicketOutcomeAction.UNCHANGED)
    before, ticket.priority = ticket.priority, problem.priority.value
    note = f"reported again as {problem.priority.value}: {problem.title}"
    record_event(
        session, ticket, EventKind.PRIORITY, at=now, actor=None, from_value=before, to_value=ticket.priority, note=note
    )
    refresh_due_times(ticket, session=session, policy=policy, at=now, actor=None, note="priority raised")
    return TicketOutcome(ticket, TicketOutcomeAction.UPDATED)


def _new_ticket(
    problem: ProblemReport, previous_id: int | None, *, session: Session, policy: TicketPolicy, now: datetime
) -> NewTicket:
    return NewTicket(
        problem_key=problem.key,
        status=TicketStatus.NEW,
        source=problem.source,
        priority=problem.priority,
        title=problem.title,
        description=problem.description,
        scope=problem.scope,
        scope_code=problem.scope_code,
        kind=problem.kind,
        device_id=problem.device_id,
        commune_code=problem.commune_code,
        district_code=_district_of(problem, session=session, policy=policy),
        details=problem.details,
        occurred_at=problem.occurred_at,
        last_reported_at=now,
        previous_ticket_id=previous_id,
        note="opened by monitoring"
        if previous_id is None
        else "the problem returned after its last ticket was resolved",
    )


def reopen_note(after: timedelta, window: timedelta, title: str) -> str:
    """Why a ticket was reopened, in words people read (stored in Vietnamese, like every ticket text):
    "Sự cố tái diễn 2 giờ 15 phút sau khi được khắc phục (trong thời hạn mở lại 24 giờ). <the problem>"."""
    return (
        f"Sự cố tái diễn {format_duration(after)} sau khi được khắc phục "
        # a window of a day or two is said in hours ("24 giờ"), as the policy is; a longer one in days
        f"(trong thời hạn mở lại {format_duration(window, days=window > timedelta(hours=48))}). {title}"
    )


def _apply(
    reports: Mapping[str, ProblemReport], contested: list[str], *, session: Session, now: datetime, policy: TicketPolicy
) -> dict[str, TicketOutcome]:
    """Decide and do, for every problem: update its open ticket, reopen its recent one, or open a new one.

    `contested` receives the keys whose ticket this call (re)opens: where a concurrent writer may win.
    """
    keys = list(reports)
    outcomes: dict[str, TicketOutcome] = {}
    open_now = _open_tickets(keys, session=session)
    latest = _latest_tickets([k for k in keys if k not in open_now], session=session)
    to_create: list[str] = []
    for key in keys:
        problem = reports[key]
        if key in open_now:
            outcomes[key] = _update(open_now[key], problem, session=session, now=now, policy=policy)
            continue
        if key not in latest:
            to_create.append(key)
            continue
        contested.append(key)
        ticket_id, resolved_at = latest[key]
        if resolved_at is None or now - resolved_at > policy.reopen_window:
            to_create.append(key)
            continue
        previous = session.get(Ticket, ticket_id, with_for_update=True, populate_existing=True)
        assert previous is not None
        if TicketStatus(previous.status).is_open:  # reopened by someone else meanwhile
            outcomes[key] = _update(previous, problem, session=session, now=now, policy=policy)
            continue
        note = reopen_note(now - resolved_at, policy.reopen_window, problem.title)
        reopen(previous, session=session, at=now, actor=None, policy=policy, note=note, priority=problem.priority)
        previous.last_reported_at = now
        outcomes[key] = TicketOutcome(previous, TicketOutcomeAction.REOPENED)
    contested.extend(k for k in to_create if k not in latest)
    specs = [
        _new_ticket(reports[k], latest[k][0] if k in latest else None, session=session, policy=policy, now=now)
        for k in to_create
    ]
    for key, ticket in zip(to_create, insert_tickets(specs, session=session, now=now, policy=policy), strict=True):
        action = TicketOutcomeAction.REOPENED_AS_NEW if key in latest else TicketOutcomeAction.OPENED
        outcomes[key] = TicketOutcome(ticket, action)
    return outcomes


def open_or_update_tickets(
    problems: Sequence[ProblemReport], *, session: Session, now: datetime, policy: TicketPolicy
) -> list[TicketOutcome]:
    """`open_or_update_ticket` for many problems at once (a dispatcher's batch, a storm): one outcome each.

    Set-based: a few statements per 500 problems. Reports of one problem within the batch are merged
    (the most urgent one counts) and share their outcome.
    """
    begin_write(session)
    merged: dict[str, ProblemReport] = {}
    for problem in problems:
        first = merged.get(problem.key)
        if first is None or problem.priority.value < first.priority.value:
            merged[problem.key] = problem
    for _ in range(_ATTEMPTS):
        contested: list[str] = []
        try:
            with session.begin_nested():
                outcomes = _apply(merged, contested, session=session, now=now, policy=policy)
            return [outcomes[problem.key] for problem in problems]
        except sa.exc.IntegrityError as error:
            # Another writer opened some of these problems first: their tickets are visible now, so plan
            # again and join them. An integrity error of another kind (an unknown device id…) leaves
            # none of them open and is reported as it is.
            if not _open_tickets(contested, session=session):
                raise InvalidInput(
                    "problem report refused by the database", [Problem("problem", str(error.orig))]
                ) from error
    raise Conflict(f"could not open or update {len(merged)} tickets after {_ATTEMPTS} attempts: too much contention")


def open_or_update_ticket(
    problem: ProblemReport, *, session: Session, now: datetime, policy: TicketPolicy
) -> TicketOutcome:
    """The one entry point for problems found by monitoring: at most one open ticket per problem, ever.

    - an open ticket of the problem exists: it is updated (a more urgent report raises its priority;
      an exact duplicate changes nothing visible) -> `updated` or `unchanged`;
    - its latest ticket was resolved (or closed) less than `policy.reopen_window` ago: reopened -> `reopened`;
    - its latest ticket is older: a new ticket linked to it -> `reopened_as_new`;
    - never seen: a new ticket routed to the responsible district (none for a province problem: the
      province operator's) -> `opened`.

    Safe under concurrency (threads, processes, duplicated deliveries): the partial unique index lets one
    writer open the ticket; the others get an IntegrityError inside their savepoint, roll back to it,
    read the winner's ticket and update it. The caller commits.
    """
    [outcome] = open_or_update_tickets([problem], session=session, now=now, policy=policy)
    return outcome


def resolve_problem(
    problem_key: str, *, session: Session, recovered_at: datetime, policy: TicketPolicy, note: str = "recovered"
) -> Ticket | None:
    """A recovery: the open automatic ticket of the problem is resolved at `recovered_at`, if the policy says so.

    Returns the resolved ticket, or None when nothing was resolved: no open ticket, a manual or planned
    ticket (people resolve those), or automatic resolution turned off (then a `recovered` event tells
    the people in charge that the device came back).
    """
    begin_write(session)
    ticket = _open_tickets([problem_key], session=session).get(problem_key)
    if ticket is None or TicketSource(ticket.source) not in AUTOMATIC_SOURCES:
        return None
    at = max(recovered_at, ticket.created_at)
    if not policy.auto_resolve:
        record_event(
            session,
            ticket,
            EventKind.RECOVERED,
            at=at,
            actor=None,
            note="the problem is gone; automatic resolution is off in this deployment",
        )
        return None
    resolve(ticket, session=session, at=at, actor=None, automatically=True, note=note)
    return ticket


def close_resolved(now: datetime, *, session: Session, policy: TicketPolicy) -> list[Ticket]:
    """Close every ticket resolved more than `policy.close_delay` before `now`; returns those closed."""
    begin_write(session)
    cutoff = now - policy.close_delay
    query = (
        select(Ticket)
        .where(RESOLVED, col(Ticket.resolved_at) <= cutoff)
        .order_by(col(Ticket.id))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    closed = list(session.exec(query))
    for ticket in closed:
        before, ticket.status, ticket.closed_at = ticket.status, TicketStatus.CLOSED.value, now
        record_event(
            session,
            ticket,
            EventKind.STATUS,
            at=now,
            actor=None,
            from_value=before,
            to_value=ticket.status,
            note=f"closed automatically {policy.close_delay} after its resolution",
        )
    return closed


def reconcile(
    active_problem_keys: Set[str],
    problem_reports_for_missing: Callable[[str], ProblemReport | None] | Mapping[str, ProblemReport],
    *,
    session: Session,
    now: datetime,
    policy: TicketPolicy,
    sources: Collection[TicketSource] = (TicketSource.AUTO,),
) -> ReconcileResult:
    """Make open automatic tickets agree with the problems that exist at `now`.

    - An open ticket of one of `sources` whose problem is not in `active_problem_keys` is resolved
      (automatically, at `now`), when the policy resolves automatically: its recovery was lost.
      Tickets created or reported after `now` are left alone, since the active set cannot know them.
    - An active problem without an open ticket goes through `open_or_update_ticket`, with the report
      that `problem_reports_for_missing` gives for its key (None or a missing key: skipped).

    `sources` defaults to `auto` tickets, whose problems health knows; Alertmanager's are reconciled
    by a caller that knows Alertmanager's active alerts (`sources=[TicketSource.ALERTMANAGER]`).
    """
    begin_write(session)
    source_values = [TicketSource(s).value for s in sources]
    resolved: list[Ticket] = []
    if policy.auto_resolve:
        query = (
            select(Ticket)
            .where(OPEN, col(Ticket.source).in_(source_values), col(Ticket.created_at) <= now)
            .order_by(col(Ticket.id))
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        for ticket in session.exec(query):
            reported = ticket.last_reported_at or ticket.created_at
            if ticket.problem_key in active_problem_keys or reported > now:
                continue
            resolve(
                ticket,
                session=session,
                at=now,
                actor=None,
                automatically=True,
                note="reconciliation: the problem is no longer active (its recovery was lost)",
            )
            resolved.append(ticket)
        session.flush()

    keys = sorted(active_problem_keys)
    have_open: set[str] = set()
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        have_open.update(session.exec(select(Ticket.problem_key).where(OPEN, col(Ticket.problem_key).in_(chunk))))
    lookup = (
        problem_reports_for_missing.get
        if isinstance(problem_reports_for_missing, Mapping)
        else problem_reports_for_missing
    )
    reports = [report for key in keys if key not in have_open and (report := lookup(key)) is not None]
    return ReconcileResult(resolved, open_or_update_tickets(reports, session=session, now=now, policy=policy))


def mark_breaches(now: datetime, *, session: Session, policy: TicketPolicy) -> list[Ticket]:
    """Mark open tickets past a due time as breached and escalate them to the province, once each.

    A ticket not yet acknowledged breaches at its acknowledgement due time, any open ticket at its
    resolution due time; a waiting ticket only if it was already late when the wait began (its clock
    is stopped). Each breach records an `escalated` event; notifying the province operator is the
    alerts part's job, from the returned tickets. Running it again marks nothing twice.
    """
    begin_write(session)
    waiting = col(Ticket.status) == TicketStatus.WAITING.value
    late_ack = sa.and_(col(Ticket.acknowledged_at).is_(None), col(Ticket.ack_due_at) < now)
    query = (
        select(Ticket)
        .where(
            OPEN,
            col(Ticket.sla_breached).is_(False),
            sa.or_(
                sa.and_(sa.not_(waiting), sa.or_(col(Ticket.resolve_due_at) < now, late_ack)),
                sa.and_(waiting, col(Ticket.resolve_due_at) < col(Ticket.paused_since)),
            ),
        )
        .order_by(col(Ticket.id))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    breached = list(session.exec(query))
    for ticket in breached:
        missed_ack = ticket.acknowledged_at is None and ticket.ack_due_at is not None and ticket.ack_due_at < now
        target, due = ("acknowledge", ticket.ack_due_at) if missed_ack else ("resolve", ticket.resolve_due_at)
        ticket.sla_breached = True
        ticket.breached_at = ticket.escalated_at = now
        record_event(
            session,
            ticket,
            EventKind.ESCALATED,
            at=now,
            actor=None,
            from_value=due,
            to_value=target,
            note=f"not {target}d by {due.isoformat() if due else '?'}: escalated to the province operator",
        )
    return breached
