"""tickets: tickets, their events, pauses and attachments, code counters, inspection schedules

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# The open-ticket predicate of the partial indexes: the same text as monitor.tickets.choices.OPEN_STATUS_SQL.
OPEN = "status NOT IN ('resolved', 'closed')"


def _partial() -> dict[str, Any]:
    return {"sqlite_where": sa.text(OPEN), "postgresql_where": sa.text(OPEN)}


def upgrade() -> None:
    op.create_table(
        "ticket_counters",
        sa.Column("prefix", sa.String(8), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("last_number", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("prefix", "year", name=op.f("pk_ticket_counters")),
    )

    op.create_table(
        "inspection_schedules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("district_code", sa.String(16), nullable=True),
        sa.Column("commune_code", sa.String(16), nullable=True),
        sa.Column("device_kind", sa.String(32), nullable=True),
        sa.Column("per", sa.String(16), nullable=False),
        sa.Column("every_months", sa.Integer(), nullable=True),
        sa.Column("every_days", sa.Integer(), nullable=True),
        sa.Column("first_due_on", sa.Date(), nullable=False),
        sa.Column("next_due_on", sa.Date(), nullable=False),
        sa.Column("occurrence", sa.Integer(), nullable=False),
        sa.Column("lead_days", sa.Integer(), nullable=False),
        sa.Column("priority", sa.String(2), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(every_months IS NULL) <> (every_days IS NULL)", name=op.f("ck_inspection_schedules_one_interval")
        ),
        sa.CheckConstraint(
            "COALESCE(every_months, every_days) > 0", name=op.f("ck_inspection_schedules_interval_positive")
        ),
        sa.CheckConstraint("lead_days >= 0", name=op.f("ck_inspection_schedules_lead_days_not_negative")),
        sa.ForeignKeyConstraint(
            ["commune_code"], ["communes.code"], name=op.f("fk_inspection_schedules_commune_code_communes")
        ),
        sa.ForeignKeyConstraint(
            ["district_code"], ["districts.code"], name=op.f("fk_inspection_schedules_district_code_districts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspection_schedules")),
    )

    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("problem_key", sa.String(200), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("scope_code", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=True),
        sa.Column("commune_code", sa.String(16), nullable=True),
        sa.Column("district_code", sa.String(16), nullable=False),
        sa.Column("priority", sa.String(2), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reopened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reopen_count", sa.Integer(), nullable=False),
        sa.Column("sla_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ack_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolve_due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sla_breached", sa.Boolean(), nullable=False),
        sa.Column("breached_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paused_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paused_seconds", sa.Integer(), nullable=False),
        sa.Column("previous_ticket_id", sa.Integer(), nullable=True),
        sa.Column("schedule_id", sa.Integer(), nullable=True),
        sa.Column("auto_resolved", sa.Boolean(), nullable=False),
        sa.Column("parts_cost_vnd", sa.BigInteger(), nullable=False),
        sa.Column("labour_cost_vnd", sa.BigInteger(), nullable=False),
        sa.Column("parts_replaced", sa.JSON(), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("labour_cost_vnd >= 0", name=op.f("ck_tickets_labour_cost_not_negative")),
        sa.CheckConstraint("parts_cost_vnd >= 0", name=op.f("ck_tickets_parts_cost_not_negative")),
        sa.ForeignKeyConstraint(
            ["assignee_id"], ["users.id"], name=op.f("fk_tickets_assignee_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(["commune_code"], ["communes.code"], name=op.f("fk_tickets_commune_code_communes")),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_tickets_device_id_devices"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(["district_code"], ["districts.code"], name=op.f("fk_tickets_district_code_districts")),
        sa.ForeignKeyConstraint(
            ["previous_ticket_id"],
            ["tickets.id"],
            name=op.f("fk_tickets_previous_ticket_id_tickets"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["inspection_schedules.id"],
            name=op.f("fk_tickets_schedule_id_inspection_schedules"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tickets")),
        sa.UniqueConstraint("code", name=op.f("uq_tickets_code")),
    )
    # At most one open ticket per problem: the guarantee concurrent writers rely on.
    op.create_index("uq_tickets_open_problem_key", "tickets", ["problem_key"], unique=True, **_partial())
    op.create_index("ix_tickets_problem_key_id", "tickets", ["problem_key", "id"])
    # The queue: a district's (or the province's) open tickets by due time, then one status at a time.
    op.create_index("ix_tickets_open_district_due", "tickets", ["district_code", "resolve_due_at", "id"], **_partial())
    op.create_index("ix_tickets_open_due", "tickets", ["resolve_due_at", "id"], **_partial())
    op.create_index("ix_tickets_district_status_due", "tickets", ["district_code", "status", "resolve_due_at", "id"])
    # Small partial indexes where few rows matter: every insert of a storm maintains each index.
    op.create_index(
        "uq_tickets_schedule_id_problem_key",
        "tickets",
        ["schedule_id", "problem_key"],
        unique=True,
        sqlite_where=sa.text("schedule_id IS NOT NULL"),
        postgresql_where=sa.text("schedule_id IS NOT NULL"),
    )
    op.create_index(
        "ix_tickets_resolved_at",
        "tickets",
        ["resolved_at"],
        sqlite_where=sa.text("status = 'resolved'"),
        postgresql_where=sa.text("status = 'resolved'"),
    )
    op.create_index(op.f("ix_tickets_assignee_id"), "tickets", ["assignee_id"])
    op.create_index(op.f("ix_tickets_commune_code"), "tickets", ["commune_code"])
    op.create_index(op.f("ix_tickets_device_id"), "tickets", ["device_id"])

    op.create_table(
        "ticket_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_user_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("from_value", sa.String(200), nullable=True),
        sa.Column("to_value", sa.String(200), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_user_id"], ["users.id"], name=op.f("fk_ticket_events_actor_user_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_ticket_events_ticket_id_tickets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_events")),
    )
    op.create_index("ix_ticket_events_ticket_id_id", "ticket_events", ["ticket_id", "id"])

    op.create_table(
        "ticket_pauses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_ticket_pauses_ticket_id_tickets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_pauses")),
    )
    op.create_index(op.f("ix_ticket_pauses_ticket_id"), "ticket_pauses", ["ticket_id"])

    op.create_table(
        "ticket_attachments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(300), nullable=False),
        sa.Column("original_filename", sa.String(200), nullable=False),
        sa.Column("content_type", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("uploaded_by", sa.Integer(), nullable=True),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_ticket_attachments_ticket_id_tickets"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["uploaded_by"], ["users.id"], name=op.f("fk_ticket_attachments_uploaded_by_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_attachments")),
    )
    op.create_index(op.f("ix_ticket_attachments_ticket_id"), "ticket_attachments", ["ticket_id"])


def downgrade() -> None:
    op.drop_table("ticket_attachments")
    op.drop_table("ticket_pauses")
    op.drop_table("ticket_events")
    op.drop_table("tickets")
    op.drop_table("inspection_schedules")
    op.drop_table("ticket_counters")
