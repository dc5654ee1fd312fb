"""Reading tickets, on SQLite and PostgreSQL: the queue by due time with keyset pagination, filters, text search
without accents, district scoping, history, and the yearly costs per district."""

from __future__ import annotations

import random

import pytest
from sqlmodel import Session

from monitor.errors import InvalidInput, NotFound
from monitor.priority import Priority
from monitor.tickets import service
from monitor.tickets.choices import OPEN_STATUSES, TicketSource, TicketStatus
from monitor.tickets.policy import TicketPolicy
from monitor.tickets.queries import decode_cursor, encode_cursor
from monitor.tickets.schemas import TicketCreate, TicketPublic, TicketSummaryPublic
from tests.test_tickets_support import CAO_LOC, DINH_LAP, DONG_DANG, T0, cast, fleet, hours, minutes, policy, report

__all__ = ["cast", "fleet", "policy"]  # fixtures, imported for pytest

COMMUNES = {CAO_LOC: ["06184", "06187", "06190"], DINH_LAP: ["06613", "06616"]}


def make_queue(session: Session, policy: TicketPolicy, count: int, seed: int = 7) -> None:
    """`count` manual tickets spread over two districts, priorities and creation times (many equal due times)."""
    rng = random.Random(seed)
    for n in range(count):
        district = rng.choice([CAO_LOC, DINH_LAP])
        data = TicketCreate(
            title=f"Báo hỏng số {n}", commune_code=rng.choice(COMMUNES[district]), priority=rng.choice(list(Priority))
        )
        now = T0 + minutes(rng.choice([0, 0, 0, 5, 10, 60]))  # repeated creation times: due ties broken by id
        service.create_manual_ticket(data, actor=None, session=session, now=now, policy=policy)
    session.commit()


def all_pages(session: Session, filters: service.TicketFilters, limit: int, **kw) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        page = service.list_tickets(filters, session=session, after=cursor, limit=limit, **kw)
        pages.append([t.code for t in page.items])
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


def test_keyset_pagination_returns_every_ticket_once_in_due_order(session: Session, policy: TicketPolicy) -> None:
    make_queue(session, policy, 60)
    everything = service.list_tickets(service.TicketFilters(), session=session, limit=500).items
    assert len(everything) == 60
    expected = [t.code for t in sorted(everything, key=lambda t: (t.resolve_due_at, t.id))]
    assert [t.code for t in everything] == expected
    pages = all_pages(session, service.TicketFilters(), limit=7)
    assert [len(p) for p in pages] == [7] * 8 + [4]
    assert [code for page in pages for code in page] == expected


def test_a_district_sees_only_its_own_queue_and_not_another_districts_tickets(
    session: Session, policy: TicketPolicy
) -> None:
    make_queue(session, policy, 30)
    mine = [
        c for page in all_pages(session, service.TicketFilters.open_queue(), 4, district_codes={CAO_LOC}) for c in page
    ]
    everyone = service.list_tickets(service.TicketFilters(), session=session, limit=500).items
    assert mine == [t.code for t in everyone if t.district_code == CAO_LOC]
    other = next(t for t in everyone if t.district_code == DINH_LAP)
    with pytest.raises(NotFound):
        service.get_ticket(other.code, session=session, district_codes=frozenset({CAO_LOC}))
    with pytest.raises(NotFound):
        service.history(other.code, session=session, district_codes=frozenset({CAO_LOC}))
    assert service.get_ticket(other.code, session=session).code == other.code
    assert service.list_tickets(service.TicketFilters(), session=session, district_codes=frozenset()).items == []


