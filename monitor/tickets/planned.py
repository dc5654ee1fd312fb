"""Planned maintenance: recurring inspection schedules that open `planned` tickets in the same queue.

The provincial plan asks each district to review, maintain and repair its stations every year. A
schedule (every radio cluster inspected once a year, bulletin boards cleaned each quarter…) opens, for
each occurrence, one ticket per device, commune or district in its scope, `lead_days` before the
occurrence is due. Those tickets have source `planned` and status `planned`: they sort by their due
date with corrective work, are never resolved automatically, and reports can tell them apart.

Idempotent per (schedule, occurrence): a ticket's problem key names the schedule, the occurrence's due
date and the target, and the database keeps (schedule, problem key) unique, so running the job twice,
or in two processes at once, opens nothing new. An occurrence missed entirely (the next one is overdue
too, the service was off) is skipped rather than opened late.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from monitor.db import utcnow
from monitor.errors import InvalidInput, Problem
from monitor.i18n import LOCAL_ZONE, N_, format_date, translator
from monitor.inventory.choices import DeviceKind
from monitor.inventory.models import Commune, Device, District
from monitor.priority import Priority
from monitor.tickets.choices import ProblemScope, TicketSource, TicketStatus
from monitor.tickets.creation import NewTicket, insert_tickets
from monitor.tickets.models import InspectionSchedule, Ticket
from monitor.tickets.policy import TicketPolicy
from monitor.tickets.routing import route_district
from monitor.tickets.schemas import InspectionScheduleCreate
from monitor.tickets.store import begin_write

#: A planned ticket's title: the schedule, what it covers, and its due date.
PLANNED_TITLE = N_("{schedule} – {target} – hạn {due}")


def add_months(day: date, months: int) -> date:
    """`day` moved by `months` months, the day of month clamped (31 January + 1 month = 28 or 29 February)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def occurrence_due(schedule: InspectionSchedule, occurrence: int) -> date:
    """The due date of the schedule's `occurrence`-th time (0 is `first_due_on`), counted from the first
    so that clamped month ends do not drift (31 Jan, 28 Feb, 31 Mar…)."""
    if schedule.every_months is not None:
        return add_months(schedule.first_due_on, occurrence * schedule.every_months)
    assert schedule.every_days is not None
    return schedule.first_due_on + timedelta(days=occurrence * schedule.every_days)


def end_of_day(day: date) -> datetime:
    """The instant a local date ends in Vietnam (midnight after it), in UTC: a planned ticket's due time."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=LOCAL_ZONE).astimezone(UTC)


def create_schedule(
    data: InspectionScheduleCreate, *, session: Session, now: datetime | None = None
) -> InspectionSchedule:
    """Store a new inspection schedule after checking that its district, commune and device kind exist."""
    problems = []
    if data.district_code is not None and session.get(District, data.district_code) is None:
        problems.append(Problem("district_code", f"unknown district {data.district_code!r}"))
    if data.commune_code is not None and session.get(Commune, data.commune_code) is None:
        problems.append(Problem("commune_code", f"unknown commune {data.commune_code!r}"))
    if data.device_kind is not None and data.device_kind not in {k.value for k in DeviceKind}:
        problems.append(Problem("device_kind", f"unknown device kind {data.device_kind!r}"))
    if data.per is ProblemScope.PROVINCE:
        problems.append(Problem("per", "an inspection opens one ticket per device, commune or district"))
    if data.per is ProblemScope.DEVICE and data.device_kind is None:
        problems.append(Problem("device_kind", "a schedule with one ticket per device says which kind of device"))
    if problems:
        raise InvalidInput("inspection schedule refused", problems)
    schedule = InspectionSchedule(
        **data.model_dump(exclude={"per", "priority"}),
        per=data.per.value,
        priority=data.priority.value,
        next_due_on=data.first_due_on,
        created_at=now or utcnow(),
    )
    session.add(schedule)
    session.flush()
    return schedule


@dataclass(frozen=True, slots=True)
class _Target:
    scope: ProblemScope
    scope_code: str
    label: str
    district_code: str
    commune_code: str | None = None
    device_id: int | None = None


def _targets(schedule: InspectionSchedule, *, session: Session, policy: TicketPolicy) -> Iterator[_Target]:
    """What gets one ticket per occurrence: each device, commune or district in the schedule's scope."""
    overrides = policy.routing_overrides
    per = ProblemScope(schedule.per)
    communes_query = select(Commune).order_by(col(Commune.code))
    if schedule.commune_code is not None:
        communes_query = communes_query.where(col(Commune.code) == schedule.commune_code)
    if schedule.device_kind is not None:
        with_kind = select(Device.commune_code).where(col(Device.kind) == schedule.device_kind, col(Device.active))
        communes_query = communes_query.where(col(Commune.code).in_(with_kind))
    routed: list[tuple[Commune, str]] = []
    for commune in session.exec(communes_query).all():
        district = route_district(commune.code, session=session, overrides=overrides)
        if schedule.district_code in (None, district):
            routed.append((commune, district))
    if per is ProblemScope.DISTRICT:
        names = {d.code: d.name for d in session.exec(select(District))}
        for district in sorted({district for _, district in routed}):
            yield _Target(per, district, names.get(district, district), district)
    elif per is ProblemScope.COMMUNE:
        for commune, district in routed:
            yield _Target(per, commune.code, commune.name, district, commune.code)
    else:
        district_of = {commune.code: district for commune, district in routed}
        devices = select(Device).where(col(Device.kind) == schedule.device_kind, col(Device.active))
        for device in session.exec(devices.where(col(Device.commune_code).in_(district_of)).order_by(col(Device.code))):
            assert device.id is not None
            yield _Target(
                per,
                device.code,
                f"{device.code} {device.name}",
                district_of[device.commune_code],
                device.commune_code,
                device.id,
            )


