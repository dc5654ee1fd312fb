"""The yearly review of the stations and the budget basis (rà soát hiện trạng, lập dự toán năm sau).

The provincial plan asks the department, with the districts, to review every year the state of the commune
radio stations and public bulletin boards and to build the next year's budget estimate from it. This module
computes the figures once, as plain dataclasses; the annual results report, the CLI and the API write them.

How the figures are defined (`METHOD_VI`, `METHOD_EN` print it):

- **Devices** count when active and installed by the last day of the period (no install date: known to the
  service by then). Age runs from the install date to the last day.
- **Availability, outages, down time** come from the state history (`uptime_report`, by device).
- **A repair** is a resolution, in the period, of a corrective ticket (not planned work, not an inspection)
  about a device; a ticket reopened and fixed again counts twice.
- **Costs** are the parts and labour of the corrective tickets whose (latest) resolution falls in the period,
  each ticket once, with or without a device; the parts replaced are counted from the same tickets.
- **Planned work** is the planned tickets and inspections due in the period: done, done by the due day, and
  still open past it.
- **Flags for replacement**: older than `replace_after_years`, repaired more than `replace_after_repairs`
  times, or less available than `replace_below_availability` (a device never seen is not flagged for it).
- **The estimate** for next year, per kind of device: planned inspections (devices x inspections a year x
  unit cost); repairs (this year's repairs per device x devices x this year's mean cost per repair ticket,
  or the fallback unit cost when no repair of that kind was costed); replacements (flagged devices x the
  cost of a new one). Every line's amount is its quantity times its unit cost.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from monitor.inventory.choices import BroadcastTechnology, DeviceKind
from monitor.inventory.models import BroadcastSystem, Commune, Device, District
from monitor.reports.review_policy import KINDS, ReplaceReason, ReviewPolicy, UnitCosts, load_unit_costs
from monitor.reports.timeline import StateSeconds, period_bounds
from monitor.reports.uptime import GroupBy, check_period, uptime_report
from monitor.text import fold
from monitor.tickets.choices import DONE_STATUSES, EventKind, TicketSource, TicketStatus
from monitor.tickets.models import Ticket, TicketEvent

TICKETS = Ticket.__table__  # type: ignore[attr-defined]
EVENTS = TicketEvent.__table__  # type: ignore[attr-defined]
DEVICES = Device.__table__  # type: ignore[attr-defined]
COMMUNES = Commune.__table__  # type: ignore[attr-defined]
DISTRICTS = District.__table__  # type: ignore[attr-defined]
SYSTEMS = BroadcastSystem.__table__  # type: ignore[attr-defined]

LEGACY = frozenset({BroadcastTechnology.WIRED.value, BroadcastTechnology.FM.value})
INSPECTION = "inspection"
NO_DEVICE = "other"  # the costs of corrective tickets about a whole commune or district
DAYS_PER_YEAR = 365.25

METHOD_VI = (
    "Thiết bị được tính khi đang hoạt động và đã lắp đặt đến ngày cuối kỳ; tuổi tính từ ngày lắp đặt. "
    "Tỷ lệ hoạt động và số lần mất kết nối theo lịch sử trạng thái. Sửa chữa: mỗi lần khắc phục trong kỳ một "
    "phiếu sự cố (không tính bảo trì định kỳ) của thiết bị. Chi phí: vật tư và nhân công của các phiếu sự cố "
    "được khắc phục trong kỳ. Đề xuất thay thế: quá niên hạn, sửa chữa quá số lần, hoặc tỷ lệ hoạt động thấp. "
    "Dự toán năm sau: kiểm tra định kỳ (số thiết bị x số lần/năm x đơn giá), sửa chữa (số lần sửa năm nay "
    "trên mỗi thiết bị x số thiết bị x chi phí bình quân một phiếu), thay thế (số thiết bị đề xuất x đơn giá)."
)
METHOD_EN = (
    "A device counts when active and installed by the last day; its age runs from its install date. "
    "Availability and outages from the state history. A repair: each resolution in the period of a corrective "
    "ticket (not planned work) about the device. Costs: parts and labour of the corrective tickets resolved in "
    "the period. Flagged for replacement: too old, repaired too often, or too rarely available. Next year's "
    "estimate: inspections (devices x inspections a year x unit cost), repairs (this year's repairs per device x "
    "devices x mean cost per repair ticket), replacements (flagged devices x unit cost)."
)


# --- the figures -------------------------------------------------------------------------------


@dataclass(slots=True)
class DeviceReview:
    """One device over the period: its age, how it held up, what it cost, and why to replace it (if so)."""

    code: str
    name: str
    kind: str
    commune_code: str
    installed_on: date | None
    age_years: float | None
    availability: float | None
    outages: int
    down_s: float
    repairs: int
    cost_vnd: int
    reasons: tuple[ReplaceReason, ...] = ()


@dataclass(slots=True)
class CommuneReview:
    """One commune: its broadcast systems as the plan counts them, and its devices over the period.

    `legacy`: a wired or FM system is still there (to convert). `cost_vnd` counts every corrective ticket of
    the commune resolved in the period, with or without a device; `repairs` those about its devices."""

    code: str
    name: str
    district_code: str
    district_name: str
    systems: list[tuple[str, str, int | None]] = field(default_factory=list)
    has_radio: bool = False
    ip_based: bool = False
    legacy: bool = False
    devices: list[DeviceReview] = field(default_factory=list)
    availability: float | None = None
    outages: int = 0
    repairs: int = 0
    cost_vnd: int = 0

    @property
    def flagged(self) -> list[DeviceReview]:
        """The devices proposed for replacement."""
        return [device for device in self.devices if device.reasons]


@dataclass(slots=True)
class MaintenanceRow:
    """Planned work due in the period: scheduled, done, done by its due day, still open past it."""

    key: str
    name: str
    scheduled: int = 0
    done: int = 0
    done_on_time: int = 0
    open_overdue: int = 0

    def add(self, other: MaintenanceRow) -> None:
        self.scheduled += other.scheduled
        self.done += other.done
        self.done_on_time += other.done_on_time
        self.open_overdue += other.open_overdue


@dataclass(slots=True)
class CostRow:
    """Corrective tickets resolved in the period and what their parts and labour cost."""

    key: str
    name: str
    tickets: int = 0
    parts_vnd: int = 0
    labour_vnd: int = 0

    @property
    def total_vnd(self) -> int:
        return self.parts_vnd + self.labour_vnd

    def add(self, tickets: int, parts_vnd: int, labour_vnd: int) -> None:
        self.tickets += tickets
        self.parts_vnd += parts_vnd
        self.labour_vnd += labour_vnd


@dataclass(slots=True)
class PartRow:
    """A part and how many times it was replaced."""

    name: str
    count: int


@dataclass(slots=True)
class EstimateLine:
    """A line of next year's estimate: `amount_vnd` = `quantity` x `unit_vnd`."""

    key: str
    label_vi: str
    label_en: str
    quantity: int
    unit_vnd: int
    amount_vnd: int


