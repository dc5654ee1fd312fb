"""Backups of the service's database while it runs, and their restore into an empty database.

SQLite: SQLite's online backup API (`sqlite3.Connection.backup`) copies the live file page by page from
one read snapshot, so writers go on meanwhile. PostgreSQL: `pg_dump --format=custom` (one snapshot by
itself) and `pg_restore`; the password reaches them through `PGPASSWORD`, never their command line.

Either way the copy is written under a hidden `.partial` name beside the destination, checked, fsynced
and only then renamed: a backup interrupted half-way never looks complete. The Alembic revision a backup
holds is read back from the backup itself, so it is the revision of exactly the data it holds.

A restore goes only into an empty database, and only when this code knows the backup's revision: an
older one is brought up by `monitor db upgrade`; a newer one means the code is older than the data.

    BackupError (MonitorError)   a backup or restore could not be done: a tool failed, the database is away
    └── BackupRefused            refused before anything was written: the target is not empty, the file is
                                 damaged or of the other kind, its revision is newer than the code
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from psycopg.conninfo import make_conninfo
from sqlalchemy.engine import URL, Engine

from monitor.db import alembic_config, current_revision, upgrade
from monitor.errors import MonitorError
from monitor.models import metadata

DEFAULT_PG_BIN = Path("/usr/bin")
DEFAULT_PAGES_PER_STEP = 1024  # 4 MiB of 4 KiB pages: each step is short, and progress comes often
LOCK_WAIT_TIMEOUT = "60s"  # pg_dump gives up rather than queue behind a long migration's exclusive lock

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_ARCHIVE_MAGIC = b"PGDMP"  # pg_dump's custom format
SQLITE_SIDECARS = ("-wal", "-shm", "-journal")


class BackupError(MonitorError):
    """A backup or a restore that could not be done (a tool failed, the database is away)."""


class BackupRefused(BackupError):
    """A backup or restore refused before anything was written, saying why and what to do."""


class BackupKind(StrEnum):
    """What a backup file is, told by its first bytes."""

    SQLITE = "sqlite"
    PG_ARCHIVE = "postgresql"

    @property
    def label(self) -> str:
        return "SQLite database file" if self is BackupKind.SQLITE else "pg_dump custom archive"


class Standing(StrEnum):
    """Where a backup's schema revision stands against this code's migrations."""

    CURRENT = "current"  # the revision this code needs
    OLDER = "older"  # a revision this code's migrations know: `monitor db upgrade` brings it up
    NEWER = "newer"  # unknown to this code: written by a newer version of the service
    NONE = "none"  # no revision at all: never migrated, or not this service's database


@dataclass(frozen=True, slots=True)
class BackupReport:
    """What `backup_database` wrote: where, what kind, how big, which schema revision, how long it took."""

    path: Path
    kind: BackupKind
    size_bytes: int
    revision: str | None
    duration_s: float
    notes: list[str] = field(default_factory=list)  # the tool and its version, a version mismatch


@dataclass(frozen=True, slots=True)
class RestoreReport:
    """What `restore_database` restored, at which revision, against the revision this code needs."""

    path: Path
    kind: BackupKind
    revision: str
    head: str
    standing: Standing
    upgraded: bool
    duration_s: float
    notes: list[str] = field(default_factory=list)


def backup_kind(path: Path) -> BackupKind:
    """The kind of backup file `path` is, by its magic bytes; BackupRefused for anything else."""
    try:
        with path.open("rb") as file:
            head = file.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise BackupRefused(f"cannot read the backup {path}: {exc.strerror}") from exc
    if head.startswith(SQLITE_MAGIC):
        return BackupKind.SQLITE
    if head.startswith(PG_ARCHIVE_MAGIC):
        return BackupKind.PG_ARCHIVE
    if head.startswith((b"--", b"SET ", b"\n")):
        raise BackupRefused(f"{path} looks like a plain SQL dump: only pg_dump's custom format (-Fc) is restored here")
    raise BackupRefused(f"{path} is neither a SQLite database nor a pg_dump custom archive (its first bytes: {head!r})")


def standing_of(revision: str | None) -> Standing:
    """Whether `revision` is this code's head, an older revision it knows, or one it has never heard of."""
    if revision is None:
        return Standing.NONE
    script = ScriptDirectory.from_config(alembic_config())
    if revision == script.get_current_head():
        return Standing.CURRENT
    try:
        script.get_revision(revision)
    except CommandError:
        return Standing.NEWER
    return Standing.OLDER


