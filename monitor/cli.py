"""The `monitor` command: run the service, its demo, and manage the database and the fleet."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from sqlalchemy.engine import Engine

from monitor.config import Mode, Settings, load_settings
from monitor.db import current_revision, ensure_migrated, head_revision, make_engine, session_scope, upgrade
from monitor.errors import FleetFileError, InvalidInput, MonitorError
from monitor.grafana.cli import dashboards_app
from monitor.inventory.choices import UnitStructure
from monitor.inventory.fleetfile import read_fleet_file, write_fleet
from monitor.simulator.cli import simulate_app

app = typer.Typer(
    help="Giám sát cụm loa và bảng tin điện tử — fleet monitoring and repair tickets for a province's "
    "grassroots information network.\n\nTry it: `monitor demo`, then open http://127.0.0.1:8000/docs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema: upgrade it, or see where it stands.", no_args_is_help=True)
fleet_app = typer.Typer(help="The province's units and the device inventory.", no_args_is_help=True)
users_app = typer.Typer(help="People who use the service, their roles and districts.", no_args_is_help=True)
tickets_app = typer.Typer(help="Repair tickets: housekeeping.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(fleet_app, name="fleet")
app.add_typer(users_app, name="users")
app.add_typer(tickets_app, name="tickets")
app.add_typer(simulate_app, name="simulate")
app.add_typer(dashboards_app, name="dashboards")


DEMO_ALERTMANAGER_TOKEN = "demo-alertmanager-token"  # demo mode only, printed at start


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _settings(**overrides: object) -> Settings:
    try:
        return load_settings(**overrides)
    except MonitorError as exc:
        _fail(str(exc), 2)


def _production_settings() -> Settings:
    """Settings for a long-running process: placeholder secrets are refused, naming each."""
    settings = _settings()
    try:
        settings.require_real_secrets()
    except MonitorError as exc:
        _fail(str(exc), 2)
    return settings


def _migrated_engine(settings: Settings) -> Engine:
    engine = make_engine(settings)
    try:
        ensure_migrated(engine)
    except MonitorError as exc:
        _fail(str(exc), 2)
    return engine


def _configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # One line per slot job and per MQTT packet would drown what matters.
    for noisy in ("apscheduler", "amqtt", "transitions"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="port of the web app on 127.0.0.1")] = 8000,
    seed: Annotated[int, typer.Option(help="seed of the generated fleet: same seed, same fleet")] = 1,
    structure: Annotated[UnitStructure, typer.Option(help="2020: 11 districts; 2025: maintenance areas")] = (
        UnitStructure.Y2020
    ),
    scenario: Annotated[
        list[str] | None, typer.Option(help="simulator scenarios, e.g. uplink-down:06613 (default: random faults)")
    ] = None,
) -> None:
    """Run the whole service in one process on SQLite, with the simulated Lạng Sơn fleet.

    The fleet answers on 127.1.x.y (HTTP, SNMP) and pushes over MQTT (an embedded broker) and HTTP;
    the collector polls it and the web app serves the API. Ctrl-C stops everything.
    """
    from monitor.auth.cast import CAST, DEMO_PASSWORD, seed_cast
    from monitor.inventory.demo import seed_demo
    from monitor.runtime import DEMO_SCENARIOS, run_demo

    _configure_logging()
    overrides: dict[str, object] = {"mode": Mode.DEMO, "port": port, "cookie_secure": False}
    if not os.environ.get("MONITOR_ALERTMANAGER_TOKEN"):
        overrides["alertmanager_token"] = DEMO_ALERTMANAGER_TOKEN
    settings = _settings(**overrides)
    engine = make_engine(settings)
    upgrade(engine)
    with session_scope(engine) as session:
        result = seed_demo(session=session, seed=seed, structure=structure)
        seed_cast(session=session)
    typer.echo(f"database: {settings.effective_database_url}")
    typer.echo(f"fleet: {result.created} devices created, {result.updated} updated, {result.unchanged} unchanged")
    typer.echo(f"open http://127.0.0.1:{port}/docs (API) — sign in with POST /api/v1/auth/login")
    typer.echo(f"demo users (password {DEMO_PASSWORD!r}): " + ", ".join(f"{p.username} ({p.role.value})" for p in CAST))
    typer.echo("inject a fault: monitor simulate inject --device 06613-CL01 --fault offline")
    typer.echo(f"what is down now: GET http://127.0.0.1:{port}/api/v1/devices?state=down, or `monitor status`")
    typer.echo(
        f"Alertmanager webhook: POST http://127.0.0.1:{port}/api/v1/integrations/alertmanager "
        f"(bearer {settings.alertmanager_token.get_secret_value() if settings.alertmanager_token else '-'})"
    )
    typer.echo("Ctrl-C stops it.")
    asyncio.run(run_demo(settings, engine, seed=seed, port=port, scenarios=scenario or DEMO_SCENARIOS))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on (default: MONITOR_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default: MONITOR_PORT)")] = None,
    dispatcher: Annotated[bool, typer.Option(help="also run the alerts dispatcher in this process")] = True,
) -> None:
    """Run the web app and API (and, by default, the alerts dispatcher) on the configured database."""
    from monitor.runtime import run_web

    _configure_logging()
    settings = _production_settings()
    engine = _migrated_engine(settings)
    asyncio.run(run_web(settings, engine, host or settings.host, port or settings.port, with_dispatcher=dispatcher))


@app.command()
def dispatch() -> None:
    """Run an alerts dispatcher: state changes to problems, tickets and notifications (several may run)."""
    from monitor.runtime import run_dispatcher

    _configure_logging()
    settings = _production_settings()
    asyncio.run(run_dispatcher(settings, _migrated_engine(settings)))


@app.command()
def collect(
    shard: Annotated[str, typer.Option(help="I/N: poll the devices whose id modulo N is I (0-based)")] = "0/1",
    metrics_port: Annotated[
        int | None,
        typer.Option(help="port of this collector's /metrics (default 9180 + I, on MONITOR_HOST)", min=1, max=65535),
    ] = None,
) -> None:
    """Run a collector: poll its shard of the fleet, hear pushed heartbeats (shard 0), judge health."""
    from monitor.runtime import run_collector

    _configure_logging()
    settings = _settings()
    try:
        index, count = (int(part) for part in shard.split("/"))
        if not 0 <= index < count:
            raise ValueError
    except ValueError:
        _fail(f"--shard {shard!r}: give I/N with 0 <= I < N, e.g. 0/2")
    engine = _migrated_engine(settings)
    asyncio.run(run_collector(settings, engine, (index, count), metrics_port))


@app.command()
def status() -> None:
    """The province at a glance: each district's active devices by state and its open tickets."""
    import sqlalchemy as sa
    from sqlmodel import col

    from monitor.health.states import DeviceState
    from monitor.inventory.service import list_districts
    from monitor.tickets.models import Ticket
    from monitor.tickets.store import OPEN

    engine = _migrated_engine(_settings())
    with session_scope(engine) as session:
        districts = list_districts(session=session)
        district = col(Ticket.district_code)
        rows_open = session.execute(sa.select(district, sa.func.count()).where(OPEN).group_by(district))
        open_tickets: dict[str, int] = {code: int(n) for code, n in rows_open}
    states = [s.value for s in DeviceState]
    header = ["district", *states, "tickets", "name"]
    rows = [
        [
            d.district.code,
            *(str(d.devices_by_state.get(s, 0)) for s in states),
            str(open_tickets.get(d.district.code, 0)),
            d.district.name,
        ]
        for d in districts
    ]
    totals = ["total", *(str(sum(d.devices_by_state.get(s, 0) for d in districts)) for s in states)]
    rows.append([*totals, str(sum(open_tickets.values())), ""])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        typer.echo("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1])


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="target revision")] = "head") -> None:
    """Bring the database schema up to date (creates the SQLite file if needed)."""
    settings = _settings()
    engine = make_engine(settings)
    before = current_revision(engine)
    upgrade(engine, revision)
    typer.echo(
        f"database {engine.url.render_as_string(hide_password=True)}: {before or 'empty'} -> {current_revision(engine)}"
    )


