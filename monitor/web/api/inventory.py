"""Inventory API: districts, communes, devices (read-only here; changes go through fleet files)."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Literal

from fastapi import Depends, Query, Response

from monitor.bounds import PRINTABLE
from monitor.db import utcnow
from monitor.errors import InvalidInput, Problem
from monitor.health import export as device_export
from monitor.health import queries as fleet
from monitor.health.schemas import DevicePage, DevicePublic, DistrictPublic, StateChangePublic
from monitor.health.states import DeviceState
from monitor.inventory import service
from monitor.inventory.choices import DeviceKind
from monitor.inventory.schemas import BroadcastSystemPublic, CommuneDetail, CommunePage, CommunePublic
from monitor.web.bodies import api_router
from monitor.web.deps import EngineDep, PrincipalDep, ScopedList, SessionDep, VisibleCommune, VisibleDevice
from monitor.web.downloads import EXPORT_CONTENT, ExportFormat, file_name, table_response
from monitor.web.openapi import problems
from monitor.web.params import Offset

router = api_router(prefix="/api/v1", tags=["inventory"])

Code = Annotated[str, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
SearchText = Annotated[
    str | None, Query(max_length=100, pattern=PRINTABLE, description="text to find, accents and case ignored")
]


@router.get("/districts", response_model=list[DistrictPublic])
def list_districts(session: SessionDep, principal: PrincipalDep) -> list[DistrictPublic]:
    """Every district (or maintenance area), with its numbers of communes and devices, and its active devices
    by current state: the province at a glance."""
    return [
        DistrictPublic(
            code=s.district.code,
            name=s.district.name,
            type=s.district.type,
            commune_count=s.commune_count,
            device_count=s.device_count,
            devices_by_state=s.devices_by_state,
        )
        for s in fleet.list_districts(session=session, district_codes=principal.scope.district_codes)
    ]


@router.get("/communes", response_model=CommunePage, responses=problems(404))
def list_communes(
    session: SessionDep,
    scope: ScopedList,
    q: SearchText = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
    offset: Offset = 0,
) -> CommunePage:
    """Communes, optionally of one district, with a text search that ignores accents and case."""
    rows, total = service.list_communes(
        session=session, q=q, limit=limit, offset=offset, district_codes=scope.district_codes
    )
    return CommunePage(items=[CommunePublic.build(row) for row in rows], total=total)


@router.get("/communes/{code}", response_model=CommuneDetail)
def get_commune(found: VisibleCommune) -> CommuneDetail:
    """One commune with its broadcast systems (technology and condition, for the plan's targets)."""
    commune, systems = found
    return CommuneDetail(
        **commune.model_dump(exclude={"search_text"}),
        broadcast_systems=[BroadcastSystemPublic.build(s) for s in systems],
    )


async def device_filter(
    commune: Code | None = None,
    kind: DeviceKind | None = None,
    active: bool | None = None,
    state: Annotated[DeviceState | None, Query(description="current health, e.g. down: what is down now")] = None,
    q: SearchText = None,
) -> fleet.DeviceFilter:
    """The devices' filters, the list's and the export's: commune, kind, in use, current state, text."""
    return fleet.DeviceFilter(commune=commune, kind=kind, q=q, active=active, state=state)


DeviceFilters = Annotated[fleet.DeviceFilter, Depends(device_filter)]


@router.get("/devices", response_model=DevicePage, responses=problems(404))
def list_devices(
    session: SessionDep,
    scope: ScopedList,
    filters: DeviceFilters,
    order: Annotated[
        Literal["code", "longest"],
        Query(description="code, or longest: longest in its state first (with state=down: the oldest outages)"),
    ] = "code",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: Annotated[
        str | None, Query(max_length=64, pattern=PRINTABLE, description="last code of the previous page")
    ] = None,
    offset: Offset = 0,
) -> DevicePage:
    """Devices ordered by code, with their current health, filtered by district, commune, kind, state, and a
    text search ignoring accents (`dinh lap` finds Đình Lập). Page with `after` (keyset) or `offset`."""
    if order == "longest" and after is not None:
        raise InvalidInput("`after` pages the order by code", [Problem("after", "use offset with order=longest")])
    rows, total = fleet.list_devices(
        replace(filters, longest_first=order == "longest"),
        session=session,
        limit=limit,
        after=after,
        offset=offset,
        district_codes=scope.district_codes,
    )
    items = [DevicePublic.build(d, c, p, h) for d, c, p, h in rows]
    next_after = items[-1].code if len(items) == limit and order == "code" else None
    return DevicePage(items=items, total=total, next_after=next_after)


# Before `/devices/{code}`: the first route that matches a path wins, and `export` would be read as a device code.
@router.get(
    "/devices/export",
    response_class=Response,
    responses={200: {"content": EXPORT_CONTENT, "description": "the devices as a file"}, **problems(401, 404, 422)},
)
def export_devices(
    engine: EngineDep,
    scope: ScopedList,
    filters: DeviceFilters,
    format: ExportFormat = "csv",
    lang: Literal["vi", "en"] = "vi",
) -> Response:
    """Every device the list shows with the same filters, with its current health, as CSV (UTF-8 with a BOM,
    for Excel) or XLSX: headers, kinds, states and faults in Vietnamese (`lang=en`: English), times
    dd/mm/yyyy HH:MM in Vietnam time, by code. Streamed: any number of devices in little memory."""
    rows = device_export.device_rows(filters, engine=engine, district_codes=scope.district_codes, language=lang)
    return table_response(
        format,
        file_name("devices", format, utcnow()),
        device_export.header(lang),
        rows,
        sheet_name="Devices" if lang == "en" else "Thiết bị",
        widths=device_export.WIDTHS,
    )


@router.get("/devices/{code}", response_model=DevicePublic)
def get_device(device: VisibleDevice) -> DevicePublic:
    """One device by its code, with its current health."""
    return DevicePublic.build(*device)


@router.get("/devices/{code}/state-changes", response_model=list[StateChangePublic])
def device_state_changes(
    device: VisibleDevice,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[StateChangePublic]:
    """The device's latest state changes, newest first: when it went down, came back, which faults."""
    changes = fleet.device_state_changes(device[0].code, session=session, limit=limit)
    return [StateChangePublic.build(change) for change in changes]
