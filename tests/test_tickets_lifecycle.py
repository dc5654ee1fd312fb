"""The life of tickets through the service layer, on SQLite and PostgreSQL: open, work, wait, resolve, close,
reopen, reconcile, breach — and the database's one-open-ticket-per-problem guarantee."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from monitor.errors import Conflict, InvalidInput
from monitor.i18n import LOCAL_ZONE as VIETNAM
from monitor.priority import Priority
from monitor.tickets import service
from monitor.tickets.choices import TicketAction, TicketOutcomeAction, TicketSource
from monitor.tickets.models import Ticket, TicketPause
from monitor.tickets.policy import TicketPolicy
from monitor.tickets.schemas import TicketCreate
from monitor.tickets.sla import CalendarKind, SlaPolicy
from tests.test_tickets_support import (
    CAO_LOC,
    DINH_LAP,
    DONG_DANG,
    T0,
    cast,
    events,
    fleet,
    hours,
    minutes,
    policy,
    report,
)

__all__ = ["cast", "fleet", "policy"]  # fixtures, imported for pytest

OPENED, UPDATED, UNCHANGED = TicketOutcomeAction.OPENED, TicketOutcomeAction.UPDATED, TicketOutcomeAction.UNCHANGED


def ticket_count(session: Session) -> int:
    return session.exec(select(func.count()).select_from(Ticket)).one()


def open_ticket(
    session: Session, fleet: dict[str, int], policy: TicketPolicy, code: str = "06184-CL01", **kw
) -> Ticket:
    outcome = service.open_or_update_ticket(report(code, fleet, **kw), session=session, now=T0, policy=policy)
    session.commit()
    return outcome.ticket


def test_a_ticket_lives_from_opened_to_closed_with_every_step_in_its_history(
    session: Session, fleet: dict[str, int], cast: dict[str, int], policy: TicketPolicy
) -> None:
    ticket = open_ticket(session, fleet, policy)
    assert (ticket.code, ticket.status, ticket.district_code, ticket.problem_key) == (
        "LS-2026-000001",
        "new",
        CAO_LOC,
        "device:06184-CL01:offline",
    )
    tech, officer = cast["tech_caoloc"], cast["officer_caoloc"]
    service.assign(ticket.code, tech, actor=officer, session=session, now=T0 + minutes(5))
    steps = [
        (TicketAction.ACKNOWLEDGE, tech, minutes(10), "acknowledged"),
        (TicketAction.START, tech, minutes(40), "in_progress"),
        (TicketAction.WAIT, tech, hours(1), "waiting"),
        (TicketAction.RESUME, tech, hours(3), "in_progress"),
        (TicketAction.RESOLVE, tech, hours(4), "resolved"),
        (TicketAction.CLOSE, officer, hours(30), "closed"),
    ]
    for action, actor, after, status in steps:
        ticket = service.transition(
            ticket.code, action, actor=actor, note=f"{action} note", session=session, now=T0 + after, policy=policy
        )
        session.commit()
        assert ticket.status == status
    assert ticket.acknowledged_at == T0 + minutes(10)
    assert ticket.resolved_at == T0 + hours(4) and ticket.closed_at == T0 + hours(30)
    assert ticket.paused_seconds == 2 * 3600 and ticket.paused_since is None
    assert not ticket.auto_resolved
    assert events(session, ticket.id) == [
        ("created", None, "new", None),
        ("assignee", None, str(tech), officer),
        ("status", "new", "acknowledged", tech),
        ("status", "acknowledged", "in_progress", tech),
        ("status", "in_progress", "waiting", tech),
        ("status", "waiting", "in_progress", tech),
        ("due", (T0 + hours(24)).isoformat(), (T0 + hours(26)).isoformat(), tech),  # P2: 24 h + 2 h waited
        ("status", "in_progress", "resolved", tech),
        ("status", "resolved", "closed", officer),
    ]
    [history_note] = [e.note for e in service.history(ticket.code, session=session) if e.to_value == "waiting"]
    assert history_note == "wait note"


def test_duplicate_deliveries_of_a_problem_make_exactly_one_ticket(
    session: Session, fleet: dict[str, int], policy: TicketPolicy
) -> None:
    problem = report("06184-CL01", fleet)
    outcomes = []
    for n in range(5):
        outcomes.append(service.open_or_update_ticket(problem, session=session, now=T0 + minutes(n), policy=policy))
        session.commit()
    assert [o.action for o in outcomes] == [OPENED] + [UNCHANGED] * 4
    assert {o.ticket.id for o in outcomes} == {outcomes[0].ticket.id}
    assert ticket_count(session) == 1
    assert outcomes[-1].ticket.last_reported_at == T0 + minutes(4)
    assert [kind for kind, *_ in events(session, outcomes[0].ticket.id)] == ["created"]


def test_a_more_urgent_report_raises_the_priority_but_a_less_urgent_one_never_lowers_it(
    session: Session, fleet: dict[str, int], policy: TicketPolicy
) -> None:
    ticket = open_ticket(session, fleet, policy, priority=Priority.P3)
    assert ticket.resolve_due_at == T0 + hours(72)
    raised = service.open_or_update_ticket(
        report("06184-CL01", fleet, priority=Priority.P1), session=session, now=T0 + hours(1), policy=policy
    )
    assert (raised.action, raised.ticket.priority) == (UPDATED, "P1")
    assert raised.ticket.resolve_due_at == T0 + hours(8)  # P1's 8 h, counted from creation
    assert raised.ticket.ack_due_at == T0 + minutes(30)
    lower = service.open_or_update_ticket(
        report("06184-CL01", fleet, priority=Priority.P4), session=session, now=T0 + hours(2), policy=policy
    )
    assert (lower.action, lower.ticket.priority) == (UNCHANGED, "P1")
    assert [k for k, *_ in events(session, ticket.id)] == ["created", "priority", "due"]


def test_a_problem_that_returns_within_a_day_reopens_its_ticket(
    session: Session, fleet: dict[str, int], policy: TicketPolicy
) -> None:
    ticket = open_ticket(session, fleet, policy)
    service.resolve_problem(ticket.problem_key, session=session, recovered_at=T0 + hours(2), policy=policy)
    session.commit()
    back = service.open_or_update_ticket(
        report("06184-CL01", fleet), session=session, now=T0 + hours(25), policy=policy
    )
    session.commit()
    assert back.action is TicketOutcomeAction.REOPENED
    assert back.ticket.id == ticket.id and back.ticket.status == "reopened"
    assert (back.ticket.reopen_count, back.ticket.resolved_at, back.ticket.auto_resolved) == (1, None, False)
    # A new SLA round starts at the reopening.
    assert back.ticket.resolve_due_at == T0 + hours(25) + hours(24)
    assert ticket_count(session) == 1
    assert [k for k, *_ in events(session, ticket.id)] == ["created", "auto_resolved", "reopened", "due"]


def test_a_problem_that_returns_after_the_window_gets_a_new_ticket_linked_to_the_old_one(
    session: Session, fleet: dict[str, int], policy: TicketPolicy
) -> None:
    first = open_ticket(session, fleet, policy)
    service.resolve_problem(first.problem_key, session=session, recovered_at=T0 + hours(2), policy=policy)
    session.commit()
    later = service.open_or_update_ticket(
        report("06184-CL01", fleet), session=session, now=T0 + hours(26) + minutes(1), policy=policy
    )
    session.commit()
    assert later.action is TicketOutcomeAction.REOPENED_AS_NEW
    assert later.ticket.previous_ticket_id == first.id
    assert later.ticket.code == "LS-2026-000002"
    assert ticket_count(session) == 2


def test_a_recovery_resolves_an_automatic_ticket_which_is_closed_three_days_later(
    session: Session, fleet: dict[str, int], policy: TicketPolicy
) -> None:
    ticket = open_ticket(session, fleet, policy)
    resolved = service.resolve_problem(ticket.problem_key, session=session, recovered_at=T0 + hours(1), policy=policy)
    session.commit()
    assert resolved is not None and resolved.id == ticket.id
    assert (resolved.status, resolved.auto_resolved, resolved.resolved_at) == ("resolved", True, T0 + hours(1))
    assert service.close_resolved(T0 + hours(1) + hours(71), session=session, policy=policy) == []
    closed = service.close_resolved(T0 + hours(1) + hours(72), session=session, policy=policy)
    session.commit()
    assert [t.code for t in closed] == [ticket.code]
    assert closed[0].closed_at == T0 + hours(73)
    assert service.close_resolved(T0 + hours(100), session=session, policy=policy) == []
    assert events(session, ticket.id)[1:] == [
        ("auto_resolved", "new", "resolved", None),
        ("status", "resolved", "closed", None),
    ]


def test_manual_tickets_are_never_resolved_by_a_recovery_or_a_reconciliation(
    session: Session, fleet: dict[str, int], cast: dict[str, int], policy: TicketPolicy
) -> None:
    data = TicketCreate(title="Cụm loa chợ im lặng", device_code="06184-CL01", kind="offline")
    manual = service.create_manual_ticket(data, actor=cast["officer_caoloc"], session=session, now=T0, policy=policy)
    session.commit()
    assert (manual.source, manual.district_code, manual.problem_key) == ("manual", CAO_LOC, f"manual:{manual.code}")
    assert (
        service.resolve_problem(manual.problem_key, session=session, recovered_at=T0 + hours(1), policy=policy) is None
    )
    result = service.reconcile(set(), {}, session=session, now=T0 + hours(2), policy=policy)
    session.commit()
    assert result.resolved == [] and result.opened == []
    assert session.get(Ticket, manual.id).status == "new"  # type: ignore[union-attr]


def test_a_manual_report_from_a_commune_without_a_device_is_routed_to_its_district(
    session: Session, cast: dict[str, int], policy: TicketPolicy
) -> None:
    data = TicketCreate(title="Loa thôn Nà Phai không phát", commune_code=DONG_DANG, priority=Priority.P2)
    ticket = service.create_manual_ticket(data, actor=cast["officer_caoloc"], session=session, now=T0, policy=policy)
    assert (ticket.scope, ticket.scope_code, ticket.device_id, ticket.district_code) == (
        "commune",
        DONG_DANG,
        None,
        CAO_LOC,
    )
    with pytest.raises(InvalidInput, match="manual ticket refused") as caught:
        service.create_manual_ticket(
            TicketCreate(title="x", commune_code="99999"), actor=None, session=session, now=T0, policy=policy
        )
    assert [p.field for p in caught.value.problems] == ["commune_code"]


def test_with_automatic_resolution_off_a_recovery_only_leaves_a_note(session: Session, fleet: dict[str, int]) -> None:
    policy = TicketPolicy(auto_resolve=False)
    ticket = open_ticket(session, fleet, policy)
    assert (
        service.resolve_problem(ticket.problem_key, session=session, recovered_at=T0 + hours(1), policy=policy) is None
    )
    assert service.reconcile(set(), {}, session=session, now=T0 + hours(2), policy=policy).resolved == []
    session.commit()
    assert ticket.status == "new"
    assert [k for k, *_ in events(session, ticket.id)] == ["created", "recovered"]


def test_reconciliation_resolves_a_ticket_whose_recovery_was_lost_and_opens_a_missing_one(
    session: Session, fleet: dict[str, int], policy: TicketPolicy
) -> None:
    lost = open_ticket(session, fleet, policy, "06184-CL01")
    still_down = open_ticket(session, fleet, policy, "06184-CL02")
    missing = report("06613-CL01", fleet)  # down, but its alert never reached tickets
    active = {still_down.problem_key, missing.key}
    result = service.reconcile(active, {missing.key: missing}, session=session, now=T0 + hours(1), policy=policy)
    session.commit()
    assert [t.code for t in result.resolved] == [lost.code]
    assert (lost.status, lost.auto_resolved, lost.resolved_at) == ("resolved", True, T0 + hours(1))
    assert [(o.action, o.ticket.problem_key, o.ticket.district_code) for o in result.opened] == [
        (OPENED, missing.key, DINH_LAP)
    ]
    assert still_down.status == "new"
    again = service.reconcile(active, lambda key: None, session=session, now=T0 + hours(2), policy=policy)
    assert again.resolved == [] and again.opened == []


def test_reconciliation_leaves_alone_tickets_newer_than_the_active_set(
    session: Session, fleet: dict[str, int], policy: TicketPolicy
) -> None:
    ticket = open_ticket(session, fleet, policy)
    result = service.reconcile(set(), {}, session=session, now=T0 - minutes(1), policy=policy)
    assert result.resolved == [] and ticket.status == "new"


def test_the_database_refuses_a_second_open_ticket_for_one_problem_but_allows_one_after_resolution(
    session: Session, fleet: dict[str, int], policy: TicketPolicy
) -> None:
    ticket = open_ticket(session, fleet, policy)
    columns = {c.name: getattr(ticket, c.name) for c in Ticket.__table__.columns if c.name != "id"}  # type: ignore[attr-defined]
    duplicate = {**columns, "code": "LS-2026-999999"}
    with pytest.raises(sa.exc.IntegrityError):
        session.execute(sa.insert(Ticket.__table__).values(**duplicate))  # type: ignore[attr-defined]
    session.rollback()
    session.execute(sa.insert(Ticket.__table__).values(**{**duplicate, "status": "closed"}))  # type: ignore[attr-defined]
    session.commit()
    assert ticket_count(session) == 2


def test_reopening_by_hand_is_refused_while_a_newer_ticket_of_the_problem_is_open(
    session: Session, fleet: dict[str, int], policy: TicketPolicy
) -> None:
    old = open_ticket(session, fleet, policy)
    service.resolve_problem(old.problem_key, session=session, recovered_at=T0 + hours(1), policy=policy)
    service.close_resolved(T0 + hours(80), session=session, policy=policy)
    new = service.open_or_update_ticket(report("06184-CL01", fleet), session=session, now=T0 + hours(90), policy=policy)
    session.commit()
    with pytest.raises(Conflict, match="another ticket of the same problem is open"):
        service.transition(old.code, "reopen", actor=None, session=session, now=T0 + hours(91), policy=policy)
    session.rollback()
    assert new.ticket.status == "new"


def test_an_invalid_transition_is_refused_with_the_allowed_actions(
    session: Session, fleet: dict[str, int], policy: TicketPolicy
) -> None:
    ticket = open_ticket(session, fleet, policy)
    with pytest.raises(service.InvalidTransition) as caught:
        service.transition(ticket.code, "close", actor=None, session=session, now=T0, policy=policy)
    assert [a.value for a in caught.value.allowed] == ["acknowledge", "start", "resolve"]
    session.rollback()
    assert events(session, ticket.id) == [("created", None, "new", None)]


def test_due_times_follow_the_priority_targets_and_are_stored_on_the_ticket(
    session: Session, fleet: dict[str, int], policy: TicketPolicy
) -> None:
    p1 = open_ticket(session, fleet, policy, "06184-CL01", priority=Priority.P1)
    p4 = open_ticket(session, fleet, policy, "06184-CL02", priority=Priority.P4)
    session.expire_all()
    stored = {t.priority: (t.ack_due_at, t.resolve_due_at) for t in session.exec(select(Ticket))}
    assert stored == {"P1": (T0 + minutes(30), T0 + hours(8)), "P4": (T0 + hours(24), T0 + hours(24 * 7))}
    assert p1.sla_started_at == p4.sla_started_at == T0


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=VIETNAM).astimezone(UTC)


def test_waiting_over_a_weekend_in_working_hours_moves_the_due_time_by_the_working_time_waited(
    session: Session, fleet: dict[str, int]
) -> None:
    policy = TicketPolicy(sla=SlaPolicy(calendar=CalendarKind.WORKING_HOURS))
    friday = local(13, 16)  # Friday 13/03/2026 16:00
    outcome = service.open_or_update_ticket(report("06184-CL01", fleet), session=session, now=friday, policy=policy)
    ticket = outcome.ticket
    # P2: 2 working hours to acknowledge (Fri 16–17, Mon 07:30–08:30), 24 to resolve (Fri 1 h + 3 × 7.5 h + 0.5 h).
    assert (ticket.ack_due_at, ticket.resolve_due_at) == (local(16, 8, 30), local(19, 8))
    for action, at in [("start", local(13, 16, 30)), ("wait", local(13, 16, 30)), ("resume", local(16, 9, 30))]:
        service.transition(ticket.code, action, actor=None, session=session, now=at, policy=policy)
    session.commit()
    # Waited 0.5 working hour on Friday and 2 on Monday morning; the weekend costs nothing.
    assert ticket.resolve_due_at == local(19, 10, 30)
    assert ticket.paused_seconds == (2 * 24 + 17) * 3600
    [pause] = session.exec(select(TicketPause).where(col(TicketPause.ticket_id) == ticket.id)).all()
    assert (pause.started_at, pause.ended_at) == (local(13, 16, 30), local(16, 9, 30))


def test_breaches_are_marked_and_escalated_once(
    session: Session, fleet: dict[str, int], cast: dict[str, int], policy: TicketPolicy
) -> None:
    late_ack = open_ticket(session, fleet, policy, "06184-CL01", priority=Priority.P1)  # ack due T0 + 30 min
    on_time = open_ticket(session, fleet, policy, "06184-CL02", priority=Priority.P1)
    service.transition(
        on_time.code, "acknowledge", actor=cast["tech_caoloc"], session=session, now=T0 + minutes(20), policy=policy
    )
    assert service.mark_breaches(T0 + minutes(30), session=session, policy=policy) == []
    breached = service.mark_breaches(T0 + minutes(31), session=session, policy=policy)
    session.commit()
    assert [t.code for t in breached] == [late_ack.code]
    assert (late_ack.sla_breached, late_ack.breached_at, late_ack.escalated_at) == (
        True,
        T0 + minutes(31),
        T0 + minutes(31),
    )
    assert service.mark_breaches(T0 + minutes(40), session=session, policy=policy) == []
    # The acknowledged one breaches only at its resolution due time.
    assert [t.code for t in service.mark_breaches(T0 + hours(8) + minutes(1), session=session, policy=policy)] == [
        on_time.code
    ]
    session.commit()
    assert events(session, late_ack.id)[-1] == ("escalated", (T0 + minutes(30)).isoformat(), "acknowledge", None)
    listed = service.list_tickets(service.TicketFilters(breached=True), session=session)
    assert {t.code for t in listed.items} == {late_ack.code, on_time.code}


def test_a_waiting_ticket_does_not_breach_while_its_clock_is_stopped(
    session: Session, fleet: dict[str, int], policy: TicketPolicy
) -> None:
    ticket = open_ticket(session, fleet, policy, priority=Priority.P1)
    for action in ("start", "wait"):
        service.transition(ticket.code, action, actor=None, session=session, now=T0 + minutes(10), policy=policy)
    assert service.mark_breaches(T0 + hours(30), session=session, policy=policy) == []
    service.transition(ticket.code, "resume", actor=None, session=session, now=T0 + hours(30), policy=policy)
    assert ticket.resolve_due_at == T0 + hours(30) + hours(8) - minutes(10)
    assert service.mark_breaches(T0 + hours(38), session=session, policy=policy) == [ticket]


def test_changing_the_priority_recomputes_the_due_times_from_creation(
    session: Session, fleet: dict[str, int], cast: dict[str, int], policy: TicketPolicy
) -> None:
    ticket = open_ticket(session, fleet, policy, priority=Priority.P4)
    officer = cast["officer_caoloc"]
    service.change_priority(
        ticket.code, "P2", actor=officer, note="chợ phiên", session=session, now=T0 + hours(1), policy=policy
    )
    session.commit()
    assert (ticket.priority, ticket.ack_due_at, ticket.resolve_due_at) == ("P2", T0 + hours(2), T0 + hours(24))
    assert events(session, ticket.id)[1:] == [
        ("priority", "P4", "P2", officer),
        ("due", (T0 + hours(24 * 7)).isoformat(), (T0 + hours(24)).isoformat(), officer),
    ]


def test_a_routing_override_sends_a_commune_to_its_maintenance_area(session: Session, fleet: dict[str, int]) -> None:
    policy = TicketPolicy(routing_overrides={DONG_DANG: DINH_LAP})
    assert service.route_district(DONG_DANG, session=session, overrides=policy.routing_overrides) == DINH_LAP
    assert service.route_district("06187", session=session, overrides=policy.routing_overrides) == CAO_LOC
    ticket = open_ticket(session, fleet, policy, "06184-CL01")
    assert ticket.district_code == DINH_LAP


def test_ticket_codes_are_sequential_and_start_again_with_the_vietnamese_new_year(
    session: Session, fleet: dict[str, int], policy: TicketPolicy
) -> None:
    late_2026 = datetime(2026, 12, 31, 16, 59, tzinfo=UTC)  # 23:59 in Vietnam
    early_2027 = datetime(2026, 12, 31, 17, 0, tzinfo=UTC)  # 00:00 on 1 January 2027 in Vietnam
    codes = []
    for device, now in [
        ("06184-CL01", T0),
        ("06184-CL02", late_2026),
        ("06184-BT01", early_2027),
        ("06613-CL01", early_2027),
    ]:
        codes.append(
            service.open_or_update_ticket(report(device, fleet), session=session, now=now, policy=policy).ticket.code
        )
    session.commit()
    assert codes == ["LS-2026-000001", "LS-2026-000002", "LS-2027-000001", "LS-2027-000002"]
    other_province = TicketPolicy(province_prefix="CB")
    ticket = service.open_or_update_ticket(report("06613-BT01", fleet), session=session, now=T0, policy=other_province)
    assert ticket.ticket.code == "CB-2026-000001"


def test_a_ticket_goes_only_to_an_active_technician_or_officer_of_its_district(
    session: Session, fleet: dict[str, int], cast: dict[str, int], policy: TicketPolicy
) -> None:
    ticket = open_ticket(session, fleet, policy)  # Cao Lộc
    refusals = {
        "officer_dinhlap": "works for district 189, the ticket for 183",
        "retired_tech": "is not active",
        "leader": "only technicians and officers take tickets",
    }
    for username, reason in refusals.items():
        with pytest.raises(InvalidInput) as caught:
            service.assign(ticket.code, cast[username], actor=cast["admin"], session=session, now=T0)
        assert reason in str(caught.value.problems[0])
    service.assign(ticket.code, cast["tech_caoloc"], actor=cast["admin"], session=session, now=T0)
    service.assign(ticket.code, cast["officer_caoloc"], actor=cast["admin"], session=session, now=T0)
    service.assign(ticket.code, None, actor=cast["admin"], session=session, now=T0)
    assert ticket.assignee_id is None
    assert [(k, f, t) for k, f, t, _ in events(session, ticket.id)][1:] == [
        ("assignee", None, str(cast["tech_caoloc"])),
        ("assignee", str(cast["tech_caoloc"]), str(cast["officer_caoloc"])),
        ("assignee", str(cast["officer_caoloc"]), None),
    ]


def test_comments_and_costs_go_into_the_history(
    session: Session, fleet: dict[str, int], cast: dict[str, int], policy: TicketPolicy
) -> None:
    ticket = open_ticket(session, fleet, policy)
    tech = cast["tech_caoloc"]
    service.add_comment(ticket.code, "Đã thay cầu chì", actor=tech, session=session, now=T0 + hours(1))
    service.record_costs(
        ticket.code, 450_000, 200_000, ["Cầu chì 5A", "Loa nén 30W"], actor=tech, session=session, now=T0 + hours(2)
    )
    session.commit()
    assert (ticket.parts_cost_vnd, ticket.labour_cost_vnd, ticket.total_cost_vnd) == (450_000, 200_000, 650_000)
    assert ticket.parts_replaced == ["Cầu chì 5A", "Loa nén 30W"]
    assert events(session, ticket.id)[1:] == [
        ("comment", None, None, tech),
        ("cost", "parts=0 labour=0", "parts=450000 labour=200000", tech),
    ]
    with pytest.raises(InvalidInput) as caught:
        service.record_costs(ticket.code, -1, 0, [""], actor=tech, session=session, now=T0)
    assert [p.field for p in caught.value.problems] == ["parts_cost_vnd", "parts_replaced"]
    with pytest.raises(InvalidInput):
        service.add_comment(ticket.code, "   ", actor=tech, session=session, now=T0)


def test_a_report_for_an_unknown_commune_or_from_people_is_refused(fleet: dict[str, int]) -> None:
    with pytest.raises(InvalidInput) as caught:
        report("06184-CL01", fleet, source=TicketSource.MANUAL)
    assert [p.field for p in caught.value.problems] == ["source"]


def test_nothing_is_written_until_the_caller_commits(
    session: Session, fleet: dict[str, int], policy: TicketPolicy
) -> None:
    service.open_or_update_ticket(report("06184-CL01", fleet), session=session, now=T0, policy=policy)
    session.rollback()  # the savepoint inside must not have committed anything on its own (pysqlite)
    assert ticket_count(session) == 0
    assert open_ticket(session, fleet, policy).code == "LS-2026-000001"  # the number was given back too


def test_a_batch_of_reports_gets_one_outcome_each_and_duplicates_inside_it_are_merged(
    session: Session, fleet: dict[str, int], policy: TicketPolicy
) -> None:
    open_one = open_ticket(session, fleet, policy, "06184-CL01")
    recent = open_ticket(session, fleet, policy, "06184-CL02")
    old = open_ticket(session, fleet, policy, "06184-BT01")
    for ticket, recovered in [(recent, T0 + hours(20)), (old, T0 + hours(1))]:
        service.resolve_problem(ticket.problem_key, session=session, recovered_at=recovered, policy=policy)
    session.commit()
    now = T0 + hours(26)
    batch = [
        report("06184-CL01", fleet),
        report("06184-CL02", fleet),
        report("06184-BT01", fleet),
        report("06613-CL01", fleet, priority=Priority.P3),
        report("06613-CL01", fleet, priority=Priority.P1),  # the same problem again, more urgent: merged
    ]
    outcomes = service.open_or_update_tickets(batch, session=session, now=now, policy=policy)
    session.commit()
    assert [o.action.value for o in outcomes] == ["unchanged", "reopened", "reopened_as_new", "opened", "opened"]
    assert outcomes[0].ticket.id == open_one.id and outcomes[1].ticket.id == recent.id
    assert outcomes[2].ticket.previous_ticket_id == old.id
    assert outcomes[3].ticket is outcomes[4].ticket and outcomes[3].ticket.priority == "P1"
    assert [o.ticket.code for o in outcomes[2:4]] == ["LS-2026-000004", "LS-2026-000005"]
    assert ticket_count(session) == 5
    assert service.open_or_update_tickets([], session=session, now=now, policy=policy) == []


def test_a_report_naming_an_unknown_device_is_refused_with_the_databases_reason(
    session: Session, fleet: dict[str, int], policy: TicketPolicy
) -> None:
    ghost = report("06184-CL01", {"06184-CL01": 999_999})
    with pytest.raises(InvalidInput, match="refused by the database"):
        service.open_or_update_ticket(ghost, session=session, now=T0, policy=policy)
    session.rollback()
    assert ticket_count(session) == 0
