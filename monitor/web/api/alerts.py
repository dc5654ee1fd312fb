"""Problems, acknowledgements, maintenance windows, and the Alertmanager receiver."""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, HTTPException, Query, Request
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from monitor.alerts import service
from monitor.alerts.alertmanager import parse_payload, receive
from monitor.alerts.models import AlertProblem, MaintenanceWindow
from monitor.auth.audit import AuditAction, record
from monitor.auth.models import Role
from monitor.db import utcnow
from monitor.errors import InvalidInput, Problem
from monitor.web.bodies import api_router, decode_json
from monitor.web.deps import (
    AlertRulesDep,
    AuditActor,
    PrincipalDep,
    ScopedList,
    SessionDep,
    SettingsDep,
    TicketPolicyDep,
    VisibleProblem,
    VisibleWindow,
    require_roles,
)
from monitor.web.openapi import problems
from monitor.web.params import Offset

router = api_router(prefix="/api/v1", tags=["alerts"])
ProblemStatus = Literal["active", "pending", "suppressed", "resolved"]


class ProblemPublic(BaseModel):
    """A problem as people see it."""

    id: int
    key: str
    scope: str
    scope_code: str
    kind: str
    source: str
    status: str
    priority: str
    commune_code: str | None
    district_code: str | None
    title: str
    members: list[str]
    suppressed_by: str | None
    suppression_reason: str | None
    flapping: bool
    started_at: datetime
    activated_at: datetime | None
    resolved_at: datetime | None
    acknowledged_at: datetime | None
    acknowledgement_note: str | None
    ticket_code: str | None

    @classmethod
    def build(cls, problem: AlertProblem) -> ProblemPublic:
        return cls.model_validate(problem, from_attributes=True)


class AcknowledgeRequest(BaseModel):
    note: str = Field(default="", max_length=1000)


