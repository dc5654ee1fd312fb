"""Reports API: uptime from the state history and SLA figures from the tickets (JSON, CSV or XLSX), scoped
like every list."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query, Response

from monitor.db import utcnow
from monitor.health.queries import get_device
from monitor.reports.export import MEDIA_TYPES, render, render_sla
from monitor.reports.schemas import SlaReportPublic, UptimeReportPublic
from monitor.reports.service import GroupBy, catch_up, uptime_report
from monitor.reports.sla import SlaBy, sla_report
from monitor.web.bodies import api_router
from monitor.web.deps import EngineDep, PrincipalDep, ScopedList, SessionDep, SettingsDep
from monitor.web.openapi import problems
from monitor.web.params import Day

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
