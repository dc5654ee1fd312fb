"""The audit log, for administrators: sign-ins and their refusals, account, token, channel and maintenance
changes, fleet imports and bulk actions, newest first."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Query
from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, Field

from monitor.auth.audit import AuditAction, AuditEvent, list_events
from monitor.auth.models import Role
from monitor.bounds import PRINTABLE
from monitor.web.bodies import api_router
from monitor.web.deps import Principal, SessionDep, require_roles
from monitor.web.params import Offset

router = api_router(prefix="/api/v1/audit", tags=["audit"])
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]


_ISO_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}[T ]")


def _written_as_iso(value: Any) -> Any:
    """Only an ISO 8601 moment: pydantic would also read `0.5` as seconds since 1970."""
    if isinstance(value, str) and not _ISO_MOMENT.match(value):
        raise ValueError("a moment as YYYY-MM-DDTHH:MM:SS with its offset, e.g. +07:00")
    return value


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:  # 0001-01-01T00:00+01:00 is before the first moment Python can hold in UTC
        raise ValueError("a time Python cannot hold in UTC") from exc


#: A moment with its time zone (2026-12-01T08:00:00+07:00): a time without one would mean nobody knows when.
Moment = Annotated[AwareDatetime, BeforeValidator(_written_as_iso), AfterValidator(_in_utc)]


class AuditEventPublic(BaseModel):
    """One action as the log keeps it."""

    id: int
    at: datetime
    actor_id: int | None
    actor_name: str
    address: str | None
    action: AuditAction
    action_label: str
    target: str | None
    district_code: str | None
    details: dict[str, Any]

    @classmethod
    def build(cls, event: AuditEvent) -> AuditEventPublic:
        action = AuditAction(event.action)
        assert event.id is not None
        return cls(
            id=event.id,
            at=event.at,
            actor_id=event.actor_id,
            actor_name=event.actor_name,
            address=event.address,
            action=action,
            action_label=action.label_vi,
            target=event.target,
            district_code=event.district_code,
            details=event.details,
        )


class AuditPage(BaseModel):
    """A page of the log and how many events match the filters."""

    items: list[AuditEventPublic]
    total: int = Field(ge=0)


@router.get("", response_model=AuditPage)
def list_audit_events(
    session: SessionDep,
    _admin: Admin,
    action: AuditAction | None = None,
    actor: Annotated[str | None, Query(min_length=1, max_length=100, pattern=PRINTABLE)] = None,
    since: Annotated[Moment | None, Query(alias="from", description="from this moment (included)")] = None,
    until: Annotated[Moment | None, Query(alias="to", description="until this moment (excluded)")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> AuditPage:
    """Events newest first; `actor` is a user name as recorded (`cli:<login>` for the server's shell)."""
    rows, total = list_events(
        session=session, action=action, actor=actor, since=since, until=until, limit=limit, offset=offset
    )
    return AuditPage(items=[AuditEventPublic.build(event) for event in rows], total=total)