@db_app.command("current")
def db_current() -> None:
    """Show the schema revision of the database and the one this code needs."""
    engine = make_engine(_settings())
    current = current_revision(engine)
    head = head_revision()
    typer.echo(f"database: {current or 'empty'}; code: {head}")
    if current != head:
        raise typer.Exit(1)


@fleet_app.command("init")
def fleet_init(
    province: Annotated[str, typer.Option(help="province whose units ship with the package")] = "lang-son",
    structure: Annotated[
        UnitStructure, typer.Option(help="2020: 11 districts, 200 communes; 2025: 65 communes in 11 maintenance areas")
    ] = UnitStructure.Y2020,
) -> None:
    """Load the province's districts (or maintenance areas) and communes; running it again changes nothing."""
    from monitor.inventory.units import init_province, load_units

    engine = _migrated_engine(_settings())
    try:
        units = load_units(province, structure)
        with session_scope(engine) as session:
            result = init_province(session, units)
    except MonitorError as exc:
        _fail(str(exc))
    typer.echo(
        f"{province} ({structure.value}): {result.districts} districts, {result.communes} communes; "
        f"{result.created} created, {result.updated} updated"
    )


@fleet_app.command("token")
def fleet_token(code: Annotated[str, typer.Argument(help="code of the device that pushes heartbeats")]) -> None:
    """Issue a new heartbeat token for a device (the old one stops working). It is shown once: copy it."""
    from monitor.inventory.tokens import issue_token

    engine = _migrated_engine(_settings())
    try:
        with session_scope(engine) as session:
            token = issue_token(code, session=session)
    except MonitorError as exc:
        _fail(str(exc))
    typer.echo(token)