def backup_database(
    engine: Engine,
    destination: Path,
    *,
    overwrite: bool = False,
    pages_per_step: int = DEFAULT_PAGES_PER_STEP,
    pg_bin: Path = DEFAULT_PG_BIN,
    on_step: Callable[[int, int], None] | None = None,
) -> BackupReport:
    """Copy the database of `engine` into `destination` while the service runs, and check the copy.

    SQLite copies `pages_per_step` pages per step and calls `on_step(remaining, total)` after each;
    PostgreSQL runs `pg_dump` from `pg_bin`. Refused when `destination` exists (unless `overwrite`).
    """
    destination = destination.absolute()
    if destination.is_dir():
        raise BackupRefused(f"{destination} is a folder: give the backup file's name")
    if not destination.parent.is_dir():
        raise BackupRefused(f"the folder {destination.parent} does not exist")
    if destination.exists() and not overwrite:
        raise BackupRefused(f"{destination} exists: give a new name (with the date, say) or pass --overwrite")
    started = time.monotonic()
    notes: list[str] = []
    with _partial_beside(destination) as partial:
        try:
            if engine.url.get_backend_name() == "sqlite":
                kind = BackupKind.SQLITE
                _sqlite_backup(_sqlite_path(engine.url), partial, pages_per_step=pages_per_step, on_step=on_step)
                revision = _checked_sqlite_revision(partial)
            else:
                kind = BackupKind.PG_ARCHIVE
                notes.append(_pg_dump(engine, partial, pg_bin=pg_bin))
                revision = _checked_archive_revision(partial, pg_bin=pg_bin)
        except BackupRefused as exc:  # the copy just written fails its check: a failure, not a refusal
            raise BackupError(f"the backup failed its check, nothing was kept: {exc}") from exc
        size = partial.stat().st_size
        _publish(partial, destination)
    return BackupReport(destination, kind, size, revision, time.monotonic() - started, notes)


def restore_database(
    engine: Engine, source: Path, *, upgrade_schema: bool = False, pg_bin: Path = DEFAULT_PG_BIN
) -> RestoreReport:
    """Restore the backup `source` into the empty database of `engine`; with `upgrade_schema`, migrate it after.

    Refused (BackupRefused, nothing written) when the database holds any table of the service, when the
    file is of the other backend's kind or damaged, and when its revision is unknown to this code.
    """
    started = time.monotonic()
    kind = backup_kind(source)
    backend = engine.url.get_backend_name()
    notes: list[str] = []
    if kind is BackupKind.SQLITE:
        if backend != "sqlite":
            raise BackupRefused(
                f"{source} is a SQLite database file: it cannot be restored into PostgreSQL "
                "(restore it into a SQLite database, or move the data with a tool such as pgloader)"
            )
        target = _sqlite_path(engine.url)
        _refuse_non_empty_sqlite(target)
        revision = _require_known(source, _checked_sqlite_revision(source))
        _copy_into_place(source, target)
        engine.dispose()  # a connection opened before would still see the file that was replaced
    else:
        if backend == "sqlite":
            raise BackupRefused(
                f"{source} is a pg_dump archive of PostgreSQL: it cannot be restored into SQLite "
                "(set MONITOR_DATABASE_URL to an empty PostgreSQL database)"
            )
        _refuse_non_empty_postgres(engine)
        notes.append(_pg_restore_versions(engine, source, pg_bin=pg_bin))
        revision = _require_known(source, _checked_archive_revision(source, pg_bin=pg_bin))
        _pg_restore(engine, source, pg_bin=pg_bin)
    restored = current_revision(engine)
    if restored != revision:
        raise BackupError(f"the restored database is at revision {restored}, the backup said {revision}")
    standing = standing_of(revision)
    upgraded = False
    if standing is Standing.OLDER and upgrade_schema:
        upgrade(engine)
        upgraded = True
    head = ScriptDirectory.from_config(alembic_config()).get_current_head() or ""
    return RestoreReport(source, kind, revision, head, standing, upgraded, time.monotonic() - started, notes)