def test_filters_combine_and_text_search_ignores_accents_and_case(
    session: Session, fleet: dict[str, int], cast: dict[str, int], policy: TicketPolicy
) -> None:
    auto = service.open_or_update_ticket(report("06184-CL01", fleet), session=session, now=T0, policy=policy).ticket
    board = service.open_or_update_ticket(
        report("06613-BT01", fleet, "screen_off", priority=Priority.P3), session=session, now=T0, policy=policy
    ).ticket
    manual = service.create_manual_ticket(
        TicketCreate(title="Loa thôn Nà Phai bị rè", commune_code=DONG_DANG, priority=Priority.P1),
        actor=None,
        session=session,
        now=T0,
        policy=policy,
    )
    service.assign(manual.code, cast["tech_caoloc"], actor=None, session=session, now=T0)
    service.resolve_problem(auto.problem_key, session=session, recovered_at=T0 + hours(1), policy=policy)
    session.commit()

    def codes(**filters) -> set[str]:
        return {t.code for t in service.list_tickets(service.TicketFilters(**filters), session=session).items}

    assert codes(statuses=OPEN_STATUSES) == {board.code, manual.code}
    assert codes(statuses=frozenset({TicketStatus.RESOLVED})) == {auto.code}
    assert codes(district=CAO_LOC) == {auto.code, manual.code}
    assert codes(commune="06613") == {board.code}
    assert codes(device="06184-CL01") == {auto.code}
    assert codes(priorities=frozenset({Priority.P1, Priority.P3})) == {board.code, manual.code}
    assert codes(sources=frozenset({TicketSource.MANUAL})) == {manual.code}
    assert codes(assignee_id=cast["tech_caoloc"]) == {manual.code}
    assert codes(breached=False) == {auto.code, board.code, manual.code}
    assert codes(text="na phai") == {manual.code}  # "Nà Phai" typed without accents
    assert codes(text="DONG DANG") == {auto.code, manual.code}  # the commune's name, Đồng Đăng
    assert codes(text="huyen dinh lap") == {board.code}
    assert codes(text=manual.code.lower()) == {manual.code}
    assert codes(text="100%_") == set()  # LIKE wildcards are searched as text


def test_a_bad_cursor_is_refused_clearly(session: Session) -> None:
    with pytest.raises(InvalidInput) as caught:
        service.list_tickets(service.TicketFilters(), session=session, after="not-a-cursor")
    assert [p.field for p in caught.value.problems] == ["after"]


def test_a_cursor_encodes_the_due_time_and_the_id() -> None:
    assert decode_cursor(encode_cursor(T0 + minutes(1), 42)) == (T0 + minutes(1), 42)


def test_the_public_shape_of_a_ticket_has_labels_and_allowed_actions(
    session: Session, fleet: dict[str, int], policy: TicketPolicy
) -> None:
    ticket = service.open_or_update_ticket(report("06184-CL01", fleet), session=session, now=T0, policy=policy).ticket
    shown = TicketPublic.build(ticket).model_dump()
    assert shown["status_label"] == "Mới" and shown["device_code"] == "06184-CL01"
    assert shown["allowed_actions"] == ["acknowledge", "start", "resolve"]
    assert "search_text" not in shown and "details" not in shown
    [summary] = service.list_tickets(service.TicketFilters(), session=session).items
    line = TicketSummaryPublic.build(summary).model_dump()
    assert {k: v for k, v in line.items() if k in shown} == {k: shown[k] for k in line}
    assert line["priority_label"] == "P2 – Cao" and line["resolve_due_at"] == T0 + hours(24)


def test_yearly_costs_are_summed_per_district_with_every_district_listed(
    session: Session, fleet: dict[str, int], policy: TicketPolicy
) -> None:
    spend = [("06184-CL01", 300_000, 100_000), ("06184-CL02", 50_000, 0), ("06613-CL01", 1_200_000, 400_000)]
    for device, parts, labour in spend:
        ticket = service.open_or_update_ticket(report(device, fleet), session=session, now=T0, policy=policy).ticket
        service.record_costs(ticket.code, parts, labour, ["linh kiện"], actor=None, session=session, now=T0)
    next_year = T0.replace(year=2027)
    service.open_or_update_ticket(report("06184-BT01", fleet), session=session, now=next_year, policy=policy)
    session.commit()
    costs = {c.district_code: c for c in service.district_costs(2026, session=session)}
    assert len(costs) == 11
    cao_loc, dinh_lap = costs[CAO_LOC], costs[DINH_LAP]
    assert (cao_loc.tickets, cao_loc.parts_cost_vnd, cao_loc.labour_cost_vnd, cao_loc.total_cost_vnd) == (
        2,
        350_000,
        100_000,
        450_000,
    )
    assert (dinh_lap.tickets, dinh_lap.total_cost_vnd) == (1, 1_600_000)
    assert costs["178"].tickets == 0 and costs["178"].total_cost_vnd == 0
    assert {c.district_code: c.tickets for c in service.district_costs(2027, session=session)}[CAO_LOC] == 1
