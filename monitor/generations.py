"""Data generations: a number the database moves forward in the same transaction as every change of a set of tables.

A web process keeps answers it made (a district's ticket queue, who a session token belongs to) and gives them
again while the data they were made from is unchanged; it knows "unchanged" by reading one row, the
generations, at the start of the request. The numbers are moved by triggers in the database itself
(migration 0014), not by the code that writes: no path that writes a ticket (a transition, the SLA sweep,
the problem engine, a bulk action, a script with plain SQL) can forget to.

- `tickets`: any row of `tickets` inserted, changed or deleted, or of their history (`ticket_events`) and
  photos (`ticket_attachments`).
- `people`: any row of `users`, `user_sessions` or `api_tokens` (a sign-in, a sign-out, a user disabled, a
  token revoked or used).
- `places`: any row of `districts` or `communes` (their names, a fleet import).

On PostgreSQL the trigger runs when the transaction commits (a deferred constraint trigger) and moves a number
once per transaction, so a transaction holds the generations' row lock only while it commits: two writers never
wait for each other's tickets while holding it (no deadlock), and a bulk change of 200 tickets writes the row
once. On SQLite, which has one writer at a time, a plain trigger per row does.

Why it is safe to keep an answer under the generation read *before* the data: the number and the rows change
in the same commit, so a reader that saw generation G saw no change committed after G; the data it then reads
is G's or newer, and an answer kept under G is given only to readers that read G too. The numbers start at a
random value (migration 0014), so two databases (a test's, a restored copy's) do not share a sequence.

A request that wrote tickets must not read through a kept answer in the same transaction (its own changes are
not committed, and may be rolled back): only reading requests use them. The web reads the generations for its
requests without a worker thread (monitor.web.answers.GenerationsReader).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Field, SQLModel

# Which tables move which number (migration 0014 installs the triggers; tests/test_generations.py checks that
# every table listed here moves its number on both databases).
WATCHED: dict[str, tuple[str, ...]] = {
    "tickets": ("tickets", "ticket_events", "ticket_attachments"),
    "people": ("users", "user_sessions", "api_tokens"),
    "places": ("districts", "communes"),
}


class DataGenerations(SQLModel, table=True):
    """The one row of generations. `*_by`: the PostgreSQL transaction that last moved the number (once each)."""

    __tablename__ = "data_generations"

    id: int = Field(default=1, primary_key=True)
    tickets: int = Field(sa_type=sa.BigInteger)
    people: int = Field(sa_type=sa.BigInteger)
    places: int = Field(sa_type=sa.BigInteger)
    tickets_by: int | None = Field(default=None, sa_type=sa.BigInteger)
    people_by: int | None = Field(default=None, sa_type=sa.BigInteger)
    places_by: int | None = Field(default=None, sa_type=sa.BigInteger)


@dataclass(frozen=True, slots=True)
class Generations:
    """The generations read at one moment."""

    tickets: int
    people: int
    places: int


READ_GENERATIONS = sa.text("SELECT tickets, people, places FROM data_generations WHERE id = 1")


def read_generations(engine: Engine) -> Generations:
    """The generations now: one primary-key read on a connection of its own, outside any transaction (no
    BEGIN, no ROLLBACK: a request whose answer is kept needs nothing else of the database)."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        tickets, people, places = connection.execute(READ_GENERATIONS).one()
    return Generations(tickets, people, places)
