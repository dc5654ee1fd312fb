"""The people of the service, read-only: who can be assigned what, scoped like everything else.

Administrators and leaders see everyone; an officer or a technician sees the people of their own
district(s), so that assigning a ticket needs no guessing. Accounts are changed with `monitor users …`.
"""

from __future__ import annotations

from pydantic import BaseModel

from monitor.auth.models import Role, User
from monitor.auth.service import list_users
from monitor.web.bodies import api_router
from monitor.web.deps import PrincipalDep, ScopedList, SessionDep
from monitor.web.openapi import problems

router = api_router(prefix="/api/v1/users", tags=["users"])


class UserListed(BaseModel):
    """A user as their colleagues see them: who, which role, which districts, whether they can sign in."""

    id: int
    username: str
    full_name: str
    role: Role
    role_label: str
    districts: list[str]
    active: bool

    @classmethod
    def build(cls, user: User) -> UserListed:
        role = Role(user.role)
        assert user.id is not None
        return cls(
            id=user.id,
            username=user.username,
            full_name=user.full_name,
            role=role,
            role_label=role.label_vi,
            districts=[user.district_code] if user.district_code else [],
            active=user.active,
        )


@router.get("", response_model=list[UserListed], responses=problems(404))
def list_people(
    session: SessionDep,
    _principal: PrincipalDep,
    scope: ScopedList,
    role: Role | None = None,
    active: bool | None = None,
) -> list[UserListed]:
    """People by user name: everyone for administrators and leaders, one's own district's people otherwise.

    `district` keeps the people of that district (province-wide roles have none); `role` and `active` narrow
    further.
    """
    users = list_users(session=session, district_codes=scope.district_codes, role=role, active=active)
    return [UserListed.build(user) for user in users]
