"""Uptime over a period, by device, commune, district, kind or for the whole province.

Whole days come from the roll-ups; days not rolled up yet (today, or a day a late change reopened) come
from the spans, up to `now`. Maintenance windows are laid over both at query time: the time a window
covered is moved, device by device, from its state into maintenance. Outages come from the spans of
`down`. The definitions are in `timeline` and printed with every report (`METHOD_VI`, `METHOD_EN`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from monitor.alerts.maintenance import occurrences
from monitor.alerts.models import MaintenanceWindow
from monitor.bounds import MAX_YEAR, MIN_YEAR
from monitor.db import UTCDateTime
from monitor.errors import InvalidInput, Problem
from monitor.inventory.models import Commune, District
from monitor.reports.rollup import CountedDevice, counted_devices, spans_between
from monitor.reports.spans import DAILY, DAYS, DEVICES, SPANS
from monitor.reports.timeline import (
    STATES,
    Figures,
    Interval,
    OutageStats,
    Span,
    StateSeconds,
    day_start,
    device_figures,
    merge_intervals,
    period_bounds,
)

COMMUNES = Commune.__table__  # type: ignore[attr-defined]
DISTRICTS = District.__table__  # type: ignore[attr-defined]
MAX_DAYS = 3 * 366 + 1  # a plan period of three years at most in one report

METHOD_VI = (
    "Thời gian tính theo lịch sử trạng thái (không theo mẫu), theo ngày lịch giờ Việt Nam. "
    "Tỷ lệ hoạt động = (hoạt động + suy giảm) / (hoạt động + suy giảm + mất kết nối). "
    "Thời gian không rõ trạng thái (hệ thống không quan sát được) tính riêng, không tính là mất kết nối. "
    "Thời gian bảo trì theo lịch được tính riêng và không tính vào tỷ lệ. "
    "Thiết bị chỉ được tính từ ngày lắp đặt và khi đang hoạt động."
)
METHOD_EN = (
    "Computed from the state history (not from samples), by calendar day in Vietnam time. "
    "Availability = (up + degraded) / (up + degraded + down). Unknown time (the service could not see the "
    "device) is reported apart and never counted as down. Scheduled maintenance is reported apart and left "
    "out of availability. A device counts only from its install date and while active."
)


class GroupBy(StrEnum):
    DEVICE = "device"
    COMMUNE = "commune"
    DISTRICT = "district"
    KIND = "kind"
    PROVINCE = "province"


@dataclass(slots=True)
class UptimeRow:
    """One line of the report: the group's key and name, and its figures."""

    key: str
    name: str
    figures: Figures = field(default_factory=Figures)
    district_code: str | None = None
    commune_code: str | None = None
    kind: str | None = None

    def as_dict(self) -> dict[str, Any]:
        seconds, outages = self.figures.seconds, self.figures.outages
        return {
            "key": self.key,
            "name": self.name,
            "district_code": self.district_code,
            "commune_code": self.commune_code,
            "kind": self.kind,
            "devices": self.figures.devices,
            **{f"{state}_s": round(seconds.get(state), 3) for state in STATES},
            "availability": None if seconds.availability is None else round(seconds.availability, 6),
            "outages": outages.count,
            "longest_outage_s": round(outages.longest_s, 3),
            "mtbf_s": None if self.figures.mtbf_s is None else round(self.figures.mtbf_s, 3),
        }


@dataclass(slots=True)
class UptimeReport:
    """The rows of a report, its total, and what it was computed over."""

    first: date
    last: date
    start: datetime
    end: datetime
    by: GroupBy
    exclude_maintenance: bool
    rows: list[UptimeRow]
    total: UptimeRow
    maintenance: list[dict[str, Any]]
    rolled_days: int
    live_days: int


def check_period(first: date, last: date) -> None:
    """InvalidInput unless `first` <= `last` and the period is at most MAX_DAYS long."""
    for name, day in (("from", first), ("to", last)):
        if not MIN_YEAR <= day.year <= MAX_YEAR:
            raise InvalidInput("bad period", [Problem(name, f"a day between {MIN_YEAR} and {MAX_YEAR}")])
    if last < first:
        raise InvalidInput("bad period", [Problem("to", "must not be before from")])
    if (last - first).days + 1 > MAX_DAYS:
        raise InvalidInput("bad period", [Problem("to", f"a report covers at most {MAX_DAYS} days")])


