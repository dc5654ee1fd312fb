"""`monitor db …`: upgrade the database schema, or see where it stands."""

from __future__ import annotations

from typing import Annotated

import typer

from monitor.cli._common import cli_settings
from monitor.db import current_revision, head_revision, make_engine, upgrade

db_app = typer.Typer(help="Database schema: upgrade it, or see where it stands.", no_args_is_help=True)


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


__all__ = ["db_app"]
