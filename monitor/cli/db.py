"""`monitor db …`: upgrade the database schema, see where it stands, back it up and restore it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from monitor.backup import (
    DEFAULT_PAGES_PER_STEP,
    DEFAULT_PG_BIN,
    BackupError,
    BackupRefused,
    Standing,
    backup_database,
    restore_database,
    standing_of,
)
from monitor.cli._common import cli_settings, fail
from monitor.db import current_revision, head_revision, make_engine, upgrade

db_app = typer.Typer(
    help="Database schema: upgrade it, see where it stands; back the database up and restore it.",
    no_args_is_help=True,
)

PgBinOption = Annotated[
    Path, typer.Option("--pg-bin", help="folder of pg_dump and pg_restore (PostgreSQL only)", file_okay=False)
]


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="target revision")] = "head") -> None:
    """Bring the database schema up to date (creates the SQLite file if needed)."""
    settings = cli_settings()
    engine = make_engine(settings)
    before = current_revision(engine)
    upgrade(engine, revision)
    typer.echo(
        f"database {engine.url.render_as_string(hide_password=True)}: {before or 'empty'} -> {current_revision(engine)}"
    )


@db_app.command("current")
def db_current() -> None:
    """Show the schema revision of the database and the one this code needs."""
    engine = make_engine(cli_settings())
    current = current_revision(engine)
    head = head_revision()
    typer.echo(f"database: {current or 'empty'}; code: {head}")
    if current != head:
        raise typer.Exit(1)


@db_app.command("backup")
def db_backup(
    file: Annotated[Path, typer.Argument(help="the backup file to write (refused if it exists)", dir_okay=False)],
    overwrite: Annotated[bool, typer.Option(help="replace FILE if it exists")] = False,
    pages_per_step: Annotated[
        int, typer.Option(min=1, help="SQLite: pages copied per step of the online backup")
    ] = DEFAULT_PAGES_PER_STEP,
    pg_bin: PgBinOption = DEFAULT_PG_BIN,
) -> None:
    """Back the database up into FILE while the service runs, and check the copy.

    SQLite: the online backup API, from one snapshot. PostgreSQL: this wraps `pg_dump --format=custom`
    (a PostgreSQL server in production should also keep continuous WAL archiving for point-in-time recovery).
    """
    engine = make_engine(cli_settings())
    try:
        report = backup_database(engine, file, overwrite=overwrite, pages_per_step=pages_per_step, pg_bin=pg_bin)
    except BackupRefused as exc:
        fail(str(exc), 2)
    except BackupError as exc:
        fail(str(exc))
    finally:
        engine.dispose()
    for note in report.notes:
        typer.echo(note)
    standing = standing_of(report.revision)
    against = "" if standing is Standing.CURRENT else f" (this code: {head_revision()})"
    typer.echo(
        f"backup {report.path}: {report.kind.label} of {engine.url.render_as_string(hide_password=True)}, "
        f"{_size(report.size_bytes)}, schema revision {report.revision or 'none'}{against}, "
        f"in {report.duration_s:.1f} s"
    )


@db_app.command("restore")
def db_restore(
    file: Annotated[Path, typer.Argument(help="a backup written by `monitor db backup`", dir_okay=False)],
    upgrade_schema: Annotated[
        bool, typer.Option("--upgrade", help="bring an older backup's schema up to this code's after restoring")
    ] = False,
    pg_bin: PgBinOption = DEFAULT_PG_BIN,
) -> None:
    """Restore FILE into the configured database, which must be empty (stop the service first).

    A SQLite backup goes into a SQLite file (copied into place atomically); a pg_dump archive into an empty
    PostgreSQL database (this wraps `pg_restore --single-transaction`: all or nothing). A backup newer than
    this code is refused; an older one is brought up by `monitor db upgrade` (or `--upgrade`).
    """
    engine = make_engine(cli_settings())
    try:
        report = restore_database(engine, file, upgrade_schema=upgrade_schema, pg_bin=pg_bin)
    except BackupRefused as exc:
        fail(str(exc), 2)
    except BackupError as exc:
        fail(str(exc))
    finally:
        engine.dispose()
    for note in report.notes:
        typer.echo(note)
    typer.echo(
        f"restored {report.path} ({report.kind.label}, schema revision {report.revision}) into "
        f"{engine.url.render_as_string(hide_password=True)} in {report.duration_s:.1f} s"
    )
    if report.upgraded:
        typer.echo(f"upgraded the schema: {report.revision} -> {report.head}")
    elif report.standing is Standing.OLDER:
        typer.echo(
            f"the backup is at revision {report.revision}, this code needs {report.head}: "
            "run `monitor db upgrade` before starting the service (or restore with --upgrade)"
        )


def _size(size_bytes: int) -> str:
    """1536 -> '1.5 KiB (1,536 bytes)'."""
    value = float(size_bytes)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            break
        value /= 1024
    return f"{size_bytes:,} bytes" if unit == "bytes" else f"{value:.1f} {unit} ({size_bytes:,} bytes)"


__all__ = ["db_app"]
