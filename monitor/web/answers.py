"""Answers a web process keeps and gives again while the data they were made from has not changed.

An officer's queue is asked for all day, by every person of the district and by every open page that
refreshes itself, and changes a few times an hour. Each kept answer is stored under the data generation it was
made at (monitor.generations): a request reads the generations once, and an answer kept under the same number
is still exact. Nothing is ever given after its data changed, and nothing expires by age, so there is no
stale window to tune.

Bounded: at most `max_bytes` of answers, the least recently used dropped first. One store per application
(app.state), shared by its threads under a lock. `GenerationsReader` reads the generations for a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

import anyio.to_thread
import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitor.generations import READ_GENERATIONS, Generations, read_generations

Value = TypeVar("Value")

DEFAULT_MAX_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class _Kept(Generic[Value]):
    generation: Hashable
    value: Value
    size: int


class KeptAnswers(Generic[Value]):
    """Values by key, each given only at the data generation it was made at; the least recently used beyond
    `max_bytes` go."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, _Kept[Value]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, generation: Hashable) -> Value | None:
        """The value kept for `key` at exactly `generation`, or None."""
        with self._lock:
            kept = self._entries.get(key)
            if kept is None or kept.generation != generation:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return kept.value

    def put(self, key: Hashable, generation: Hashable, value: Value, size: int) -> None:
        """Keep `value` (about `size` bytes) for `key` at `generation` (a number, or a tuple of them), in place
        of what was kept for `key`. A slower request that read older numbers may replace a newer answer: the
        next request made at the newer numbers then makes it again, nothing is given that is not exact."""
        if size > self.max_bytes:
            return
        with self._lock:
            kept = self._entries.get(key)
            if kept is not None:
                self._bytes -= kept.size
            self._entries[key] = _Kept(generation, value, size)
            self._entries.move_to_end(key)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= dropped.size

    def get_or_make(
        self, key: Hashable, generation: Hashable, make: Callable[[], Value], size: Callable[[Value], int]
    ) -> Value:
        """The value kept for `key` at `generation`; else `make()`'s, kept (`size(value)` bytes)."""
        value = self.get(key, generation)
        if value is None:
            value = make()
            self.put(key, generation, value, size(value))
        return value

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size(self) -> int:
        """Bytes kept."""
        return self._bytes


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
                cursor = await connection.execute(READ_GENERATIONS.text)
                row = await cursor.fetchone()
        except (psycopg.Error, TimeoutError, OSError) as exc:
            self.close()
            raise sa.exc.OperationalError(READ_GENERATIONS.text, None, exc) from exc
        if row is None:
            raise sa.exc.OperationalError(READ_GENERATIONS.text, None, LookupError("no data generations row"))
        return Generations(*row)

    def _read_sqlite_now(self) -> Generations | None:
        """The generations, or None if SQLite cannot answer this instant (busy, or anything else: the thread's
        read then answers, or fails as any route's would)."""
        try:
            if self._sqlite is None:
                self._sqlite = sqlite3.connect(self._sqlite_path or "", timeout=0, check_same_thread=False)
            row = self._sqlite.execute(READ_GENERATIONS.text).fetchone()
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
