"""Planned maintenance: inspection schedules open `planned` tickets in the queue, once per occurrence."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlmodel import Session, func, select

from monitor.errors import InvalidInput
from monitor.tickets import service
from monitor.tickets.choices import ProblemScope
from monitor.tickets.models import InspectionSchedule, Ticket
from monitor.tickets.planned import add_months
from monitor.tickets.policy import TicketPolicy
from monitor.tickets.schemas import InspectionScheduleCreate, InspectionSchedulePublic
from tests.test_tickets_support import CAO_LOC, DINH_LAP, DONG_DANG, T0, fleet, policy

__all__ = ["fleet", "policy"]  # fixtures, imported for pytest


def ticket_count(session: Session) -> int:
    return session.exec(select(func.count()).select_from(Ticket)).one()


def yearly_cluster_inspection(session: Session) -> int:
    data = InspectionScheduleCreate(
        name="Kiểm tra định kỳ cụm loa",
        district_code=CAO_LOC,
        device_kind="radio_cluster",
        per=ProblemScope.COMMUNE,
        every_months=12,
        first_due_on=date(2026, 3, 31),
        lead_days=30,
    )
    schedule = service.create_schedule(data, session=session, now=T0)
    session.commit()
    assert schedule.id is not None
    return schedule.id


def test_a_schedule_opens_planned_tickets_within_its_lead_time_and_only_once(
    session: Session, fleet: dict[str, int], policy: TicketPolicy
) -> None:
    schedule_id = yearly_cluster_inspection(session)
    assert service.open_planned_tickets(date(2026, 2, 28), session=session, policy=policy, now=T0) == []
    [ticket] = service.open_planned_tickets(date(2026, 3, 1), session=session, policy=policy, now=T0)
    session.commit()
    assert (ticket.status, ticket.source, ticket.priority, ticket.schedule_id) == (
        "planned",
        "planned",
        "P4",
        schedule_id,
    )
    assert (ticket.scope, ticket.scope_code, ticket.district_code) == ("commune", DONG_DANG, CAO_LOC)
    assert ticket.title == "Kiểm tra định kỳ cụm loa – Thị trấn Đồng Đăng – hạn 31/03/2026"
    assert ticket.resolve_due_at == datetime(2026, 3, 31, 17, 0, tzinfo=UTC)  # end of 31/03 in Vietnam
    assert ticket.ack_due_at is None
    assert service.open_planned_tickets(date(2026, 3, 1), session=session, policy=policy, now=T0) == []
    assert service.open_planned_tickets(date(2026, 12, 1), session=session, policy=policy, now=T0) == []
    session.commit()
    assert ticket_count(session) == 1


def test_a_second_run_working_from_a_stale_schedule_opens_nothing_new(
    session: Session, fleet: dict[str, int], policy: TicketPolicy
) -> None:
    schedule_id = yearly_cluster_inspection(session)
    service.open_planned_tickets(date(2026, 3, 1), session=session, policy=policy, now=T0)
    session.commit()
    # As if another process had read the schedule before this run advanced it.
    session.connection().exec_driver_sql(
        f"UPDATE inspection_schedules SET occurrence = 0, next_due_on = '2026-03-31' WHERE id = {schedule_id}"
    )
    assert service.open_planned_tickets(date(2026, 3, 2), session=session, policy=policy, now=T0) == []
    session.commit()
    assert ticket_count(session) == 1


def test_one_ticket_per_device_across_the_province_routed_to_each_district(
    session: Session, fleet: dict[str, int], policy: TicketPolicy
) -> None:
    data = InspectionScheduleCreate(
        name="Vệ sinh bảng tin",
        device_kind="bulletin_board",
        per=ProblemScope.DEVICE,
        every_months=3,
        first_due_on=date(2026, 3, 31),
        lead_days=10,
    )
    service.create_schedule(data, session=session, now=T0)
    opened = service.open_planned_tickets(date(2026, 3, 25), session=session, policy=policy, now=T0)
    assert sorted((t.scope_code, t.district_code, t.device_id is not None) for t in opened) == [
        ("06184-BT01", CAO_LOC, True),
        ("06613-BT01", DINH_LAP, True),
    ]
    [schedule] = [InspectionSchedulePublic.build(s) for s in session.exec(select(InspectionSchedule))]
    assert schedule.next_due_on == date(2026, 6, 30)


def test_a_missed_occurrence_is_skipped_but_the_latest_overdue_one_is_opened(
    session: Session, fleet: dict[str, int], policy: TicketPolicy
) -> None:
    data = InspectionScheduleCreate(
        name="Kiểm tra quý",
        district_code=DINH_LAP,
        per=ProblemScope.DISTRICT,
        every_months=3,
        first_due_on=date(2026, 1, 31),
        lead_days=30,
    )
    service.create_schedule(data, session=session, now=T0)
    [ticket] = service.open_planned_tickets(date(2026, 9, 15), session=session, policy=policy, now=T0)
    assert ticket.problem_key.split(":")[2] == "2026-07-31"
    assert (ticket.scope, ticket.scope_code, ticket.commune_code) == ("district", DINH_LAP, None)


def test_planned_tickets_are_worked_by_people_and_never_resolved_by_monitoring(
    session: Session, fleet: dict[str, int], policy: TicketPolicy
) -> None:
    yearly_cluster_inspection(session)
    [ticket] = service.open_planned_tickets(date(2026, 3, 1), session=session, policy=policy, now=T0)
    assert service.reconcile(set(), {}, session=session, now=T0, policy=policy).resolved == []
    assert service.resolve_problem(ticket.problem_key, session=session, recovered_at=T0, policy=policy) is None
    service.transition(ticket.code, "start", actor=None, session=session, now=T0, policy=policy)
    assert ticket.status == "in_progress"


def test_a_schedule_repeats_either_in_months_or_in_days() -> None:
    with pytest.raises(ValueError, match="either in months or in days"):
        InspectionScheduleCreate(name="x", every_months=1, every_days=7, first_due_on=date(2026, 1, 1))


def test_a_schedule_naming_unknown_places_is_refused_by_the_service(session: Session) -> None:
    data = InspectionScheduleCreate(
        name="x",
        district_code="999",
        device_kind="toaster",
        per=ProblemScope.DEVICE,
        every_days=7,
        first_due_on=date(2026, 1, 1),
    )
    with pytest.raises(InvalidInput) as caught:
        service.create_schedule(data, session=session)
    assert [p.field for p in caught.value.problems] == ["district_code", "device_kind"]


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2026, 1, 31), 2, date(2026, 3, 31)),  # counted from the first date: no drift to the 28th
        (date(2027, 11, 30), 3, date(2028, 2, 29)),
        (date(2026, 12, 15), 12, date(2027, 12, 15)),
    ],
)
def test_months_are_added_with_the_day_clamped_to_the_month(start: date, months: int, expected: date) -> None:
    assert add_months(start, months) == expected
