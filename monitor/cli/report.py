"""`monitor report …`: the reports, as files for the offices (uptime, SLA; the annual report comes next)."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from monitor.cli._common import cli_settings, explain, fail, migrated_engine, parse_day
from monitor.db import session_scope, utcnow
from monitor.errors import MonitorError

E = TypeVar("E", bound=StrEnum)

report_app = typer.Typer(
    help="Reports: uptime, SLA figures, the yearly review, the annual results report and its submission.",
    no_args_is_help=True,
)


def _checked(fmt: str, output: Path | None, choices: type[E], by: str) -> E:
    """The grouping asked for; ends the command with a clear line for a bad format, grouping or output."""
    from monitor.reports.export import FORMATS

    if fmt not in FORMATS:
        fail(f"--format: one of {', '.join(FORMATS)}", 2)
    if fmt == "xlsx" and output is None:
        fail("--format xlsx needs --output FILE", 2)
    try:
        return choices(by)
    except ValueError:
        fail(f"--by: one of {', '.join(choice.value for choice in choices)}", 2)


@report_app.command("uptime")
def report_uptime(
    from_: Annotated[str, typer.Option("--from", help="first day, YYYY-MM-DD (Vietnam time)")],
    to: Annotated[str, typer.Option("--to", help="last day, YYYY-MM-DD (included)")],
    by: Annotated[str, typer.Option(help="device, commune, district, kind or province")] = "district",
    district: Annotated[str | None, typer.Option(help="only this district's (maintenance area's) devices")] = None,
    device: Annotated[str | None, typer.Option(help="only this device")] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv, xlsx or json")] = "csv",
    output: Annotated[Path | None, typer.Option(help="write here (default: standard output; not for xlsx)")] = None,
    language: Annotated[str, typer.Option(help="vi or en headers")] = "vi",
    with_maintenance: Annotated[
        bool, typer.Option("--with-maintenance", help="count maintenance windows in the states, not apart")
    ] = False,
) -> None:
    """Uptime from the state history over a period, as CSV, XLSX or JSON."""
    from monitor.reports.export import render
    from monitor.reports.service import GroupBy, keep_up, uptime_report

    grouping = _checked(fmt, output, GroupBy, by)
    settings = cli_settings()
    engine = migrated_engine(settings)
    now = utcnow()
    try:
        keep_up(engine, now, lag_s=settings.report_rollup_lag_s)
        with session_scope(engine) as session:
            report = uptime_report(
                session,
                parse_day(from_, "--from"),
                parse_day(to, "--to"),
                now=now,
                by=grouping,
                districts=None if district is None else [district],
                device_code=device,
                exclude_maintenance=settings.report_exclude_maintenance and not with_maintenance,
            )
    except MonitorError as exc:
        fail(explain(exc), 2)
    _write(render(report, fmt, now, language), output, len(report.rows))


@report_app.command("sla")
def report_sla(
    from_: Annotated[str, typer.Option("--from", help="first day tickets were opened, YYYY-MM-DD")],
    to: Annotated[str, typer.Option("--to", help="last day, YYYY-MM-DD (included)")],
    by: Annotated[str, typer.Option(help="district, priority, kind, month or province")] = "district",
    district: Annotated[str | None, typer.Option(help="only this district's (maintenance area's) tickets")] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv, xlsx or json")] = "csv",
    output: Annotated[Path | None, typer.Option(help="write here (default: standard output; not for xlsx)")] = None,
    language: Annotated[str, typer.Option(help="vi or en headers")] = "vi",
) -> None:
    """SLA figures of the repair tickets opened over a period, as CSV, XLSX or JSON."""
    from monitor.reports.export import render_sla
    from monitor.reports.sla import SlaBy, sla_report

    grouping = _checked(fmt, output, SlaBy, by)
    first, last = parse_day(from_, "--from"), parse_day(to, "--to")
    engine = migrated_engine(cli_settings())
    try:
        with session_scope(engine) as session:
            report = sla_report(session, first, last, by=grouping, districts=None if district is None else [district])
    except MonitorError as exc:
        fail(explain(exc), 2)
    _write(render_sla(report, fmt, utcnow(), language), output, len(report.rows))


@report_app.command("review")
def report_review(
    from_: Annotated[str, typer.Option("--from", help="first day, YYYY-MM-DD (Vietnam time)")],
    to: Annotated[str, typer.Option("--to", help="last day, YYYY-MM-DD (included)")],
    district: Annotated[str | None, typer.Option(help="only this district's (maintenance area's) communes")] = None,
    fmt: Annotated[str, typer.Option("--format", help="json or xlsx")] = "json",
    output: Annotated[Path | None, typer.Option(help="write here (default: standard output; not for xlsx)")] = None,
    language: Annotated[str, typer.Option(help="vi or en headers")] = "vi",
) -> None:
    """The yearly review of the stations and next year's budget estimate, as JSON or XLSX."""
    from monitor.reports.review import ReviewPolicy, yearly_review
    from monitor.reports.review_export import REVIEW_FORMATS, render_review
    from monitor.reports.service import keep_up

    if fmt not in REVIEW_FORMATS:
        fail(f"--format: one of {', '.join(REVIEW_FORMATS)}", 2)
    if fmt == "xlsx" and output is None:
        fail("--format xlsx needs --output FILE", 2)
    first, last = parse_day(from_, "--from"), parse_day(to, "--to")
    settings = cli_settings()
    engine = migrated_engine(settings)
    now = utcnow()
    try:
        policy = ReviewPolicy.from_settings(settings)
        keep_up(engine, now, lag_s=settings.report_rollup_lag_s)
        with session_scope(engine) as session:
            review = yearly_review(
                session, first, last, now=now, districts=None if district is None else [district], policy=policy
            )
    except MonitorError as exc:
        fail(explain(exc), 2)
    _write(render_review(review, fmt, now, language), output, len(review.communes))


