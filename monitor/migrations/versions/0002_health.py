"""health: device_health, the state_changes outbox, device heartbeat tokens

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("token_hash", sa.String(64), nullable=True))

    op.create_table(
        "device_health",
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("faults", sa.JSON(), nullable=False),
        sa.Column("flapping", sa.Boolean(), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_observation_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(300), nullable=True),
        sa.Column("latency_s", sa.Float(), nullable=True),
        sa.Column("readings", sa.JSON(), nullable=False),
        sa.Column("silence_deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_device_health_device_id_devices"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("device_id", name=op.f("pk_device_health")),
    )
    op.create_index(op.f("ix_device_health_state"), "device_health", ["state"])
    op.create_index(op.f("ix_device_health_silence_deadline"), "device_health", ["silence_deadline"])

    op.create_table(
        "state_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("old_state", sa.String(16), nullable=False),
        sa.Column("new_state", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(300), nullable=False),
        sa.Column("faults", sa.JSON(), nullable=False),
        sa.Column("faults_added", sa.JSON(), nullable=False),
        sa.Column("faults_removed", sa.JSON(), nullable=False),
        sa.Column("flapping", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", sa.String(100), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_state_changes_device_id_devices"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_state_changes")),
    )
    op.create_index(op.f("ix_state_changes_device_id"), "state_changes", ["device_id"])
    op.create_index("ix_state_changes_pending", "state_changes", ["processed_at", "id"])


def downgrade() -> None:
    op.drop_table("state_changes")
    op.drop_table("device_health")
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("token_hash")
