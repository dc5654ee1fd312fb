"""`monitor db backup` and `monitor db restore`: a copy taken while the service writes restores whole, where it may.

Each backend runs for real: SQLite's online backup API between the steps of which commits land, and
pg_dump/pg_restore against the session's PostgreSQL server. A writer thread does what the service does
to tickets: each transaction records a ticket (its number taken from the counter, its `created` event)
and a comment on it, so a torn copy would show a ticket without its comment or a counter ahead of its
tickets.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

import monitor.backup
from monitor.backup import BackupError, BackupKind, Standing, backup_database, backup_kind, restore_database
from monitor.cli import app
from monitor.config import Settings, load_settings
from monitor.db import alembic_config, current_revision, head_revision, make_engine, session_scope, upgrade, utcnow
from monitor.inventory.units import init_province, load_units
from monitor.tickets import service
from monitor.tickets.schemas import TicketCreate
from tests.conftest import TEST_SECRET
from tests.postgres import PostgresServer
from tests.test_tickets_support import DONG_DANG

POLICY = service.TicketPolicy()


# --- the service writing ----------------------------------------------------------------------------


class TicketWriter:
    """A thread that keeps writing as the service does: per transaction, one new ticket and a comment on it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.committed = 0
        self.failures: list[BaseException] = []
        self._stop = threading.Event()
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="ticket-writer", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with session_scope(self.engine) as session:
                    now = utcnow()
                    report = TicketCreate(title=f"Cụm loa im lặng {self.committed}", commune_code=DONG_DANG)
                    ticket = service.create_manual_ticket(report, actor=None, session=session, now=now, policy=POLICY)
                    service.add_comment(ticket.code, "đã gọi xã", actor=None, session=session, now=now)
            except BaseException as exc:  # the test reports it; a writer must never fail silently
                self.failures.append(exc)
                return
            with self._changed:
                self.committed += 1
                self._changed.notify_all()
            time.sleep(0.002)

    def wait_for_more_than(self, count: int, timeout: float = 10.0) -> None:
        """Return once more than `count` transactions have committed."""
        with self._changed:
            assert self._changed.wait_for(lambda: self.committed > count or bool(self.failures), timeout)
        assert not self.failures, self.failures

    def __enter__(self) -> TicketWriter:
        self._thread.start()
        self.wait_for_more_than(2)
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        assert not self.failures, self.failures


def assert_whole(engine: Engine, at_least: int, at_most: int) -> int:
    """The restored tickets are those of one moment: each with its events, the counter at the last; returns how many."""
    with engine.connect() as c:
        tickets = c.execute(sa.text("SELECT count(*) FROM tickets")).scalar_one()
        counted = c.execute(sa.text("SELECT coalesce(sum(last_number), 0) FROM ticket_counters")).scalar_one()
        kinds = {kind: n for kind, n in c.execute(sa.text("SELECT kind, count(*) FROM ticket_events GROUP BY kind"))}
        orphans = c.execute(
            sa.text("SELECT count(*) FROM ticket_events e LEFT JOIN tickets t ON t.id = e.ticket_id WHERE t.id IS NULL")
        ).scalar_one()
        if c.dialect.name == "sqlite":
            assert c.exec_driver_sql("PRAGMA integrity_check").scalars().all() == ["ok"]
            assert c.exec_driver_sql("PRAGMA foreign_key_check").all() == []
    assert at_least <= tickets <= at_most
    assert counted == tickets, "the ticket counter and the tickets come from different moments"
    assert kinds == {"created": tickets, "comment": tickets}, "a ticket lost its events, or events their ticket"
    assert orphans == 0
    return int(tickets)


# --- databases ----------------------------------------------------------------------------------------


def _url_of(settings: Settings) -> str:
    return settings.effective_database_url


def _province(settings: Settings) -> Engine:
    engine = make_engine(settings)
    with session_scope(engine) as session:
        init_province(session, load_units("lang-son", "2020"))
    return engine


@pytest.fixture
def source(settings: Settings) -> Iterator[Engine]:
    """The live database (SQLite and PostgreSQL): migrated, holding the province."""
    engine = _province(settings)
    yield engine
    engine.dispose()


def _empty_database(backend: str, request: pytest.FixtureRequest, folder: Path) -> str:
    """A URL of a database that does not exist yet (SQLite) or holds nothing (PostgreSQL)."""
    if backend == "sqlite":
        return f"sqlite:///{folder / uuid.uuid4().hex[:8] / 'monitor.db'}"
    server: PostgresServer = request.getfixturevalue("pg_server")
    name = f"empty_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return server.url(name)