def _open_occurrence(
    schedule: InspectionSchedule, due: date, *, session: Session, policy: TicketPolicy, now: datetime
) -> list[Ticket]:
    assert schedule.id is not None
    opened = []
    title = translator("vi").gettext(PLANNED_TITLE)  # stored: always Vietnamese
    for target in _targets(schedule, session=session, policy=policy):
        key = f"planned:{schedule.id}:{due.isoformat()}:{target.scope.value}:{target.scope_code}"
        try:
            with session.begin_nested():
                spec = NewTicket(
                    problem_key=key,
                    status=TicketStatus.PLANNED,
                    source=TicketSource.PLANNED,
                    priority=Priority(schedule.priority),
                    title=title.format(schedule=schedule.name, target=target.label, due=format_date(due)),
                    description=schedule.description,
                    scope=target.scope,
                    scope_code=target.scope_code,
                    kind="inspection",
                    device_id=target.device_id,
                    commune_code=target.commune_code,
                    district_code=target.district_code,
                    schedule_id=schedule.id,
                    resolve_due_at=end_of_day(due),
                    note=f"inspection schedule {schedule.name!r}, due {format_date(due)}",
                )
                [ticket] = insert_tickets([spec], session=session, now=now, policy=policy)
            opened.append(ticket)
        except sa.exc.IntegrityError:
            continue  # this occurrence's ticket exists already (another run got here first)
    return opened


def open_planned_tickets(
    today: date, *, session: Session, policy: TicketPolicy, now: datetime | None = None
) -> list[Ticket]:
    """Open the planned tickets of every active schedule whose next occurrence is within its lead time.

    `today` is the local (Vietnam) date; `now` the creation time of the tickets (default: now).
    Returns the tickets opened; a second run the same day returns none.
    """
    begin_write(session)
    now = now or utcnow()
    schedules = select(InspectionSchedule).where(col(InspectionSchedule.active)).order_by(col(InspectionSchedule.id))
    opened: list[Ticket] = []
    for schedule in session.exec(schedules.with_for_update().execution_options(populate_existing=True)).all():
        occurrence = schedule.occurrence
        while occurrence_due(schedule, occurrence + 1) < today:
            occurrence += 1  # missed entirely while nothing ran: skipped, not opened late
        while occurrence_due(schedule, occurrence) - timedelta(days=schedule.lead_days) <= today:
            opened += _open_occurrence(
                schedule, occurrence_due(schedule, occurrence), session=session, policy=policy, now=now
            )
            occurrence += 1
        schedule.occurrence, schedule.next_due_on = occurrence, occurrence_due(schedule, occurrence)
    return opened
