"""SLA figures from tickets made and moved through the real ticket service, with answers known by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import Session

from monitor.i18n import LOCAL_ZONE
from monitor.priority import Priority
from monitor.reports.export import render_sla
from monitor.reports.sla import SlaBy, repair_seconds, sla_report
from monitor.tickets import service
from monitor.tickets.policy import TicketPolicy
from monitor.tickets.schemas import TicketCreate

H = 3600.0
CAO_LOC, DINH_LAP = "183", "189"
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=LOCAL_ZONE).astimezone(UTC)  # a Monday morning
POLICY = TicketPolicy()


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def test_time_to_repair_sums_the_rounds_of_a_reopened_ticket() -> None:
    events = [
        ("status", "acknowledged", at(1)),
        ("status", "resolved", at(3)),  # 3 h
        ("reopened", "reopened", at(10)),  # fixed for 7 h: not repair time
        ("auto_resolved", "resolved", at(12)),  # 2 h more
        ("status", "closed", at(80)),
    ]
    assert repair_seconds(T0, events) == 5 * H
    assert repair_seconds(T0, events[:3]) is None  # reopened and not repaired again yet
    assert repair_seconds(T0, [("status", "closed", at(4))]) == 4 * H  # closed without a resolution


def _ticket(session: Session, commune: str, priority: Priority = Priority.P2) -> str:
    data = TicketCreate(title="Cụm loa im lặng", commune_code=commune, priority=priority)
    return service.create_manual_ticket(data, actor=None, session=session, now=T0, policy=POLICY).code


def test_figures_by_district_and_priority(session: Session) -> None:
    first = _ticket(session, "06187")  # Cao Lộc: acknowledged after 1 h, resolved after 3 h, reopened, 2 h more
    service.transition(first, "acknowledge", actor=None, session=session, now=at(1), policy=POLICY)
    service.transition(first, "resolve", actor=None, session=session, now=at(3), policy=POLICY)
    service.transition(first, "reopen", actor=None, session=session, now=at(10), policy=POLICY)
    service.transition(first, "resolve", actor=None, session=session, now=at(12), policy=POLICY)
    second = _ticket(session, "06190", Priority.P3)  # Cao Lộc: acknowledged after 3 h, still open
    service.transition(second, "acknowledge", actor=None, session=session, now=at(3), policy=POLICY)
    third = _ticket(session, "06613")  # Đình Lập: resolved after 6 h, never acknowledged
    service.transition(third, "resolve", actor=None, session=session, now=at(6), policy=POLICY)
    session.commit()

    report = sla_report(session, date(2026, 3, 1), date(2026, 3, 31))
    rows = {row.key: row.as_dict() for row in report.rows}
    assert (rows[CAO_LOC]["opened"], rows[CAO_LOC]["resolved"], rows[CAO_LOC]["reopened"]) == (2, 1, 1)
    assert rows[CAO_LOC]["mtta_s"] == 2 * H  # (1 h + 3 h) / 2
    assert rows[CAO_LOC]["mttr_s"] == 5 * H  # the one repaired: 3 h + 2 h
    assert (rows[DINH_LAP]["mttr_s"], rows[DINH_LAP]["mtta_s"]) == (6 * H, None)
    total = report.total.as_dict()
    assert (total["opened"], total["resolved"], total["mttr_s"]) == (3, 2, 5.5 * H)

    by_priority = {
        row.key: row.as_dict()
        for row in sla_report(session, date(2026, 3, 1), date(2026, 3, 31), by=SlaBy.PRIORITY).rows
    }
    assert (by_priority["P2"]["opened"], by_priority["P3"]["opened"]) == (2, 1)
    months = sla_report(session, date(2026, 3, 1), date(2026, 3, 31), by=SlaBy.MONTH).rows
    assert [row.key for row in months] == ["2026-03"]
    mine = sla_report(session, date(2026, 3, 1), date(2026, 3, 31), districts=[DINH_LAP])
    assert [row.key for row in mine.rows] == [DINH_LAP] and mine.total.figures.opened == 1
    before = sla_report(session, date(2026, 2, 1), date(2026, 2, 28))
    assert before.rows == [] and before.total.figures.breach_rate is None

    csv = render_sla(report, "csv", at(20)).decode("utf-8-sig")
    assert csv.splitlines()[0].startswith("Mã,Tên,Phiếu mở,Đã khắc phục")
    assert csv.splitlines()[1].startswith(f"{CAO_LOC},Huyện Cao Lộc,2,1,1,1,")


@pytest.mark.parametrize("by", list(SlaBy))
def test_every_grouping_adds_up_to_the_same_total(session: Session, by: SlaBy) -> None:
    for commune in ("06187", "06613", "06190"):
        code = _ticket(session, commune)
        service.transition(code, "resolve", actor=None, session=session, now=at(2), policy=POLICY)
    session.commit()
    report = sla_report(session, date(2026, 3, 1), date(2026, 3, 31), by=by)
    assert report.total.as_dict() | {"key": "", "name": ""} == sla_report(
        session, date(2026, 3, 1), date(2026, 3, 31)
    ).total.as_dict() | {"key": "", "name": ""}
    assert sum(row.figures.opened for row in report.rows) == 3