@dataclass(slots=True)
class YearlyReview:
    """The review of `first`..`last` (local days): communes and devices, planned work, costs, parts, and
    the estimate for next year."""

    first: date
    last: date
    policy: ReviewPolicy
    communes: list[CommuneReview]
    maintenance: list[MaintenanceRow]
    maintenance_total: MaintenanceRow
    costs_by_district: list[CostRow]
    costs_by_kind: list[CostRow]
    costs_total: CostRow
    parts: list[PartRow]
    estimate: list[EstimateLine]
    estimate_total_vnd: int
    generated_at: datetime | None = None

    @property
    def flagged_devices(self) -> list[DeviceReview]:
        """Every device proposed for replacement, commune by commune."""
        return [device for commune in self.communes for device in commune.flagged]

    @property
    def devices(self) -> int:
        return sum(len(commune.devices) for commune in self.communes)


def yearly_review(
    session: Session,
    first: date,
    last: date,
    *,
    now: datetime,
    districts: Collection[str] | None,
    policy: ReviewPolicy,
) -> YearlyReview:
    """The yearly review of the communes of `districts` (None: the province) over the local days [first, last].

    A few grouped queries whatever the size of the fleet: the communes, their systems, the devices, the
    uptime by device (one report), the repairs, the costs, the parts and the planned work."""
    check_period(first, last)
    start, end = period_bounds(first, last)
    connection = session.connection()
    scope = None if districts is None else sorted(districts)
    communes = _communes(connection, scope)
    _add_systems(connection, communes, scope)
    devices = _devices(connection, scope, end, last)
    uptime = uptime_report(session, first, last, now=now, by=GroupBy.DEVICE, districts=scope)
    seconds = {row.key: row.figures for row in uptime.rows}
    repairs = _repairs(connection, scope, start, end)
    costs = _cost_groups(connection, scope, start, end)
    device_cost: dict[int, int] = defaultdict(int)
    commune_cost: dict[str, int] = defaultdict(int)
    for group in costs:
        if group.device_id is not None:
            device_cost[group.device_id] += group.parts + group.labour
        if group.commune_code is not None:
            commune_cost[group.commune_code] += group.parts + group.labour
    commune_seconds: dict[str, StateSeconds] = defaultdict(StateSeconds)
    for row in devices:
        figures = seconds.get(row.code)
        availability = None if figures is None else figures.seconds.availability
        age = None if row.installed_on is None else max(0.0, (last - row.installed_on).days / DAYS_PER_YEAR)
        count = repairs.get(row.id, 0)
        review = DeviceReview(
            code=row.code,
            name=row.name,
            kind=row.kind,
            commune_code=row.commune_code,
            installed_on=row.installed_on,
            age_years=None if age is None else round(age, 2),
            availability=availability,
            outages=0 if figures is None else figures.outages.count,
            down_s=0.0 if figures is None else figures.seconds.down_s,
            repairs=count,
            cost_vnd=device_cost.get(row.id, 0),
            reasons=policy.reasons(age, count, availability),
        )
        commune = communes.get(row.commune_code)
        if commune is None:  # a device of a commune outside the scope cannot be read here; kept out all the same
            continue
        commune.devices.append(review)
        commune.outages += review.outages
        commune.repairs += review.repairs
        if figures is not None:
            commune_seconds[row.commune_code].merge(figures.seconds)
    for code, commune in communes.items():
        commune.cost_vnd = commune_cost.get(code, 0)
        commune.availability = commune_seconds[code].availability if code in commune_seconds else None
    district_names = {c.district_code: c.district_name for c in communes.values()}
    by_district, by_kind, total = _cost_rows(costs, district_names, scope)
    maintenance, maintenance_total = _maintenance(connection, scope, start, end, now, district_names)
    ordered = sorted(communes.values(), key=lambda c: (c.district_code, fold(c.name), c.code))
    estimate = _estimate(ordered, by_kind, policy)
    return YearlyReview(
        first=first,
        last=last,
        policy=policy,
        communes=ordered,
        maintenance=maintenance,
        maintenance_total=maintenance_total,
        costs_by_district=by_district,
        costs_by_kind=by_kind,
        costs_total=total,
        parts=_parts(connection, scope, start, end),
        estimate=estimate,
        estimate_total_vnd=sum(line.amount_vnd for line in estimate),
        generated_at=now,
    )


