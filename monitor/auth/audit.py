"""The audit log: who did what to the service's accounts and settings, when and from where.

One row per action, written in the same transaction as the action itself (so a change that is rolled back
leaves no trace, and one that is committed always does). Callers in `web` and `cli` call `record`; the
service functions they wrap stay free of it, so an action is recorded exactly once, by whoever knows the
actor. Details never hold a secret: `record` blanks the keys that could carry one.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, Session, SQLModel, col, func, select

from monitor.auth.models import User
from monitor.db import UTCDateTime, utcnow
from monitor.labels import LabelledEnum

ACTOR_NAME_MAX = 100
TARGET_MAX = 200
# Keys whose value could be a secret: blanked whatever the caller passes.
_SECRET_KEYS = frozenset({"password", "password_hash", "token", "token_hash", "secret", "credentials", "csrf_token"})


class AuditAction(LabelledEnum):
    """What was done, with its Vietnamese and English label."""

    SIGN_IN = "sign_in", "Đăng nhập", "Signed in"
    SIGN_IN_REFUSED = "sign_in_refused", "Đăng nhập bị từ chối", "Sign-in refused"
    SIGN_OUT = "sign_out", "Đăng xuất", "Signed out"
    USER_CREATED = "user_created", "Tạo người dùng", "User created"
    USER_CHANGED = "user_changed", "Sửa người dùng", "User changed"
    USER_DISABLED = "user_disabled", "Khoá người dùng", "User disabled"
    USER_ENABLED = "user_enabled", "Mở khoá người dùng", "User enabled"
    PASSWORD_RESET = "password_reset", "Đặt lại mật khẩu", "Password reset"
    TOKEN_CREATED = "token_created", "Tạo mã truy cập API", "API token created"
    TOKEN_REVOKED = "token_revoked", "Thu hồi mã truy cập API", "API token revoked"
    CHANNEL_CREATED = "channel_created", "Tạo kênh thông báo", "Notification channel created"
    CHANNEL_CHANGED = "channel_changed", "Sửa kênh thông báo", "Notification channel changed"
    CHANNEL_DELETED = "channel_deleted", "Xoá kênh thông báo", "Notification channel deleted"
    WINDOW_CREATED = "window_created", "Tạo lịch bảo trì", "Maintenance window created"
    WINDOW_ENDED = "window_ended", "Kết thúc lịch bảo trì", "Maintenance window ended"
    FLEET_IMPORTED = "fleet_imported", "Nhập danh sách thiết bị", "Fleet imported"
    BULK_ACTION = "bulk_action", "Thao tác hàng loạt", "Bulk action"


class AuditEvent(SQLModel, table=True):
    """One action taken on the service, kept as it was seen then.

    The actor's name is copied as text so that the row still says who it was after the user is deleted (the id
    is then emptied); `district_code` lets a district's own actions be picked out.
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        sa.Index("ix_audit_events_action_at", "action", "at"),
        sa.Index("ix_audit_events_actor_name_at", "actor_name", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    actor_id: int | None = Field(
        default=None, sa_column_args=[sa.ForeignKey("users.id", ondelete="SET NULL")], nullable=True
    )
    actor_name: str = Field(max_length=ACTOR_NAME_MAX)
    address: str | None = Field(default=None, max_length=64)
    action: str = Field(sa_type=sa.String(32))
    target: str | None = Field(default=None, max_length=TARGET_MAX)
    district_code: str | None = Field(default=None, max_length=16, index=True)
    details: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: a signed-in user (with the address they came from), or the operator at the server's shell."""

    name: str
    user_id: int | None = None
    address: str | None = None

    @classmethod
    def user(cls, user: User, address: str | None = None) -> Actor:
        """A user of the service, seen from `address`."""
        return cls(name=user.username, user_id=user.id, address=address)

    @classmethod
    def shell(cls) -> Actor:
        """The operator running `monitor …` on the server, named by their system login when it is known."""
        try:
            login = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER (a bare container)
            login = "?"
        return cls(name=f"cli:{login}")


def _clean(details: dict[str, Any] | None) -> dict[str, Any]:
    return {key: ("***" if key.lower() in _SECRET_KEYS else value) for key, value in (details or {}).items()}


def record(
    action: AuditAction,
    *,
    session: Session,
    actor: Actor,
    target: str | None = None,
    district_code: str | None = None,
    details: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditEvent:
    """Add one event to the audit log, in the caller's transaction (it is written when the caller commits)."""
    event = AuditEvent(
        at=at or utcnow(),
        actor_id=actor.user_id,
        actor_name=actor.name[:ACTOR_NAME_MAX],
        address=actor.address[:64] if actor.address else None,
        action=action.value,
        target=target[:TARGET_MAX] if target is not None else None,
        district_code=district_code,
        details=_clean(details),
    )
    session.add(event)
    return event


def list_events(
    *,
    session: Session,
    action: AuditAction | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[AuditEvent], int]:
    """Events newest first, filtered by action, actor name and time (`since` included, `until` excluded),
    with the number of events matching."""
    query = select(AuditEvent)
    if action is not None:
        query = query.where(AuditEvent.action == action.value)
    if actor is not None:
        query = query.where(AuditEvent.actor_name == actor)
    if since is not None:
        query = query.where(col(AuditEvent.at) >= since)
    if until is not None:
        query = query.where(col(AuditEvent.at) < until)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(
        query.order_by(col(AuditEvent.at).desc(), col(AuditEvent.id).desc()).limit(limit).offset(offset)
    )
    return list(rows), total