def _require_known(source: Path, revision: str | None) -> str:
    standing = standing_of(revision)
    if revision is None or standing is Standing.NONE:
        raise BackupRefused(f"{source} holds no schema revision (no alembic_version): not a backup of this service")
    if standing is Standing.NEWER:
        raise BackupRefused(
            f"{source} is at schema revision {revision}, which this code does not know: the backup was made by a "
            "newer version of the service (the code is older than the data); install that version or a later one "
            "and restore with it"
        )
    return revision


def _service_tables() -> set[str]:
    return {*metadata.tables, "alembic_version"}


def _listed(names: list[str], most: int = 5) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


# --- files ----------------------------------------------------------------------------------------


@contextmanager
def _partial_beside(destination: Path, mode: int = 0o600) -> Iterator[Path]:
    """A hidden new file beside `destination`, removed (with any SQLite sidecar) unless renamed.

    A backup is private to its owner by default (`mode` 0600): it holds password hashes and token digests.
    """
    while True:
        partial = destination.with_name(f".{destination.name}.{secrets.token_hex(4)}.partial")
        try:
            os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))  # the umask applies
            break
        except FileExistsError:
            continue
    try:
        yield partial
    finally:
        for leftover in (partial, *(Path(f"{partial}{suffix}") for suffix in SQLITE_SIDECARS)):
            leftover.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _publish(partial: Path, destination: Path) -> None:
    """Make `partial` durable, then give it its final name in one step (a rename within the folder)."""
    _fsync(partial)
    os.replace(partial, destination)
    if os.name == "posix":  # the rename itself must survive a power cut
        _fsync(destination.parent)


