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
not committed, and may be rolled back): only reading requests use them.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from dataclasses import dataclass

import anyio.to_thread
import psycopg
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


_READ = sa.text("SELECT tickets, people, places FROM data_generations WHERE id = 1")


def read_generations(engine: Engine) -> Generations:
    """The generations now: one primary-key read on a connection of its own, outside any transaction (no
    BEGIN, no ROLLBACK: a request whose answer is kept needs nothing else of the database)."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        tickets, people, places = connection.execute(_READ).one()
    return Generations(tickets, people, places)


class GenerationsReader:
    """Reads the generations for the requests of one web process without a worker thread, where it can.

    A request whose answer is kept needs nothing else of the database, so on PostgreSQL it is served without
    leaving the event loop: the read goes over one connection of this process's own, asynchronous (psycopg's
    AsyncConnection, autocommit), which the event loop's requests share one statement at a time (a primary-key
    read: well under a millisecond). No worker thread to wake and no interpreter lock to hand over twice:
    bench/bench_api_pg.py measured 1,070 req/s for the kept queue with the read in a thread, about 1,400 without.

    SQLite reads on the event loop too, over a connection of its own (so never waiting for the pool), with no
    busy timeout: in WAL mode a reader does not wait for writers, and in the rare case it would (the file being
    recovered), the read fails at once and is made again in a worker thread, as every other database call of
    the web is. An SQLite database in memory (a test's) is read in a worker thread.

    A failure (the database down or restarting, an answer slower than `timeout_s`) closes the connection, so
    the next request connects again, and is raised as SQLAlchemy's OperationalError: the web answers it with the
    same 503 and the same outage report as any route's (monitor/web/problems.py).
    """

    def __init__(self, engine: Engine, timeout_s: float) -> None:
        self.engine = engine
        self.timeout_s = timeout_s
        self._url: str | None = None
        self._sqlite_path: str | None = None
        self._sqlite: sqlite3.Connection | None = None
        if engine.dialect.name == "postgresql":
            self._url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        elif engine.url.database and engine.url.database != ":memory:" and not engine.url.database.startswith("file:"):
            self._sqlite_path = engine.url.database
        self._connection: psycopg.AsyncConnection[tuple[int, int, int]] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def read(self) -> Generations:
        """The generations now."""
        if self._url is None:
            now = self._read_sqlite_now() if self._sqlite_path is not None else None
            if now is not None:
                return now
            read: Generations = await anyio.to_thread.run_sync(read_generations, self.engine)
            return read
        try:
            async with asyncio.timeout(self.timeout_s):
                connection = await self._connected()
                cursor = await connection.execute(_READ.text)
                row = await cursor.fetchone()
        except (psycopg.Error, TimeoutError, OSError) as exc:
            self.close()
            raise sa.exc.OperationalError(_READ.text, None, exc) from exc
        if row is None:
            raise sa.exc.OperationalError(_READ.text, None, LookupError("no data generations row"))
        return Generations(*row)

    def _read_sqlite_now(self) -> Generations | None:
        """The generations, or None if SQLite cannot answer this instant (busy, or anything else: the thread's
        read then answers, or fails as any route's would)."""
        try:
            if self._sqlite is None:
                self._sqlite = sqlite3.connect(self._sqlite_path or "", timeout=0, check_same_thread=False)
            row = self._sqlite.execute(_READ.text).fetchone()
        except sqlite3.Error:
            self._close_sqlite()
            return None
        return Generations(*row) if row is not None else None

    def _close_sqlite(self) -> None:
        connection, self._sqlite = self._sqlite, None
        if connection is not None:
            with contextlib.suppress(sqlite3.Error):
                connection.close()

    async def _connected(self) -> psycopg.AsyncConnection[tuple[int, int, int]]:
        loop = asyncio.get_running_loop()
        if self._connection is not None and (self._loop is not loop or self._connection.closed):
            self.close()  # made on another event loop (a test's earlier client), or lost
        if self._connection is None:
            assert self._url is not None
            self._connection = await psycopg.AsyncConnection.connect(self._url, autocommit=True)
            self._loop = loop
        return self._connection

    def close(self) -> None:
        """Close the connections now, from any thread or loop (they are made again when needed)."""
        self._close_sqlite()
        connection, self._connection, self._loop = self._connection, None, None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.pgconn.finish()
