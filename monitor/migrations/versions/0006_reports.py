"""reports: state spans laid from the state changes, daily uptime roll-ups

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _where(predicate: str) -> dict[str, Any]:
    return {"sqlite_where": sa.text(predicate), "postgresql_where": sa.text(predicate)}


def upgrade() -> None:
    with op.batch_alter_table("state_changes") as batch:
        batch.add_column(sa.Column("spanned_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_state_changes_unspanned", "state_changes", ["id"], **_where("spanned_at IS NULL"))

    op.create_table(
        "state_spans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_state_spans_device_id_devices"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_state_spans")),
    )
    op.create_index(
        "uq_state_spans_open_device", "state_spans", ["device_id"], unique=True, **_where("ended_at IS NULL")
    )
    op.create_index("ix_state_spans_device_started", "state_spans", ["device_id", "started_at"])
    op.create_index("ix_state_spans_ended_started", "state_spans", ["ended_at", "started_at"])
    op.create_index("ix_state_spans_state_started", "state_spans", ["state", "started_at"])

    op.create_table(
        "uptime_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("commune_code", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("up_s", sa.Float(), nullable=False),
        sa.Column("degraded_s", sa.Float(), nullable=False),
        sa.Column("down_s", sa.Float(), nullable=False),
        sa.Column("unknown_s", sa.Float(), nullable=False),
        sa.Column("maintenance_s", sa.Float(), nullable=False),
        sa.Column("devices", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "commune_code", "kind", name=op.f("pk_uptime_daily")),
    )
    op.create_table(
        "uptime_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("rolled_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_uptime_days")),
    )


def downgrade() -> None:
    op.drop_table("uptime_days")
    op.drop_table("uptime_daily")
    op.drop_table("state_spans")
    op.drop_index("ix_state_changes_unspanned", table_name="state_changes")
    with op.batch_alter_table("state_changes") as batch:
        batch.drop_column("spanned_at")
