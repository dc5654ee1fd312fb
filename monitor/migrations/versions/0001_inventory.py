"""inventory: districts, communes, their broadcast systems, devices

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "districts",
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("search_text", sa.String(400), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_districts")),
    )
    op.create_table(
        "communes",
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("district_code", sa.String(16), nullable=False),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("search_text", sa.String(400), nullable=False),
        sa.ForeignKeyConstraint(
            ["district_code"], ["districts.code"], name=op.f("fk_communes_district_code_districts")
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_communes")),
    )
    op.create_index(op.f("ix_communes_district_code"), "communes", ["district_code"])

    op.create_table(
        "broadcast_systems",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("commune_code", sa.String(16), nullable=False),
        sa.Column("technology", sa.String(16), nullable=False),
        sa.Column("condition", sa.String(16), nullable=False),
        sa.Column("installed_year", sa.Integer(), nullable=True),
        sa.Column("note", sa.String(500), nullable=False),
        sa.ForeignKeyConstraint(
            ["commune_code"], ["communes.code"], name=op.f("fk_broadcast_systems_commune_code_communes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcast_systems")),
    )
    op.create_index(op.f("ix_broadcast_systems_commune_code"), "broadcast_systems", ["commune_code"])

    op.create_table(
        "devices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("commune_code", sa.String(16), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("vendor", sa.String(100), nullable=False),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("profile", sa.String(100), nullable=False),
        sa.Column("protocol", sa.String(16), nullable=False),
        sa.Column("address", sa.String(500), nullable=False),
        sa.Column("port", sa.Integer(), nullable=True),
        sa.Column("credentials", sa.String(500), nullable=True),
        sa.Column("interval_s", sa.Integer(), nullable=False),
        sa.Column("installed_on", sa.Date(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("search_text", sa.String(800), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("interval_s > 0", name=op.f("ck_devices_interval_positive")),
        sa.CheckConstraint("parent_id IS NULL OR parent_id <> id", name=op.f("ck_devices_not_own_parent")),
        sa.CheckConstraint("port IS NULL OR (port > 0 AND port < 65536)", name=op.f("ck_devices_port_range")),
        sa.ForeignKeyConstraint(["commune_code"], ["communes.code"], name=op.f("fk_devices_commune_code_communes")),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["devices.id"], name=op.f("fk_devices_parent_id_devices"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_devices")),
        sa.UniqueConstraint("code", name=op.f("uq_devices_code")),
    )
    op.create_index(op.f("ix_devices_commune_code"), "devices", ["commune_code"])
    op.create_index(op.f("ix_devices_kind"), "devices", ["kind"])
    op.create_index(op.f("ix_devices_parent_id"), "devices", ["parent_id"])


def downgrade() -> None:
    op.drop_table("devices")
    op.drop_table("broadcast_systems")
    op.drop_table("communes")
    op.drop_table("districts")
