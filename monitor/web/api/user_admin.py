"""Accounts, for administrators: add a user, change their role or district, disable or enable them, reset their
password. The same service functions as `monitor users …`, and every change is in the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from pydantic import BaseModel, Field
from sqlmodel import Session

from monitor.auth.audit import AuditAction, record
from monitor.auth.models import Role, User
from monitor.auth.service import MIN_PASSWORD_LENGTH, create_user, set_active, set_password
from monitor.errors import InvalidInput, NotFound, Problem
from monitor.inventory.models import District
from monitor.web.api.users import UserListed
from monitor.web.bodies import api_router
from monitor.web.deps import AuditActor, Principal, SessionDep, require_roles
from monitor.web.openapi import problems
from monitor.web.params import IdPath

router = api_router(prefix="/api/v1/users", tags=["users"])
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
Password = Annotated[str, Field(min_length=MIN_PASSWORD_LENGTH, max_length=1024)]
Name = Annotated[str, Field(min_length=1, max_length=120, pattern=r"^[^\x00-\x1f\x7f]*$")]
DistrictCode = Annotated[str, Field(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9_.-]+$")]


class UserCreate(BaseModel):
    """A new account: a district-scoped role (officer, technician) needs its district."""

    username: Annotated[str, Field(min_length=2, max_length=64, pattern=r"^[a-z0-9._-]+$")]
    full_name: Name
    role: Role
    district_code: DistrictCode | None = None
    password: Password


class UserUpdate(BaseModel):
    """What changes (fields left out stay as they are)."""

    full_name: Name | None = None
    role: Role | None = None
    district_code: DistrictCode | None = None
    active: bool | None = None


class PasswordReset(BaseModel):
    password: Password


def _user(user_id: int, session: Session) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("user", str(user_id))
    return user


@router.post("", response_model=UserListed, status_code=201, responses=problems(403, 409, 422))
def add_user(body: UserCreate, session: SessionDep, _admin: Admin, actor: AuditActor) -> UserListed:
    """Add an account (administrators)."""
    user = create_user(
        session=session,
        username=body.username,
        full_name=body.full_name,
        role=body.role,
        password=body.password,
        district_code=body.district_code,
    )
    record(
        AuditAction.USER_CREATED,
        session=session,
        actor=actor,
        target=user.username,
        district_code=user.district_code,
        details={"role": user.role},
    )
    session.commit()
    return UserListed.build(user)


@router.patch("/{user_id}", response_model=UserListed, responses=problems(403, 404, 422))
def change_user(user_id: IdPath, body: UserUpdate, session: SessionDep, admin: Admin, actor: AuditActor) -> UserListed:
    """Change a user's name, role or district, or disable and enable them (a disabled user's sessions and tokens
    stop at once). Administrators cannot disable themselves."""
    user = _user(user_id, session)
    changes = body.model_dump(exclude_unset=True)
    if changes.get("active") is False and user.id == admin.user.id:
        raise InvalidInput("refused", [Problem("active", "you cannot disable your own account")])
    role = Role(changes.get("role") or user.role)
    district = changes.get("district_code", user.district_code)
    if district is not None and session.get(District, district) is None:
        raise InvalidInput("refused", [Problem("district_code", f"unknown district {district!r}")])
    if role.is_district_scoped and district is None:
        raise InvalidInput("refused", [Problem("district_code", f"a {role.value} belongs to a district")])
    if "full_name" in changes:
        user.full_name = changes["full_name"].strip()
    user.role, user.district_code = role.value, district if role.is_district_scoped else None
    if "active" in changes:
        user, changed = set_active(user.username, bool(changes["active"]), session=session)
        if changed:
            action = AuditAction.USER_ENABLED if user.active else AuditAction.USER_DISABLED
            record(action, session=session, actor=actor, target=user.username, district_code=user.district_code)
    session.add(user)
    fields = sorted(set(changes) - {"active"})
    if fields:
        record(
            AuditAction.USER_CHANGED,
            session=session,
            actor=actor,
            target=user.username,
            district_code=user.district_code,
            details={"fields": fields},
        )
    session.commit()
    return UserListed.build(user)


@router.post("/{user_id}/password", status_code=204, responses=problems(403, 404, 422))
def reset_password(user_id: IdPath, body: PasswordReset, session: SessionDep, _admin: Admin, actor: AuditActor) -> None:
    """Give a user a new password (their sessions end; they sign in again with it)."""
    user = set_password(_user(user_id, session).username, body.password, session=session)
    record(
        AuditAction.PASSWORD_RESET, session=session, actor=actor, target=user.username, district_code=user.district_code
    )
    session.commit()
