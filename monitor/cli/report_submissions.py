"""`monitor report submit | submissions`: the signed annual results reports, sent in and awaited.

The commands join `report_app` (monitor/cli/report.py) through `register`, called where the groups are
assembled (monitor/cli/__init__.py), so that this module and report.py do not import each other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from monitor.cli._common import cli_settings, explain, fail, migrated_engine
from monitor.db import session_scope, utcnow
from monitor.errors import MonitorError
from monitor.i18n import format_date, format_datetime, local_today

Year = Annotated[int, typer.Option(help="the report's year (due 15/12 of that year)", min=2000, max=2100)]


def report_submit(
    year: Year,
    district: Annotated[str, typer.Option(help="the district's code, or `province` for the province's own report")],
    file: Annotated[Path, typer.Argument(help="the signed report, PDF or DOCX", exists=True, dir_okay=False)],
    note: Annotated[str | None, typer.Option(help="a note kept with the upload")] = None,
) -> None:
    """Store a district's signed annual results report (a newer one replaces it; the history is kept)."""
    from monitor.reports.submission import PROVINCE, submit_report

    settings = cli_settings()
    engine = migrated_engine(settings)
    try:
        with session_scope(engine) as session:
            record = submit_report(
                year=year,
                district_code=None if district == PROVINCE else district,
                filename=file.name,
                data=file.read_bytes(),
                note=note,
                uploaded_by=None,
                data_dir=settings.data_dir,
                max_bytes=settings.web_max_upload_bytes,
                session=session,
                district_codes=None,
                now=utcnow(),
            )
    except MonitorError as exc:
        fail(explain(exc), 2)
    typer.echo(f"đã nộp / submitted {record.id}: {record.filename}, {record.content_type}, {record.size_bytes:,} bytes")


def report_submissions(year: Year) -> None:
    """Who has sent the year's signed report: district, due day, status, when (Vietnam time)."""
    from monitor.reports.submission import Deadlines, submission_status

    settings = cli_settings()
    engine = migrated_engine(settings)
    with session_scope(engine) as session:
        rows = submission_status(
            session, year, district_codes=None, today=local_today(utcnow()), deadlines=Deadlines.of(settings)
        )
    width = max((len(row.name) for row in rows), default=10)
    typer.echo(f"{'Đơn vị':<{width}}  {'Hạn':<10}  {'Trạng thái':<20}  Nộp lúc")
    for row in rows:
        when = format_datetime(row.current.uploaded_at) if row.current else "-"
        typer.echo(f"{row.name:<{width}}  {format_date(row.due):<10}  {row.status.label_vi:<20}  {when}")


def register(app: typer.Typer) -> None:
    """Add `submit` and `submissions` to the `report` group."""
    app.command("submit")(report_submit)
    app.command("submissions")(report_submissions)
