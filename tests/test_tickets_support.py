"""What the ticket tests share: a small fleet, the cast of users, problem reports, fixed times.

No tests here; the other `test_tickets_*` modules import these fixtures and helpers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session, col, select

from monitor.auth.models import Role, User
from monitor.i18n import LOCAL_ZONE as VIETNAM
from monitor.inventory.models import Device
from monitor.priority import Priority
from monitor.tickets.choices import ProblemScope, TicketSource
from monitor.tickets.lifecycle import ProblemReport
from monitor.tickets.models import TicketEvent
from monitor.tickets.policy import TicketPolicy

# A Tuesday morning in Lạng Sơn (08:00 local), far from any holiday.
T0 = datetime(2026, 3, 10, 8, 0, tzinfo=VIETNAM).astimezone(UTC)
CAO_LOC, DINH_LAP = "183", "189"
DONG_DANG, DINH_LAP_TOWN = "06184", "06613"  # a commune of Cao Lộc, one of Đình Lập

DEVICES = [
    ("06184-CL01", "Cụm loa chợ Đồng Đăng", "radio_cluster", DONG_DANG),
    ("06184-CL02", "Cụm loa thôn Pác Luống", "radio_cluster", DONG_DANG),
    ("06184-BT01", "Bảng tin UBND thị trấn", "bulletin_board", DONG_DANG),
    ("06613-CL01", "Cụm loa khu 1", "radio_cluster", DINH_LAP_TOWN),
    ("06613-BT01", "Bảng tin khu 2", "bulletin_board", DINH_LAP_TOWN),
]


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


@pytest.fixture
def policy() -> TicketPolicy:
    return TicketPolicy()


@pytest.fixture
def fleet(session: Session) -> dict[str, int]:
    """Five devices: three in Đồng Đăng (Cao Lộc), two in Đình Lập town; code -> id."""
    for code, name, kind, commune in DEVICES:
        session.add(Device(code=code, name=name, kind=kind, commune_code=commune, profile="p", protocol="heartbeat"))
    session.commit()
    return {d.code: d.id for d in session.exec(select(Device).order_by(col(Device.code)))}  # type: ignore[misc]


@pytest.fixture
def cast(session: Session) -> dict[str, int]:
    """The fixed cast: province admin, officers of Cao Lộc and Đình Lập, a Cao Lộc technician, a leader."""
    people = [
        ("admin", Role.ADMIN, None),
        ("officer_caoloc", Role.OFFICER, CAO_LOC),
        ("officer_dinhlap", Role.OFFICER, DINH_LAP),
        ("tech_caoloc", Role.TECHNICIAN, CAO_LOC),
        ("leader", Role.LEADER, None),
        ("retired_tech", Role.TECHNICIAN, CAO_LOC),
    ]
    for username, role, district in people:
        active = username != "retired_tech"
        session.add(
            User(
                username=username,
                full_name=username,
                role=role.value,
                district_code=district,
                password_hash="-",
                active=active,
            )
        )
    session.commit()
    return {u.username: u.id for u in session.exec(select(User))}  # type: ignore[misc]


def report(
    device_code: str,
    fleet: dict[str, int],
    kind: str = "offline",
    *,
    priority: Priority = Priority.P2,
    source: TicketSource = TicketSource.AUTO,
    **extra: Any,
) -> ProblemReport:
    """A device problem as the alerts part would report it."""
    commune = device_code.split("-")[0]
    return ProblemReport(
        scope=ProblemScope.DEVICE,
        scope_code=device_code,
        kind=kind,
        title=f"{device_code}: {kind}",
        device_id=fleet[device_code],
        commune_code=commune,
        priority=priority,
        source=source,
        occurred_at=T0 - minutes(3),
        **extra,
    )


def events(session: Session, ticket_id: int | None) -> list[tuple[str, str | None, str | None, int | None]]:
    """The ticket's history as (kind, from, to, actor)."""
    query = select(TicketEvent).where(col(TicketEvent.ticket_id) == ticket_id).order_by(col(TicketEvent.id))
    return [(e.kind, e.from_value, e.to_value, e.actor_user_id) for e in session.exec(query)]
