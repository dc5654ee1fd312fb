"""`monitor users …`: people who use the service, their roles and districts."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from monitor.cli._common import cli_settings, fail, migrated_engine
from monitor.db import session_scope
from monitor.errors import InvalidInput, MonitorError

users_app = typer.Typer(help="People who use the service, their roles and districts.", no_args_is_help=True)


@users_app.command("add")
def users_add(
    username: Annotated[str, typer.Argument(help="sign-in name: lower-case letters, digits, '.', '_', '-'")],
    full_name: Annotated[str, typer.Option("--name", help="full name shown to others")],
    role: Annotated[str, typer.Option(help="admin, leader, officer or technician")],
    district: Annotated[str | None, typer.Option(help="district code (officers and technicians)")] = None,
    email: Annotated[str | None, typer.Option(help="for e-mail notifications")] = None,
    password_stdin: Annotated[bool, typer.Option(help="read the password from standard input")] = False,
) -> None:
    """Add a user. The password is asked for (hidden), or read from standard input."""
    from monitor.auth.models import Role
    from monitor.auth.service import create_user

    try:
        role_value = Role(role)
    except ValueError:
        fail(f"unknown role {role!r}; expected admin, leader, officer or technician")
    password = sys.stdin.readline().rstrip("\n") if password_stdin else typer.prompt("password", hide_input=True)
    engine = migrated_engine(cli_settings())
    try:
        with session_scope(engine) as session:
            create_user(
                session=session,
                username=username,
                full_name=full_name,
                role=role_value,
                password=password,
                district_code=district,
                email=email,
            )
    except InvalidInput as exc:
        fail(f"{exc}: " + "; ".join(str(p) for p in exc.problems))
    except MonitorError as exc:
        fail(str(exc))
    typer.echo(f"user {username} ({role_value.value}) added")


@users_app.command("list")
def users_list() -> None:
    """List users with their role and district (never their passwords)."""
    from monitor.auth.service import list_users

    engine = migrated_engine(cli_settings())
    with session_scope(engine) as session:
        for user in list_users(session=session):
            state = "" if user.active else " (disabled)"
            typer.echo(f"{user.username}\t{user.role}\t{user.district_code or '-'}\t{user.full_name}{state}")


@users_app.command("passwd")
def users_passwd(
    username: str,
    password_stdin: Annotated[bool, typer.Option(help="read the password from standard input")] = False,
) -> None:
    """Set a user's password; their open sessions end."""
    from monitor.auth.service import set_password

    password = sys.stdin.readline().rstrip("\n") if password_stdin else typer.prompt("password", hide_input=True)
    engine = migrated_engine(cli_settings())
    try:
        with session_scope(engine) as session:
            set_password(username, password, session=session)
    except MonitorError as exc:
        fail(str(exc))
    typer.echo(f"password of {username} changed")


__all__ = ["users_app"]
