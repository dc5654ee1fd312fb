"""`monitor fleet …`: the province's units and the device inventory (init, heartbeat tokens, import, export)."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from monitor.cli._common import cli_settings, fail, migrated_engine
from monitor.db import session_scope
from monitor.errors import FleetFileError, MonitorError
from monitor.inventory.choices import UnitStructure
from monitor.inventory.fleetfile import read_fleet_file, write_fleet

fleet_app = typer.Typer(help="The province's units and the device inventory.", no_args_is_help=True)


class FileFormat(StrEnum):
    """The formats of a fleet file."""

    csv = "csv"
    yaml = "yaml"


@fleet_app.command("init")
def fleet_init(
    province: Annotated[str, typer.Option(help="province whose units ship with the package")] = "lang-son",
    structure: Annotated[
        UnitStructure, typer.Option(help="2020: 11 districts, 200 communes; 2025: 65 communes in 11 maintenance areas")
    ] = UnitStructure.Y2020,
) -> None:
    """Load the province's districts (or maintenance areas) and communes; running it again changes nothing."""
    from monitor.inventory.units import init_province, load_units

    engine = migrated_engine(cli_settings())
    try:
        units = load_units(province, structure)
        with session_scope(engine) as session:
            result = init_province(session, units)
    except MonitorError as exc:
        fail(str(exc))
    typer.echo(
        f"{province} ({structure.value}): {result.districts} districts, {result.communes} communes; "
        f"{result.created} created, {result.updated} updated"
    )


@fleet_app.command("token")
def fleet_token(code: Annotated[str, typer.Argument(help="code of the device that pushes heartbeats")]) -> None:
    """Issue a new heartbeat token for a device (the old one stops working). It is shown once: copy it."""
    from monitor.inventory.tokens import issue_token

    engine = migrated_engine(cli_settings())
    try:
        with session_scope(engine) as session:
            token = issue_token(code, session=session)
    except MonitorError as exc:
        fail(str(exc))
    typer.echo(token)


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
    from monitor.auth.audit import Actor, AuditAction, record
    from monitor.inventory.service import apply_fleet_rows, validate_fleet_rows

    engine = migrated_engine(cli_settings())
    try:
        raw = read_fleet_file(file, file_format.value if file_format else None)
        with session_scope(engine) as session:
            rows = validate_fleet_rows(raw, session=session, source=str(file))
            if dry_run:
                typer.echo(f"{file}: {len(rows)} devices valid; nothing written (dry run)")
                session.rollback()
                return
            result = apply_fleet_rows(rows, session=session)
            counts = {"created": result.created, "updated": result.updated, "unchanged": result.unchanged}
            record(AuditAction.FLEET_IMPORTED, session=session, actor=Actor.shell(), target=file.name, details=counts)
    except FleetFileError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        for problem in exc.problems:
            typer.echo(f"{file}:{problem.line or '-'}: {problem.field}: {problem.reason}", err=True)
        raise typer.Exit(1) from None
    except MonitorError as exc:
        fail(str(exc))
    typer.echo(f"{file}: {result.created} created, {result.updated} updated, {result.unchanged} unchanged")


@fleet_app.command("export")
def fleet_export(
    file_format: Annotated[FileFormat, typer.Option("--format", help="csv or yaml")] = FileFormat.csv,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="file to write (default: stdout)")] = None,
) -> None:
    """Write the inventory as a fleet file that imports back to the same inventory (secrets left out)."""
    from monitor.inventory.service import export_records

    engine = migrated_engine(cli_settings())
    with session_scope(engine) as session:
        text = write_fleet(export_records(session=session), file_format.value)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}", err=True)


__all__ = ["FileFormat", "fleet_app"]