def uptime_report(
    session: Session,
    first: date,
    last: date,
    *,
    now: datetime,
    by: GroupBy = GroupBy.DISTRICT,
    districts: Collection[str] | None = None,
    device_code: str | None = None,
    kind: str | None = None,
    exclude_maintenance: bool = True,
) -> UptimeReport:
    """Uptime of the active devices of `districts` (None: all) over the local days [first, last], cut at `now`."""
    check_period(first, last)
    connection = session.connection()
    start, end = period_bounds(first, last)
    end = max(start, min(end, now))
    conditions: list[Any] = [DEVICES.c.created_at < end]
    if districts is not None:
        in_districts = sa.select(COMMUNES.c.code).where(COMMUNES.c.district_code.in_(list(districts)))
        conditions.append(DEVICES.c.commune_code.in_(in_districts))
    if device_code is not None:
        conditions.append(DEVICES.c.code == device_code)
    if kind is not None:
        conditions.append(DEVICES.c.kind == kind)
    devices = {i: d for i, d in counted_devices(connection, *conditions).items() if d.counts_from < end}
    places = _places(connection)
    per_device = by is GroupBy.DEVICE or device_code is not None
    if per_device:
        by = GroupBy.DEVICE
    names = _device_names(connection, devices) if per_device or _has_device_windows(session, start, end) else {}
    windows, listed = _maintenance(session, start, end, devices, places, names)
    grouping = _Grouping(places, by, names)
    groups: dict[str, UptimeRow] = {}
    rolled: list[date] = []
    if per_device:
        muted = windows if exclude_maintenance else {}
        for device_id, figures in _from_spans(connection, devices, [(start, end)], muted).items():
            grouping.row(groups, devices[device_id]).figures.merge(figures)
    else:
        rolled = _rolled_days(connection, first, last, end)
        live = _live_intervals(first, last, end, rolled)
        _add_rolled(connection, groups, grouping, rolled, devices)
        muted = windows if exclude_maintenance else {}
        # in SQL, per (commune, kind); in Python, device by device, what SQL cannot clip or mute
        exact_ids = _exact_devices(devices, muted, connection)
        bulk = {i: d for i, d in devices.items() if i not in exact_ids} if len(exact_ids) <= _MAX_EXCLUDED else {}
        exact = {i: d for i, d in devices.items() if i not in bulk}
        sample = {(d.commune_code, d.kind): d for d in devices.values()}
        for lo, hi in live:
            for row in _overlaps(connection, lo, hi, bulk, exact):
                grouping.row(groups, sample[(row.commune_code, row.kind)]).figures.seconds.add(
                    row.state, float(row.seconds)
                )
        for device_id, figures in _from_spans(connection, exact, live, {}).items():
            grouping.row(groups, devices[device_id]).figures.seconds.merge(figures.seconds)
        _move_maintenance(connection, groups, grouping, devices, muted)
        for row in _overlaps(connection, start, end, bulk, exact, state="down"):
            outages = grouping.row(groups, sample[(row.commune_code, row.kind)]).figures.outages
            outages.merge(OutageStats(int(row.count), float(row.longest), float(row.seconds)))
        _add_outages(connection, groups, grouping, exact, start, end, muted)
        _count_devices(groups, grouping, devices)
    rows = sorted(groups.values(), key=lambda row: row.key)
    total = UptimeRow(key="total", name="Toàn tỉnh" if districts is None else "Tổng")
    for row in rows:
        total.figures.merge(row.figures)
    return UptimeReport(
        first=first,
        last=last,
        start=start,
        end=end,
        by=by,
        exclude_maintenance=exclude_maintenance,
        rows=rows,
        total=total,
        maintenance=listed,
        rolled_days=len(rolled),
        live_days=(last - first).days + 1 - len(rolled),
    )


# --- pieces ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Places:
    commune_name: dict[str, str]
    commune_district: dict[str, str]
    district_name: dict[str, str]


def _places(connection: Any) -> _Places:
    communes = connection.execute(sa.select(COMMUNES.c.code, COMMUNES.c.name, COMMUNES.c.district_code)).all()
    districts = connection.execute(sa.select(DISTRICTS.c.code, DISTRICTS.c.name)).all()
    return _Places(
        commune_name={c.code: c.name for c in communes},
        commune_district={c.code: c.district_code for c in communes},
        district_name={d.code: d.name for d in districts},
    )


