"""data generations: one row of numbers the database moves forward with every change of tickets, people, places

A web process keeps answers (a queue, who a token belongs to) while their number is unchanged
(monitor/generations.py). Triggers move the numbers, so no path that writes can forget to:

- PostgreSQL: a deferred constraint trigger per row, run at commit; the function moves a number once per
  transaction (`*_by` holds the transaction that moved it), and TRUNCATE moves it too.
- SQLite: a trigger per table and per kind of change (SQLite has one writer at a time).

The numbers start at random values: a database made later (a test's, another deployment's) does not repeat
the numbers of another, which a process might still hold answers for.

SQLite's batch mode rebuilds a table (copy, drop, rename) and drops its triggers with the old one: a later
migration that alters one of the WATCHED tables below in batch mode must create their
triggers again (tests/test_generations.py fails at head if one is missing).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# The tables whose changes move each number (as monitor.generations.WATCHED at this revision).
WATCHED = {
    "tickets": ("tickets", "ticket_events", "ticket_attachments"),
    "people": ("users", "user_sessions", "api_tokens"),
    "places": ("districts", "communes"),
}

_PG_FUNCTION = """
CREATE FUNCTION bump_data_generation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_ARGV[0] = 'tickets' THEN
        UPDATE data_generations SET tickets = tickets + 1, tickets_by = txid_current()
         WHERE id = 1 AND tickets_by IS DISTINCT FROM txid_current();
    ELSIF TG_ARGV[0] = 'people' THEN
        UPDATE data_generations SET people = people + 1, people_by = txid_current()
         WHERE id = 1 AND people_by IS DISTINCT FROM txid_current();
    ELSE
        UPDATE data_generations SET places = places + 1, places_by = txid_current()
         WHERE id = 1 AND places_by IS DISTINCT FROM txid_current();
    END IF;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "data_generations",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("tickets", sa.BigInteger(), nullable=False),
        sa.Column("people", sa.BigInteger(), nullable=False),
        sa.Column("places", sa.BigInteger(), nullable=False),
        sa.Column("tickets_by", sa.BigInteger(), nullable=True),
        sa.Column("people_by", sa.BigInteger(), nullable=True),
        sa.Column("places_by", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_generations")),
    )
    op.execute(
        sa.text(
            "INSERT INTO data_generations (id, tickets, people, places) VALUES (1, :tickets, :people, :places)"
        ).bindparams(tickets=secrets.randbits(60), people=secrets.randbits(60), places=secrets.randbits(60))
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        for name, tables in WATCHED.items():
            for table in tables:
                op.execute(
                    f"CREATE CONSTRAINT TRIGGER {table}_generation AFTER INSERT OR UPDATE OR DELETE ON {table} "
                    f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_data_generation('{name}')"
                )
                op.execute(
                    f"CREATE TRIGGER {table}_generation_truncate AFTER TRUNCATE ON {table} "
                    f"FOR EACH STATEMENT EXECUTE FUNCTION bump_data_generation('{name}')"
                )
        return
    for name, tables in WATCHED.items():
        for table in tables:
            for change in ("INSERT", "UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_generation_{change.lower()} AFTER {change} ON {table} "
                    f"BEGIN UPDATE data_generations SET {name} = {name} + 1 WHERE id = 1; END"
                )


def downgrade() -> None:
    # IF EXISTS: SQLite's driver commits each DDL statement as it goes, so a downgrade that an older revision
    # then refused (0013 refuses while a province ticket exists) left the version here but these gone.
    postgres = op.get_bind().dialect.name == "postgresql"
    for tables in WATCHED.values():
        for table in tables:
            if postgres:
                op.execute(f"DROP TRIGGER IF EXISTS {table}_generation ON {table}")
                op.execute(f"DROP TRIGGER IF EXISTS {table}_generation_truncate ON {table}")
            else:
                for change in ("insert", "update", "delete"):
                    op.execute(f"DROP TRIGGER IF EXISTS {table}_generation_{change}")
    if postgres:
        op.execute("DROP FUNCTION IF EXISTS bump_data_generation()")
    op.execute("DROP TABLE IF EXISTS data_generations")
