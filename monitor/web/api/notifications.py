"""Notifications API: channels (administrators only; secrets never shown back), test messages, deliveries.

A district officer may list the deliveries of their own district's events, to see what reached whom
and what failed; leaders read them all.
"""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, HTTPException, Query, Response
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from monitor.alerts.choices import DeliveryStatus
from monitor.alerts.notify import service
from monitor.alerts.notify.channels import open_senders
from monitor.alerts.notify.errors import DeliveryError
from monitor.alerts.notify.schemas import (
    ChannelCreate,
    ChannelPublic,
    ChannelTest,
    ChannelTestResult,
    ChannelUpdate,
    DeliveryPage,
)
from monitor.auth.audit import AuditAction, record
from monitor.auth.models import Role
from monitor.db import utcnow
from monitor.errors import Conflict
from monitor.web.bodies import api_router
from monitor.web.deps import AuditActor, EngineDep, Principal, SessionDep, require_roles
from monitor.web.openapi import problems
from monitor.web.params import IdPath, IdQuery, Offset

router = api_router(prefix="/api/v1/notifications", tags=["notifications"])

Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
DeliveryReader = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.LEADER, Role.OFFICER))]


def _commit(session: Session) -> None:
    try:
        session.commit()
    except sa.exc.IntegrityError as exc:  # a concurrent writer took the name first
        session.rollback()
        raise Conflict("the change contradicts another channel (is the name taken?)") from exc


@router.get("/channels", response_model=list[ChannelPublic])
def list_channels(session: SessionDep, _admin: Admin) -> list[ChannelPublic]:
    """Every notification channel, by name."""
    return [service.channel_public(c) for c in service.list_channels(session=session)]


@router.post("/channels", response_model=ChannelPublic, status_code=201, responses=problems(409))
def create_channel(data: ChannelCreate, session: SessionDep, _admin: Admin, actor: AuditActor) -> ChannelPublic:
    """A new channel; its config is checked against its kind (webhook, email, telegram)."""
    channel = service.create_channel(data, session=session, now=utcnow())
    details = {"id": channel.id, "kind": channel.kind}
    record(AuditAction.CHANNEL_CREATED, session=session, actor=actor, target=channel.name, details=details)
    _commit(session)
    return service.channel_public(channel)


@router.get("/channels/{channel_id}", response_model=ChannelPublic)
def get_channel(channel_id: IdPath, session: SessionDep, _admin: Admin) -> ChannelPublic:
    """One channel."""
    return service.channel_public(service.get_channel(channel_id, session=session))


@router.patch("/channels/{channel_id}", response_model=ChannelPublic, responses=problems(409))
def update_channel(
    channel_id: IdPath, changes: ChannelUpdate, session: SessionDep, _admin: Admin, actor: AuditActor
) -> ChannelPublic:
    """Change a channel; config keys merge into the stored ones, a secret sent back as `***set***` is kept."""
    channel = service.update_channel(channel_id, changes, session=session)
    changed = sorted(changes.model_dump(exclude_unset=True))  # the fields' names only: config may hold secrets
    record(AuditAction.CHANNEL_CHANGED, session=session, actor=actor, target=channel.name, details={"fields": changed})
    _commit(session)
    return service.channel_public(channel)


@router.delete("/channels/{channel_id}", status_code=204, responses=problems(409))
def delete_channel(channel_id: IdPath, session: SessionDep, _admin: Admin, actor: AuditActor) -> Response:
    """Remove a channel with its deliveries (deactivate it instead to keep the history)."""
    name = service.get_channel(channel_id, session=session).name
    service.delete_channel(channel_id, session=session)
    record(AuditAction.CHANNEL_DELETED, session=session, actor=actor, target=name, details={"id": channel_id})
    _commit(session)
    return Response(status_code=204)


@router.post("/channels/{channel_id}/test", response_model=ChannelTestResult, responses=problems(502))
async def test_channel(
    channel_id: IdPath, session: SessionDep, engine: EngineDep, admin: Admin, request: ChannelTest | None = None
) -> ChannelTestResult:
    """Send a test message now, outside the queue; 502 with the reason when it does not go through."""

    def load() -> tuple[Any, str]:
        channel = service.get_channel(channel_id, session=session)
        recipient = service.recipient_for_test(channel, admin.user, request.recipient if request else None)
        session.close()  # its connection goes back to the pool before the network is waited on
        return channel, recipient

    channel, recipient = await run_in_threadpool(load)
    try:
        async with open_senders() as senders:
            message = await service.send_test(
                channel,
                recipient=recipient,
                senders=senders,
                now=utcnow(),
                language=admin.user.language,
                engine=engine,  # a Zalo token renewed on the way is kept
            )
    except DeliveryError as exc:
        raise HTTPException(502, f"the test message was not delivered: {exc}") from exc
    return ChannelTestResult(sent=True, recipient=recipient, subject=message.subject)


@router.get("/deliveries", response_model=DeliveryPage)
def list_deliveries(
    session: SessionDep,
    principal: DeliveryReader,
    status: DeliveryStatus | None = None,
    channel: IdQuery = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> DeliveryPage:
    """Deliveries newest first with their attempts and last error; an officer sees their district's only."""
    rows, total = service.list_deliveries(
        session=session,
        status=status,
        channel_id=channel,
        district_codes=principal.scope.district_codes,
        limit=limit,
        offset=offset,
    )
    return DeliveryPage(items=[service.delivery_public(d, c) for d, c in rows], total=total)