def _device_names(connection: Any, devices: dict[int, CountedDevice]) -> dict[int, tuple[str, str]]:
    """(code, name) of each device, by id."""
    out: dict[int, tuple[str, str]] = {}
    ids = sorted(devices)
    for start in range(0, len(ids), 500):
        query = sa.select(DEVICES.c.id, DEVICES.c.code, DEVICES.c.name).where(
            DEVICES.c.id.in_(ids[start : start + 500])
        )
        out.update({row.id: (row.code, row.name) for row in connection.execute(query)})
    return out


@dataclass(frozen=True, slots=True)
class _Grouping:
    """Which row of the report a device's figures go to."""

    places: _Places
    by: GroupBy
    names: dict[int, tuple[str, str]]

    def row(self, groups: dict[str, UptimeRow], device: CountedDevice) -> UptimeRow:
        district = self.places.commune_district.get(device.commune_code)
        commune: str | None = None
        kind: str | None = None
        if self.by is GroupBy.COMMUNE:
            key, name, commune = (
                device.commune_code,
                self.places.commune_name.get(device.commune_code, ""),
                device.commune_code,
            )
        elif self.by is GroupBy.DISTRICT:
            key = district or ""
            name = self.places.district_name.get(key, key)
        elif self.by is GroupBy.KIND:
            key, name, kind, district = device.kind, device.kind, device.kind, None
        elif self.by is GroupBy.PROVINCE:
            key, name, district = "province", "Toàn tỉnh", None
        else:
            key, name = self.names.get(device.id, (str(device.id), ""))
            commune, kind = device.commune_code, device.kind
        row = groups.get(key)
        if row is None:
            row = groups[key] = UptimeRow(key=key, name=name, district_code=district, commune_code=commune, kind=kind)
        return row


def _rolled_days(connection: Any, first: date, last: date, end: datetime) -> list[date]:
    """The days of [first, last] that are rolled up and wholly before `end`."""
    listed = connection.execute(sa.select(DAYS.c.day).where(DAYS.c.day >= first, DAYS.c.day <= last)).scalars()
    return sorted(day for day in listed if day_start(day + timedelta(days=1)) <= end)


def _live_intervals(first: date, last: date, end: datetime, rolled: list[date]) -> list[Interval]:
    """The parts of the period not covered by rolled-up days, cut at `end`."""
    done = set(rolled)
    intervals = []
    day = first
    while day <= last and day_start(day) < end:
        if day not in done:
            intervals.append((day_start(day), min(end, day_start(day + timedelta(days=1)))))
        day += timedelta(days=1)
    return merge_intervals(intervals)


def _spans_by_device(
    connection: Any, devices: dict[int, CountedDevice], start: datetime, end: datetime
) -> dict[int, list[Span]]:
    out: dict[int, list[Span]] = defaultdict(list)
    for conditions in _by_ids(devices):
        for row in spans_between(connection, start, end, *conditions):
            if row.device_id in devices:
                out[row.device_id].append(Span(row.state, row.started_at, row.ended_at))
    return out


_IDS_PER_QUERY = 2000


def _by_ids(devices: dict[int, CountedDevice]) -> list[tuple[Any, ...]]:
    """Conditions that read only these devices' spans: a few IN lists for a few devices, none for many."""
    if not devices:
        return []
    if len(devices) > 10 * _IDS_PER_QUERY:
        return [()]
    ids = sorted(devices)
    return [(SPANS.c.device_id.in_(ids[i : i + _IDS_PER_QUERY]),) for i in range(0, len(ids), _IDS_PER_QUERY)]


def _from_spans(
    connection: Any, devices: dict[int, CountedDevice], intervals: list[Interval], windows: dict[int, list[Interval]]
) -> dict[int, Figures]:
    """Each device's figures over the intervals, from its spans."""
    if not intervals or not devices:
        return {}
    spans = _spans_by_device(connection, devices, intervals[0][0], intervals[-1][1])
    out: dict[int, Figures] = {}
    for device_id, device in devices.items():
        figures = Figures(devices=1)
        # a device always has an open span once laid; none at all means never heard: unknown
        history = spans.get(device_id) or [Span("unknown", device.counts_from)]
        for lo, hi in intervals:
            part = device_figures(
                history, lo, hi, counts_from=device.counts_from, maintenance=windows.get(device_id, ())
            )
            figures.seconds.merge(part.seconds)
            figures.outages.merge(part.outages)
        out[device_id] = figures
    return out


