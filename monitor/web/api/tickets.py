"""Repair tickets: the district's queue, one ticket's life, comments, photos, costs.

Every route checks the caller's district first: a ticket of another district does not exist for a
district-scoped user (404). Leaders read everything and change nothing.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Depends, File, HTTPException, Query, Request, UploadFile
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from monitor.auth.models import Role
from monitor.bounds import INT32_MAX
from monitor.db import utcnow
from monitor.health.queries import current_health
from monitor.health.states import DeviceState, fault_label
from monitor.i18n import format_date, format_time
from monitor.inventory.models import Device
from monitor.priority import Priority
from monitor.tickets import export, service
from monitor.tickets.choices import TicketAction, TicketSource, TicketStatus
from monitor.tickets.models import Ticket
from monitor.tickets.queries import TicketFilters
from monitor.tickets.schemas import (
    AssignmentUpdate,
    CommentCreate,
    CostsUpdate,
    DistrictCostPublic,
    PriorityUpdate,
    TicketAttachmentPublic,
    TicketCreate,
    TicketEventPublic,
    TicketPage,
    TicketPublic,
    TicketSummaryPublic,
    TransitionRequest,
)
from monitor.web.answers import KeptAnswers
from monitor.web.bodies import api_router
from monitor.web.deps import (
    EngineDep,
    Principal,
    PrincipalDep,
    ScopedList,
    SessionDep,
    SettingsDep,
    TicketPolicyDep,
    VisibleTicket,
    known_generations,
    require_roles,
)
from monitor.web.downloads import EXPORT_CONTENT, ExportFormat, file_name, table_response
from monitor.web.openapi import problems
from monitor.web.params import IdPath, YearPath
from monitor.web.problems import problem

router = api_router(prefix="/api/v1/tickets", tags=["tickets"])
Worker = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.OFFICER, Role.TECHNICIAN))]
Officer = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.OFFICER))]
Code = Annotated[str, Query(max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]


Assignee = Annotated[
    Annotated[int, Field(ge=1, le=INT32_MAX)] | Literal["me"] | None,
    Query(description="a user's id (1 .. 2**31-1), or `me`: the tickets assigned to whoever asks"),
]


async def ticket_filters(
    principal: PrincipalDep,
    commune: Code | None = None,
    device: Code | None = None,
    status: Annotated[list[TicketStatus] | None, Query(description="default: every open status")] = None,
    priority: Annotated[list[Priority] | None, Query()] = None,
    source: Annotated[list[TicketSource] | None, Query()] = None,
    assignee: Assignee = None,
    breached: bool | None = None,
    q: Annotated[str | None, Query(max_length=100, pattern=r"^[^\x00-\x1f\x7f]*$")] = None,
) -> TicketFilters:
    """The queue's filters, the list's and the export's: place, status, priority, source, assignee, breach, text."""
    return TicketFilters(
        commune=commune,
        device=device,
        statuses=frozenset(status) if status else TicketFilters.open_queue().statuses,
        priorities=frozenset(priority or ()),
        sources=frozenset(source or ()),
        assignee_id=principal.user.id if assignee == "me" else assignee,
        breached=breached,
        text=q,
    )


Filters = Annotated[TicketFilters, Depends(ticket_filters)]


