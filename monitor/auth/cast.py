"""The demo's people: one of each role, with the officers of two districts, so access rules are visible."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, select

from monitor.auth.models import Role, User
from monitor.auth.service import create_user

DEMO_PASSWORD = "demo-password"  # demo mode only; the service refuses placeholder secrets elsewhere


@dataclass(frozen=True, slots=True)
class Person:
    username: str
    full_name: str
    role: Role
    district_code: str | None


CAST = (
    Person("admin", "Quản trị viên Sở VH-TT", Role.ADMIN, None),
    Person("lanhdao", "Lãnh đạo tỉnh", Role.LEADER, None),
    Person("caoloc", "Cán bộ phụ trách Cao Lộc", Role.OFFICER, "183"),
    Person("dinhlap", "Cán bộ phụ trách Đình Lập", Role.OFFICER, "189"),
    Person("kythuat", "Kỹ thuật viên Cao Lộc", Role.TECHNICIAN, "183"),
)


def seed_cast(*, session: Session, password: str = DEMO_PASSWORD) -> list[User]:
    """Create the cast's users that do not exist yet; existing ones are left as they are."""
    users = []
    for person in CAST:
        user = session.exec(select(User).where(User.username == person.username)).first()
        if user is None:
            user = create_user(
                session=session,
                username=person.username,
                full_name=person.full_name,
                role=person.role,
                district_code=person.district_code,
                password=password,
            )
        users.append(user)
    return users