def _add_rolled(
    connection: Any,
    groups: dict[str, UptimeRow],
    grouping: _Grouping,
    rolled: list[date],
    devices: dict[int, CountedDevice],
) -> None:
    """Add the roll-ups of the rolled days, per (commune, kind), into the groups."""
    if not rolled or not devices:
        return
    sample = {(device.commune_code, device.kind): device for device in devices.values()}
    query = (
        sa.select(DAILY.c.commune_code, DAILY.c.kind, *(sa.func.sum(DAILY.c[f"{s}_s"]).label(s) for s in STATES))
        .where(DAILY.c.day >= rolled[0], DAILY.c.day <= rolled[-1])
        .group_by(DAILY.c.commune_code, DAILY.c.kind)
    )
    if len(rolled) != (rolled[-1] - rolled[0]).days + 1:
        query = query.where(DAILY.c.day.in_(rolled))
    for row in connection.execute(query):
        device = sample.get((row.commune_code, row.kind))
        if device is None:  # no active device of that commune and kind in the report's scope
            continue
        target = grouping.row(groups, device)
        for state in STATES:
            target.figures.seconds.add(state, float(getattr(row, state) or 0.0))


def _has_device_windows(session: Session, start: datetime, end: datetime) -> bool:
    return any(window.scope == "device" for window in _windows(session, start, end))


def _windows(session: Session, start: datetime, end: datetime) -> list[MaintenanceWindow]:
    table = MaintenanceWindow.__table__.c  # type: ignore[attr-defined]
    query = sa.select(MaintenanceWindow).where(
        table.starts_at < end, sa.or_(table.ends_at.is_(None), table.ends_at > start)
    )
    return list(session.execute(query).scalars())


def _maintenance(
    session: Session,
    start: datetime,
    end: datetime,
    devices: dict[int, CountedDevice],
    places: _Places,
    names: dict[int, tuple[str, str]],
) -> tuple[dict[int, list[Interval]], list[dict[str, Any]]]:
    """For each device a window covered in [start, end), the disjoint intervals it covered; and the windows."""
    by_device: dict[int, list[Interval]] = defaultdict(list)
    listed = []
    for window in _windows(session, start, end):
        times = occurrences(window, start, end)
        if not times:
            continue
        covered = 0
        for device_id, device in devices.items():
            if _covers(window, device, places, names):
                by_device[device_id].extend(times)
                covered += 1
        if covered:
            listed.append(
                {
                    "id": window.id,
                    "name": window.name,
                    "scope": window.scope,
                    "scope_code": window.scope_code,
                    "devices": covered,
                    "occurrences": len(times),
                    "seconds": sum((hi - lo).total_seconds() for lo, hi in times),
                }
            )
    windows = {device_id: merge_intervals(times) for device_id, times in by_device.items()}
    return windows, sorted(listed, key=lambda item: (item["scope"], item["scope_code"], item["id"] or 0))


def _covers(
    window: MaintenanceWindow, device: CountedDevice, places: _Places, names: dict[int, tuple[str, str]]
) -> bool:
    if window.scope == "commune":
        return device.commune_code == window.scope_code
    if window.scope == "district":
        return places.commune_district.get(device.commune_code) == window.scope_code
    if window.scope == "kind":
        return device.kind == window.scope_code
    if window.scope == "device":
        return names.get(device.id, ("",))[0] == window.scope_code
    return False


def _move_maintenance(
    connection: Any,
    groups: dict[str, UptimeRow],
    grouping: _Grouping,
    devices: dict[int, CountedDevice],
    windows: dict[int, list[Interval]],
) -> None:
    """Move what the windows covered from the states into maintenance (roll-ups and live days both keep
    the true states, so every window interval is moved exactly once, here)."""
    if not windows:
        return
    affected = {device_id: devices[device_id] for device_id in windows}
    lo = min(times[0][0] for times in windows.values())
    hi = max(times[-1][1] for times in windows.values())
    spans = _spans_by_device(connection, affected, lo, hi)
    for device_id, times in windows.items():
        device = affected[device_id]
        inside = StateSeconds()
        for w_lo, w_hi in times:
            history = spans.get(device_id) or [Span("unknown", device.counts_from)]
            inside.merge(device_figures(history, w_lo, w_hi, counts_from=device.counts_from).seconds)
        row = grouping.row(groups, device)
        for state in STATES:
            if state != "maintenance":
                row.figures.seconds.add(state, -inside.get(state))
                row.figures.seconds.add("maintenance", inside.get(state))


_MAX_EXCLUDED = 5000  # devices left out of the SQL sums by id; past that, every device goes the exact way


