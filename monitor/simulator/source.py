"""Where the simulated devices come from: the inventory database (read only), or a list built by hand."""

from __future__ import annotations

from typing import cast

import sqlalchemy as sa

from monitor.config import Settings
from monitor.db import make_engine
from monitor.inventory.models import Commune, Device
from monitor.simulator.fleet import SimDevice


def devices_from_inventory(settings: Settings) -> list[SimDevice]:
    """Every active device of the configured inventory, with its commune's district and its parent's code."""
    engine = make_engine(settings)
    devices = cast(sa.Table, Device.__table__)  # type: ignore[attr-defined]
    communes = cast(sa.Table, Commune.__table__)  # type: ignore[attr-defined]
    parent = devices.alias("parent")
    query = (
        sa.select(
            devices.c.code,
            devices.c.kind,
            devices.c.protocol,
            devices.c.address,
            devices.c.port,
            devices.c.profile,
            devices.c.interval_s,
            parent.c.code.label("parent_code"),
            devices.c.commune_code,
            communes.c.district_code,
            devices.c.credentials,
        )
        .select_from(devices)
        .join(communes, communes.c.code == devices.c.commune_code)
        .outerjoin(parent, parent.c.id == devices.c.parent_id)
        .where(devices.c.active == sa.true())
        .order_by(devices.c.code)
    )
    try:
        with engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
    finally:
        engine.dispose()
    return [
        SimDevice(
            code=row["code"],
            kind=row["kind"],
            protocol=row["protocol"],
            address=row["address"] or "",
            port=row["port"],
            profile=row["profile"],
            interval_s=int(row["interval_s"]),
            parent_code=row["parent_code"],
            commune_code=row["commune_code"],
            district_code=row["district_code"],
            credentials=row["credentials"],
        )
        for row in rows
    ]
