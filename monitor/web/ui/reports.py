"""The reports page (`/reports`): the year's annual results report to download (DOCX to edit and sign, PDF,
XLSX, HTML preview), who has sent the signed report and who is late, the signed report's upload for an officer,
and the uptime and SLA tables as Excel files. Every link and form goes to the API's own routes."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import Query, Request
from fastapi.responses import Response
from sqlmodel import col, select

from monitor.auth.models import Role
from monitor.bounds import MAX_YEAR, MIN_YEAR
from monitor.db import utcnow
from monitor.i18n import local_today
from monitor.inventory.models import Commune, District
from monitor.reports import training
from monitor.reports.annual import PLAN_FIRST_YEAR
from monitor.reports.submission import Deadlines, submission_status
from monitor.web.bodies import api_router
from monitor.web.deps import ScopedList, SessionDep, SettingsDep
from monitor.web.ui.door import PagePrincipal
from monitor.web.ui.render import render

router = api_router(include_in_schema=False)  # a `def` page runs in one thread, its session closed there


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


@router.get("/training")
def training_page(
    request: Request,
    principal: PagePrincipal,
    session: SessionDep,
    scope: ScopedList,
    year: Annotated[int | None, Query(ge=MIN_YEAR, le=MAX_YEAR)] = None,
) -> Response:
    """The training register of the person's districts: the year's sessions, the share of communes whose
    grassroots information officer was trained this year and since the plan began, and the forms to record a
    session and its attendees (officers for their own district)."""
    today = local_today(utcnow())
    year = year or today.year
    first, last = date(year, 1, 1), min(date(year, 12, 31), today) if year == today.year else date(year, 12, 31)
    sessions = training.list_sessions(session=session, district_codes=scope.district_codes, first=first, last=last)
    communes = select(Commune).order_by(col(Commune.district_code), col(Commune.name))
    districts = select(District).order_by(col(District.code))
    if scope.district_codes is not None:
        communes = communes.where(col(Commune.district_code).in_(scope.district_codes))
        districts = districts.where(col(District.code).in_(scope.district_codes))
    return render(
        request,
        "training.html",
        {
            "principal": principal,
            "year": year,
            "sessions": sessions,
            "coverage_year": training.coverage(
                session=session, district_codes=scope.district_codes, first=first, last=last
            ),
            "coverage_plan": training.coverage(
                session=session,
                district_codes=scope.district_codes,
                first=date(min(PLAN_FIRST_YEAR, year), 1, 1),
                last=last,
            ),
            "plan_first_year": min(PLAN_FIRST_YEAR, year),
            "communes": list(session.exec(communes)),
            "districts": list(session.exec(districts)),
            "roles": list(training.AttendeeRole),
            "can_write": principal.role in (Role.ADMIN, Role.OFFICER),
            "today": today,
        },
    )
