"""Tables of tickets: the ticket, its history, SLA pauses, attachments, code counters and inspection schedules.

Why the indexes are what they are:
- `uq_tickets_open_problem_key` is the one-open-ticket-per-problem guarantee: a partial unique index over
  open tickets only, so concurrent writers and duplicated deliveries cannot create two (the loser gets
  an IntegrityError and joins the winner's ticket).
- `uq_tickets_schedule_id_problem_key` makes planned tickets idempotent per schedule and occurrence.
- `ix_tickets_open_district_due` and `ix_tickets_open_due` serve the daily queue (a district's open
  tickets, or the province's, by due time then id, keyset-paginated) as a plain index range scan;
  `ix_tickets_district_status_due` serves the same list for one status at a time.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from monitor.db import UTCDateTime, utcnow
from monitor.tickets.choices import OPEN_STATUS_SQL

_OPEN = sa.text(OPEN_STATUS_SQL)
_RESOLVED = sa.text("status = 'resolved'")
_PLANNED = sa.text("schedule_id IS NOT NULL")


class TicketCounter(SQLModel, table=True):
    """The last number given to a ticket code of one province prefix and year (`LS-2026-000123`).

    Incremented by an atomic upsert in the transaction that creates the ticket: numbers are sequential
    and a rolled-back ticket gives its number back.
    """

    __tablename__ = "ticket_counters"

    prefix: str = Field(primary_key=True, max_length=8)
    year: int = Field(primary_key=True)
    last_number: int = 0


class InspectionSchedule(SQLModel, table=True):
    """A recurring preventive inspection (kiểm tra, bảo dưỡng định kỳ) that opens `planned` tickets.

    The scope is the whole province, narrowed by `district_code` (the routed district), `commune_code`
    and `device_kind`; `per` says whether one ticket is opened per device, per commune or per district
    in scope. The schedule repeats every `every_months` months or every `every_days` days (one of them)
    from `first_due_on`; each occurrence's tickets open `lead_days` before it is due.
    """

    __tablename__ = "inspection_schedules"
    __table_args__ = (
        sa.CheckConstraint("(every_months IS NULL) <> (every_days IS NULL)", name="one_interval"),
        sa.CheckConstraint("COALESCE(every_months, every_days) > 0", name="interval_positive"),
        sa.CheckConstraint("lead_days >= 0", name="lead_days_not_negative"),
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    description: str = Field(default="", sa_type=sa.Text)
    district_code: str | None = Field(default=None, foreign_key="districts.code", max_length=16)
    commune_code: str | None = Field(default=None, foreign_key="communes.code", max_length=16)
    device_kind: str | None = Field(default=None, max_length=32)
    per: str = Field(default="commune", sa_type=sa.String(16))
    every_months: int | None = None
    every_days: int | None = None
    first_due_on: date
    next_due_on: date
    occurrence: int = Field(default=0, description="index of next_due_on counted from first_due_on")
    lead_days: int = 30
    priority: str = Field(default="P4", sa_type=sa.String(2))
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Ticket(SQLModel, table=True):
    """A repair ticket (phiếu sửa chữa): one problem of one device, commune or district, owed to a district;
    or one problem of the province's service itself (`scope` province), owed to the province operator
    (`district_code` None: only administrators and leaders see it).

    `problem_key` names the problem (`device:06613-CL01:offline`); at most one open ticket exists per
    key, and a problem that comes back later gets a new ticket linked to the previous one
    (`previous_ticket_id`). The SLA clock starts at `sla_started_at` (creation, or the latest reopening)
    and stops during the rows of `ticket_pauses`; `ack_due_at` and `resolve_due_at` are the due times it
    gives, kept up to date by the service on every change that moves them. While the ticket waits,
    `resolve_due_at` keeps the value it had when the wait began: the real one is known on resume.
    """

    __tablename__ = "tickets"
    __table_args__ = (
        sa.Index("uq_tickets_open_problem_key", "problem_key", unique=True, sqlite_where=_OPEN, postgresql_where=_OPEN),
        sa.Index("ix_tickets_problem_key_id", "problem_key", "id"),
        sa.Index("ix_tickets_district_status_due", "district_code", "status", "resolve_due_at", "id"),
        sa.Index(
            "ix_tickets_open_district_due",
            "district_code",
            "resolve_due_at",
            "id",
            sqlite_where=_OPEN,
            postgresql_where=_OPEN,
        ),
        sa.Index("ix_tickets_open_due", "resolve_due_at", "id", sqlite_where=_OPEN, postgresql_where=_OPEN),
        # Small partial indexes where only a few rows matter: every insert of a storm maintains each index.
        sa.Index("ix_tickets_resolved_at", "resolved_at", sqlite_where=_RESOLVED, postgresql_where=_RESOLVED),
        sa.Index(
            "uq_tickets_schedule_id_problem_key",
            "schedule_id",
            "problem_key",
            unique=True,
            sqlite_where=_PLANNED,
            postgresql_where=_PLANNED,
        ),
        sa.CheckConstraint("parts_cost_vnd >= 0", name="parts_cost_not_negative"),
        sa.CheckConstraint("labour_cost_vnd >= 0", name="labour_cost_not_negative"),
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, max_length=32)
    title: str = Field(max_length=200)
    description: str = Field(default="", sa_type=sa.Text)
    problem_key: str = Field(max_length=200)
    scope: str = Field(sa_type=sa.String(16))
    scope_code: str = Field(max_length=64)
    kind: str = Field(max_length=64, description="`offline`, a fault code, `report` or `inspection`")
    device_id: int | None = Field(
        default=None, sa_column_args=[sa.ForeignKey("devices.id", ondelete="SET NULL")], index=True
    )
    commune_code: str | None = Field(default=None, foreign_key="communes.code", index=True, max_length=16)
    # None for a province problem's ticket (a collector, Prometheus): the province operator's, no district's.
    district_code: str | None = Field(default=None, foreign_key="districts.code", max_length=16)
    priority: str = Field(sa_type=sa.String(2))
    source: str = Field(sa_type=sa.String(16))
    status: str = Field(sa_type=sa.String(16))
    assignee_id: int | None = Field(
        default=None, sa_column_args=[sa.ForeignKey("users.id", ondelete="SET NULL")], index=True
    )
    details: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    occurred_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_reported_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    acknowledged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reopened_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reopen_count: int = 0
    sla_started_at: datetime = Field(sa_type=UTCDateTime)
    ack_due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolve_due_at: datetime = Field(sa_type=UTCDateTime)
    sla_breached: bool = False
    breached_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    escalated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    paused_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    paused_seconds: int = Field(default=0, description="wall-clock seconds spent waiting, for reports")
    previous_ticket_id: int | None = Field(
        default=None, sa_column_args=[sa.ForeignKey("tickets.id", ondelete="SET NULL")]
    )
    schedule_id: int | None = Field(
        default=None, sa_column_args=[sa.ForeignKey("inspection_schedules.id", ondelete="SET NULL")]
    )
    auto_resolved: bool = False
    parts_cost_vnd: int = Field(default=0, sa_type=sa.BigInteger)
    labour_cost_vnd: int = Field(default=0, sa_type=sa.BigInteger)
    parts_replaced: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    search_text: str = Field(default="", sa_type=sa.Text)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    @property
    def total_cost_vnd(self) -> int:
        """Parts and labour together."""
        return self.parts_cost_vnd + self.labour_cost_vnd


class TicketPause(SQLModel, table=True):
    """A time a ticket spent waiting (parts, access, weather): its SLA clock does not count it.

    `ended_at` is None while the ticket still waits. Kept as intervals, not a running total, because
    in working hours a pause's worth depends on when it happened (a night costs nothing anyway).
    """

    __tablename__ = "ticket_pauses"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(sa_column_args=[sa.ForeignKey("tickets.id", ondelete="CASCADE")], index=True)
    started_at: datetime = Field(sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reason: str = Field(default="", max_length=500)


class TicketEvent(SQLModel, table=True):
    """One entry of a ticket's history, append-only: who (None for the system) changed what, when.

    `from_value` and `to_value` hold the values before and after as text (a status, a user id, a
    priority, a due time in ISO 8601, a cost); `note` the words people wrote or the system's reason.
    """

    __tablename__ = "ticket_events"
    __table_args__ = (sa.Index("ix_ticket_events_ticket_id_id", "ticket_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(sa_column_args=[sa.ForeignKey("tickets.id", ondelete="CASCADE")])
    at: datetime = Field(sa_type=UTCDateTime)
    actor_user_id: int | None = Field(default=None, sa_column_args=[sa.ForeignKey("users.id", ondelete="SET NULL")])
    kind: str = Field(sa_type=sa.String(24))
    from_value: str | None = Field(default=None, max_length=200)
    to_value: str | None = Field(default=None, max_length=200)
    note: str = Field(default="", sa_type=sa.Text)


class TicketAttachment(SQLModel, table=True):
    """A photo attached to a ticket, stored as a file under the data folder (`path` is relative to it)."""

    __tablename__ = "ticket_attachments"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(sa_column_args=[sa.ForeignKey("tickets.id", ondelete="CASCADE")], index=True)
    path: str = Field(max_length=300)
    original_filename: str = Field(max_length=200)
    content_type: str = Field(max_length=64)
    size_bytes: int
    sha256: str = Field(max_length=64)
    uploaded_by: int | None = Field(default=None, sa_column_args=[sa.ForeignKey("users.id", ondelete="SET NULL")])
    uploaded_at: datetime = Field(sa_type=UTCDateTime)
