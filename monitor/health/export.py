"""Devices with their current health as rows for a spreadsheet: the list's filters, the caller's districts.

Read in keyset batches by device code (the list's own order and its unique index), each batch in a short
session of its own, so that a large fleet never sits in memory and no connection waits on a slow client.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from monitor.health.models import DeviceHealthRow
from monitor.health.queries import DeviceFilter, device_conditions
from monitor.health.states import DeviceState, fault_label
from monitor.inventory.choices import DeviceKind
from monitor.inventory.models import Commune, Device, District
from monitor.tabular import Cell

BATCH = 1000

#: (Vietnamese header, English header), in the order of the cells of `device_rows`.
COLUMNS: Sequence[tuple[str, str]] = (
    ("Mã thiết bị", "Device"),
    ("Tên", "Name"),
    ("Loại thiết bị", "Kind"),
    ("Mã xã", "Commune code"),
    ("Xã", "Commune"),
    ("Mã huyện/khu vực", "District code"),
    ("Huyện/khu vực", "District"),
    ("Thiết bị cha", "Parent"),
    ("Hãng", "Vendor"),
    ("Model", "Model"),
    ("Đang sử dụng", "Active"),
    ("Trạng thái", "State"),
    ("Từ lúc", "Since"),
    ("Lỗi", "Faults"),
    ("Liên lạc lần cuối", "Last seen"),
)
#: Column widths for a workbook, in characters.
WIDTHS: Sequence[int] = (16, 36, 24, 8, 22, 10, 18, 16, 14, 14, 10, 14, 16, 30, 16)


def header(language: str = "vi") -> list[str]:
    """The column headers, Vietnamese unless `language` is "en"."""
    return [en if language == "en" else vi for vi, en in COLUMNS]


def _label(choices: Any, value: str, language: str) -> str:
    try:
        return str(choices(value).label(language))
    except ValueError:
        return value


def _cells(row: Any, language: str) -> list[Cell]:
    device: Device = row[0]
    commune: Commune = row[1]
    health: DeviceHealthRow | None = row[4]
    yes, no = ("Yes", "No") if language == "en" else ("Có", "Không")
    state = health.state if health is not None else DeviceState.UNKNOWN.value
    return [
        device.code,
        device.name,
        _label(DeviceKind, device.kind, language),
        commune.code,
        commune.name,
        commune.district_code,
        row[2],  # the district's name
        row[3],  # the parent's code
        device.vendor or None,
        device.model or None,
        yes if device.active else no,
        _label(DeviceState, state, language),
        health.since if health is not None else None,
        "; ".join(fault_label(code, language) for code in health.faults) if health is not None else None,
        health.last_seen if health is not None else None,
    ]


def device_rows(
    filters: DeviceFilter,
    *,
    engine: Engine,
    district_codes: frozenset[str] | None = None,
    language: str = "vi",
    batch: int = BATCH,
) -> Iterator[list[Cell]]:
    """Every device matching `filters` within `district_codes` (the rows of the list with the same filters),
    one list of cells per device in the order of `COLUMNS`, by code; lazy: `batch` devices are read at a
    time, each batch in a session of its own, when the rows before it have been taken.

    The filters are checked first (a district or commune outside `district_codes` is NotFound), before any
    row is produced, so that a caller can answer 404 before it starts sending."""
    with Session(engine) as session:
        where = device_conditions(filters, session=session, district_codes=district_codes)
    return _batches(where, engine=engine, language=language, batch=batch)


def _batches(where: list[Any], *, engine: Engine, language: str, batch: int) -> Iterator[list[Cell]]:
    parent = sa.orm.aliased(Device)
    query = (
        sa.select(Device, Commune, col(District.name), col(parent.code), DeviceHealthRow)
        .join(Commune, col(Device.commune_code) == col(Commune.code))
        .join(District, col(District.code) == col(Commune.district_code))
        .outerjoin(parent, col(Device.parent_id) == parent.id)
        .outerjoin(DeviceHealthRow, col(DeviceHealthRow.device_id) == col(Device.id))
        .where(*where)
        .order_by(col(Device.code))
        .limit(batch)
    )
    after: str | None = None
    while True:
        with Session(engine) as session:
            page = query if after is None else query.where(col(Device.code) > after)
            rows = session.execute(page).all()
        for row in rows:
            yield _cells(row, language)
        if len(rows) < batch:
            return
        after = rows[-1][0].code