class FileFormat(StrEnum):
    csv = "csv"
    yaml = "yaml"


@fleet_app.command("import")
def fleet_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="CSV or YAML fleet file")],
    file_format: Annotated[FileFormat | None, typer.Option("--format", help="default: from the extension")] = None,
    dry_run: Annotated[bool, typer.Option(help="validate only, write nothing")] = False,
) -> None:
    """Add or update devices from a fleet file (upsert by code). Any bad row refuses the whole file.

    Columns: code,name,kind,commune_code,parent_code,protocol,address,port,profile,interval_s,lat,lon,
    installed_on (and optionally vendor,model,active,credentials). See examples/fleet.csv.
    """
    from monitor.inventory.service import apply_fleet_rows, validate_fleet_rows

    engine = _migrated_engine(_settings())
    try:
        raw = read_fleet_file(file, file_format.value if file_format else None)
        with session_scope(engine) as session:
            rows = validate_fleet_rows(raw, session=session, source=str(file))
            if dry_run:
                typer.echo(f"{file}: {len(rows)} devices valid; nothing written (dry run)")
                session.rollback()
                return
            result = apply_fleet_rows(rows, session=session)
    except FleetFileError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        for problem in exc.problems:
            typer.echo(f"{file}:{problem.line or '-'}: {problem.field}: {problem.reason}", err=True)
        raise typer.Exit(1) from None
    except MonitorError as exc:
        _fail(str(exc))
    typer.echo(f"{file}: {result.created} created, {result.updated} updated, {result.unchanged} unchanged")


@fleet_app.command("export")
def fleet_export(
    file_format: Annotated[FileFormat, typer.Option("--format", help="csv or yaml")] = FileFormat.csv,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="file to write (default: stdout)")] = None,
) -> None:
    """Write the inventory as a fleet file that imports back to the same inventory (secrets left out)."""
    from monitor.inventory.service import export_records

    engine = _migrated_engine(_settings())
    with session_scope(engine) as session:
        text = write_fleet(export_records(session=session), file_format.value)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}", err=True)


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
        _fail(f"unknown role {role!r}; expected admin, leader, officer or technician")
    password = sys.stdin.readline().rstrip("\n") if password_stdin else typer.prompt("password", hide_input=True)
    engine = _migrated_engine(_settings())
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
        _fail(f"{exc}: " + "; ".join(str(p) for p in exc.problems))
    except MonitorError as exc:
        _fail(str(exc))
    typer.echo(f"user {username} ({role_value.value}) added")


@tickets_app.command("clean-attachments")
def tickets_clean_attachments(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="list what would be removed, remove nothing")] = False,
    min_age_h: Annotated[float, typer.Option(help="leave files younger than this (hours)", min=0)] = 1.0,
) -> None:
    """Remove attachment files no ticket refers to (left by uploads whose transaction rolled back)."""
    from monitor.tickets.attachments import orphan_files

    settings = _settings()
    engine = _migrated_engine(settings)
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


@users_app.command("list")
def users_list() -> None:
    """List users with their role and district (never their passwords)."""
    from monitor.auth.service import list_users

    engine = _migrated_engine(_settings())
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
    engine = _migrated_engine(_settings())
    try:
        with session_scope(engine) as session:
            set_password(username, password, session=session)
    except MonitorError as exc:
        _fail(str(exc))
    typer.echo(f"password of {username} changed")