def _copy_into_place(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with _partial_beside(target, mode=0o666) as partial:  # as the service would create it
        shutil.copyfile(source, partial)
        _publish(partial, target)


# --- SQLite ---------------------------------------------------------------------------------------


def _sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
        raise BackupRefused(f"the database {url.database or ':memory:'} is not a SQLite file that can be copied")
    return Path(url.database).absolute()


def _sqlite_connect(path: Path, mode: str) -> sqlite3.Connection:
    """A connection that never creates the file: `rw` for a live database, `ro&immutable=1` for a backup."""
    return sqlite3.connect(f"{path.absolute().as_uri()}?mode={mode}", uri=True, isolation_level=None, timeout=5.0)


def _sqlite_backup(
    source: Path, partial: Path, *, pages_per_step: int, on_step: Callable[[int, int], None] | None
) -> None:
    if not source.is_file():
        raise BackupError(f"no SQLite database at {source} (see MONITOR_DATABASE_URL and MONITOR_DATA_DIR)")
    try:
        live = _sqlite_connect(source, "rw")
        try:
            # One read transaction across every step: in WAL mode it pins one snapshot, so the copy is
            # consistent and is not restarted by each commit of the service, and writers never wait for it.
            # (A rollback-journal database would block writers for the whole copy: then steps go unpinned.)
            pinned = live.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            if pinned:
                live.execute("BEGIN")
                live.execute("SELECT count(*) FROM sqlite_master").fetchone()
            copy = sqlite3.connect(partial, isolation_level=None)
            try:
                progress = None if on_step is None else (lambda _status, left, total: on_step(left, total))
                live.backup(copy, pages=pages_per_step, progress=progress)
                copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
            finally:
                copy.close()
            if pinned:
                live.execute("COMMIT")
        finally:
            live.close()
    except sqlite3.Error as exc:
        raise BackupError(f"the SQLite backup of {source} failed: {exc}") from exc


def _checked_sqlite_revision(path: Path) -> str | None:
    """The Alembic revision a SQLite backup holds, once it proved whole: size, integrity, foreign keys."""
    with path.open("rb") as file:
        header = file.read(100)
    if len(header) < 100 or not header.startswith(SQLITE_MAGIC):
        raise BackupRefused(f"{path} is truncated: not even a whole SQLite header ({len(header)} bytes)")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    size = path.stat().st_size
    # The header's page count is trusted only while the change counter agrees with it (SQLite's rule).
    if header[24:28] == header[92:96] and pages and size != pages * page_size:
        raise BackupRefused(
            f"{path} is truncated or damaged: its header says {pages} pages of {page_size} bytes "
            f"({pages * page_size:,} bytes), the file has {size:,} bytes"
        )
    try:
        copy = _sqlite_connect(path, "ro&immutable=1")
        try:
            problems = [row[0] for row in copy.execute("PRAGMA integrity_check(20)")]
            if problems != ["ok"]:
                raise BackupRefused(f"{path} fails SQLite's integrity check: {'; '.join(problems)}")
            orphans = copy.execute("PRAGMA foreign_key_check").fetchall()
            if orphans:
                found = ", ".join(f"{table} row {rowid} -> {parent}" for table, rowid, parent, _fk in orphans[:5])
                raise BackupRefused(f"{path} holds rows whose foreign keys point at nothing: {found}")
            has_versions = copy.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
            ).fetchone()
            row = copy.execute("SELECT version_num FROM alembic_version").fetchone() if has_versions else None
        finally:
            copy.close()
    except sqlite3.DatabaseError as exc:
        raise BackupRefused(f"{path} is not a readable SQLite database (truncated or damaged?): {exc}") from exc
    return None if row is None else str(row[0])