@report_app.command("annual")
def report_annual(
    year: Annotated[int, typer.Option(help="the year reported on, e.g. 2026")],
    output: Annotated[Path, typer.Option(help="the file to write")],
    district: Annotated[
        str | None, typer.Option(help="a district's (maintenance area's) report; default: the province")
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="docx (to edit and sign), pdf, xlsx (the tables) or html")
    ] = "docx",
) -> None:
    """The plan's annual results report (districts before 15/12, the province before 20/12), from the service's
    figures, laid out as an administrative document (NĐ 30/2020/NĐ-CP): edit the parts marked for the office,
    then sign and submit it (`monitor report submit`)."""
    from monitor.inventory.service import get_district
    from monitor.reports.annual import annual_figures
    from monitor.reports.annual_document import annual_document
    from monitor.reports.annual_render import ANNUAL_FORMATS, render_annual
    from monitor.reports.service import keep_up

    if fmt not in ANNUAL_FORMATS:
        fail(f"--format: one of {', '.join(ANNUAL_FORMATS)}", 2)
    settings = cli_settings()
    engine = migrated_engine(settings)
    now = utcnow()
    try:
        keep_up(engine, now, lag_s=settings.report_rollup_lag_s)
        with session_scope(engine) as session:
            unit = None if district is None else get_district(district, session=session, district_codes=None)
            document = annual_document(
                annual_figures(session, year, now=now, settings=settings, district=unit), settings
            )
        body = render_annual(document, fmt)
    except MonitorError as exc:
        fail(explain(exc), 2)
    output.write_bytes(body)
    typer.echo(f"{document.title} {document.scope_name} {year} ({document.period_text}) written to {output}", err=True)


def _write(body: bytes, output: Path | None, rows: int) -> None:
    if output is None:
        sys.stdout.buffer.write(body)
        return
    output.write_bytes(body)
    typer.echo(f"{rows} rows written to {output}", err=True)


__all__ = ["report_app"]
