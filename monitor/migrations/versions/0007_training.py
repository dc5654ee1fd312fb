"""training: the register of training sessions and their attendees

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "training_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("held_on", sa.Date(), nullable=False),
        sa.Column("district_code", sa.String(16), nullable=False),
        sa.Column("topic", sa.String(300), nullable=False),
        sa.Column("organiser", sa.String(200), nullable=False),
        sa.Column("hours", sa.Float(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("hours > 0 AND hours <= 200", name=op.f("ck_training_sessions_hours_range")),
        sa.ForeignKeyConstraint(
            ["district_code"], ["districts.code"], name=op.f("fk_training_sessions_district_code_districts")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_training_sessions_created_by_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_training_sessions")),
    )
    op.create_index(op.f("ix_training_sessions_held_on"), "training_sessions", ["held_on"])
    op.create_index(op.f("ix_training_sessions_district_code"), "training_sessions", ["district_code"])
    op.create_table(
        "training_attendees",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("commune_code", sa.String(16), nullable=False),
        sa.Column("role", sa.String(24), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["training_sessions.id"],
            name=op.f("fk_training_attendees_session_id_training_sessions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["commune_code"], ["communes.code"], name=op.f("fk_training_attendees_commune_code_communes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_training_attendees")),
    )
    op.create_index(op.f("ix_training_attendees_session_id"), "training_attendees", ["session_id"])
    op.create_index(op.f("ix_training_attendees_commune_code"), "training_attendees", ["commune_code"])


def downgrade() -> None:
    op.drop_table("training_attendees")
    op.drop_table("training_sessions")
