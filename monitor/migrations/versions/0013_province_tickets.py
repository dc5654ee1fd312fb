"""province tickets: a ticket's district may be NULL, for a problem of the province's service itself

A shard of the collectors' pool that nobody holds, or an Alertmanager alert about a collector or Prometheus,
is no district's problem: its ticket belongs to the province operator and has no district.

PostgreSQL drops the NOT NULL in place. SQLite cannot, so batch mode rebuilds `tickets` (a copy, then the old
table dropped and the copy renamed), its partial indexes and CHECK constraints with it; the environment
(monitor/migrations/env.py) runs SQLite's migrations with foreign keys off, or dropping the old table would
cascade-delete every ticket's events, pauses and attachments.

Downgrading refuses while a ticket has no district: the code of revision 0012 cannot show or route one.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.alter_column("district_code", existing_type=sa.String(16), nullable=True)


def downgrade() -> None:
    province = op.get_bind().execute(sa.text("SELECT count(*) FROM tickets WHERE district_code IS NULL")).scalar()
    if province:
        raise RuntimeError(
            f"{province} tickets belong to the province (no district): revision 0012 cannot hold them; "
            "delete them or keep this revision"
        )
    with op.batch_alter_table("tickets") as batch:
        batch.alter_column("district_code", existing_type=sa.String(16), nullable=False)
