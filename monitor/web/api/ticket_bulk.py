"""Acting on several tickets at once (the queue's bulk actions): acknowledge, close or assign the selected
tickets, each through the same service as one ticket, each answered on its own.

A ticket outside the caller's districts is answered `not_found`, exactly as if it did not exist; a move its
status does not allow is `refused` with the reason; the others are applied. One entry in the audit log says
who did what to which tickets.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Depends
from pydantic import BaseModel, Field

from monitor.auth.audit import AuditAction, record
from monitor.auth.models import Role
from monitor.bounds import RowId
from monitor.db import utcnow
from monitor.errors import Conflict, InvalidInput, NotFound
from monitor.tickets import service
from monitor.tickets.choices import TicketAction
from monitor.web.bodies import api_router
from monitor.web.deps import AuditActor, Principal, SessionDep, TicketPolicyDep, require_roles
from monitor.web.openapi import problems

router = api_router(prefix="/api/v1/tickets", tags=["tickets"])
Officer = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.OFFICER))]
TicketCode = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]


class BulkRequest(BaseModel):
    """What to do to which tickets: `acknowledge`, `close` or `assign` (with `assignee_id`, None: nobody)."""

    codes: list[TicketCode] = Field(min_length=1, max_length=200)
    action: Literal["acknowledge", "close", "assign"]
    assignee_id: RowId | None = None
    note: str = Field(default="", max_length=2000, pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$")


class BulkResult(BaseModel):
    code: str
    outcome: Literal["done", "refused", "not_found"]
    status: str | None = None
    reason: str | None = None


class BulkAnswer(BaseModel):
    done: int
    results: list[BulkResult]


@router.post("/bulk", response_model=BulkAnswer, responses=problems(403, 422))
def bulk(
    body: BulkRequest, session: SessionDep, principal: Officer, actor: AuditActor, policy: TicketPolicyDep
) -> BulkAnswer:
    """Acknowledge, close or assign several tickets at once (at most 200); each ticket's outcome is listed:
    `done`, `refused` (the reason: a move its status does not allow, a person who cannot take it) or
    `not_found` (no such ticket in your districts)."""
    now = utcnow()
    results: list[BulkResult] = []
    for code in dict.fromkeys(body.codes):  # each once, in the order given
        try:
            service.get_ticket(code, session=session, district_codes=principal.scope.district_codes)
        except NotFound:
            results.append(BulkResult(code=code, outcome="not_found"))
            continue
        try:
            with session.begin_nested():
                if body.action == "assign":
                    ticket = service.assign(
                        code, body.assignee_id, actor=principal.user.id, note=body.note, session=session, now=now
                    )
                else:
                    ticket = service.transition(
                        code,
                        TicketAction(body.action),
                        actor=principal.user.id,
                        note=body.note,
                        session=session,
                        now=now,
                        policy=policy,
                    )
            results.append(BulkResult(code=code, outcome="done", status=ticket.status))
        except (Conflict, InvalidInput) as exc:
            results.append(BulkResult(code=code, outcome="refused", reason=str(exc)))
    done = [r.code for r in results if r.outcome == "done"]
    record(
        AuditAction.BULK_ACTION,
        session=session,
        actor=actor,
        target=",".join(done)[:500] or None,
        details={"action": body.action, "assignee_id": body.assignee_id, "asked": len(results), "done": len(done)},
    )
    session.commit()
    return BulkAnswer(done=len(done), results=results)
