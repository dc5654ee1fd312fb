"""The administrators' page (`/admin`): accounts (add, disable and enable, reset a password, bind to a district),
notification channels with their test button, the fleet file by upload with every refused row shown, and the
audit log. Every action goes to the API's own routes (administrators only, like these pages)."""

from __future__ import annotations

from typing import Annotated

from fastapi import HTTPException, Query, Request
from fastapi.responses import Response
from sqlmodel import col, select

from monitor.alerts.notify.service import list_channels
from monitor.auth.audit import AuditAction, list_events
from monitor.auth.models import Role
from monitor.auth.service import list_users
from monitor.inventory.models import District
from monitor.web.bodies import api_router
from monitor.web.deps import SessionDep
from monitor.web.ui.door import PagePrincipal
from monitor.web.ui.render import render

router = api_router(include_in_schema=False)  # a `def` page runs in one thread, its session closed there


@router.get("/admin")
def admin_page(
    request: Request,
    principal: PagePrincipal,
    session: SessionDep,
    action: Annotated[AuditAction | None, Query()] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Response:
    """Accounts, channels, the fleet file and the audit log, for the province's administrators."""
    if principal.role is not Role.ADMIN:
        raise HTTPException(403, "this needs one of the roles: admin")
    events, total = list_events(session=session, action=action, limit=50, offset=offset)
    return render(
        request,
        "admin.html",
        {
            "principal": principal,
            "users": list_users(session=session),
            "districts": list(session.exec(select(District).order_by(col(District.code)))),
            "roles": list(Role),
            "channels": list_channels(session=session),
            "events": events,
            "total": total,
            "actions": list(AuditAction),
            "action": action,
            "offset": offset,
        },
    )