def _exact_devices(devices: dict[int, CountedDevice], windows: dict[int, list[Interval]], connection: Any) -> set[int]:
    """The devices whose figures SQL cannot sum as they are: counted from after their creation (installed
    later), covered by maintenance (their outages are muted), or without any span yet (never heard)."""
    exact = {i for i, d in devices.items() if d.counts_from > d.created_at} | set(windows)
    unseeded = connection.execute(
        sa.select(DEVICES.c.id).where(~sa.exists().where(SPANS.c.device_id == DEVICES.c.id))
    ).scalars()
    return exact | {i for i in unseeded if i in devices}


def _epoch(connection: Any, value: Any) -> Any:
    """Seconds since 1970 of a timestamp, in the database's own SQL."""
    if connection.dialect.name == "postgresql":
        return sa.func.extract("epoch", value)
    return (sa.func.julianday(value) - 2440587.5) * 86400.0


def _overlaps(
    connection: Any,
    lo: datetime,
    hi: datetime,
    bulk: dict[int, CountedDevice],
    exact: dict[int, CountedDevice],
    *,
    state: str | None = None,
) -> list[Any]:
    """Per (commune, kind, state): spans' seconds inside [lo, hi), their number and the longest, summed in
    SQL over the devices in `bulk` (the devices of `exact` left out by id)."""
    if not bulk:
        return []
    pg = connection.dialect.name == "postgresql"
    lower, upper = (sa.func.greatest, sa.func.least) if pg else (sa.func.max, sa.func.min)
    lo_value, hi_value = sa.literal(lo, UTCDateTime()), sa.literal(hi, UTCDateTime())
    overlap: Any = _epoch(connection, upper(sa.func.coalesce(SPANS.c.ended_at, hi_value), hi_value)) - _epoch(
        connection, lower(SPANS.c.started_at, lo_value)
    )
    if not pg:  # julianday is a double of days: exact to about 0.1 ms, so each span is rounded to the ms
        overlap = sa.func.round(overlap, 3)
    query = (
        sa.select(
            DEVICES.c.commune_code,
            DEVICES.c.kind,
            SPANS.c.state,
            sa.func.sum(overlap).label("seconds"),
            sa.func.count().label("count"),
            sa.func.max(overlap).label("longest"),
        )
        .join(DEVICES, DEVICES.c.id == SPANS.c.device_id)
        .where(
            SPANS.c.started_at < hi_value,
            sa.or_(SPANS.c.ended_at.is_(None), SPANS.c.ended_at > lo_value),
            DEVICES.c.active.is_(True),
            DEVICES.c.created_at < hi_value,
        )
        .group_by(DEVICES.c.commune_code, DEVICES.c.kind, SPANS.c.state)
    )
    if state is not None:
        query = query.where(SPANS.c.state == state)
    if exact:
        query = query.where(DEVICES.c.id.not_in(sorted(exact)))
    # the report's communes and kinds (at most a province's 200 and a few kinds): a district's report reads
    # its district's spans only
    codes = sorted({d.commune_code for d in bulk.values()})
    kinds = sorted({d.kind for d in bulk.values()})
    query = query.where(DEVICES.c.commune_code.in_(codes), DEVICES.c.kind.in_(kinds))
    wanted = {(d.commune_code, d.kind) for d in bulk.values()}
    return [row for row in connection.execute(query) if (row.commune_code, row.kind) in wanted]


def _add_outages(
    connection: Any,
    groups: dict[str, UptimeRow],
    grouping: _Grouping,
    devices: dict[int, CountedDevice],
    start: datetime,
    end: datetime,
    windows: dict[int, list[Interval]],
) -> None:
    """Count the outages (down spans) overlapping the period, outside maintenance."""
    for conditions in _by_ids(devices):
        for span in spans_between(connection, start, end, SPANS.c.state == "down", *conditions):
            device = devices.get(span.device_id)
            if device is None:
                continue
            one = [Span(span.state, span.started_at, span.ended_at)]
            figures = device_figures(
                one, start, end, counts_from=device.counts_from, maintenance=windows.get(device.id, ())
            )
            if figures.outages.count:
                grouping.row(groups, device).figures.outages.merge(figures.outages)


def _count_devices(groups: dict[str, UptimeRow], grouping: _Grouping, devices: dict[int, CountedDevice]) -> None:
    counts: dict[str, int] = defaultdict(int)
    for device in devices.values():
        counts[grouping.row(groups, device).key] += 1
    for key, count in counts.items():
        groups[key].figures.devices = count
