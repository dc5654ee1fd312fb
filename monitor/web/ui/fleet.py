"""The fleet's pages: problems grouped by commune (`/problems`), devices (`/devices`, `/devices/{code}`).

Same door, same services as the API: `ScopedList` for lists, `VisibleDevice` for one device (another district's is
a 404). Actions (acknowledge problems, maintenance windows) are sent by the page to the API's own routes.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Query, Request
from fastapi.responses import Response
from sqlmodel import col, select

from monitor.alerts import service as alerts
from monitor.alerts.models import AlertProblem
from monitor.auth.models import Role
from monitor.db import utcnow
from monitor.health.queries import DeviceFilter, device_state_changes, list_devices
from monitor.health.states import DeviceState
from monitor.i18n import local_date
from monitor.inventory.choices import DeviceKind
from monitor.inventory.models import Commune, District
from monitor.reports.uptime import GroupBy, uptime_report
from monitor.tickets import service as tickets
from monitor.tickets.queries import TicketFilters
from monitor.web.bodies import api_router
from monitor.web.deps import ScopedList, SessionDep, VisibleDevice
from monitor.web.ui.door import PagePrincipal
from monitor.web.ui.render import render

router = api_router(include_in_schema=False)  # a `def` page runs in one thread, its session closed there
PAGE = 50


@router.get("/problems")
def problems_page(request: Request, principal: PagePrincipal, session: SessionDep, scope: ScopedList) -> Response:
    """Active problems, grouped by commune (a commune-wide outage is one problem), newest first."""
    active = alerts.list_problems(session=session, district_codes=scope.district_codes, limit=500)
    communes = {p.commune_code for p in active if p.commune_code}
    names = dict(session.exec(select(Commune.code, Commune.name).where(col(Commune.code).in_(communes))).all())
    groups: dict[str, list[AlertProblem]] = defaultdict(list)
    for problem in active:
        groups[problem.commune_code or ""].append(problem)
    ordered = sorted(groups.items(), key=lambda item: (item[0] == "", -max(p.started_at.timestamp() for p in item[1])))
    return render(
        request,
        "problems.html",
        {
            "principal": principal,
            "now": utcnow(),
            "groups": [(code, names.get(code, code), items) for code, items in ordered],
            "total": len(active),
            "can_act": principal.role in (Role.ADMIN, Role.OFFICER, Role.TECHNICIAN),
        },
    )


@router.get("/devices")
def devices_page(
    request: Request,
    principal: PagePrincipal,
    session: SessionDep,
    scope: ScopedList,
    commune: Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_.-]*$")] = None,
    kind: Annotated[DeviceKind | None, Query()] = None,
    state: Annotated[DeviceState | None, Query()] = None,
    q: Annotated[str | None, Query(max_length=100, pattern=r"^[^\x00-\x1f\x7f]*$")] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Response:
    """Devices with their state, filtered as the URL says (accents optional in the search)."""
    filters = DeviceFilter(
        district=scope.district, commune=commune or None, kind=kind, q=q or None, state=state, active=True
    )
    rows, total = list_devices(
        filters, session=session, limit=PAGE, offset=offset, district_codes=principal.scope.district_codes
    )
    args = {k: v for k, v in request.query_params.items() if k != "offset"}
    return render(
        request,
        "devices.html",
        {
            "principal": principal,
            "now": utcnow(),
            "rows": rows,
            "total": total,
            "args": args,
            "kinds": list(DeviceKind),
            "states": list(DeviceState),
            "next_url": f"/devices?{urlencode({**args, 'offset': offset + PAGE})}" if offset + PAGE < total else None,
            "prev_url": f"/devices?{urlencode({**args, 'offset': max(0, offset - PAGE)})}" if offset else None,
            "export_query": urlencode(args),
        },
    )


@router.get("/devices/{code}")
def device_page(request: Request, row: VisibleDevice, principal: PagePrincipal, session: SessionDep) -> Response:
    """One device: its state and since when, faults, readings, state history, uptime, tickets, maintenance."""
    device, commune, parent, health = row
    now = utcnow()
    today = local_date(now)
    uptime = {
        days: uptime_report(
            session, today - timedelta(days=days - 1), today, now=now, by=GroupBy.DEVICE, device_code=device.code
        ).total
        for days in (7, 30)
    }
    district = session.get(District, commune.district_code)
    history = device_state_changes(device.code, session=session, limit=30)
    open_tickets = tickets.list_tickets(
        TicketFilters(device=device.code), session=session, district_codes=principal.scope.district_codes, limit=20
    ).items
    windows = [
        w
        for w in alerts.list_windows(session=session, district_codes=principal.scope.district_codes)
        if (w.scope == "device" and w.scope_code == device.code)
        or (w.scope == "commune" and w.scope_code == commune.code)
        or (w.scope == "district" and w.scope_code == commune.district_code)
        or (w.scope == "kind" and w.scope_code == device.kind)
    ]
    return render(
        request,
        "device.html",
        {
            "principal": principal,
            "now": now,
            "device": device,
            "commune": commune,
            "district": district,
            "parent": parent,
            "health": health,
            "uptime": uptime,
            "history": history,
            "tickets": open_tickets,
            "windows": windows,
            "can_maintain": principal.role in (Role.ADMIN, Role.OFFICER),
        },
    )


@router.get("/map")
def map_page(request: Request, principal: PagePrincipal, scope: ScopedList) -> Response:
    """Devices by commune, coloured by state; the tile server is a setting (none: points and communes only)."""
    return render(request, "map.html", {"principal": principal, "district": scope.district})
