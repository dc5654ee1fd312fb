"""The fleet on a map (`GET /api/v1/map`): every active device with a position, its state, and each commune with
its counts, as compact rows (a province's fleet in one answer the map page clusters), scoped like every list."""

from __future__ import annotations

from collections import Counter
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlmodel import col, select

from monitor.health.models import DeviceHealthRow
from monitor.health.states import DeviceState
from monitor.inventory.models import Commune, Device
from monitor.web.bodies import api_router
from monitor.web.deps import ScopedList, SessionDep
from monitor.web.openapi import problems

router = api_router(prefix="/api/v1/map", tags=["inventory"])


class FleetMap(BaseModel):
    """`devices`: [code, name, kind, state, lat, lon, commune code]; `communes`: [code, name, lat, lon, devices,
    down] (a commune's own position, approximate, or none). States as the device list gives them."""

    devices: list[list[Any]]
    communes: list[list[Any]]


@router.get("", response_model=FleetMap, responses=problems(401, 404))
def fleet_map(session: SessionDep, scope: ScopedList) -> FleetMap:
    """Devices with a position and their state now, and the communes with their counts, for the map."""
    state = sa.func.coalesce(col(DeviceHealthRow.state), DeviceState.UNKNOWN.value)
    query = (
        sa.select(
            col(Device.code),
            col(Device.name),
            col(Device.kind),
            state,
            col(Device.lat),
            col(Device.lon),
            col(Device.commune_code),
        )
        .join(Commune, col(Commune.code) == col(Device.commune_code))
        .join(DeviceHealthRow, col(DeviceHealthRow.device_id) == col(Device.id), isouter=True)
        .where(col(Device.active))
        .order_by(col(Device.code))
    )
    communes = select(Commune.code, Commune.name, Commune.lat, Commune.lon).order_by(col(Commune.code))
    if scope.district_codes is not None:
        query = query.where(col(Commune.district_code).in_(scope.district_codes))
        communes = communes.where(col(Commune.district_code).in_(scope.district_codes))
    rows = [tuple(row) for row in session.execute(query).all()]
    totals, down = Counter(r[6] for r in rows), Counter(r[6] for r in rows if r[3] == DeviceState.DOWN.value)
    return FleetMap(
        devices=[list(r) for r in rows if r[4] is not None and r[5] is not None],
        communes=[[c, n, la, lo, totals.get(c, 0), down.get(c, 0)] for c, n, la, lo in session.exec(communes).all()],
    )
