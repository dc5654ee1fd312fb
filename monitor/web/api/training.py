"""Training register API: sessions held for the grassroots information officers, their attendees, coverage."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import Depends, Query
from pydantic import BaseModel, Field

from monitor.auth.models import Role
from monitor.bounds import MAX_YEAR, MIN_YEAR, PRINTABLE
from monitor.reports import training
from monitor.reports.training import AttendeeRole
from monitor.web.bodies import api_router
from monitor.web.deps import ScopedList, SessionDep, VisibleTraining, require_roles
from monitor.web.openapi import problems
from monitor.web.params import Day

router = api_router(prefix="/api/v1/training", tags=["training"])
Writer = Annotated[Any, Depends(require_roles(Role.ADMIN, Role.OFFICER))]
Code = Annotated[str, Field(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9_.-]+$")]


class SessionCreate(BaseModel):
    held_on: date = Field(ge=date(MIN_YEAR, 1, 1), le=date(MAX_YEAR, 12, 31), description="the day it was held")
    district_code: Code
    topic: str = Field(min_length=1, max_length=300, pattern=PRINTABLE)
    organiser: str = Field(default="", max_length=200, pattern=PRINTABLE)
    hours: float = Field(gt=0, le=200)


class AttendeeCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200, pattern=PRINTABLE)
    commune_code: Code
    role: AttendeeRole = AttendeeRole.COMMUNE_OFFICER


class AttendeePublic(BaseModel):
    id: int
    name: str
    commune_code: str
    role: AttendeeRole


class SessionPublic(BaseModel):
    id: int
    held_on: date
    district_code: str
    topic: str
    organiser: str
    hours: float
    attendee_count: int
    created_at: datetime


class SessionDetail(SessionPublic):
    attendees: list[AttendeePublic]


class CoveragePublic(BaseModel):
    """Communes whose grassroots information officer was trained over `from`..`to`, of all in scope."""

    from_: date = Field(alias="from")
    to: date
    communes: int
    trained: int
    share: float | None
    sessions: int
    attendees: int
    hours: float


def _public(record: training.TrainingSession, count: int) -> SessionPublic:
    return SessionPublic.model_validate({**record.model_dump(), "attendee_count": count})


@router.get("/sessions", response_model=list[SessionPublic], responses=problems(404, 422))
def list_sessions(
    session: SessionDep,
    scope: ScopedList,
    from_: Annotated[Day | None, Query(alias="from", description="held on or after this day")] = None,
    to: Annotated[Day | None, Query(description="held on or before this day")] = None,
) -> list[SessionPublic]:
    """The training sessions of your districts, newest first, with their numbers of attendees."""
    rows = training.list_sessions(session=session, district_codes=scope.district_codes, first=from_, last=to)
    return [_public(record, count) for record, count in rows]


@router.post("/sessions", response_model=SessionDetail, status_code=201, responses=problems(404, 422))
def create_session(body: SessionCreate, session: SessionDep, principal: Writer) -> SessionDetail:
    """Record a training session held by a district (an officer records their own district's)."""
    record = training.add_session(
        **body.model_dump(),
        created_by=principal.user.id,
        session=session,
        district_codes=principal.scope.district_codes,
    )
    session.commit()
    return SessionDetail.model_validate({**record.model_dump(), "attendee_count": 0, "attendees": []})


@router.get("/sessions/{session_id}", response_model=SessionDetail, responses=problems(404))
def get_session(record: VisibleTraining, session: SessionDep) -> SessionDetail:
    """One session with who attended."""
    people = [
        AttendeePublic.model_validate(a, from_attributes=True) for a in training.attendees(record, session=session)
    ]
    return SessionDetail.model_validate({**record.model_dump(), "attendee_count": len(people), "attendees": people})


@router.post(
    "/sessions/{session_id}/attendees", response_model=AttendeePublic, status_code=201, responses=problems(404, 422)
)
def add_attendee(
    record: VisibleTraining, body: AttendeeCreate, session: SessionDep, principal: Writer
) -> AttendeePublic:
    """Add a person who attended: their name, the commune they serve (in the session's district), their role."""
    attendee = training.add_attendee(record, **body.model_dump(), session=session)
    session.commit()
    return AttendeePublic.model_validate(attendee, from_attributes=True)


@router.get("/coverage", response_model=CoveragePublic, responses=problems(404, 422))
def get_coverage(
    session: SessionDep,
    scope: ScopedList,
    from_: Annotated[Day, Query(alias="from", description="first day, YYYY-MM-DD")],
    to: Annotated[Day, Query(description="last day, included")],
) -> CoveragePublic:
    """The share of communes whose grassroots information officer attended a session over the period (the
    plan targets every one)."""
    figures = training.coverage(session=session, district_codes=scope.district_codes, first=from_, last=to)
    return CoveragePublic.model_validate(
        {
            "from": from_,
            "to": to,
            **{k: getattr(figures, k) for k in ("communes", "trained", "sessions", "attendees", "hours")},
            "share": figures.share,
        }
    )