@pytest.fixture
def empty_url(source: Engine, request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """Makes URLs of empty databases of the source's backend."""
    return lambda: _empty_database(source.url.get_backend_name(), request, tmp_path)


def _engine(url: str) -> Engine:
    return make_engine(load_settings(database_url=url))


def _tables(url: str) -> list[str]:
    engine = _engine(url)
    try:
        return sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def _cli(url: str, *args: str) -> Any:
    """`monitor ARGS` in this process against the database at `url`."""
    env = {"MONITOR_DATABASE_URL": url, "MONITOR_SECRET_KEY": TEST_SECRET}
    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


def _monitor(url: str, *args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    """`monitor ARGS` as its own process, as an operator (or cron) runs it beside the service."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env |= {"MONITOR_DATABASE_URL": url, "MONITOR_DATA_DIR": str(data_dir), "MONITOR_SECRET_KEY": TEST_SECRET}
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


# --- round trips while the service writes ---------------------------------------------------------


def test_a_sqlite_backup_copies_one_snapshot_while_commits_land_between_its_steps(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    engine = _province(sqlite_settings)
    steps: list[tuple[int, int]] = []
    with TicketWriter(engine) as writer:
        before = writer.committed

        def between_steps(remaining: int, total: int) -> None:
            if len(steps) < 5:  # commits land while the copy is half-way, again and again
                writer.wait_for_more_than(writer.committed)
            steps.append((remaining, total))

        report = backup_database(engine, tmp_path / "monitor.backup", pages_per_step=4, on_step=between_steps)
        after = writer.committed
    engine.dispose()

    assert after >= before + 5 and steps[-1][0] == 0
    pages = steps[0][1]
    assert len(steps) == -(-pages // 4), "a commit restarted the copy: it did not read one snapshot"
    assert report.kind is BackupKind.SQLITE and report.revision == head_revision()
    assert report.size_bytes == (tmp_path / "monitor.backup").stat().st_size
    assert not list(tmp_path.glob(".monitor.backup.*")), "no partial file is left beside the backup"
    restored_url = f"sqlite:///{tmp_path / 'restored' / 'monitor.db'}"
    restored = _engine(restored_url)
    result = restore_database(restored, tmp_path / "monitor.backup")
    assert (result.standing, result.revision) == (Standing.CURRENT, head_revision())
    assert_whole(restored, before, after)
    restored.dispose()


def test_a_backup_by_the_cli_while_the_service_writes_restores_whole_and_the_service_reads_it(
    source: Engine, settings: Settings, empty_url: Any, tmp_path: Path
) -> None:
    backup_file = tmp_path / "backups" / "monitor-2026-03-10.backup"
    backup_file.parent.mkdir()
    with TicketWriter(source) as writer:
        before = writer.committed
        done = _monitor(_url_of(settings), "db", "backup", str(backup_file), data_dir=tmp_path)
        after = writer.committed
        writer.wait_for_more_than(after)  # the service went on writing, undisturbed
    assert done.returncode == 0, done.stderr
    assert f"schema revision {head_revision()}" in done.stdout
    if source.dialect.name == "postgresql":
        assert "wraps pg_dump 15" in done.stdout
        assert backup_kind(backup_file) is BackupKind.PG_ARCHIVE
    else:
        assert backup_kind(backup_file) is BackupKind.SQLITE

    target = empty_url()
    restored = _cli(target, "db", "restore", str(backup_file))
    assert restored.exit_code == 0, restored.output
    assert f"schema revision {head_revision()}" in restored.output
    engine = _engine(target)
    tickets = assert_whole(engine, before, after)
    engine.dispose()

    status = _cli(target, "status")  # the service reads the restored database
    assert status.exit_code == 0, status.output
    assert status.output.splitlines()[-1].split()[-1] == str(tickets)  # every restored ticket is open
    assert _cli(target, "db", "current").exit_code == 0


# --- refusals ---------------------------------------------------------------------------------------


def test_a_restore_into_a_database_that_holds_the_service_is_refused_saying_how_to_start_empty(
    source: Engine, settings: Settings, tmp_path: Path
) -> None:
    backup_file = tmp_path / "monitor.backup"
    backup_database(source, backup_file)
    refused = _cli(_url_of(settings), "db", "restore", str(backup_file))
    assert refused.exit_code == 2
    assert "is not empty (it holds " in refused.output and "alembic_version" in refused.output
    how = "dropdb" if source.dialect.name == "postgresql" else "move the file aside"
    assert how in refused.output


def test_a_backup_of_a_newer_schema_than_the_code_is_refused_and_nothing_is_restored(
    source: Engine, empty_url: Any, tmp_path: Path
) -> None:
    with source.begin() as c:
        c.execute(sa.text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    backup_file = tmp_path / "monitor.backup"
    assert backup_database(source, backup_file).revision == "9999_from_the_future"
    target = empty_url()
    refused = _cli(target, "db", "restore", str(backup_file))
    assert refused.exit_code == 2
    assert "revision 9999_from_the_future, which this code does not know" in refused.output
    assert "the code is older than the data" in refused.output
    assert _tables(target) == []


def test_an_older_backup_is_restored_then_brought_up_by_db_upgrade_or_by_restore_upgrade(
    source: Engine, empty_url: Any, tmp_path: Path
) -> None:
    previous = ScriptDirectory.from_config(alembic_config()).get_revision(head_revision()).down_revision
    assert isinstance(previous, str)
    older_url = empty_url()
    older = _engine(older_url)
    upgrade(older, previous)
    backup_file = tmp_path / "older.backup"
    assert backup_database(older, backup_file).revision == previous
    older.dispose()

    plain = empty_url()
    restored = _cli(plain, "db", "restore", str(backup_file))
    assert restored.exit_code == 0, restored.output
    assert f"the backup is at revision {previous}, this code needs {head_revision()}" in restored.output
    assert "run `monitor db upgrade`" in restored.output
    assert _cli(plain, "db", "current").exit_code == 1
    assert _cli(plain, "db", "upgrade").exit_code == 0
    assert _cli(plain, "db", "current").exit_code == 0

    upgraded = empty_url()
    restored = _cli(upgraded, "db", "restore", "--upgrade", str(backup_file))
    assert restored.exit_code == 0, restored.output
    assert f"upgraded the schema: {previous} -> {head_revision()}" in restored.output
    engine = _engine(upgraded)
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_a_truncated_backup_is_refused_with_a_clear_message_and_nothing_is_restored(
    source: Engine, empty_url: Any, tmp_path: Path
) -> None:
    whole = tmp_path / "monitor.backup"
    backup_database(source, whole)
    cut = tmp_path / "cut.backup"
    cut.write_bytes(whole.read_bytes()[:-1000])
    target = empty_url()
    refused = _cli(target, "db", "restore", str(cut))
    assert refused.exit_code == 2
    if source.dialect.name == "postgresql":
        assert "is not a whole pg_dump archive (truncated or damaged?)" in refused.output
        assert "end of file" in refused.output
    else:
        assert "is truncated or damaged: its header says" in refused.output
    assert _tables(target) == []


@pytest.mark.postgres
def test_a_backup_of_one_backend_is_refused_by_the_other_and_other_files_are_not_backups(
    sqlite_settings: Settings, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    sqlite_backup = tmp_path / "sqlite.backup"
    sqlite_engine = make_engine(sqlite_settings)
    backup_database(sqlite_engine, sqlite_backup)
    postgres_url = _empty_database("postgres", request, tmp_path)
    refused = _cli(postgres_url, "db", "restore", str(sqlite_backup))
    assert refused.exit_code == 2
    assert "is a SQLite database file: it cannot be restored into PostgreSQL" in refused.output

    _cli(postgres_url, "db", "upgrade")
    postgres_backup = tmp_path / "postgres.backup"
    assert _cli(postgres_url, "db", "backup", str(postgres_backup)).exit_code == 0
    refused = _cli(_empty_database("sqlite", request, tmp_path), "db", "restore", str(postgres_backup))
    assert refused.exit_code == 2
    assert "is a pg_dump archive of PostgreSQL: it cannot be restored into SQLite" in refused.output

    plain_sql = tmp_path / "dump.sql"
    plain_sql.write_text("--\n-- PostgreSQL database dump\n--\n")
    refused = _cli(postgres_url, "db", "restore", str(plain_sql))
    assert refused.exit_code == 2 and "looks like a plain SQL dump" in refused.output
    (tmp_path / "notes.txt").write_text("hello")
    refused = _cli(postgres_url, "db", "restore", str(tmp_path / "notes.txt"))
    assert refused.exit_code == 2 and "neither a SQLite database nor a pg_dump custom archive" in refused.output
    sqlite_engine.dispose()


# --- a backup never looks complete unless it is ---------------------------------------------------


def test_an_existing_backup_is_kept_unless_overwrite_is_asked(sqlite_settings: Settings, tmp_path: Path) -> None:
    url = _url_of(sqlite_settings)
    existing = tmp_path / "monitor.backup"
    existing.write_bytes(b"last night's backup")
    refused = _cli(url, "db", "backup", str(existing))
    assert refused.exit_code == 2 and "exists: give a new name" in refused.output
    assert existing.read_bytes() == b"last night's backup"
    replaced = _cli(url, "db", "backup", "--overwrite", str(existing))
    assert replaced.exit_code == 0, replaced.output
    assert backup_kind(existing) is BackupKind.SQLITE
    assert oct(existing.stat().st_mode & 0o777) == oct(0o600)  # it holds password hashes


def test_a_backup_interrupted_half_way_leaves_no_file_that_looks_complete(source: Engine, tmp_path: Path) -> None:
    destination = tmp_path / "monitor.backup"
    if source.dialect.name == "sqlite":

        def interrupted(remaining: int, total: int) -> None:
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            backup_database(source, destination, pages_per_step=2, on_step=interrupted)
    else:
        # A pg_dump killed half-way: it wrote part of an archive, then died.
        fake = tmp_path / "bin"
        fake.mkdir()
        for name in ("pg_dump", "pg_restore"):
            (fake / name).symlink_to(f"/usr/bin/{name}")
        (fake / "pg_dump").unlink()
        (fake / "pg_dump").write_text(
            '#!/bin/sh\n[ "$1" = --version ] && exec /usr/bin/pg_dump --version\n'
            'for a; do case "$a" in --file=*) printf PGDMP-half > "${a#--file=}";; esac; done\nkill -9 $$\n'
        )
        (fake / "pg_dump").chmod(0o755)
        with pytest.raises(BackupError, match="pg_dump failed"):
            backup_database(source, destination, pg_bin=fake)
    assert sorted(p.name for p in tmp_path.iterdir() if "backup" in p.name) == []


# --- PostgreSQL's tools -----------------------------------------------------------------------------


@pytest.mark.postgres
def test_a_pg_dump_older_than_the_server_is_refused_naming_both_versions(
    pg_server: PostgresServer, tmp_path: Path
) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "pg_dump").write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 14.11'\n")
    (fake / "pg_dump").chmod(0o755)
    engine = _engine(pg_server.url())
    with pytest.raises(BackupError) as refused:
        backup_database(engine, tmp_path / "monitor.backup", pg_bin=fake)
    engine.dispose()
    message = str(refused.value)
    assert "is version 14.11, older than the PostgreSQL 15." in message
    assert "install postgresql-client-15" in message.lower()
    assert not (tmp_path / "monitor.backup").exists()


@pytest.mark.postgres
def test_the_password_reaches_pg_dump_and_pg_restore_by_the_environment_never_the_command_line(
    pg_server: PostgresServer, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[list[str], dict[str, str] | None]] = []
    real_run = subprocess.run

    def recording_run(argv: list[str], **kwargs: Any) -> Any:
        calls.append((argv, kwargs.get("env")))
        return real_run(argv, **kwargs)

    monkeypatch.setattr(monitor.backup.subprocess, "run", recording_run)
    secret = "s3cret-p@ss word"  # the test server trusts loopback, so any password is accepted
    source_url = sa.make_url(_empty_database("postgres", request, tmp_path)).set(password=secret)
    source = _engine(source_url.render_as_string(hide_password=False))
    upgrade(source)
    backup_database(source, tmp_path / "monitor.backup")
    target_url = sa.make_url(_empty_database("postgres", request, tmp_path)).set(password=secret)
    target = _engine(target_url.render_as_string(hide_password=False))
    restore_database(target, tmp_path / "monitor.backup")
    source.dispose()
    target.dispose()

    connecting = [(argv, env) for argv, env in calls if any(a.startswith("--dbname=") for a in argv)]
    assert {Path(argv[0]).name for argv, _env in connecting} == {"pg_dump", "pg_restore"}
    for argv, _env in calls:
        assert not any("s3cret" in arg for arg in argv), argv
    for _argv, env in connecting:
        assert env is not None and env["PGPASSWORD"] == secret


def test_the_tools_get_every_host_of_a_url_that_names_a_primary_and_its_standby() -> None:
    # SQLAlchemy's form for several hosts (README, "A standby database"): libpq tries them in turn.
    url = sa.make_url(
        "postgresql+psycopg://monitor:pw@/monitor?host=db1:5432&host=db2:5433&target_session_attrs=read-write"
    )
    conninfo, env = monitor.backup._libpq(url)
    assert "host=db1,db2" in conninfo and "port=5432,5433" in conninfo
    assert "target_session_attrs=read-write" in conninfo and "dbname=monitor" in conninfo
    assert "pw" not in conninfo and env["PGPASSWORD"] == "pw"
    single, _env = monitor.backup._libpq(sa.make_url("postgresql+psycopg://monitor@db1:5433/monitor"))
    assert "host=db1" in single and "port=5433" in single