# --- pieces ------------------------------------------------------------------------------------


def _in_scope(column: Any, scope: list[str] | None) -> list[Any]:
    # The whole province still means its districts: a province ticket (no district: a collector's or
    # Prometheus's trouble) is the service's own, not the fleet's, and no district's repairs or budget.
    return [column.is_not(None)] if scope is None else [column.in_(scope)]


def _communes(connection: Any, scope: list[str] | None) -> dict[str, CommuneReview]:
    query = sa.select(
        COMMUNES.c.code, COMMUNES.c.name, COMMUNES.c.district_code, DISTRICTS.c.name.label("district")
    ).join(DISTRICTS, DISTRICTS.c.code == COMMUNES.c.district_code)
    query = query.where(*_in_scope(COMMUNES.c.district_code, scope))
    return {
        row.code: CommuneReview(
            code=row.code, name=row.name, district_code=row.district_code, district_name=row.district
        )
        for row in connection.execute(query)
    }


def _add_systems(connection: Any, communes: dict[str, CommuneReview], scope: list[str] | None) -> None:
    query = sa.select(SYSTEMS.c.commune_code, SYSTEMS.c.technology, SYSTEMS.c.condition, SYSTEMS.c.installed_year)
    if scope is not None:
        query = query.where(
            SYSTEMS.c.commune_code.in_(sa.select(COMMUNES.c.code).where(COMMUNES.c.district_code.in_(scope)))
        )
    for row in connection.execute(query.order_by(SYSTEMS.c.commune_code, SYSTEMS.c.id)):
        commune = communes.get(row.commune_code)
        if commune is None:
            continue
        commune.systems.append((row.technology, row.condition, row.installed_year))
        commune.has_radio = True
        commune.ip_based = commune.ip_based or row.technology == BroadcastTechnology.IP.value
        commune.legacy = commune.legacy or row.technology in LEGACY


