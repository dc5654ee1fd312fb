"""Users and their sessions."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from monitor.db import UTCDateTime, utcnow
from monitor.labels import LabelledEnum


class Role(LabelledEnum):
    """What a user does; district-scoped roles see and change only their district."""

    ADMIN = "admin", "Quản trị (cấp tỉnh)", "Administrator (province)"
    LEADER = "leader", "Lãnh đạo", "Leadership"
    OFFICER = "officer", "Cán bộ phụ trách huyện", "District officer"
    TECHNICIAN = "technician", "Kỹ thuật viên", "Technician"

    @property
    def is_district_scoped(self) -> bool:
        return self in (Role.OFFICER, Role.TECHNICIAN)


class User(SQLModel, table=True):
    """A person who uses the service: a province operator, a leader, a district officer, a technician.

    Officers and technicians belong to one district (or maintenance area) and see only its data.
    """

    __tablename__ = "users"
    __table_args__ = (
        sa.CheckConstraint(
            "role IN ('admin', 'leader') OR district_code IS NOT NULL", name="district_scoped_roles_have_a_district"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(unique=True, max_length=64)
    full_name: str = Field(max_length=200)
    role: str = Field(sa_type=sa.String(16))
    district_code: str | None = Field(default=None, foreign_key="districts.code", index=True, max_length=16)
    email: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=32)
    telegram_chat_id: str | None = Field(default=None, max_length=64)
    language: str = Field(default="vi", max_length=5)
    # argon2 hash (pwdlib); never shown back.
    password_hash: str = Field(max_length=300)
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_login_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class UserSession(SQLModel, table=True):
    """A signed-in browser or API client. Only the hash of the session token is stored."""

    __tablename__ = "user_sessions"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(unique=True, max_length=64)
    user_id: int = Field(sa_column_args=[sa.ForeignKey("users.id", ondelete="CASCADE")], index=True)
    csrf_token: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    last_used_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
