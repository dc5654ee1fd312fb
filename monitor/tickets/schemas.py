"""What the API takes in and shows of tickets: `...Create` / `...Update` for requests, `...Public` for answers.

Labels are Vietnamese (the interface's language); the English ones are in the choice sets.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from monitor.bounds import PRINTABLE, TEXT, RowId, Vnd
from monitor.priority import Priority
from monitor.tickets.choices import EventKind, ProblemScope, TicketAction, TicketSource, TicketStatus
from monitor.tickets.models import InspectionSchedule, Ticket, TicketAttachment, TicketEvent
from monitor.tickets.queries import TicketSummary
from monitor.tickets.workflow import allowed_actions


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("give the time with its zone (e.g. 2026-03-01T08:00:00+07:00)")
    return value


# No control characters: PostgreSQL refuses NUL in text, and no person types them.
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=PRINTABLE)]
LongText = Annotated[str, StringConstraints(max_length=10_000, pattern=TEXT)]
Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000, pattern=TEXT)]
Code = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
AwareDatetime = Annotated[datetime | None, AfterValidator(_aware)]


class TicketBase(BaseModel):
    """What a person writes on a ticket."""

    title: Title
    description: LongText = ""
    priority: Priority = Priority.P3


class TicketCreate(TicketBase):
    """A report recorded by an officer: from a commune, about a device or not (`POST /api/v1/tickets`)."""

    # The rule of `_a_place`, in the schema: a commune or a device (or both).
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["commune_code"], "properties": {"commune_code": {"type": "string"}}},
                {"required": ["device_code"], "properties": {"device_code": {"type": "string"}}},
            ]
        }
    )

    commune_code: Code | None = None
    device_code: Code | None = None
    kind: Code = "report"
    occurred_at: AwareDatetime = None

    @model_validator(mode="after")
    def _a_place(self) -> TicketCreate:
        if self.commune_code is None and self.device_code is None:
            raise ValueError("say which commune the report comes from, or which device")
        return self


class TransitionRequest(BaseModel):
    """A move through the workflow, with a note (`POST /tickets/{code}/transitions`)."""

    action: TicketAction
    note: Note = ""
    confirm: bool = Field(
        default=False,
        description="resolve although the ticket's device is still down (without it, that resolve is a 409 "
        "saying since when the device is down); the history records it",
    )


class AssignmentUpdate(BaseModel):
    """Who takes the ticket; None to leave it unassigned (`POST /tickets/{code}/assign`)."""

    assignee_id: RowId | None
    note: Note = ""


class PriorityUpdate(BaseModel):
    """A new priority for an open ticket."""

    priority: Priority
    note: Note = ""


class CommentCreate(BaseModel):
    """A comment (`POST /tickets/{code}/comments`)."""

    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000, pattern=TEXT)]


class CostsUpdate(BaseModel):
    """What a repair cost, in whole đồng, and the parts replaced."""

    parts_cost_vnd: Vnd
    labour_cost_vnd: Vnd
    parts_replaced: list[Title] = Field(default_factory=list, max_length=100)
    note: Note = ""


class TicketPublic(BaseModel):
    """A ticket as people and integrations see it, with labels and the actions its status allows."""

    model_config = ConfigDict(use_enum_values=True)

    code: str
    title: str
    description: str
    problem_key: str
    scope: ProblemScope
    scope_code: str
    kind: str
    device_code: str | None
    commune_code: str | None
    district_code: str | None = Field(description="None: a province ticket, the province operator's")
    priority: Priority
    priority_label: str
    source: TicketSource
    source_label: str
    status: TicketStatus
    status_label: str
    allowed_actions: list[TicketAction]
    assignee_id: RowId | None
    occurred_at: datetime | None
    created_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    reopened_at: datetime | None
    reopen_count: int
    ack_due_at: datetime | None
    resolve_due_at: datetime
    sla_breached: bool
    breached_at: datetime | None
    paused_since: datetime | None
    paused_seconds: int
    previous_ticket_id: int | None
    auto_resolved: bool
    parts_cost_vnd: int
    labour_cost_vnd: int
    total_cost_vnd: int
    parts_replaced: list[str]
    updated_at: datetime

    @classmethod
    def build(cls, ticket: Ticket) -> TicketPublic:
        """From a ticket row; the device code is the scope code of a device ticket (no join needed)."""
        priority, source, status = Priority(ticket.priority), TicketSource(ticket.source), TicketStatus(ticket.status)
        return cls(
            **ticket.model_dump(
                exclude={
                    "id",
                    "search_text",
                    "details",
                    "sla_started_at",
                    "escalated_at",
                    "last_reported_at",
                    "device_id",
                    "schedule_id",
                    "priority",
                    "source",
                    "status",
                }
            ),
            device_code=ticket.scope_code if ticket.scope == ProblemScope.DEVICE.value else None,
            priority=priority,
            priority_label=priority.label_vi,
            source=source,
            source_label=source.label_vi,
            status=status,
            status_label=status.label_vi,
            allowed_actions=allowed_actions(status),
            total_cost_vnd=ticket.total_cost_vnd,
        )


class TicketSummaryPublic(BaseModel):
    """One line of the queue (`GET /api/v1/tickets`): the ticket's summary, with labels and allowed actions."""

    model_config = ConfigDict(use_enum_values=True)

    code: str
    title: str
    status: TicketStatus
    status_label: str
    allowed_actions: list[TicketAction]
    priority: Priority
    priority_label: str
    source: TicketSource
    kind: str
    scope: ProblemScope
    device_code: str | None
    commune_code: str | None
    district_code: str | None = Field(description="None: a province ticket, the province operator's")
    assignee_id: RowId | None
    created_at: datetime
    acknowledged_at: datetime | None
    ack_due_at: datetime | None
    resolve_due_at: datetime
    resolved_at: datetime | None
    sla_breached: bool

    @classmethod
    def build(cls, summary: TicketSummary) -> TicketSummaryPublic:
        """From a row of `list_tickets`."""
        status, priority = TicketStatus(summary.status), Priority(summary.priority)
        return cls(
            code=summary.code,
            title=summary.title,
            status=status,
            status_label=status.label_vi,
            allowed_actions=allowed_actions(status),
            priority=priority,
            priority_label=priority.label_vi,
            source=TicketSource(summary.source),
            kind=summary.kind,
            scope=ProblemScope(summary.scope),
            device_code=summary.device_code,
            commune_code=summary.commune_code,
            district_code=summary.district_code,
            assignee_id=summary.assignee_id,
            created_at=summary.created_at,
            acknowledged_at=summary.acknowledged_at,
            ack_due_at=summary.ack_due_at,
            resolve_due_at=summary.resolve_due_at,
            resolved_at=summary.resolved_at,
            sla_breached=summary.sla_breached,
        )