def _devices(connection: Any, scope: list[str] | None, end: datetime, last: date) -> list[Any]:
    """The devices that count: active, and installed by `last` (no install date: known to the service by `end`)."""
    installed = sa.or_(
        DEVICES.c.installed_on <= last, sa.and_(DEVICES.c.installed_on.is_(None), DEVICES.c.created_at < end)
    )
    query = sa.select(
        DEVICES.c.id, DEVICES.c.code, DEVICES.c.name, DEVICES.c.kind, DEVICES.c.commune_code, DEVICES.c.installed_on
    ).where(DEVICES.c.active.is_(True), installed)
    if scope is not None:
        query = query.where(
            DEVICES.c.commune_code.in_(sa.select(COMMUNES.c.code).where(COMMUNES.c.district_code.in_(scope)))
        )
    return list(connection.execute(query.order_by(DEVICES.c.code)))


def _corrective() -> list[Any]:
    """Tickets that are repairs, not planned work."""
    return [TICKETS.c.source != TicketSource.PLANNED.value, TICKETS.c.kind != INSPECTION]


def _repairs(connection: Any, scope: list[str] | None, start: datetime, end: datetime) -> dict[int, int]:
    """The resolutions in [start, end) of each device's corrective tickets by someone, by device id.

    A ticket closed because the device came back by itself (power restored, the link back) is an outage,
    counted as such, but not a repair: only a resolution a person made (a status change) counts here."""
    resolved = TicketStatus.RESOLVED.value
    query = (
        sa.select(TICKETS.c.device_id, sa.func.count().label("count"))
        .select_from(EVENTS.join(TICKETS, TICKETS.c.id == EVENTS.c.ticket_id))
        .where(
            EVENTS.c.kind == EventKind.STATUS.value,
            EVENTS.c.to_value == resolved,
            EVENTS.c.at >= start,
            EVENTS.c.at < end,
            TICKETS.c.device_id.is_not(None),
            TICKETS.c.updated_at >= start,  # every event touches its ticket: prunes the years before
            *_corrective(),
            *_in_scope(TICKETS.c.district_code, scope),
        )
        .group_by(TICKETS.c.device_id)
    )
    return {row.device_id: int(row.count) for row in connection.execute(query)}


@dataclass(frozen=True, slots=True)
class _CostGroup:
    district_code: str
    commune_code: str | None
    device_id: int | None
    kind: str | None
    tickets: int
    parts: int
    labour: int


def _resolved_in(start: datetime, end: datetime) -> list[Any]:
    return [TICKETS.c.resolved_at >= start, TICKETS.c.resolved_at < end]