def _a_written_moment(value: Any) -> Any:
    """A moment written as text with its zone (2026-12-06T08:00:00+07:00), never a number of seconds (pydantic
    would read 1700000000 as a date); `strict=True` refused the text too, since a JSON body reaches the model
    as Python values."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError("a date and time as text with its zone, e.g. 2026-12-06T08:00:00+07:00")
    return value


Moment = Annotated[datetime, BeforeValidator(_a_written_moment)]


class WindowCreate(BaseModel):
    """A maintenance window: one-off (starts_at..ends_at) or recurring (cron in Asia/Ho_Chi_Minh + duration_s).

    `ends_at` must come after `starts_at`, and `cron` be a valid five-field expression (422 otherwise).
    """

    # The rules of monitor.alerts.maintenance.validate_window, in the schema.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["ends_at"], "properties": {"ends_at": {"type": "string"}, "cron": {"type": "null"}}},
                {
                    "required": ["cron", "duration_s"],
                    "properties": {"cron": {"type": "string"}, "duration_s": {"type": "integer"}},
                },
            ]
        }
    )

    name: str = Field(min_length=1, max_length=200)
    scope: str = Field(pattern=r"^(device|commune|district|kind)$")
    scope_code: str = Field(min_length=1, max_length=64)
    starts_at: Moment
    ends_at: Moment | None = None
    cron: str | None = Field(default=None, max_length=100, pattern=r"^\S+( \S+){4}$")
    duration_s: int | None = Field(default=None, gt=0, le=30 * 86400)


class WindowPublic(WindowCreate):
    id: int
    active: bool


@router.get("/problems", response_model=list[ProblemPublic], responses=problems(404))
def list_problems(
    session: SessionDep,
    scope: ScopedList,
    status: Annotated[list[ProblemStatus] | None, Query(description="default: active")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Offset = 0,
) -> list[ProblemPublic]:
    """Problems, newest first (default: active ones)."""
    problems = service.list_problems(
        session=session,
        district_codes=scope.district_codes,
        statuses=list(status or ["active"]),
        limit=limit,
        offset=offset,
    )
    return [ProblemPublic.build(p) for p in problems]


@router.get("/problems/{problem_id}", response_model=ProblemPublic)
def get_problem(problem: VisibleProblem) -> ProblemPublic:
    return ProblemPublic.build(problem)


@router.post("/problems/{problem_id}/acknowledge", response_model=ProblemPublic, responses=problems(409))
def acknowledge_problem(
    problem: VisibleProblem,
    body: AcknowledgeRequest,
    session: SessionDep,
    principal: Annotated[Any, Depends(require_roles(Role.ADMIN, Role.OFFICER, Role.TECHNICIAN))],
) -> ProblemPublic:
    """Take a problem in hand, with a note; it lasts until the problem is resolved."""
    assert problem.id is not None
    problem = service.acknowledge(
        problem.id,
        note=body.note,
        user_id=principal.user.id,
        session=session,
        district_codes=None,  # looked up through the door already
        now=utcnow(),
    )
    session.commit()
    return ProblemPublic.build(problem)


@router.get("/maintenance-windows", response_model=list[WindowPublic])
def list_windows(session: SessionDep, principal: PrincipalDep) -> list[WindowPublic]:
    windows = service.list_windows(session=session, district_codes=principal.scope.district_codes)
    return [WindowPublic.model_validate(w, from_attributes=True) for w in windows]


@router.post("/maintenance-windows", response_model=WindowPublic, status_code=201, responses=problems(404))
def create_window(
    body: WindowCreate,
    session: SessionDep,
    principal: Annotated[Any, Depends(require_roles(Role.ADMIN, Role.OFFICER))],
    actor: AuditActor,
) -> WindowPublic:
    """Mute problems of a device, commune, district or kind of device for a while (the true state is still shown)."""
    if body.starts_at.tzinfo is None or (body.ends_at is not None and body.ends_at.tzinfo is None):
        raise InvalidInput("times need a time zone", [Problem("starts_at", "give an offset, e.g. +07:00")])
    window = MaintenanceWindow(**body.model_dump(), created_by=principal.user.id)
    service.create_window(window, session=session, district_codes=principal.scope.district_codes)
    district = service.district_of_scope(window.scope, window.scope_code, session=session)
    target = f"{window.scope} {window.scope_code}"
    details = {"id": window.id, "name": window.name}
    record(
        AuditAction.WINDOW_CREATED, session=session, actor=actor, target=target, district_code=district, details=details
    )
    session.commit()
    return WindowPublic.model_validate(window, from_attributes=True)


@router.delete("/maintenance-windows/{window_id}", status_code=204)
def end_window(
    window: VisibleWindow,
    session: SessionDep,
    _principal: Annotated[Any, Depends(require_roles(Role.ADMIN, Role.OFFICER))],
    actor: AuditActor,
) -> None:
    """End a window now (it is kept, inactive, for history)."""
    assert window.id is not None
    service.end_window(window.id, session=session, district_codes=None, now=utcnow())  # through the door
    district = service.district_of_scope(window.scope, window.scope_code, session=session)
    target, details = f"{window.scope} {window.scope_code}", {"id": window.id, "name": window.name}
    record(
        AuditAction.WINDOW_ENDED, session=session, actor=actor, target=target, district_code=district, details=details
    )
    session.commit()


@router.post("/integrations/alertmanager", tags=["integrations"], responses=problems(401, 408, 413))
async def alertmanager_webhook(
    request: Request, session: SessionDep, settings: SettingsDep, rules: AlertRulesDep, policy: TicketPolicyDep
) -> dict[str, Any]:
    """Alertmanager's webhook (version 4). Answers 2xx only once the result is committed, so retries are safe."""
    expected = settings.alertmanager_token.get_secret_value() if settings.alertmanager_token else ""
    header = request.headers.get("authorization", "")
    given = header[7:].strip() if header.lower().startswith("bearer ") else ""
    if not expected:
        raise HTTPException(503, "the Alertmanager receiver is not configured (MONITOR_ALERTMANAGER_TOKEN)")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(401, "wrong or missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    body = await request.body()  # read by the guard at the door already, capped at web_max_body_bytes
    try:
        payload = parse_payload(decode_json(body))
    except (ValueError, ValidationError) as exc:
        problems = (
            [Problem(".".join(map(str, e["loc"])), e["msg"]) for e in exc.errors()]
            if isinstance(exc, ValidationError)
            else [Problem("body", "not JSON")]
        )
        raise InvalidInput("not an Alertmanager webhook payload (version 4)", problems) from exc

    def apply() -> Any:
        result = receive(payload, session=session, now=utcnow(), rules=rules, ticket_policy=policy)
        session.commit()
        return result

    result = await run_in_threadpool(apply)
    return {"opened": result.opened, "resolved": result.resolved, "ignored": result.ignored, "tickets": result.tickets}
