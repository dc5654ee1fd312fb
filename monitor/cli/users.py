"""`monitor users …`: people who use the service, their roles and districts."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from monitor.cli._common import cli_settings, fail, migrated_engine
from monitor.db import session_scope
from monitor.errors import InvalidInput, MonitorError

users_app = typer.Typer(help="People who use the service, their roles and districts.", no_args_is_help=True)
token_app = typer.Typer(
    help="Personal API tokens (Authorization: Bearer), scoped like their owner.", no_args_is_help=True
)
users_app.add_typer(token_app, name="token")


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
    from monitor.auth.audit import Actor, AuditAction, record
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
            user = create_user(
                session=session,
                username=username,
                full_name=full_name,
                role=role_value,
                password=password,
                district_code=district,
                email=email,
            )
            details = {"role": role_value.value}
            record(
                AuditAction.USER_CREATED,
                session=session,
                actor=Actor.shell(),
                target=username,
                district_code=user.district_code,
                details=details,
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
    from monitor.auth.audit import Actor, AuditAction, record
    from monitor.auth.service import set_password

    password = sys.stdin.readline().rstrip("\n") if password_stdin else typer.prompt("password", hide_input=True)
    engine = migrated_engine(cli_settings())
    try:
        with session_scope(engine) as session:
            user = set_password(username, password, session=session)
            actor, district = Actor.shell(), user.district_code
            record(AuditAction.PASSWORD_RESET, session=session, actor=actor, target=username, district_code=district)
    except MonitorError as exc:
        fail(str(exc))
    typer.echo(f"password of {username} changed")


def _set_active(username: str, active: bool) -> None:
    from monitor.auth.audit import Actor, AuditAction, record
    from monitor.auth.service import set_active

    engine = migrated_engine(cli_settings())
    try:
        with session_scope(engine) as session:
            user, changed = set_active(username, active, session=session)
            if changed:
                action = AuditAction.USER_ENABLED if active else AuditAction.USER_DISABLED
                record(action, session=session, actor=Actor.shell(), target=username, district_code=user.district_code)
    except MonitorError as exc:
        fail(str(exc))
    state = "enabled" if active else "disabled"
    typer.echo(f"user {username} {state}" if changed else f"user {username} was already {state}")


@users_app.command("disable")
def users_disable(username: str) -> None:
    """Disable a user: they cannot sign in, their sessions end and their API tokens are refused at once.

    The tokens are kept and work again if the user is enabled; revoke them to end them for good.
    """
    _set_active(username, False)


@users_app.command("enable")
def users_enable(username: str) -> None:
    """Enable a disabled user again (they sign in anew; their unexpired, unrevoked tokens work again)."""
    _set_active(username, True)


@token_app.command("create")
def token_create(
    username: str,
    days: Annotated[int, typer.Option(help="days until it expires (at most 365)", min=1, max=365)] = 90,
    note: Annotated[str | None, typer.Option(help="what it is for, shown in the list")] = None,
) -> None:
    """Make a personal API token for USERNAME and print it once: copy it now, only its hash is kept."""
    from monitor.auth.audit import Actor, AuditAction, record
    from monitor.auth.service import get_user
    from monitor.auth.tokens import create_token

    engine = migrated_engine(cli_settings())
    try:
        with session_scope(engine) as session:
            user = get_user(username, session=session)
            token, secret = create_token(user, session=session, days=days, note=note)
            details = {"token_id": token.id, "expires_at": token.expires_at.isoformat()}
            actor, district = Actor.shell(), user.district_code
            record(
                AuditAction.TOKEN_CREATED,
                session=session,
                actor=actor,
                target=username,
                district_code=district,
                details=details,
            )
    except MonitorError as exc:
        fail(str(exc))
    typer.echo(f"token {token.id} of {username}, valid until {token.expires_at:%Y-%m-%d %H:%M} UTC:", err=True)
    typer.echo(secret)


@token_app.command("list")
def token_list(username: Annotated[str | None, typer.Argument(help="only this user's tokens")] = None) -> None:
    """List tokens: id, owner, created, expires, last used, state (never the token itself)."""
    from monitor.auth.tokens import list_tokens
    from monitor.db import utcnow

    engine = migrated_engine(cli_settings())
    try:
        with session_scope(engine) as session:
            rows = list_tokens(session=session, username=username)
    except MonitorError as exc:
        fail(str(exc))
    now = utcnow()
    typer.echo("id\towner\tcreated\texpires\tlast used\tstate\tnote")
    for token, user in rows:
        used = f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never"
        typer.echo(
            f"{token.id}\t{user.username}\t{token.created_at:%Y-%m-%d %H:%M}\t{token.expires_at:%Y-%m-%d %H:%M}"
            f"\t{used}\t{token.state(now)}\t{token.note or ''}"
        )


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[int, typer.Argument(help="the token's id, from `monitor users token list`")],
) -> None:
    """Revoke a token: it stops working at once (it stays in the list, revoked)."""
    from monitor.auth.audit import Actor, AuditAction, record
    from monitor.auth.tokens import revoke_token

    engine = migrated_engine(cli_settings())
    try:
        with session_scope(engine) as session:
            token, user, changed = revoke_token(token_id, session=session)
            if changed:
                details, district = {"token_id": token.id}, user.district_code
                record(
                    AuditAction.TOKEN_REVOKED,
                    session=session,
                    actor=Actor.shell(),
                    target=user.username,
                    district_code=district,
                    details=details,
                )
    except MonitorError as exc:
        fail(str(exc))
    typer.echo(f"token {token_id} of {user.username} revoked" if changed else f"token {token_id} was already revoked")


__all__ = ["users_app"]