def _cost_groups(connection: Any, scope: list[str] | None, start: datetime, end: datetime) -> list[_CostGroup]:
    """Corrective tickets resolved in [start, end), counted and costed per (district, commune, device)."""
    query = (
        sa.select(
            TICKETS.c.district_code,
            TICKETS.c.commune_code,
            TICKETS.c.device_id,
            DEVICES.c.kind,
            sa.func.count().label("tickets"),
            sa.func.coalesce(sa.func.sum(TICKETS.c.parts_cost_vnd), 0).label("parts"),
            sa.func.coalesce(sa.func.sum(TICKETS.c.labour_cost_vnd), 0).label("labour"),
        )
        .select_from(TICKETS.outerjoin(DEVICES, DEVICES.c.id == TICKETS.c.device_id))
        .where(*_resolved_in(start, end), *_corrective(), *_in_scope(TICKETS.c.district_code, scope))
        .group_by(TICKETS.c.district_code, TICKETS.c.commune_code, TICKETS.c.device_id, DEVICES.c.kind)
    )
    return [
        _CostGroup(
            row.district_code,
            row.commune_code,
            row.device_id,
            row.kind,
            int(row.tickets),
            int(row.parts),
            int(row.labour),
        )
        for row in connection.execute(query)
    ]


def _cost_rows(
    groups: Iterable[_CostGroup], district_names: dict[str, str], scope: list[str] | None
) -> tuple[list[CostRow], list[CostRow], CostRow]:
    """By district (every district of the scope, with zeros), by kind of device, and the total."""
    by_district = {code: CostRow(code, name) for code, name in district_names.items()}
    by_kind: dict[str, CostRow] = {}
    total = CostRow("total", "Toàn tỉnh" if scope is None else "Tổng")
    for group in groups:
        district = by_district.get(group.district_code)
        if district is None:  # routed to a district without communes: still counted, under its code
            district = by_district[group.district_code] = CostRow(group.district_code, group.district_code)
        district.add(group.tickets, group.parts, group.labour)
        kind = group.kind or NO_DEVICE
        if kind not in by_kind:
            by_kind[kind] = CostRow(kind, kind_label(kind))
        by_kind[kind].add(group.tickets, group.parts, group.labour)
        total.add(group.tickets, group.parts, group.labour)
    order = {kind: index for index, kind in enumerate([*KINDS, NO_DEVICE])}
    kinds = sorted(by_kind.values(), key=lambda row: (order.get(row.key, len(order)), row.key))
    return sorted(by_district.values(), key=lambda row: row.key), kinds, total


def kind_label(kind: str, language: str = "vi") -> str:
    """A kind of device for people (or the costs without a device)."""
    if kind == NO_DEVICE:
        return "Corrective work without a device" if language == "en" else "Sự cố chung của xã, huyện"
    try:
        return DeviceKind(kind).label(language)
    except ValueError:
        return kind


def _parts(connection: Any, scope: list[str] | None, start: datetime, end: datetime) -> list[PartRow]:
    """The parts replaced on the corrective tickets resolved in [start, end), most replaced first."""
    query = sa.select(TICKETS.c.parts_replaced).where(
        *_resolved_in(start, end),
        *_corrective(),
        *_in_scope(TICKETS.c.district_code, scope),
        # most repairs replace nothing: read only the lists that hold something
        sa.cast(TICKETS.c.parts_replaced, sa.Text).not_in(["[]", "null"]),
    )
    counts: Counter[str] = Counter()
    for (parts,) in connection.execute(query):
        counts.update(str(part).strip() for part in parts or () if str(part).strip())
    return [PartRow(name, count) for name, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]