def _refuse_non_empty_sqlite(target: Path) -> None:
    if not target.exists() or target.stat().st_size == 0:
        stale = [f"{target}{suffix}" for suffix in SQLITE_SIDECARS if Path(f"{target}{suffix}").exists()]
        if stale:
            raise BackupRefused(f"{_listed(stale)} lie beside {target}: move them aside before restoring there")
        return
    try:
        live = _sqlite_connect(target, "rw")
        try:
            names = [row[0] for row in live.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        finally:
            live.close()  # the last connection to close removes the -wal and -shm files
    except sqlite3.DatabaseError as exc:
        raise BackupRefused(f"{target} exists and is not a SQLite database ({exc}): move it aside first") from exc
    present = sorted(set(names) & _service_tables())
    if present:
        raise BackupRefused(
            f"the database {target} is not empty (it holds {_listed(present)}): a restore goes only into an empty "
            f"database. Stop the service, move the file aside (mv {target} {target}.old), then restore again; "
            "or point MONITOR_DATABASE_URL at a new file"
        )
    if any(Path(f"{target}{suffix}").exists() for suffix in ("-wal", "-shm")):
        raise BackupRefused(f"{target} is open in another process (its -wal/-shm files remain): stop the service first")


# --- PostgreSQL -----------------------------------------------------------------------------------


def _libpq(url: URL) -> tuple[str, dict[str, str]]:
    """The connection string for libpq's tools, without the password, and their environment, with it."""
    options: dict[str, object] = {"application_name": "monitor-backup", "connect_timeout": 10}
    options.update({key: value for key, value in url.query.items() if isinstance(value, str) and key != "host"})
    options.update(
        {
            key: value
            for key, value in {"user": url.username, "dbname": url.database, **_hosts(url)}.items()
            if value is not None
        }
    )
    environment = dict(os.environ)
    if url.password is not None:
        environment["PGPASSWORD"] = str(url.password)  # never on the command line, where `ps` shows it
    return make_conninfo(**options), environment  # type: ignore[arg-type]


def _hosts(url: URL) -> dict[str, object]:
    """libpq's host and port: the URL's one host, or the several of SQLAlchemy's `?host=H1:P1&host=H2:P2` (a
    primary and its standbys, tried in turn), comma-separated as libpq takes them."""
    given = url.query.get("host")
    if given is None:
        return {"host": url.host, "port": url.port}
    hosts, ports = [], []
    for item in [given] if isinstance(given, str) else list(given):
        host, colon, port = item.partition(":")
        hosts.append(host)
        ports.append(port if colon else str(url.port or ""))  # empty: libpq's default port
    return {"host": ",".join(hosts), "port": ",".join(ports) if any(ports) else None}


def _tool(pg_bin: Path, name: str) -> Path:
    path = pg_bin / name
    if not os.access(path, os.X_OK):
        raise BackupError(
            f"{name} not found at {path}: install PostgreSQL's client programs (Debian: postgresql-client) "
            "or give their folder with --pg-bin"
        )
    return path


def _run(argv: list[str | Path], environment: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run([str(arg) for arg in argv], env=environment, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise BackupError(f"cannot run {argv[0]}: {exc}") from exc


def _tool_version(path: Path) -> tuple[str, int]:
    """`pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)` -> ("15.18", 15)."""
    answer = _run([path, "--version"])
    match = re.search(r"\)\s+(\d+)(?:\.(\d+))?", answer.stdout)
    if answer.returncode != 0 or match is None:
        raise BackupError(f"{path} --version answered {answer.stdout.strip() or answer.stderr.strip()!r}")
    return match.group(0).lstrip(") \t"), int(match.group(1))


def _server_version(engine: Engine) -> tuple[str, int]:
    try:
        with engine.connect() as connection:
            text = str(connection.exec_driver_sql("SHOW server_version").scalar())
            number = int(connection.exec_driver_sql("SHOW server_version_num").scalar() or 0)
    except sa.exc.SQLAlchemyError as exc:
        raise BackupError(f"cannot reach the database: {getattr(exc, 'orig', exc)}") from exc
    return text.split()[0], number // 10000


def _pg_dump(engine: Engine, partial: Path, *, pg_bin: Path) -> str:
    """Dump into `partial` (custom format, one snapshot); returns a line naming the tool and the versions."""
    pg_dump = _tool(pg_bin, "pg_dump")
    tool_text, tool_major = _tool_version(pg_dump)
    server_text, server_major = _server_version(engine)
    if tool_major < server_major:
        raise BackupError(
            f"{pg_dump} is version {tool_text}, older than the PostgreSQL {server_text} server: pg_dump cannot dump a "
            f"newer server. Install postgresql-client-{server_major} and give its folder with --pg-bin "
            f"(Debian: /usr/lib/postgresql/{server_major}/bin)"
        )
    conninfo, environment = _libpq(engine.url)
    answer = _run(
        [pg_dump, "--format=custom", f"--file={partial}", f"--lock-wait-timeout={LOCK_WAIT_TIMEOUT}", "--no-password",
         f"--dbname={conninfo}"],
        environment,
    )  # fmt: skip
    if answer.returncode != 0:
        raise BackupError(f"pg_dump failed (exit code {answer.returncode}): {answer.stderr.strip()}")
    note = f"wraps pg_dump {tool_text} ({pg_dump}) of a PostgreSQL {server_text} server"
    if tool_major > server_major:
        note += f"; restore it with pg_restore {tool_major} or newer"
    return note


def _pg_restore_versions(engine: Engine, source: Path, *, pg_bin: Path) -> str:
    pg_restore = _tool(pg_bin, "pg_restore")
    tool_text, tool_major = _tool_version(pg_restore)
    server_text, server_major = _server_version(engine)
    listing = _run([pg_restore, "--list", source])
    if listing.returncode != 0:
        raise BackupRefused(
            f"{source} is not a readable pg_dump archive for pg_restore {tool_text} (truncated, damaged, or written "
            f"by a newer pg_dump?): {listing.stderr.strip()}"
        )
    dumped_by = re.search(r"Dumped by pg_dump version:\s*(\S+)", listing.stdout)
    note = f"wraps pg_restore {tool_text} ({pg_restore}) into a PostgreSQL {server_text} server"
    if dumped_by:
        note += f"; the archive was written by pg_dump {dumped_by.group(1)}"
    if tool_major != server_major:
        note += f" (pg_restore {tool_major} and server {server_major} differ: a mismatch may fail, nothing is kept)"
    return note


def _checked_archive_revision(archive: Path, *, pg_bin: Path) -> str | None:
    """The Alembic revision a pg_dump archive holds, once pg_restore read the whole archive back."""
    pg_restore = _tool(pg_bin, "pg_restore")
    whole = _run([pg_restore, f"--file={os.devnull}", archive])  # reads every block: a cut-off file fails here
    if whole.returncode != 0:
        raise BackupRefused(f"{archive} is not a whole pg_dump archive (truncated or damaged?): {whole.stderr.strip()}")
    extract = _run([pg_restore, "--data-only", "--table=alembic_version", "--file=-", archive])
    if extract.returncode != 0:
        raise BackupError(f"pg_restore could not read the schema revision of {archive}: {extract.stderr.strip()}")
    rows: list[str] = []
    inside = False
    for line in extract.stdout.splitlines():
        if line.startswith("COPY ") and "alembic_version" in line:
            inside = True
        elif inside and line == "\\.":
            break
        elif inside:
            rows.append(line)
    return rows[0] if rows else None


def _refuse_non_empty_postgres(engine: Engine) -> None:
    query = sa.text(
        "SELECT table_schema || '.' || table_name FROM information_schema.tables "
        "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND table_name = ANY(:names) ORDER BY 1"
    )
    try:
        with engine.connect() as connection:
            present = list(connection.execute(query, {"names": sorted(_service_tables())}).scalars())
    except sa.exc.SQLAlchemyError as exc:
        raise BackupError(
            f"cannot reach the database to restore into: {getattr(exc, 'orig', exc)} "
            "(create it empty first: createdb -O OWNER NAME)"
        ) from exc
    if present:
        name = engine.url.database
        raise BackupRefused(
            f"the database {name} is not empty (it holds {_listed(present)}): a restore goes only into an empty "
            f"database. Stop the service and start from an empty one: dropdb {name} && createdb -O OWNER {name} "
            "(or restore into a new database and point MONITOR_DATABASE_URL at it)"
        )


def _pg_restore(engine: Engine, archive: Path, *, pg_bin: Path) -> None:
    """Restore all or nothing: one transaction, stopping at the first error; objects owned by the URL's user."""
    conninfo, environment = _libpq(engine.url)
    engine.dispose()  # no connection of ours holds a lock the restore would wait for
    answer = _run(
        [_tool(pg_bin, "pg_restore"), "--no-owner", "--exit-on-error", "--single-transaction", "--no-password",
         f"--dbname={conninfo}", archive],
        environment,
    )  # fmt: skip
    if answer.returncode != 0:
        raise BackupError(f"pg_restore failed, nothing was restored: {answer.stderr.strip()}")


__all__ = [
    "DEFAULT_PAGES_PER_STEP",
    "DEFAULT_PG_BIN",
    "BackupError",
    "BackupKind",
    "BackupRefused",
    "BackupReport",
    "RestoreReport",
    "Standing",
    "backup_database",
    "backup_kind",
    "restore_database",
    "standing_of",
]
