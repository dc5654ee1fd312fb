"""The fleet's read side: devices with their current health, and districts' devices by state.

Here rather than in `inventory`, so that the inventory knows nothing of health: health reads the
inventory's tables (one way), the inventory never reads health's.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from monitor.errors import NotFound
from monitor.health.models import DeviceHealthRow, StateChange
from monitor.health.states import DeviceState
from monitor.inventory.choices import DeviceKind
from monitor.inventory.models import Commune, Device, District
from monitor.inventory.service import get_commune, get_district
from monitor.text import fold, like_pattern


@dataclass(frozen=True, slots=True)
class DistrictSummary:
    district: District
    commune_count: int
    device_count: int
    #: Active devices by their current state (every state present, zeros too; never heard is unknown).
    devices_by_state: dict[str, int] = field(default_factory=dict)


def list_districts(*, session: Session, district_codes: frozenset[str] | None = None) -> list[DistrictSummary]:
    """Districts (or maintenance areas) with their numbers of communes and devices.

    `district_codes` limits what is seen (a district-scoped user); None means every district. The counts are
    taken for those districts alone: an officer's overview does not count the province's 100,000 devices.
    """
    communes_query = select(Commune.district_code, func.count()).group_by(col(Commune.district_code))
    devices_query = (
        select(Commune.district_code, func.count())
        .select_from(Device)
        .join(Commune, col(Device.commune_code) == Commune.code)
        .group_by(col(Commune.district_code))
    )
    state = sa.func.coalesce(col(DeviceHealthRow.state), DeviceState.UNKNOWN.value)
    states_query = (
        select(Commune.district_code, state, func.count())
        .select_from(Device)
        .join(Commune, col(Device.commune_code) == Commune.code)
        .join(DeviceHealthRow, col(DeviceHealthRow.device_id) == Device.id, isouter=True)
        .where(col(Device.active).is_(True))
        .group_by(col(Commune.district_code), state)
    )
    query = select(District).order_by(col(District.code))
    if district_codes is not None:
        scope = sorted(district_codes)
        communes_query = communes_query.where(col(Commune.district_code).in_(scope))
        devices_query = devices_query.where(col(Commune.district_code).in_(scope))
        states_query = states_query.where(col(Commune.district_code).in_(scope))
        query = query.where(col(District.code).in_(scope))
    communes = dict(session.exec(communes_query).all())
    devices = dict(session.exec(devices_query).all())
    by_state: dict[str, dict[str, int]] = defaultdict(lambda: {s.value: 0 for s in DeviceState})
    for district_code, state_value, count in session.exec(states_query):
        by_state[district_code][state_value] = int(count)
    return [
        DistrictSummary(d, communes.get(d.code, 0), devices.get(d.code, 0), dict(by_state[d.code]))
        for d in session.exec(query)
    ]


@dataclass(frozen=True, slots=True)
class DeviceFilter:
    district: str | None = None
    commune: str | None = None
    kind: DeviceKind | None = None
    q: str | None = None
    active: bool | None = None
    state: DeviceState | None = None  # `unknown` also finds devices never judged (no health row yet)
    longest_first: bool = False  # by how long they have been in their state (oldest `since` first), not by code


#: A device as listed: itself, its commune, its parent's code, and its current health (None: never judged).
DeviceRow = tuple[Device, Commune, str | None, DeviceHealthRow | None]


def _health_condition(state: DeviceState) -> Any:
    if state is DeviceState.UNKNOWN:
        return sa.or_(col(DeviceHealthRow.state).is_(None), col(DeviceHealthRow.state) == state.value)
    return DeviceHealthRow.state == state.value


def list_devices(
    filters: DeviceFilter,
    *,
    session: Session,
    limit: int = 100,
    after: str | None = None,
    offset: int = 0,
    district_codes: frozenset[str] | None = None,
) -> tuple[list[DeviceRow], int]:
    """A page of devices ordered by code, with their commune, parent code and health, and the total.

    Keyset pagination with `after` (the last code of the previous page) stays fast on any page;
    `offset` is there for tables that jump to a page number. With `filters.longest_first` the order is
    by how long each device has been in its state (`state=down` then reads as the oldest outages first;
    never judged last), then by code; page that order with `offset`.
    """
    parent = sa.orm.aliased(Device)
    where = device_conditions(filters, session=session, district_codes=district_codes)
    health_join = col(DeviceHealthRow.device_id) == Device.id
    base = select(Device).join(Commune, col(Device.commune_code) == Commune.code)
    if filters.state is not None:  # the count needs the health rows only to filter on them
        base = base.join(DeviceHealthRow, health_join, isouter=True)
    base = base.where(*where)
    total = session.exec(select(func.count()).select_from(base.subquery())).one()
    query = (
        select(Device, Commune, parent.code, DeviceHealthRow)
        .join(Commune, col(Device.commune_code) == Commune.code)
        .join(parent, col(Device.parent_id) == parent.id, isouter=True)
        .join(DeviceHealthRow, health_join, isouter=True)
        .where(*where)
    )
    if after is not None:
        query = query.where(col(Device.code) > after)
    order: list[Any] = [col(Device.code)]
    if filters.longest_first:
        order = [col(DeviceHealthRow.since).is_(None), col(DeviceHealthRow.since), *order]
    rows = session.exec(query.order_by(*order).limit(limit).offset(offset)).all()
    return [(d, c, p, h) for d, c, p, h in rows], total


def device_conditions(
    filters: DeviceFilter, *, session: Session, district_codes: frozenset[str] | None = None
) -> list[Any]:
    """The WHERE conditions of `filters` within `district_codes` (the list's and the export's, written once),
    over devices joined to their commune and, outer, their health. A district or commune outside
    `district_codes` is NotFound, like an unknown one."""
    where: list[Any] = []
    if district_codes is not None:
        where.append(col(Commune.district_code).in_(district_codes))
    if filters.district:
        get_district(filters.district, session=session, district_codes=district_codes)
        where.append(Commune.district_code == filters.district)
    if filters.commune:
        get_commune(filters.commune, session=session, district_codes=district_codes)
        where.append(Device.commune_code == filters.commune)
    if filters.kind:
        where.append(Device.kind == filters.kind.value)
    if filters.active is not None:
        where.append(Device.active == filters.active)
    if filters.q and fold(filters.q):
        where.append(col(Device.search_text).like(like_pattern(filters.q), escape="\\"))
    if filters.state is not None:
        where.append(_health_condition(filters.state))
    return where


def get_device(code: str, *, session: Session, district_codes: frozenset[str] | None = None) -> DeviceRow:
    """One device with its commune, parent code and health; NotFound for an unknown code or one out of scope."""
    parent = sa.orm.aliased(Device)
    row = session.exec(
        select(Device, Commune, parent.code, DeviceHealthRow)
        .join(Commune, col(Device.commune_code) == Commune.code)
        .join(parent, col(Device.parent_id) == parent.id, isouter=True)
        .join(DeviceHealthRow, col(DeviceHealthRow.device_id) == Device.id, isouter=True)
        .where(Device.code == code)
    ).first()
    if row is None or (district_codes is not None and row[1].district_code not in district_codes):
        raise NotFound("device", code)
    return row[0], row[1], row[2], row[3]


def current_health(device_id: int, *, session: Session) -> DeviceHealthRow | None:
    """The device's current health (state, since when, faults); None if it was never judged."""
    return session.get(DeviceHealthRow, device_id)


