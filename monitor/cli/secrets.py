"""`monitor secrets …`: the secrets sealed at rest (channels' secrets, devices' SNMP credentials) and their keys.

MONITOR_SECRET_KEYS=NEW,OLD monitor secrets rotate    # everything under NEW; then MONITOR_SECRET_KEYS=NEW
monitor secrets check                                 # how each is kept; which rows the keys cannot open
"""

from __future__ import annotations

import typer
from sqlalchemy.engine import Engine

from monitor.cli._common import cli_settings, fail, migrated_engine
from monitor.config import SECRET_KEYS_VARIABLE
from monitor.errors import MonitorError
from monitor.sealing import Keyring, SealState

secrets_app = typer.Typer(
    help="Secrets sealed at rest (notification channels' secrets, devices' SNMP credentials): check them, "
    "re-seal them under the newest key of MONITOR_SECRET_KEYS.",
    no_args_is_help=True,
)

_STATES = (
    (SealState.NEWEST, "under the newest key"),
    (SealState.OLDER, "under an older key"),
    (SealState.DEMO, "under the public demo key"),
    (SealState.CLEAR, "in clear"),
    (SealState.UNREADABLE, "that no key opens"),
)


def _keyring() -> tuple[Keyring, Engine]:
    settings = cli_settings()
    try:
        keyring = Keyring.from_settings(settings)
    except MonitorError as exc:
        fail(str(exc), 2)
    return keyring, migrated_engine(settings)


def _kept(states: dict[SealState, int]) -> str:
    return ", ".join(f"{states[state]} {words}" for state, words in _STATES if states.get(state)) or "none"


@secrets_app.command("check")
def secrets_check() -> None:
    """Say how every stored secret is kept, and name the rows whose secrets the configured keys cannot open.

    Exit code 1 when a row cannot be opened, or when secrets are unprotected (in clear, or under the demo key
    outside the demo): `monitor secrets rotate` seals them.
    """
    from monitor.stored_secrets import check_stored_secrets

    keyring, engine = _keyring()
    tables = check_stored_secrets(engine, keyring)
    for table in tables:
        typer.echo(f"{table.table}: {table.secrets} secrets in {table.rows} rows: {_kept(table.states)}")
    unreadable = [row for table in tables for row in table.unreadable]
    unprotected = sum(
        table.states[SealState.CLEAR] + (0 if keyring.seals_with_demo_key else table.states[SealState.DEMO])
        for table in tables
    )
    older = sum(table.states[SealState.OLDER] for table in tables)
    if older and not unreadable:
        typer.echo(f"{older} secrets are under an older key: `monitor secrets rotate` moves them to the newest")
    if unprotected:
        typer.secho(
            f"{unprotected} secrets are not protected at rest: "
            + ("set MONITOR_SECRET_KEYS, then run" if not keyring.can_seal else "run")
            + " `monitor secrets rotate`",
            fg=typer.colors.YELLOW,
            err=True,
        )
    if unreadable:
        typer.secho(
            f"cannot be opened with the keys of {SECRET_KEYS_VARIABLE} ({keyring.why_unopened()}):",
            fg=typer.colors.RED,
            err=True,
        )
        for row in unreadable:
            typer.echo(f"  {row}", err=True)
    if unreadable or unprotected:
        raise typer.Exit(1)


@secrets_app.command("rotate")
def secrets_rotate() -> None:
    """Re-seal every stored secret, sealed or still in clear, under the newest key of MONITOR_SECRET_KEYS.

    One transaction per table; a table holding a secret that no configured key opens is left as it was, its
    rows named (exit code 1): add the key it was sealed with and run it again. Keep the old keys configured
    until it has succeeded.
    """
    from monitor.stored_secrets import rotate_stored_secrets

    keyring, engine = _keyring()
    if not keyring.can_seal:
        fail(f"nothing to seal with: set {SECRET_KEYS_VARIABLE}, newest key first", 2)
    tables = rotate_stored_secrets(engine, keyring)
    failed = False
    for table in tables:
        if table.unreadable:
            failed = True
            typer.secho(
                f"{table.table}: left as it was: the keys cannot open the secrets of", fg=typer.colors.RED, err=True
            )
            for row in table.unreadable:
                typer.echo(f"  {row}", err=True)
        else:
            typer.echo(
                f"{table.table}: {table.resealed} secrets in {table.rows} rows re-sealed under the newest key "
                f"(they were {_kept(table.states)})"
            )
    if failed:
        raise typer.Exit(1)


__all__ = ["secrets_app"]
