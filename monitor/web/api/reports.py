"""Reports API: uptime from the state history, SLA figures from the tickets, the yearly review (JSON, CSV or
XLSX) and the annual results report (DOCX, PDF, XLSX, HTML), scoped like every list."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Depends, Query, Response

from monitor.auth.models import Role
from monitor.db import utcnow
from monitor.errors import InvalidInput, Problem
from monitor.health.queries import get_device
from monitor.inventory.service import get_district
from monitor.reports.annual import annual_figures
from monitor.reports.annual_document import annual_document
from monitor.reports.annual_render import ANNUAL_MEDIA_TYPES, file_name, render_annual
from monitor.reports.export import MEDIA_TYPES, render, render_sla
from monitor.reports.review import ReviewPolicy, yearly_review
from monitor.reports.review_export import XLSX_MEDIA_TYPE, YearlyReviewPublic, render_review
from monitor.reports.schemas import SlaReportPublic, UptimeReportPublic
from monitor.reports.service import GroupBy, catch_up, uptime_report
from monitor.reports.sla import SlaBy, sla_report
from monitor.web.bodies import api_router
from monitor.web.deps import EngineDep, Principal, PrincipalDep, ScopedList, SessionDep, SettingsDep, require_roles
from monitor.web.openapi import problems
from monitor.web.params import Day, YearPath

router = api_router(prefix="/api/v1/reports", tags=["reports"])

DeviceCode = Annotated[
    str | None,
    Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$", description="only this device (404 if not yours)"),
]
_FILES = {
    "text/csv": {"schema": {"type": "string"}},
    MEDIA_TYPES["xlsx"]: {"schema": {"type": "string", "format": "binary"}},
}


def _file(body: bytes, fmt: str, stem: str) -> Response:
    """JSON as an answer; CSV and XLSX as a file to save."""
    if fmt == "json":
        return Response(body, media_type=MEDIA_TYPES["json"])
    headers = {"Content-Disposition": f'attachment; filename="{stem}.{fmt}"'}
    return Response(body, media_type=MEDIA_TYPES[fmt], headers=headers)


@router.get(
    "/uptime",
    response_model=UptimeReportPublic,
    responses={200: {"content": _FILES}, **problems(401, 404, 422)},
)
def get_uptime(
    session: SessionDep,
    principal: PrincipalDep,
    scope: ScopedList,
    settings: SettingsDep,
    engine: EngineDep,
    from_: Annotated[Day, Query(alias="from", description="first day, YYYY-MM-DD, Vietnam time")],
    to: Annotated[Day, Query(description="last day, included")],
    by: GroupBy = GroupBy.DISTRICT,
    device: DeviceCode = None,
    format: Literal["json", "csv", "xlsx"] = "json",
    lang: Literal["vi", "en"] = "vi",
) -> Response:
    """Time-weighted availability from the state history over local days `from`..`to` (at most three years),
    by device, commune, district, kind or for the province: seconds up, degraded, down, unknown (the service
    could not see the device, never counted as down) and in maintenance (left out of availability), outages,
    the longest outage and MTBF. `method` says how the figures are computed."""
    now = utcnow()
    catch_up(engine, now)  # the last minute's changes too, whatever the background job's pace
    if device is not None:
        get_device(device, session=session, district_codes=principal.scope.district_codes)  # 404 if not visible
    report = uptime_report(
        session,
        from_,
        to,
        now=now,
        by=by,
        districts=scope.district_codes,
        device_code=device,
        exclude_maintenance=settings.report_exclude_maintenance,
    )
    body = render(report, format, now, lang)
    return _file(body, format, f"uptime-{from_.isoformat()}-{to.isoformat()}")


@router.get(
    "/sla",
    response_model=SlaReportPublic,
    responses={200: {"content": _FILES}, **problems(401, 404, 422)},
)
def get_sla(
    session: SessionDep,
    scope: ScopedList,
    from_: Annotated[Day, Query(alias="from", description="first day tickets were opened, YYYY-MM-DD")],
    to: Annotated[Day, Query(description="last day, included")],
    by: SlaBy = SlaBy.DISTRICT,
    format: Literal["json", "csv", "xlsx"] = "json",
    lang: Literal["vi", "en"] = "vi",
) -> Response:
    """SLA figures of the repair tickets opened over local days `from`..`to`, by district, priority, kind of
    device or month: opened, resolved, reopened, breached and the breach rate, mean time to acknowledge and
    to repair (summed over a ticket's reopenings)."""
    report = sla_report(session, from_, to, by=by, districts=scope.district_codes)
    body = render_sla(report, format, utcnow(), lang)
    return _file(body, format, f"sla-{from_.isoformat()}-{to.isoformat()}")


@router.get(
    "/review",
    response_model=YearlyReviewPublic,
    responses={
        200: {"content": {XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}},
        **problems(401, 404, 422),
    },
)
def get_review(
    session: SessionDep,
    scope: ScopedList,
    settings: SettingsDep,
    engine: EngineDep,
    from_: Annotated[Day, Query(alias="from", description="first day, YYYY-MM-DD, Vietnam time")],
    to: Annotated[Day, Query(description="last day, included")],
    format: Literal["json", "xlsx"] = "json",
    lang: Literal["vi", "en"] = "vi",
) -> Response:
    """The yearly review of the stations over local days `from`..`to` and the budget basis for next year: every
    commune's broadcast systems and devices (availability, outages, repairs, costs), the devices proposed for
    replacement and why, planned work done and overdue, repair costs by district and kind of device, the parts
    most replaced, and next year's estimate line by line (quantity x unit cost, in đồng)."""
    now = utcnow()
    catch_up(engine, now)  # the last minute's changes too, whatever the background job's pace
    review = yearly_review(
        session, from_, to, now=now, districts=scope.district_codes, policy=ReviewPolicy.from_settings(settings)
    )
    body = render_review(review, format, now, lang)
    return _file(body, format, f"review-{from_.isoformat()}-{to.isoformat()}")


_ANNUAL_FILES = {media: {"schema": {"type": "string", "format": "binary"}} for media in ANNUAL_MEDIA_TYPES.values()}
#: The HTML preview is a document, not a page of the service: its style is inline, it loads nothing, runs nothing.
_DOCUMENT_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"


@router.get(
    "/annual/{year}",
    response_class=Response,
    responses={
        200: {"content": _ANNUAL_FILES, "description": "the report as a file"},
        **problems(401, 403, 404, 422),
    },
)
def get_annual(
    session: SessionDep,
    principal: Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.LEADER, Role.OFFICER))],
    scope: ScopedList,
    settings: SettingsDep,
    engine: EngineDep,
    year: YearPath,
    format: Literal["docx", "pdf", "xlsx", "html"] = "docx",
) -> Response:
    """The plan's annual results report of `year` (districts report before 15 December, the province before 20
    December), laid out as an administrative document (Nghị định 30/2020/NĐ-CP): DOCX to edit and sign, PDF,
    XLSX with its tables, or an HTML preview. `district` gives that district's report; without it, the province's
    for administrators and leaders, and one's own district's for an officer. The period runs from the configured
    start of the year to today; the sentences are generated from the figures, and the places the office writes
    are marked."""
    now = utcnow()
    if scope.district is not None:
        unit = get_district(scope.district, session=session)
    elif scope.district_codes is None:
        unit = None
    elif len(scope.district_codes) == 1:
        unit = get_district(next(iter(scope.district_codes)), session=session)
    else:
        raise InvalidInput("which district?", [Problem("district", "you look after several districts: name one")])
    catch_up(engine, now)
    document = annual_document(annual_figures(session, year, now=now, settings=settings, district=unit), settings)
    body = render_annual(document, format)
    name = file_name(document, None if unit is None else unit.code, format)
    if format == "html":
        return Response(
            body, media_type=ANNUAL_MEDIA_TYPES["html"], headers={"Content-Security-Policy": _DOCUMENT_POLICY}
        )
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    return Response(body, media_type=ANNUAL_MEDIA_TYPES[format], headers=headers)
