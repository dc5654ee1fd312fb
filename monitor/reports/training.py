"""The training register: sessions held for the grassroots information officers, and who attended.

The plan targets training for every commune's grassroots information officer. A session has a date, the
district (or maintenance area) that held it, a topic, an organiser and its length in hours; an attendee
is a name, the commune they serve and their role. `coverage` gives the share of communes whose officer was
trained in a period (a year, or the plan period).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Field, Session, SQLModel, col, select

from monitor.db import UTCDateTime, utcnow
from monitor.errors import InvalidInput, NotFound, Problem
from monitor.inventory.models import Commune
from monitor.inventory.service import get_district
from monitor.labels import LabelledEnum


class AttendeeRole(LabelledEnum):
    """What an attendee does in their commune."""

    COMMUNE_OFFICER = "commune_officer", "Cán bộ thông tin cơ sở", "Grassroots information officer"
    STATION_OPERATOR = "station_operator", "Nhân viên đài truyền thanh xã", "Commune station operator"
    TECHNICIAN = "technician", "Kỹ thuật viên", "Technician"
    OTHER = "other", "Khác", "Other"


class TrainingSession(SQLModel, table=True):
    """A training session held on `held_on` by a district (or maintenance area)."""

    __tablename__ = "training_sessions"
    __table_args__ = (sa.CheckConstraint("hours > 0 AND hours <= 200", name="hours_range"),)

    id: int | None = Field(default=None, primary_key=True)
    held_on: date = Field(index=True)
    district_code: str = Field(foreign_key="districts.code", index=True, max_length=16)
    topic: str = Field(max_length=300)
    organiser: str = Field(max_length=200)
    hours: float
    created_by: int | None = Field(default=None, sa_column_args=[sa.ForeignKey("users.id", ondelete="SET NULL")])
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class TrainingAttendee(SQLModel, table=True):
    """One person at a session: their name, the commune they serve, their role."""

    __tablename__ = "training_attendees"

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(sa_column_args=[sa.ForeignKey("training_sessions.id", ondelete="CASCADE")], index=True)
    name: str = Field(max_length=200)
    commune_code: str = Field(foreign_key="communes.code", index=True, max_length=16)
    role: str = Field(sa_type=sa.String(24))


def add_session(
    *,
    held_on: date,
    district_code: str,
    topic: str,
    organiser: str,
    hours: float,
    created_by: int | None,
    session: Session,
    district_codes: Collection[str] | None,
) -> TrainingSession:
    """Record a session; NotFound for a district outside `district_codes` (or unknown)."""
    scope = None if district_codes is None else frozenset(district_codes)
    get_district(district_code, session=session, district_codes=scope)
    problems = []
    if not topic.strip():
        problems.append(Problem("topic", "required"))
    if not 0 < hours <= 200:
        problems.append(Problem("hours", "more than 0, at most 200"))
    if problems:
        raise InvalidInput("training session refused", problems)
    record = TrainingSession(
        held_on=held_on,
        district_code=district_code,
        topic=topic.strip(),
        organiser=organiser.strip(),
        hours=hours,
        created_by=created_by,
    )
    session.add(record)
    session.flush()
    return record


def get_session(session_id: int, *, session: Session, district_codes: Collection[str] | None) -> TrainingSession:
    """One session; NotFound also when it was held by a district outside `district_codes`."""
    record = session.get(TrainingSession, session_id)
    if record is None or (district_codes is not None and record.district_code not in district_codes):
        raise NotFound("training session", str(session_id))
    return record


def add_attendee(
    record: TrainingSession, *, name: str, commune_code: str, role: AttendeeRole | str, session: Session
) -> TrainingAttendee:
    """Add a person to a session; their commune must lie in the session's district."""
    commune = session.get(Commune, commune_code)
    problems = []
    if not name.strip():
        problems.append(Problem("name", "required"))
    if commune is None or commune.district_code != record.district_code:
        problems.append(Problem("commune_code", f"a commune of district {record.district_code}"))
    try:
        role = AttendeeRole(role)
    except ValueError:
        problems.append(Problem("role", f"one of {', '.join(r.value for r in AttendeeRole)}"))
    if problems:
        raise InvalidInput("attendee refused", problems)
    assert record.id is not None
    attendee = TrainingAttendee(session_id=record.id, name=name.strip(), commune_code=commune_code, role=str(role))
    session.add(attendee)
    session.flush()
    return attendee


def list_sessions(
    *, session: Session, district_codes: Collection[str] | None, first: date | None = None, last: date | None = None
) -> list[tuple[TrainingSession, int]]:
    """Sessions (newest first) with their number of attendees, within the scope and period."""
    query = (
        select(TrainingSession, sa.func.count(col(TrainingAttendee.id)))
        .outerjoin(TrainingAttendee, col(TrainingAttendee.session_id) == col(TrainingSession.id))
        .group_by(col(TrainingSession.id))
        .order_by(col(TrainingSession.held_on).desc(), col(TrainingSession.id).desc())
    )
    if district_codes is not None:
        query = query.where(col(TrainingSession.district_code).in_(list(district_codes)))
    if first is not None:
        query = query.where(col(TrainingSession.held_on) >= first)
    if last is not None:
        query = query.where(col(TrainingSession.held_on) <= last)
    return [(record, int(count)) for record, count in session.exec(query)]


def attendees(record: TrainingSession, *, session: Session) -> list[TrainingAttendee]:
    query = (
        select(TrainingAttendee).where(col(TrainingAttendee.session_id) == record.id).order_by(col(TrainingAttendee.id))
    )
    return list(session.exec(query))


@dataclass(frozen=True, slots=True)
class Coverage:
    """Communes whose grassroots information officer attended a session in the period, out of all."""

    communes: int
    trained: int
    sessions: int
    attendees: int
    hours: float

    @property
    def share(self) -> float | None:
        return None if self.communes == 0 else self.trained / self.communes


def coverage(*, session: Session, district_codes: Collection[str] | None, first: date, last: date) -> Coverage:
    """The share of communes (of the scope) whose officer was trained between `first` and `last`."""
    communes = select(sa.func.count()).select_from(Commune)
    if district_codes is not None:
        communes = communes.where(col(Commune.district_code).in_(list(district_codes)))
    in_period = [col(TrainingSession.held_on) >= first, col(TrainingSession.held_on) <= last]
    if district_codes is not None:
        in_period.append(col(TrainingSession.district_code).in_(list(district_codes)))
    trained = (
        select(sa.func.count(sa.distinct(col(TrainingAttendee.commune_code))))
        .join(TrainingSession, col(TrainingSession.id) == col(TrainingAttendee.session_id))
        .where(col(TrainingAttendee.role) == AttendeeRole.COMMUNE_OFFICER.value, *in_period)
    )
    sessions = select(sa.func.count(), sa.func.coalesce(sa.func.sum(col(TrainingSession.hours)), 0)).where(*in_period)
    people = (
        select(sa.func.count())
        .select_from(TrainingAttendee)
        .join(TrainingSession, col(TrainingSession.id) == col(TrainingAttendee.session_id))
        .where(*in_period)
    )
    held, hours = session.exec(sessions).one()
    return Coverage(
        communes=int(session.exec(communes).one()),
        trained=int(session.exec(trained).one()),
        sessions=int(held),
        attendees=int(session.exec(people).one()),
        hours=float(hours),
    )