@router.get("", response_model=TicketPage, responses=problems(404))
async def list_tickets(
    request: Request,
    session: SessionDep,
    scope: ScopedList,
    filters: Filters,
    after: Annotated[str | None, Query(max_length=200, pattern=r"^[A-Za-z0-9_-]*$")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Response:
    """The queue, soonest due first: filter by place, status, priority, source, assignee (an id, or `me`),
    breach, text.

    The answer is a function of the tickets alone (and of the caller's districts and filters): it is kept and
    given again while the tickets' generation is unchanged (monitor.web.answers), so the district's people
    asking for the same queue all day cost the door's one read of the generations, not the list. A kept answer
    is given from the event loop; the list is made in a worker thread.
    """
    kept: KeptAnswers[bytes] = request.app.state.kept_queues
    key = ("api", scope.district_codes, filters, after, limit)
    generations = known_generations(request)
    if filters.device is None and (body := kept.get(key, generations.tickets)) is not None:
        return Response(body, media_type="application/json")

    def made() -> bytes:
        try:
            page = service.list_tickets(
                filters, session=session, district_codes=scope.district_codes, after=after, limit=limit
            )
        finally:
            session.close()
        answer = TicketPage(items=[TicketSummaryPublic.build(s) for s in page.items], next_cursor=page.next_cursor)
        return answer.model_dump_json().encode()

    body = await run_in_threadpool(made)
    if filters.device is None:  # a device's filter names it by code, read from `devices`: not kept
        kept.put(key, generations.tickets, body, len(body))
    return Response(body, media_type="application/json")


def _kind_label(kind: str, language: str) -> str:
    # A ticket's kind is a device's fault code (health's words) or one of the tickets' own (report, inspection).
    if kind in export.TICKET_KINDS:
        return export.ticket_kind_label(kind, language)
    return fault_label(kind, language)


# Before `/{code}`: the first route that matches a path wins, and `export` would be read as a ticket's code.
@router.get(
    "/export",
    response_class=Response,
    responses={200: {"content": EXPORT_CONTENT, "description": "the tickets as a file"}, **problems(401, 404, 422)},
)
def export_tickets(
    engine: EngineDep,
    scope: ScopedList,
    filters: Filters,
    format: ExportFormat = "csv",
    lang: Literal["vi", "en"] = "vi",
) -> Response:
    """Every ticket the queue shows with the same filters, as CSV (UTF-8 with a BOM, for Excel) or XLSX:
    headers, statuses, priorities and kinds in Vietnamese (`lang=en`: English), times dd/mm/yyyy HH:MM in
    Vietnam time, in the order tickets were opened. Streamed: any number of tickets in little memory."""
    rows = export.ticket_rows(
        filters, engine=engine, district_codes=scope.district_codes, language=lang, kind_label=_kind_label
    )
    return table_response(
        format,
        file_name("tickets", format, utcnow()),
        export.header(lang),
        rows,
        sheet_name="Tickets" if lang == "en" else "Phiếu sửa chữa",
        widths=export.WIDTHS,
    )


@router.post("", response_model=TicketPublic, status_code=201, responses=problems(404, 409))
def create_ticket(body: TicketCreate, session: SessionDep, principal: Officer, policy: TicketPolicyDep) -> Any:
    """Record a report from a commune (with or without a device); routed to the responsible district."""
    ticket = service.create_manual_ticket(body, actor=principal.user.id, session=session, now=utcnow(), policy=policy)
    if not principal.scope.allows(ticket.district_code):
        session.rollback()
        raise HTTPException(404, "no such commune or device in your district")
    session.commit()
    return TicketPublic.build(ticket)


@router.get("/costs/{year}", response_model=list[DistrictCostPublic])
def costs(year: YearPath, session: SessionDep, principal: PrincipalDep) -> list[DistrictCostPublic]:
    """Repair costs per district for one year, for the budget estimate."""
    rows = service.district_costs(year, session=session)
    return [
        DistrictCostPublic.model_validate(r, from_attributes=True)
        for r in rows
        if principal.scope.allows(r.district_code)
    ]


@router.get("/{code}", response_model=TicketPublic)
def get_ticket(ticket: VisibleTicket) -> TicketPublic:
    return TicketPublic.build(ticket)


@router.get("/{code}/history", response_model=list[TicketEventPublic])
def history(ticket: VisibleTicket, session: SessionDep) -> list[TicketEventPublic]:
    """Every change, with who and when (append-only)."""
    events = service.history(ticket.code, session=session)
    return [TicketEventPublic.build(e) for e in events]


def _device_still_down(ticket: Ticket, session: Session) -> tuple[Device, str] | None:
    """The ticket's device and since when (as people read it) if its current health is down; None otherwise.

    Here, in the web layer, because it reads both sides: tickets know nothing of health (alerts is the bridge).
    """
    if ticket.device_id is None:
        return None
    health = current_health(ticket.device_id, session=session)
    device = session.get(Device, ticket.device_id)
    if health is None or health.state != DeviceState.DOWN.value or device is None:
        return None
    since = f"{format_time(health.since)} {format_date(health.since)}" if health.since is not None else ""
    return device, since


@router.post("/{code}/transitions", response_model=TicketPublic, responses=problems(409))
def transition(
    ticket: VisibleTicket, body: TransitionRequest, session: SessionDep, principal: Worker, policy: TicketPolicyDep
) -> Any:
    """acknowledge, start, wait (the SLA clock pauses), resume, resolve, close, reopen — with a note.
    A move the status does not allow is a 409 listing the allowed ones. Resolving a ticket whose device is
    still down is a 409 saying so, unless the body says `confirm: true`; the history then records it."""
    note = body.note
    if body.action is TicketAction.RESOLVE and TicketStatus(ticket.status).is_open:
        down = _device_still_down(ticket, session)
        if down is not None:
            device, since = down
            when_vi, when_en = (f" (từ {since})", f" (since {since})") if since else ("", "")
            if not body.confirm:
                return problem(
                    409,
                    f"Thiết bị {device.code} ({device.name}) vẫn đang mất kết nối{when_vi}. Xác nhận để đóng phiếu.",
                    f"Device {device.code} is still down{when_en}. Send `confirm: true` to resolve the ticket anyway.",
                    confirmation_required=True,
                )
            recorded = f"Xác nhận khắc phục khi thiết bị {device.code} vẫn đang mất kết nối{when_vi}."
            note = f"{recorded} {note}".strip()
    ticket = service.transition(
        ticket.code,
        body.action,
        actor=principal.user.id,
        note=note,
        session=session,
        now=utcnow(),
        policy=policy,
    )
    session.commit()
    return TicketPublic.build(ticket)


@router.post("/{code}/assign", response_model=TicketPublic, responses=problems(409))
def assign(ticket: VisibleTicket, body: AssignmentUpdate, session: SessionDep, principal: Officer) -> TicketPublic:
    """Give the ticket to a technician or officer of its district (or to nobody)."""
    ticket = service.assign(
        ticket.code, body.assignee_id, actor=principal.user.id, note=body.note, session=session, now=utcnow()
    )
    session.commit()
    return TicketPublic.build(ticket)


class TakeRequest(BaseModel):
    """Taking a ticket oneself: an optional note."""

    note: str = Field(default="", max_length=2000, pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$")


@router.post("/{code}/take", response_model=TicketPublic, responses=problems(409, 422))
def take(
    ticket: VisibleTicket, session: SessionDep, principal: Worker, body: TakeRequest | None = None
) -> TicketPublic:
    """Take the ticket oneself ("Tôi nhận phiếu này"): a technician or officer of its district becomes its assignee
    (a 422 says why when they cannot: another district's person, a leader). Taking it again changes nothing."""
    ticket = service.assign(
        ticket.code,
        principal.user.id,
        actor=principal.user.id,
        note=body.note if body is not None else "",
        session=session,
        now=utcnow(),
    )
    session.commit()
    return TicketPublic.build(ticket)


@router.post("/{code}/priority", response_model=TicketPublic, responses=problems(409))
def change_priority(
    ticket: VisibleTicket, body: PriorityUpdate, session: SessionDep, principal: Officer, policy: TicketPolicyDep
) -> TicketPublic:
    """A new priority; the due times follow from the ticket's creation."""
    ticket = service.change_priority(
        ticket.code,
        body.priority,
        actor=principal.user.id,
        note=body.note,
        session=session,
        now=utcnow(),
        policy=policy,
    )
    session.commit()
    return TicketPublic.build(ticket)


@router.post("/{code}/comments", response_model=TicketEventPublic, status_code=201, responses=problems(409))
def comment(ticket: VisibleTicket, body: CommentCreate, session: SessionDep, principal: Worker) -> TicketEventPublic:
    event = service.add_comment(ticket.code, body.text, actor=principal.user.id, session=session, now=utcnow())
    session.commit()
    return TicketEventPublic.build(event)


@router.post("/{code}/costs", response_model=TicketPublic, responses=problems(409))
def record_costs(ticket: VisibleTicket, body: CostsUpdate, session: SessionDep, principal: Worker) -> TicketPublic:
    """Parts and labour (VND) and the parts replaced."""
    ticket = service.record_costs(
        ticket.code,
        body.parts_cost_vnd,
        body.labour_cost_vnd,
        body.parts_replaced,
        actor=principal.user.id,
        note=body.note,
        session=session,
        now=utcnow(),
    )
    session.commit()
    return TicketPublic.build(ticket)


@router.get("/{code}/attachments", response_model=list[TicketAttachmentPublic])
def list_attachments(ticket: VisibleTicket, session: SessionDep) -> list[TicketAttachmentPublic]:
    found = service.attachments(ticket.code, session=session)
    return [TicketAttachmentPublic.build(a) for a in found]


@router.post(
    "/{code}/attachments", response_model=TicketAttachmentPublic, status_code=201, responses=problems(400, 409)
)
def upload_attachment(
    ticket: VisibleTicket,
    session: SessionDep,
    principal: Worker,
    settings: SettingsDep,
    policy: TicketPolicyDep,
    file: Annotated[UploadFile, File(description="a JPEG, PNG or WebP photo")],
) -> TicketAttachmentPublic:
    """A photo from the field. Size capped; the type is checked by content, not by the name."""
    data = file.file.read(policy.attachment_max_bytes + 1)  # parsed (spooled) before the route runs
    attachment = service.save_attachment(
        ticket.code,
        file.filename or "photo",
        data,
        content_type_claimed=file.content_type,
        data_dir=settings.data_dir,
        max_bytes=policy.attachment_max_bytes,
        session=session,
        actor=principal.user.id,
        now=utcnow(),
    )
    session.commit()
    return TicketAttachmentPublic.build(attachment)


@router.get("/{code}/attachments/{attachment_id}")
def download_attachment(
    ticket: VisibleTicket, attachment_id: IdPath, session: SessionDep, settings: SettingsDep
) -> FileResponse:
    found = service.attachments(ticket.code, session=session)
    attachment = next((a for a in found if a.id == attachment_id), None)
    if attachment is None:
        raise HTTPException(404, "no such attachment")
    path = (settings.data_dir / attachment.path).resolve()
    if settings.data_dir.resolve() not in path.parents or not path.is_file():
        raise HTTPException(404, "no such attachment")
    return FileResponse(path, media_type=attachment.content_type, filename=attachment.original_filename)