class TicketPage(BaseModel):
    """One page of the queue; pass `next_cursor` as `after` for the next one (None: the last page)."""

    items: list[TicketSummaryPublic]
    next_cursor: str | None


class TicketEventPublic(BaseModel):
    """One entry of a ticket's history."""

    at: datetime
    actor_user_id: int | None
    kind: str
    kind_label: str
    from_value: str | None
    to_value: str | None
    note: str

    @classmethod
    def build(cls, event: TicketEvent) -> TicketEventPublic:
        return cls(**event.model_dump(exclude={"id", "ticket_id"}), kind_label=EventKind(event.kind).label_vi)


class TicketAttachmentPublic(BaseModel):
    """A photo of a ticket (the file itself is served by the web part from `path` under the data folder)."""

    id: int
    original_filename: str
    content_type: str
    size_bytes: int
    sha256: str
    uploaded_by: int | None
    uploaded_at: datetime

    @classmethod
    def build(cls, attachment: TicketAttachment) -> TicketAttachmentPublic:
        assert attachment.id is not None
        return cls(**attachment.model_dump(exclude={"ticket_id", "path"}))


class DistrictCostPublic(BaseModel):
    """A district's repair costs over one year, for its budget estimate."""

    district_code: str
    tickets: int
    parts_cost_vnd: int
    labour_cost_vnd: int
    total_cost_vnd: int


class InspectionScheduleCreate(BaseModel):
    """A recurring inspection: where (district, commune, device kind), how often, one ticket per what."""

    name: Title
    description: LongText = ""
    district_code: Code | None = None
    commune_code: Code | None = None
    device_kind: Code | None = None
    per: ProblemScope = ProblemScope.COMMUNE
    every_months: int | None = Field(default=None, ge=1, le=120)
    every_days: int | None = Field(default=None, ge=1, le=3660)
    first_due_on: date
    lead_days: int = Field(default=30, ge=0, le=365)
    priority: Priority = Priority.P4

    @model_validator(mode="after")
    def _one_interval(self) -> InspectionScheduleCreate:
        if (self.every_months is None) == (self.every_days is None):
            raise ValueError("give the interval either in months or in days")
        return self


class InspectionSchedulePublic(InspectionScheduleCreate):
    """A schedule with its next due date."""

    model_config = ConfigDict(use_enum_values=True)

    id: int
    next_due_on: date
    active: bool

    @classmethod
    def build(cls, schedule: InspectionSchedule) -> InspectionSchedulePublic:
        return cls.model_validate(schedule.model_dump(exclude={"occurrence", "created_at"}))
