"""`monitor training …`: the register of training sessions for the grassroots information officers."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer

from monitor.cli._common import cli_settings, explain, fail, migrated_engine, parse_day
from monitor.db import session_scope
from monitor.errors import MonitorError
from monitor.i18n import format_date

training_app = typer.Typer(
    help="Training register: sessions, attendees, coverage of the communes.", no_args_is_help=True
)


@training_app.command("add")
def training_add(
    held_on: Annotated[str, typer.Option("--date", help="the day it was held, YYYY-MM-DD")],
    district: Annotated[str, typer.Option(help="the district (maintenance area) that held it")],
    topic: Annotated[str, typer.Option(help="what it taught")],
    hours: Annotated[float, typer.Option(help="its length in hours", min=0.5, max=200)],
    organiser: Annotated[str, typer.Option(help="who organised it")] = "",
) -> None:
    """Record a training session; prints its id, for `monitor training attend`."""
    from monitor.reports import training

    day = parse_day(held_on, "--date")
    engine = migrated_engine(cli_settings())
    try:
        with session_scope(engine) as session:
            record = training.add_session(
                held_on=day,
                district_code=district,
                topic=topic,
                organiser=organiser,
                hours=hours,
                created_by=None,
                session=session,
                district_codes=None,
            )
    except MonitorError as exc:
        fail(explain(exc), 2)
    typer.echo(f"training session {record.id}: {format_date(record.held_on)}, {record.topic}")


@training_app.command("attend")
def training_attend(
    session_id: Annotated[int, typer.Argument(help="the session's id", min=1)],
    name: Annotated[str, typer.Option(help="the attendee's full name")],
    commune: Annotated[str, typer.Option(help="the code of the commune they serve")],
    role: Annotated[
        str, typer.Option(help="commune_officer, station_operator, technician or other")
    ] = "commune_officer",
) -> None:
    """Add a person who attended a session."""
    from monitor.reports import training

    engine = migrated_engine(cli_settings())
    try:
        with session_scope(engine) as session:
            record = training.get_session(session_id, session=session, district_codes=None)
            training.add_attendee(record, name=name, commune_code=commune, role=role, session=session)
    except MonitorError as exc:
        fail(explain(exc), 2)
    typer.echo(f"{name} added to session {session_id}")


@training_app.command("list")
def training_list(
    district: Annotated[str | None, typer.Option(help="only this district's sessions")] = None,
    year: Annotated[int | None, typer.Option(help="only this year's sessions", min=2000, max=2100)] = None,
) -> None:
    """The sessions, newest first, and the share of communes whose officer was trained (that year)."""
    from monitor.reports import training

    first, last = (date(year, 1, 1), date(year, 12, 31)) if year else (date(2000, 1, 1), date(2100, 12, 31))
    scope = None if district is None else [district]
    engine = migrated_engine(cli_settings())
    with session_scope(engine) as session:
        rows = training.list_sessions(session=session, district_codes=scope, first=first, last=last)
        figures = training.coverage(session=session, district_codes=scope, first=first, last=last)
    for record, count in rows:
        when, where = format_date(record.held_on), record.district_code
        typer.echo(f"{record.id:>5}  {when}  {where:>4}  {record.hours:g} h  {count:>3} người  {record.topic}")
    share = "—" if figures.share is None else f"{figures.share:.0%}"
    typer.echo(f"communes with a trained officer: {figures.trained}/{figures.communes} ({share})")


__all__ = ["training_app"]
