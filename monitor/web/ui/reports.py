"""The reports page (`/reports`): the year's annual results report to download (DOCX to edit and sign, PDF,
XLSX, HTML preview), who has sent the signed report and who is late, the signed report's upload for an officer,
and the uptime and SLA tables as Excel files. Every link and form goes to the API's own routes."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlmodel import col, select

from monitor.auth.models import Role
from monitor.bounds import MAX_YEAR, MIN_YEAR
from monitor.db import utcnow
from monitor.i18n import local_today
from monitor.inventory.models import District
from monitor.reports.submission import Deadlines, submission_status
from monitor.web.deps import SessionDep, SettingsDep
from monitor.web.ui.door import PagePrincipal
from monitor.web.ui.render import render

router = APIRouter(include_in_schema=False)


@router.get("/reports")
def reports_page(
    request: Request,
    principal: PagePrincipal,
    session: SessionDep,
    settings: SettingsDep,
    year: Annotated[int | None, Query(ge=MIN_YEAR, le=MAX_YEAR)] = None,
) -> Response:
    """The year's reports for the person's districts (the province's too, for its people)."""
    today = local_today(utcnow())
    year = year or today.year
    scope = principal.scope.district_codes
    districts = select(District).order_by(col(District.code))
    if scope is not None:
        districts = districts.where(col(District.code).in_(scope))
    rows = submission_status(session, year, district_codes=scope, today=today, deadlines=Deadlines.of(settings))
    return render(
        request,
        "reports.html",
        {
            "principal": principal,
            "year": year,
            "years": list(range(today.year, max(MIN_YEAR, today.year - 5) - 1, -1)),
            "today": today,
            "districts": list(session.exec(districts)),
            "rows": rows,
            "province": scope is None,
            "can_download": principal.role in (Role.ADMIN, Role.LEADER, Role.OFFICER),
            "can_submit": principal.role in (Role.ADMIN, Role.OFFICER),
            "first": f"{year}-01-01",
            "last": (today if year == today.year else date(year, 12, 31)).isoformat(),
        },
    )
