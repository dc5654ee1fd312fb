"""sealed secrets: devices' SNMP credentials become TEXT on PostgreSQL, as a sealed token is longer than its secret

A credentials string of 500 characters seals to about 770 (`sealed:v1:` and a Fernet token). SQLite keeps
any length in its VARCHAR(500) and cannot change a column's type in place (recreating `devices` would
cascade-delete the rows that refer to it), so it is left as it is. Channel configs are JSON: nothing to widen.

Nothing is sealed here (a migration has no keys): values stored in clear are still read, and
`monitor secrets rotate` seals them. Downgrading refuses while a value is longer than 500 characters:
sealed values cannot be read by the code of revision 0011 anyway.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("devices", "credentials", type_=sa.Text(), existing_type=sa.String(500), existing_nullable=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("devices", "credentials", type_=sa.String(500), existing_type=sa.Text(), existing_nullable=True)
