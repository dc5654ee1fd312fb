"""`monitor tickets …`: repair tickets' housekeeping."""

from __future__ import annotations

from typing import Annotated

import typer

from monitor.cli._common import cli_settings, migrated_engine
from monitor.db import session_scope

tickets_app = typer.Typer(help="Repair tickets: housekeeping.", no_args_is_help=True)


@tickets_app.command("clean-attachments")
def tickets_clean_attachments(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="list what would be removed, remove nothing")] = False,
    min_age_h: Annotated[float, typer.Option(help="leave files younger than this (hours)", min=0)] = 1.0,
) -> None:
    """Remove attachment files no ticket refers to (left by uploads whose transaction rolled back)."""
    from monitor.tickets.attachments import orphan_files

    settings = cli_settings()
    engine = migrated_engine(settings)
    with session_scope(engine) as session:
        orphans = orphan_files(settings.data_dir, session=session, min_age_s=min_age_h * 3600)
    freed = 0
    for path in orphans:
        size = path.stat().st_size
        if not dry_run:
            path.unlink(missing_ok=True)
        freed += size
        typer.echo(f"{'would remove' if dry_run else 'removed'} {path}")
    typer.echo(f"{len(orphans)} orphan files, {freed:,} bytes{' (dry run)' if dry_run else ''}")


__all__ = ["tickets_app"]