def _maintenance(
    connection: Any,
    scope: list[str] | None,
    start: datetime,
    end: datetime,
    now: datetime,
    district_names: dict[str, str],
) -> tuple[list[MaintenanceRow], MaintenanceRow]:
    """Planned work due in the period (its due time within it), by district, and the total."""
    done_statuses = [status.value for status in DONE_STATUSES]
    done = TICKETS.c.status.in_(done_statuses)
    on_time = sa.and_(done, TICKETS.c.resolved_at.is_not(None), TICKETS.c.resolved_at <= TICKETS.c.resolve_due_at)
    overdue = sa.and_(TICKETS.c.status.not_in(done_statuses), TICKETS.c.resolve_due_at < now)
    query = (
        sa.select(
            TICKETS.c.district_code,
            sa.func.count().label("scheduled"),
            sa.func.sum(sa.case((done, 1), else_=0)).label("done"),
            sa.func.sum(sa.case((on_time, 1), else_=0)).label("on_time"),
            sa.func.sum(sa.case((overdue, 1), else_=0)).label("overdue"),
        )
        .where(
            sa.or_(TICKETS.c.source == TicketSource.PLANNED.value, TICKETS.c.kind == INSPECTION),
            # a planned ticket is due at the end of its day: due on `last` is due at `end`
            TICKETS.c.resolve_due_at > start,
            TICKETS.c.resolve_due_at <= end,
            *_in_scope(TICKETS.c.district_code, scope),
        )
        .group_by(TICKETS.c.district_code)
    )
    rows = {code: MaintenanceRow(code, name) for code, name in district_names.items()}
    for row in connection.execute(query):
        target = rows.get(row.district_code) or rows.setdefault(
            row.district_code, MaintenanceRow(row.district_code, row.district_code)
        )
        target.add(
            MaintenanceRow(
                row.district_code,
                "",
                int(row.scheduled),
                int(row.done or 0),
                int(row.on_time or 0),
                int(row.overdue or 0),
            )
        )
    total = MaintenanceRow("total", "Toàn tỉnh" if scope is None else "Tổng")
    for row in rows.values():
        total.add(row)
    return sorted(rows.values(), key=lambda row: row.key), total


def _estimate(communes: list[CommuneReview], costs_by_kind: list[CostRow], policy: ReviewPolicy) -> list[EstimateLine]:
    """Next year's lines, per kind of device in the scope: inspections, repairs, replacements."""
    units = policy.costs
    devices: Counter[str] = Counter()
    repairs: Counter[str] = Counter()
    flagged: Counter[str] = Counter()
    for commune in communes:
        for device in commune.devices:
            devices[device.kind] += 1
            repairs[device.kind] += device.repairs
            flagged[device.kind] += bool(device.reasons)
    costs = {row.key: row for row in costs_by_kind}
    kinds = [kind for kind in KINDS if devices[kind]] + sorted(k for k in devices if k not in KINDS)
    lines: list[EstimateLine] = []
    for kind in kinds:
        every = units.inspections_per_year.get(kind, 0)
        lines.append(
            _line(
                f"inspection:{kind}",
                f"Kiểm tra, bảo dưỡng định kỳ – {kind_label(kind)} ({every} lần/năm)",
                f"Planned inspections – {kind_label(kind, 'en')} ({every} a year)",
                devices[kind] * every,
                units.inspection_vnd.get(kind, 0),
            )
        )
    for kind in kinds:
        per_device = repairs[kind] / devices[kind]
        cost = costs.get(kind)
        # mean over the repair tickets of that kind, costed or not: the year's spending per repair
        unit = round(cost.total_vnd / cost.tickets) if cost is not None and cost.total_vnd > 0 else None
        lines.append(
            _line(
                f"repairs:{kind}",
                f"Sửa chữa – {kind_label(kind)}" + (" (đơn giá dự phòng)" if unit is None else ""),
                f"Repairs – {kind_label(kind, 'en')}" + (" (fallback unit cost)" if unit is None else ""),
                round(per_device * devices[kind]),
                units.repair_fallback_vnd if unit is None else unit,
            )
        )
    for kind in kinds:
        lines.append(
            _line(
                f"replacement:{kind}",
                f"Thay thế thiết bị đề xuất – {kind_label(kind)}",
                f"Replacements proposed – {kind_label(kind, 'en')}",
                flagged[kind],
                units.replacement_vnd.get(kind, 0),
            )
        )
    return lines


def _line(key: str, label_vi: str, label_en: str, quantity: int, unit_vnd: int) -> EstimateLine:
    return EstimateLine(key, label_vi, label_en, quantity, unit_vnd, quantity * unit_vnd)


__all__ = [
    "METHOD_EN",
    "METHOD_VI",
    "CommuneReview",
    "CostRow",
    "DeviceReview",
    "EstimateLine",
    "MaintenanceRow",
    "PartRow",
    "ReplaceReason",
    "ReviewPolicy",
    "UnitCosts",
    "YearlyReview",
    "kind_label",
    "load_unit_costs",
    "yearly_review",
]