def device_state_changes(
    code: str, *, session: Session, district_codes: frozenset[str] | None = None, limit: int = 50
) -> list[StateChange]:
    """The device's latest state changes, newest first (NotFound as `get_device`)."""
    device = get_device(code, session=session, district_codes=district_codes)[0]
    assert device.id is not None
    return state_changes_of(device.id, session=session, limit=limit)


# A ticket's page: its device's changes since the ticket opened (built once: see state_changes_since).
_CHANGES_SINCE = (
    select(StateChange)
    .where(col(StateChange.device_id) == sa.bindparam("device_id"), col(StateChange.at) >= sa.bindparam("since"))
    .order_by(col(StateChange.id).desc())
    .limit(50)
)


def state_changes_since(device_id: int, since: datetime, *, session: Session) -> list[StateChange]:
    """The device's state changes from `since` on (at most the latest 50), newest first: a ticket's timeline.
    The device was found already (through the reader's scope)."""
    return list(session.exec(_CHANGES_SINCE, params={"device_id": device_id, "since": since}))


def state_changes_of(device_id: int, *, session: Session, limit: int = 50) -> list[StateChange]:
    """The latest state changes of a device already found (and checked against the reader's scope), newest first."""
    query = (
        select(StateChange)
        .where(StateChange.device_id == device_id)
        .order_by(col(StateChange.id).desc())
        .limit(max(1, min(limit, 500)))
    )
    return list(session.exec(query))
