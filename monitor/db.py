"""Database engine, sessions and migrations (SQLModel on SQLite or PostgreSQL, Alembic).

SQLite is the default and the demo's database: WAL mode so readers never wait for the writer, a busy
timeout so concurrent writers wait instead of failing, foreign keys enforced. PostgreSQL is for
production and for several processes sharing work.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, SQLModel

from monitor.config import Settings
from monitor.errors import DatabaseNotMigrated

# Named constraints, so that migrations can alter them on SQLite (batch mode) and PostgreSQL alike.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back time-zone aware.

    SQLite keeps no zone; PostgreSQL's timestamptz does. Naive values are refused on the way in so
    that a local time can never be stored by mistake.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"refusing a naive datetime {value!r}: store UTC-aware times")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """Now, in UTC, time-zone aware."""
    return datetime.now(UTC)


def _on_sqlite_connect(busy_timeout_ms: int) -> Any:
    def configure(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA mmap_size=268435456")
        cursor.close()

    return configure


def make_engine(settings: Settings) -> Engine:
    """The engine for the configured database; creates the data directory for SQLite."""
    url = sa.make_url(settings.effective_database_url)
    if url.get_backend_name() == "sqlite":
        pool: dict[str, Any] = {}
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
            pool = {"pool_size": settings.database_pool_size, "pool_timeout": settings.database_pool_timeout_s}
        engine = sa.create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": settings.sqlite_busy_timeout_ms / 1000},
            **pool,
        )
        sa.event.listen(engine, "connect", _on_sqlite_connect(settings.sqlite_busy_timeout_ms))
        return engine
    # A request waits at most pool_timeout for a connection, then answers 503 (web/problems.py).
    return sa.create_engine(
        url, pool_size=settings.database_pool_size, pool_timeout=settings.database_pool_timeout_s, pool_pre_ping=True
    )


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def begin_write(connection: Connection) -> None:
    """Make the current transaction a writer now, so that what it reads stays true until it commits.

    PostgreSQL locks rows as they are read (`FOR UPDATE`), so nothing is needed there. The pysqlite
    driver starts a transaction only at the first write, so reads before it may be stale by then:
    `BEGIN IMMEDIATE` takes SQLite's write lock up front (waiting up to the busy timeout).
    """
    if connection.dialect.name != "sqlite":
        return
    driver_connection: Any = connection.connection.driver_connection
    if not driver_connection.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def begin_exclusive(connection: Connection, lock_key: int) -> None:
    """Make the current transaction the only one holding `lock_key` until it ends: a writer now on SQLite
    (`begin_write`: one writer at a time already), a transaction-level advisory lock on PostgreSQL.

    For work that reads, then inserts what it did not find (a webhook delivery, a watch of the collectors'
    pool): two processes doing it at once would both insert."""
    begin_write(connection)
    if connection.dialect.name == "postgresql":
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(lock_key)))


# --- migrations ---------------------------------------------------------------------------------


def alembic_config(engine: Engine | None = None) -> AlembicConfig:
    """Alembic's configuration, pointing at the migrations shipped inside the package."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(files("monitor") / "migrations"))
    if engine is not None:
        config.attributes["engine"] = engine
    return config


def head_revision() -> str:
    """The revision the code expects."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migrations shipped"
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for a database never migrated."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` (default: the newest)."""
    command.upgrade(alembic_config(engine), revision)


def ensure_migrated(engine: Engine) -> None:
    """Refuse to go on unless the database is at the revision this code expects."""
    expected = head_revision()
    current = current_revision(engine)
    if current != expected:
        raise DatabaseNotMigrated(current, expected)
